"""Full-text search over videos: a tsvector with a GIN index (PostgreSQL), FTS5 (SQLite).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.media.search import POSTGRES_VECTOR, index_fields

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_INSERT = (
    "INSERT INTO video_search (video_id, title, tags, description, shot_list, transcript) "
    "VALUES (:id, :title, :tags, :description, :shot_list, :transcript)"
)


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    if dialect == "postgresql":
        op.execute("ALTER TABLE videos ADD COLUMN search_vector tsvector")
        op.execute("CREATE INDEX ix_videos_search_vector ON videos USING gin (search_vector)")
        statement = sa.text(f"UPDATE videos SET search_vector = {POSTGRES_VECTOR} WHERE id = :id")
    elif dialect == "sqlite":
        # The media service keeps this table in step with `videos` on every change.
        op.execute(
            "CREATE VIRTUAL TABLE video_search USING fts5("
            "video_id UNINDEXED, title, tags, description, shot_list, transcript, "
            "tokenize = 'porter unicode61 remove_diacritics 2')"
        )
        statement = sa.text(SQLITE_INSERT)
    else:
        raise NotImplementedError(f"video search is not implemented for {dialect}")

    # Index what is already there, one video at a time (the catalogue is read in id order).
    videos = sa.table(
        "videos",
        sa.column("id", sa.Uuid()),
        sa.column("title"),
        sa.column("description"),
        sa.column("shot_list"),
        sa.column("transcript"),
    )
    tags = sa.table("video_tags", sa.column("video_id", sa.Uuid()), sa.column("tag"))
    for row in bind.execute(sa.select(videos).order_by(videos.c.id)).all():
        names = bind.execute(
            sa.select(tags.c.tag).where(tags.c.video_id == row.id).order_by(tags.c.tag)
        ).scalars()
        bind.execute(statement, {"id": row.id, **index_fields(row, list(names))})


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS video_search")
    else:
        op.execute("DROP INDEX IF EXISTS ix_videos_search_vector")
        op.execute("ALTER TABLE videos DROP COLUMN IF EXISTS search_vector")
