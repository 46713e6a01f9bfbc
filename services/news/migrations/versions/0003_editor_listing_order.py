"""An index in the editors' listing order: newest first by publication, drafts by creation.

The editors' list orders by `coalesce(published_at, created_at), id`, which no index covered, so
every page sorted the whole table. The expression is the one `service.list_articles` orders by,
so both databases can read a page straight from the index.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_articles_editor_order",
        "articles",
        [sa.text("coalesce(published_at, created_at) DESC"), sa.text("id DESC")],
    )


def downgrade() -> None:
    op.drop_index("ix_articles_editor_order", table_name="articles")
