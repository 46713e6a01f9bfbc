"""Outbox dead letters: a message the relay will never take is given up, and bodies are dropped.

Adds the message kind (inferred from the subject for rows already queued), relay attempts, the
time a message was given up or put back, and lets the bodies be empty. Bodies of mail already
sent are dropped here: they may hold codes.

Downgrading deletes dead messages (the old schema would retry them forever) and gives the
remaining bodies of sent mail an empty text, as the old schema needs one.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)

# The subjects `services.auth.emails` writes, fixed here as they were when kinds came in.
KINDS_BY_SUBJECT = {
    "Check your inbox and enter verification code": "verification_code",
    "Reset password": "password_reset_code",
    "You already have a NATO Multimedia account": "account_exists",
    "Your password has been updated": "password_changed",
}


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(32), server_default=sa.text("'other'"), nullable=False)
        )
        batch.add_column(
            sa.Column("relay_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch.add_column(sa.Column("dead_at", TZ, nullable=True))
        batch.add_column(sa.Column("retried_at", TZ, nullable=True))
        batch.alter_column("text_body", existing_type=sa.Text(), nullable=True)
        batch.alter_column("html_body", existing_type=sa.Text(), nullable=True)
        batch.drop_index("ix_outbox_messages_due")
        batch.create_index("ix_outbox_messages_due", ["sent_at", "dead_at", "next_attempt_at"])
    outbox = sa.table(
        "outbox_messages",
        sa.column("kind", sa.String()),
        sa.column("subject", sa.String()),
        sa.column("sent_at", TZ),
        sa.column("text_body", sa.Text()),
        sa.column("html_body", sa.Text()),
    )
    for subject, kind in KINDS_BY_SUBJECT.items():
        op.execute(outbox.update().where(outbox.c.subject == subject).values(kind=kind))
    op.execute(
        outbox.update()
        .where(outbox.c.sent_at.is_not(None))
        .values(text_body=sa.null(), html_body=sa.null())
    )


def downgrade() -> None:
    outbox = sa.table(
        "outbox_messages",
        sa.column("dead_at", TZ),
        sa.column("text_body", sa.Text()),
        sa.column("html_body", sa.Text()),
    )
    op.execute(outbox.delete().where(outbox.c.dead_at.is_not(None)))
    op.execute(outbox.update().where(outbox.c.text_body.is_(None)).values(text_body=""))
    op.execute(outbox.update().where(outbox.c.html_body.is_(None)).values(html_body=""))
    with op.batch_alter_table("outbox_messages") as batch:
        batch.drop_index("ix_outbox_messages_due")
        batch.create_index("ix_outbox_messages_due", ["sent_at", "next_attempt_at"])
        batch.alter_column("html_body", existing_type=sa.Text(), nullable=False)
        batch.alter_column("text_body", existing_type=sa.Text(), nullable=False)
        batch.drop_column("retried_at")
        batch.drop_column("dead_at")
        batch.drop_column("relay_attempts")
        batch.drop_column("kind")
