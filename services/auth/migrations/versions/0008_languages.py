"""English and French: the language a code was asked in, and when a newsletter subscription began.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("code_requests") as batch:
        batch.add_column(sa.Column("language", sa.String(length=8), nullable=True))
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("newsletter_since", sa.DateTime(timezone=True), nullable=True))
    # Subscriptions older than this column are dated from the account: the earliest they began.
    op.execute("UPDATE users SET newsletter_since = created_at WHERE newsletter")


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("newsletter_since")
    with op.batch_alter_table("code_requests") as batch:
        batch.drop_column("language")
