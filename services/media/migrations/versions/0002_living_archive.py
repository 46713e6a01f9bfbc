"""A living archive: video status and version, the change-feed counter, the change audit list.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.add_column(
            sa.Column("status", sa.String(20), nullable=False, server_default="published")
        )
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(
            sa.Column("feed_position", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("withdrawal_reason", sa.String(20), nullable=True))
        batch.add_column(sa.Column("withdrawal_note", sa.Text(), nullable=True))
        batch.add_column(sa.Column("external_id", sa.String(200), nullable=True))
        batch.create_unique_constraint(op.f("uq_videos_external_id"), ["external_id"])
    # Existing videos take positions in the order the old feed walked them.
    op.execute(
        "UPDATE videos SET feed_position = ranked.n FROM (SELECT id, row_number() OVER "
        "(ORDER BY updated_at, id) AS n FROM videos) AS ranked WHERE ranked.id = videos.id"
    )
    op.create_index("ix_videos_feed_position", "videos", ["feed_position"], unique=True)

    # A deleted rendition keeps its download grants (the audit of who holds copies).
    with op.batch_alter_table("download_grants") as batch:
        batch.drop_constraint(op.f("fk_download_grants_rendition_id_renditions"), type_="foreignkey")
        batch.alter_column("rendition_id", existing_type=sa.Uuid(), nullable=True)
        batch.create_foreign_key(
            op.f("fk_download_grants_rendition_id_renditions"),
            "renditions",
            ["rendition_id"],
            ["id"],
            ondelete="SET NULL",
        )

    op.create_table(
        "feed_counter",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_counter")),
    )
    op.execute(
        "INSERT INTO feed_counter (id, position) SELECT 1, COALESCE(MAX(feed_position), 0) "
        "FROM videos"
    )

    op.create_table(
        "video_changes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("video_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("feed_position", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(30), nullable=False),
        sa.Column("editor", sa.String(200), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["video_id"],
            ["videos.id"],
            name=op.f("fk_video_changes_video_id_videos"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_video_changes")),
    )
    op.create_index(op.f("ix_video_changes_video_id"), "video_changes", ["video_id"])


def downgrade() -> None:
    op.execute("DELETE FROM download_grants WHERE rendition_id IS NULL")
    with op.batch_alter_table("download_grants") as batch:
        batch.drop_constraint(op.f("fk_download_grants_rendition_id_renditions"), type_="foreignkey")
        batch.alter_column("rendition_id", existing_type=sa.Uuid(), nullable=False)
        batch.create_foreign_key(
            op.f("fk_download_grants_rendition_id_renditions"),
            "renditions",
            ["rendition_id"],
            ["id"],
            ondelete="CASCADE",
        )
    op.drop_table("video_changes")
    op.drop_table("feed_counter")
    op.drop_index("ix_videos_feed_position", table_name="videos")
    with op.batch_alter_table("videos") as batch:
        batch.drop_constraint(op.f("uq_videos_external_id"), type_="unique")
        for name in (
            "external_id",
            "withdrawal_note",
            "withdrawal_reason",
            "withdrawn_at",
            "feed_position",
            "version",
            "status",
        ):
            batch.drop_column(name)
