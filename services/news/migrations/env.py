from services.common.migrations import run_migrations
from services.news.models import Base

run_migrations(Base.metadata, version_table="alembic_version_news")
