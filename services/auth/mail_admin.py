"""What an operator sees of the outbox and does with dead mail (`natomedia mail ...`).

A dead message has no body any more (it may have held a code), so putting it back composes it
again from its kind: a notice as it was, a code message with a fresh code, since the code it
carried has expired or will before anyone reads it. The row keeps its id, so the relay and mail
clients see the same Message-ID.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth import emails
from services.auth.addresses import InvalidEmail, parse_email
from services.auth.codes import CodeBook
from services.auth.config import AuthSettings
from services.auth.emails import MailKind
from services.auth.models import CodePurpose, OutboxMessage, User
from services.common.clock import SystemClock
from services.common.database import Database, utcnow
from services.common.i18n import DEFAULT_LANGUAGE

PENDING = (OutboxMessage.sent_at.is_(None), OutboxMessage.dead_at.is_(None))


@dataclass(frozen=True)
class DeadMail:
    id: uuid.UUID
    kind: str
    recipient: str
    attempts: int
    created_at: datetime
    dead_at: datetime
    reason: str


@dataclass(frozen=True)
class QueueReport:
    due: int
    deferred: int
    sending: int
    dead: int
    oldest_pending: datetime | None
    next_attempt: datetime | None
    dead_mail: list[DeadMail]


async def queue_report(database: Database, *, dead_limit: int = 100) -> QueueReport:
    now = utcnow()
    async with database.sessionmaker() as session:

        async def count(*conditions: ColumnElement[bool]) -> int:
            query = select(func.count()).select_from(OutboxMessage).where(*conditions)
            return int(await session.scalar(query) or 0)

        leased = OutboxMessage.lease_id.is_not(None)
        idle = OutboxMessage.lease_id.is_(None)
        due = await count(*PENDING, idle, OutboxMessage.next_attempt_at <= now)
        deferred = await count(*PENDING, idle, OutboxMessage.next_attempt_at > now)
        sending = await count(*PENDING, leased)
        dead = await count(OutboxMessage.dead_at.is_not(None))
        oldest = await session.scalar(select(func.min(OutboxMessage.created_at)).where(*PENDING))
        next_attempt = await session.scalar(
            select(func.min(OutboxMessage.next_attempt_at)).where(
                *PENDING, idle, OutboxMessage.next_attempt_at > now
            )
        )
        rows = await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.dead_at.is_not(None))
            .order_by(OutboxMessage.dead_at.desc())
            .limit(dead_limit)
        )
        dead_mail = [
            DeadMail(
                row.id,
                row.kind,
                row.recipient,
                row.attempts,
                row.created_at,
                row.dead_at,
                row.last_error or "",
            )
            for row in rows
            if row.dead_at is not None
        ]
    return QueueReport(due, deferred, sending, dead, oldest, next_attempt, dead_mail)


class CannotRetry(Exception):
    """This dead message cannot be composed again; it stays dead."""


@dataclass(frozen=True)
class RetryResult:
    id: uuid.UUID
    recipient: str
    kind: str
    error: str | None  # why it stays dead, if it does


class Recomposer:
    """Writes a dead message's email again from its kind."""

    def __init__(self, settings: AuthSettings, code_key: bytes) -> None:
        self.minutes = settings.code_ttl_seconds // 60
        self.codes = CodeBook(
            code_key, SystemClock(), settings.code_ttl_seconds, settings.code_max_attempts
        )

    async def _find(self, session: AsyncSession, recipient: str) -> User | None:
        try:
            canonical = parse_email(recipient).canonical
        except InvalidEmail:
            canonical = recipient.lower()
        return await session.scalar(select(User).where(User.email_canonical == canonical))

    async def _account(self, session: AsyncSession, recipient: str) -> User:
        user = await self._find(session, recipient)
        if user is None:
            raise CannotRetry("no account has this address any more")
        return user

    async def _language(self, session: AsyncSession, recipient: str) -> str:
        """The language of the account at `recipient`; English once there is none."""
        user = await self._find(session, recipient)
        return user.language if user is not None else DEFAULT_LANGUAGE

    async def compose(self, session: AsyncSession, row: OutboxMessage) -> emails.Email:
        kind = row.kind
        if kind == MailKind.ACCOUNT_EXISTS:
            language = await self._language(session, row.recipient)
            return emails.account_exists(row.recipient, language=language)
        if kind == MailKind.PASSWORD_CHANGED:
            language = await self._language(session, row.recipient)
            return emails.password_changed(row.recipient, language=language)
        if kind == MailKind.VERIFICATION_CODE:
            user = await self._account(session, row.recipient)
            if user.email_verified:
                raise CannotRetry("the address is verified already; no code is needed")
            code = await self.codes.issue(
                session, CodePurpose.VERIFY_EMAIL, user.email_canonical, user.id
            )
            return emails.verification_code(
                row.recipient,
                code,
                self.minutes,
                self.codes.expiry(),
                language=user.language,
                resent=True,
            )
        if kind == MailKind.PASSWORD_RESET_CODE:
            user = await self._account(session, row.recipient)
            code = await self.codes.issue(
                session, CodePurpose.RESET_PASSWORD, user.email_canonical, user.id
            )
            return emails.password_reset_code(
                row.recipient, code, self.minutes, self.codes.expiry(), language=user.language
            )
        if kind == MailKind.EMAIL_CHANGE_TAKEN:
            language = await self._language(session, row.recipient)
            return emails.email_change_taken(row.recipient, language=language)
        if kind == MailKind.ACCOUNT_DELETED:
            # Written again from the address alone: the account it was about is gone, and with
            # it the language it chose.
            return emails.account_deleted(row.recipient)
        if kind == MailKind.EMAIL_CHANGE_UNDONE:
            language = await self._language(session, row.recipient)
            return emails.email_change_undone(row.recipient, language=language)
        if kind in (MailKind.EMAIL_CHANGE_CODE, MailKind.EMAIL_CHANGED):
            # The code belongs to a change in progress that the account's owner started; a fresh
            # one would have to come from them (ask for the change again, or for a reset).
            raise CannotRetry(
                f"mail of kind {kind!r} carries the code of an email change and cannot be "
                "composed again; the account's owner can ask for the change again"
            )
        raise CannotRetry(f"mail of kind {kind!r} cannot be composed again")


async def put_back(
    database: Database, recomposer: Recomposer, ids: Sequence[uuid.UUID] | None
) -> list[RetryResult]:
    """Put the dead messages `ids` (None: every dead message) back in the queue, due now.

    An id that names no dead message is reported with an error, as is one that cannot be
    composed again; each message is settled in a transaction of its own.
    """
    async with database.sessionmaker() as session:
        query = select(OutboxMessage.id).where(OutboxMessage.dead_at.is_not(None))
        if ids is not None:
            query = query.where(OutboxMessage.id.in_(ids))
        in_order = list(await session.scalars(query.order_by(OutboxMessage.created_at)))
    found = set(in_order)
    wanted = list(ids) if ids is not None else in_order
    results = []
    for message_id in wanted:
        if message_id not in found:
            results.append(RetryResult(message_id, "", "", "no dead message has this id"))
            continue
        async with database.sessionmaker() as session, session.begin():
            # Writing first takes the row's lock (PostgreSQL) and SQLite's write lock before
            # anything is read: a transaction that reads and only then writes cannot wait for a
            # running sender on SQLite, it fails at once ("database is locked").
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id, OutboxMessage.dead_at.is_not(None))
                .values(lease_id=None)
                .execution_options(synchronize_session=False)
            )
            row = await session.get(OutboxMessage, message_id)
            if row is None or row.dead_at is None:
                results.append(RetryResult(message_id, "", "", "no dead message has this id"))
                continue
            try:
                async with session.begin_nested():
                    mail = await recomposer.compose(session, row)
            except CannotRetry as exc:
                results.append(RetryResult(row.id, row.recipient, row.kind, str(exc)))
                continue
            now = utcnow()
            row.subject = mail.subject
            row.text_body = mail.text
            row.html_body = mail.html
            row.dead_at = None
            row.retried_at = now
            row.next_attempt_at = now
            row.relay_attempts = 0
            row.lease_id = None
            results.append(RetryResult(row.id, row.recipient, row.kind, None))
    return results
