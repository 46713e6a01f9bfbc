"""The account lifecycle: a row per login, the account's language, email changes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("session_epoch", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=256), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_sign_in_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_sessions")),
    )
    op.create_index("ix_sign_in_sessions_user_id", "sign_in_sessions", ["user_id"])
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("language", sa.String(length=8), server_default=sa.text("'en'"), nullable=False)
        )
        batch.add_column(sa.Column("pending_email", sa.String(length=320), nullable=True))
        batch.add_column(sa.Column("previous_email", sa.String(length=320), nullable=True))
        batch.add_column(
            sa.Column("previous_email_canonical", sa.String(length=320), nullable=True)
        )
        batch.add_column(
            sa.Column("previous_email_until", sa.DateTime(timezone=True), nullable=True)
        )
        batch.create_index("ix_users_previous_email_canonical", ["previous_email_canonical"])


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_index("ix_users_previous_email_canonical")
        batch.drop_column("previous_email_until")
        batch.drop_column("previous_email_canonical")
        batch.drop_column("previous_email")
        batch.drop_column("pending_email")
        batch.drop_column("language")
    op.drop_index("ix_sign_in_sessions_user_id", table_name="sign_in_sessions")
    op.drop_table("sign_in_sessions")
