"""A download grant keeps the partner client's name its token carried, for the audit list.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("download_grants", sa.Column("client_name", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("download_grants") as batch:
        batch.drop_column("client_name")
