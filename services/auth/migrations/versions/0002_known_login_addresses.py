"""Client addresses that logged in to an account lately (they pass the account-wide lockout).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "known_login_addresses",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("address_hash", sa.String(64), nullable=False),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_known_login_addresses_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "address_hash", name="pk_known_login_addresses"),
    )


def downgrade() -> None:
    op.drop_table("known_login_addresses")
