"""Codes are kept per address (addresses without an account get unsent ones), and every request
for a code is a row the sender answers.

Codes issued before this revision stop working (their digest was bound to the account id): a
new code is one resend away.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.execute("DELETE FROM one_time_codes")
    with op.batch_alter_table("one_time_codes") as batch:
        batch.add_column(sa.Column("address", sa.String(320), nullable=False))
        batch.alter_column("user_id", existing_type=sa.Uuid(), nullable=True)
        batch.drop_constraint("uq_one_time_codes_user_purpose", type_="unique")
        batch.create_unique_constraint("uq_one_time_codes_address_purpose", ["address", "purpose"])
        batch.create_index("ix_one_time_codes_user_id", ["user_id"])
    op.create_table(
        "code_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("mail_allowed", sa.Boolean(), nullable=False),
        sa.Column("contested", sa.Boolean(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_code_requests"),
    )
    op.create_index("ix_code_requests_created_at", "code_requests", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_code_requests_created_at", table_name="code_requests")
    op.drop_table("code_requests")
    op.execute("DELETE FROM one_time_codes")
    with op.batch_alter_table("one_time_codes") as batch:
        batch.drop_index("ix_one_time_codes_user_id")
        batch.drop_constraint("uq_one_time_codes_address_purpose", type_="unique")
        batch.create_unique_constraint("uq_one_time_codes_user_purpose", ["user_id", "purpose"])
        batch.alter_column("user_id", existing_type=sa.Uuid(), nullable=False)
        batch.drop_column("address")
