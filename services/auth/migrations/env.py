from services.auth.models import Base
from services.common.migrations import run_migrations

run_migrations(Base.metadata, version_table="alembic_version_auth")
