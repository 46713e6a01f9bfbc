"""The mail outbox: messages written with the change that caused them, delivered by a task.

Delivery is at least once and, across any number of senders, never twice in normal operation:
a sender claims due rows by stamping them with its lease (PostgreSQL skips rows another sender
has locked), sends them outside any transaction, then marks them sent. A sender that dies
mid-batch leaves leases that run out, and the rows become due again.

The outbox runs on wall-clock time (not the app's clock), so tests that move the business clock
never stall mail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.auth.config import AuthSettings
from services.auth.emails import Email
from services.auth.models import OutboxMessage
from services.common.database import Database, after_commit, utcnow

logger = logging.getLogger("natomedia.auth.outbox")
MAX_ERROR_LENGTH = 1000


class MailWakeup:
    """Set after a commit that queued mail, so the sender need not wait for its next poll."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    async def wait(self, timeout: float) -> None:
        # `asyncio.timeout`, not `wait_for`: no inner task, so cancelling the sender cannot get
        # stuck waiting for that task to notice (seen on 3.11 under load).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._event.wait()


def queue_mail(session: AsyncSession, mail: Email, wakeup: MailWakeup | None = None) -> None:
    """Add `mail` to the outbox in the caller's transaction; it leaves only if that commits."""
    now = utcnow()
    session.add(
        OutboxMessage(
            recipient=mail.recipient,
            subject=mail.subject,
            text_body=mail.text,
            html_body=mail.html,
            created_at=now,
            next_attempt_at=now,
            attempts=0,
        )
    )
    if wakeup is not None:

        async def wake() -> None:
            wakeup.set()

        after_commit(session, wake)


def build_message(settings: AuthSettings, row: OutboxMessage) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = row.recipient
    message["Subject"] = row.subject
    message["Date"] = formatdate(row.created_at.timestamp(), usegmt=True)
    # Stable per outbox row: a retried message is recognisably the same message.
    message["Message-ID"] = f"<{row.id}@natomedia.outbox>"
    message.set_content(row.text_body)
    message.add_alternative(row.html_body, subtype="html")
    return message


class OutboxSender:
    def __init__(
        self, database: Database, settings: AuthSettings, wakeup: MailWakeup | None = None
    ) -> None:
        self.database = database
        self.settings = settings
        self.wakeup = wakeup or MailWakeup()
        self._stopping = False

    def stop(self) -> None:
        """Finish the round in progress, then return from `run`."""
        self._stopping = True
        self.wakeup.set()

    async def claim(self) -> tuple[uuid.UUID, list[OutboxMessage]]:
        now = utcnow()
        lease = uuid.uuid4()
        earlier = aliased(OutboxMessage)
        # Mail to one address leaves in the order it was queued (a replaced code never arrives
        # after its replacement); a message waits while an older one to the same address does.
        waits_for_earlier = (
            select(earlier.id)
            .where(
                earlier.recipient == OutboxMessage.recipient,
                earlier.sent_at.is_(None),
                earlier.created_at < OutboxMessage.created_at,
            )
            .exists()
        )
        due = (
            select(OutboxMessage.id)
            .where(
                OutboxMessage.sent_at.is_(None),
                OutboxMessage.next_attempt_at <= now,
                ~waits_for_earlier,
            )
            .order_by(OutboxMessage.created_at)
            .limit(self.settings.mail_batch_size)
            .with_for_update(skip_locked=True)
        )
        async with self.database.sessionmaker() as session, session.begin():
            if self.database.dialect == "postgresql":
                # Fetched first: PostgreSQL may re-run a LIMIT ... SKIP LOCKED sub-select once
                # per outer row, which would claim far more than one batch.
                ids = list(await session.scalars(due))
                if not ids:
                    return lease, []
                chosen = OutboxMessage.id.in_(ids)
            else:
                # SQLite has no row locks; one UPDATE statement is atomic among its writers.
                chosen = OutboxMessage.id.in_(due)
            await session.execute(
                update(OutboxMessage)
                .where(
                    chosen,
                    OutboxMessage.sent_at.is_(None),
                    OutboxMessage.next_attempt_at <= now,
                )
                .values(
                    lease_id=lease,
                    next_attempt_at=now + timedelta(seconds=self.settings.mail_lease_seconds),
                )
                .execution_options(synchronize_session=False)
            )
            rows = await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.lease_id == lease)
                .order_by(OutboxMessage.created_at)
            )
            return lease, list(rows)

    def _smtp(self) -> aiosmtplib.SMTP:
        settings = self.settings
        return aiosmtplib.SMTP(
            hostname=settings.smtp_host or "127.0.0.1",
            port=settings.smtp_port,
            use_tls=settings.smtp_tls == "tls",
            start_tls=settings.smtp_tls == "starttls",
            timeout=settings.smtp_timeout_seconds,
        )

    async def deliver_due(self) -> int:
        """Send one batch of due messages; return how many were claimed."""
        lease, rows = await self.claim()
        if not rows:
            return 0
        try:
            smtp = self._smtp()
            await smtp.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self._outage(lease, rows, exc)
            return len(rows)
        try:
            if self.settings.smtp_username:
                password = self.settings.smtp_password
                await smtp.login(
                    self.settings.smtp_username, password.get_secret_value() if password else ""
                )
            for row in rows:
                try:
                    await smtp.send_message(build_message(self.settings, row))
                except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPDataError) as exc:
                    # This message was refused, not the relay down: only it backs off.
                    await self._failed(lease, [row], exc)
                else:
                    await self._sent(lease, row)
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self._outage(lease, await self._still_leased(lease), exc)
        except BaseException:
            # Cancelled mid-conversation: the relay may still be reading DATA and would take a
            # QUIT for message text, so waiting for its answer could hang shutdown. Just hang up.
            smtp.close()
            raise
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await smtp.quit()
        return len(rows)

    async def _still_leased(self, lease: uuid.UUID) -> list[OutboxMessage]:
        async with self.database.sessionmaker() as session:
            rows = await session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.lease_id == lease, OutboxMessage.sent_at.is_(None)
                )
            )
            return list(rows)

    async def _sent(self, lease: uuid.UUID, row: OutboxMessage) -> None:
        async with self.database.sessionmaker() as session, session.begin():
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id, OutboxMessage.lease_id == lease)
                .values(sent_at=utcnow(), lease_id=None, attempts=OutboxMessage.attempts + 1)
            )

    def _backoff(self, attempts: int) -> timedelta:
        seconds = min(
            self.settings.mail_retry_base_seconds * 2 ** (attempts - 1),
            self.settings.mail_retry_max_seconds,
        )
        return timedelta(seconds=seconds)

    @staticmethod
    def _error_text(exc: BaseException) -> str:
        return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]

    async def _failed(
        self, lease: uuid.UUID, rows: Sequence[OutboxMessage], exc: BaseException
    ) -> None:
        """This message was refused: it alone backs off."""
        error = self._error_text(exc)
        logger.warning("mail refused, will retry", extra={"error": error})
        now = utcnow()
        async with self.database.sessionmaker() as session, session.begin():
            for row in rows:
                retry_at = now + self._backoff(row.attempts + 1)
                await self._release_for_retry(session, lease, row, error, retry_at)

    async def _outage(
        self, lease: uuid.UUID, rows: Sequence[OutboxMessage], exc: BaseException
    ) -> None:
        """The relay is unreachable: the whole queue backs off together.

        One shared retry time keeps the queue in order when the relay returns (mail claimed in
        `created_at` order), so a replaced code never arrives after the code that replaced it.
        The delay grows with the oldest waiting message's attempts.
        """
        error = self._error_text(exc)
        logger.warning(
            "mail relay unavailable, will retry", extra={"error": error, "messages": len(rows)}
        )
        now = utcnow()
        async with self.database.sessionmaker() as session, session.begin():
            most = await session.scalar(
                select(func.max(OutboxMessage.attempts)).where(OutboxMessage.sent_at.is_(None))
            )
            retry_at = now + self._backoff(max([most or 0, *(row.attempts for row in rows)]) + 1)
            for row in rows:
                await self._release_for_retry(session, lease, row, error, retry_at)

            # Messages not tried this round wait for the same moment (other senders' leased
            # messages are theirs to settle).
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.sent_at.is_(None), OutboxMessage.lease_id.is_(None))
                .values(next_attempt_at=retry_at)
                .execution_options(synchronize_session=False)
            )

    @staticmethod
    async def _release_for_retry(
        session: AsyncSession,
        lease: uuid.UUID,
        row: OutboxMessage,
        error: str,
        retry_at: datetime,
    ) -> None:
        """Count the failed attempt and give the row back, unless another sender took it over."""
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row.id, OutboxMessage.lease_id == lease)
            .values(
                attempts=row.attempts + 1,
                last_error=error,
                lease_id=None,
                next_attempt_at=retry_at,
            )
        )

    async def run(self) -> None:
        """Deliver until cancelled: promptly after a commit that queued mail, else every poll."""
        while not self._stopping:
            self.wakeup.clear()
            try:
                claimed = await self.deliver_due()
            except Exception:  # the database may be briefly gone; the next round tries again
                logger.exception("outbox round failed")
                claimed = 0
            if claimed < self.settings.mail_batch_size and not self._stopping:
                await self.wakeup.wait(self.settings.mail_poll_seconds)
