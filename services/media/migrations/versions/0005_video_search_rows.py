"""SQLite: each video's FTS5 rowid in `video_search_rows`, so a change replaces its row by rowid;
an index of what a search page is chosen by.

FTS5 cannot index its `video_id` column; deleting a video's row by it scanned the whole table,
which made every edit, and an import, slower as the catalogue grew. PostgreSQL keeps the
vector in the `videos` row and needs nothing.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        "CREATE TABLE video_search_rows ("
        "id INTEGER NOT NULL PRIMARY KEY, "
        "video_id CHAR(32) NOT NULL CONSTRAINT uq_video_search_rows_video_id UNIQUE)"
    )
    op.execute("INSERT INTO video_search_rows (id, video_id) SELECT rowid, video_id FROM video_search")
    # A search page is chosen from matches' ids, status and dates: this index holds them, so
    # SQLite never reads a whole row (transcript and all) of a video it does not return.
    op.execute("CREATE INDEX ix_videos_search_order ON videos (id, status, published_at)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP INDEX IF EXISTS ix_videos_search_order")
        op.execute("DROP TABLE IF EXISTS video_search_rows")
