"""The mail outbox: messages written with the change that caused them, delivered by a task.

Delivery is at least once and, across any number of senders, never twice in normal operation:
a sender claims due rows by stamping them with its lease (PostgreSQL skips rows another sender
has locked), sends them outside any transaction, then marks them sent. A sender that dies
mid-batch leaves leases that run out, and the rows become due again.

Failures are judged per message. Only a relay that cannot be reached, greeted or logged in to
is an outage, which defers the whole queue together. A message the relay refuses for good (a 5xx
reply, no SMTPUTF8 for a non-ASCII address) or that cannot be built is dead at once; one it
turns away for now backs off alone, and is dead after `mail_max_attempts` such rounds. Mail
older than `mail_max_age_seconds` is dead rather than sent late. Dead mail holds nothing back,
and stays for an operator (`natomedia mail status`, `natomedia mail retry`).

Once a message is sent or dead its bodies (which may hold a code) are dropped; the row, with its
recipient, kind, times, attempts and last error, is purged after `mail_retention_days`.

The outbox runs on wall-clock time (not the app's clock), so tests that move the business clock
never stall mail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.auth.config import AuthSettings
from services.auth.emails import Email
from services.auth.models import OutboxMessage
from services.common.database import Database, after_commit, utcnow

logger = logging.getLogger("natomedia.auth.outbox")
MAX_ERROR_LENGTH = 1000
# How often the sender loop deletes settled mail past the retention period.
PURGE_INTERVAL_SECONDS = 3600.0
# Replies in this range are final: the relay will never take the message as it is.
PERMANENT_REPLY = range(500, 600)


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
            kind=mail.kind.value,
            subject=mail.subject,
            text_body=mail.text,
            html_body=mail.html,
            created_at=now,
            next_attempt_at=now,
            attempts=0,
            relay_attempts=0,
        )
    )
    if wakeup is not None:

        async def wake() -> None:
            wakeup.set()

        after_commit(session, wake)


def build_message(settings: AuthSettings, row: OutboxMessage) -> EmailMessage:
    if row.text_body is None or row.html_body is None:
        raise ValueError("the message has no body")
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


def needs_smtputf8(address: str) -> bool:
    return not address.isascii()


def is_permanent(exc: BaseException) -> bool:
    """Whether a failure to send one message will recur however often it is tried."""
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return True
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(refused.code in PERMANENT_REPLY for refused in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code in PERMANENT_REPLY
    # An address or text that cannot be put on the wire (aiosmtplib checks before sending).
    return isinstance(exc, ValueError | UnicodeError)


# Failures after which the connection is ready for the next message: aiosmtplib raised them
# before the envelope began, or reset it after the refusal. After anything else (a timeout, a
# hang-up) the next message gets a new connection.
_ENVELOPE_CLEAN = (
    aiosmtplib.SMTPResponseException,
    aiosmtplib.SMTPRecipientsRefused,
    aiosmtplib.SMTPNotSupported,
    ValueError,
    UnicodeError,
)


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]


_PENDING = (OutboxMessage.sent_at.is_(None), OutboxMessage.dead_at.is_(None))
# Settled mail keeps no body: a code must not outlive its delivery in the database.
_NO_BODY = {"text_body": None, "html_body": None}


# Work for the sender loop besides mail: `before_round` answers what queues mail (code requests)
# and says how much it did, `housekeeping` runs with the hourly purge.
Round = Callable[[Database], Awaitable[int]]
Chore = Callable[[Database], Awaitable[None]]


class OutboxSender:
    def __init__(
        self,
        database: Database,
        settings: AuthSettings,
        wakeup: MailWakeup | None = None,
        *,
        before_round: Round | None = None,
        housekeeping: Chore | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.wakeup = wakeup or MailWakeup()
        self.before_round = before_round
        self.housekeeping = housekeeping
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
        # after its replacement); a message waits while an older one to the same address is
        # pending. Dead mail is not pending: it holds nothing back.
        waits_for_earlier = (
            select(earlier.id)
            .where(
                earlier.recipient == OutboxMessage.recipient,
                earlier.sent_at.is_(None),
                earlier.dead_at.is_(None),
                earlier.created_at < OutboxMessage.created_at,
            )
            .exists()
        )
        due = (
            select(OutboxMessage.id)
            .where(*_PENDING, OutboxMessage.next_attempt_at <= now, ~waits_for_earlier)
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
                .where(chosen, *_PENDING, OutboxMessage.next_attempt_at <= now)
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

    async def _open(self) -> aiosmtplib.SMTP:
        """Connect, greet and log in: whatever fails here is the relay's, not a message's."""
        smtp = self._smtp()
        try:
            await smtp.connect()
            if smtp.is_ehlo_or_helo_needed:
                try:
                    await smtp.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await smtp.helo()
            if self.settings.smtp_username:
                password = self.settings.smtp_password
                await smtp.login(
                    self.settings.smtp_username, password.get_secret_value() if password else ""
                )
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _unsendable(self, row: OutboxMessage, now: datetime) -> str | None:
        """Why `row` must not be sent at all, if so."""
        age = now - (row.retried_at or row.created_at)
        if age.total_seconds() > self.settings.mail_max_age_seconds:
            return (
                f"expired: not delivered within {self.settings.mail_max_age_seconds:g} s "
                "(AUTH_MAIL_MAX_AGE_SECONDS)"
            )
        if needs_smtputf8(row.recipient) and not self.settings.mail_smtputf8:
            return "the address is not ASCII and MAIL_SMTPUTF8 is off"
        return None

    async def deliver_due(self) -> int:
        """Send one batch of due messages; return how many were claimed."""
        lease, rows = await self.claim()
        if not rows:
            return 0
        now = utcnow()
        messages: list[tuple[OutboxMessage, EmailMessage]] = []
        for row in rows:
            reason = self._unsendable(row, now)
            if reason is not None:
                await self._dead(lease, row, reason)
                continue
            try:
                messages.append((row, build_message(self.settings, row)))
            except Exception as exc:  # any defect of the stored message is that message's
                await self._dead(lease, row, "cannot build the message: " + error_text(exc))
        smtp: aiosmtplib.SMTP | None = None
        try:
            for index, (row, message) in enumerate(messages):
                if smtp is None:
                    try:
                        smtp = await self._open()
                    except (aiosmtplib.SMTPException, OSError) as exc:
                        await self._outage(lease, [item for item, _ in messages[index:]], exc)
                        return len(rows)
                try:
                    await smtp.send_message(message)
                except Exception as exc:  # this message's failure; what kind decides its fate
                    if is_permanent(exc):
                        await self._dead(lease, row, error_text(exc), tried=True)
                    else:
                        await self._failed(lease, row, exc)
                    if not isinstance(exc, _ENVELOPE_CLEAN) or not smtp.is_connected:
                        # Only if the new connection fails is the relay down.
                        smtp.close()
                        smtp = None
                else:
                    await self._sent(lease, row)
        except BaseException:
            # Cancelled mid-conversation: the relay may still be reading DATA and would take a
            # QUIT for message text, so waiting for its answer could hang shutdown. Just hang up.
            if smtp is not None:
                smtp.close()
            raise
        if smtp is not None:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await smtp.quit()
        return len(rows)

    async def _sent(self, lease: uuid.UUID, row: OutboxMessage) -> None:
        async with self.database.sessionmaker() as session, session.begin():
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id, OutboxMessage.lease_id == lease)
                .values(
                    sent_at=utcnow(),
                    lease_id=None,
                    attempts=OutboxMessage.attempts + 1,
                    relay_attempts=OutboxMessage.relay_attempts + 1,
                    **_NO_BODY,
                )
            )

    async def _dead(
        self, lease: uuid.UUID, row: OutboxMessage, reason: str, *, tried: bool = False
    ) -> None:
        """Give `row` up: it will never leave as it is, and holds nothing back from now on.

        `tried`: the relay answered for it this round, which counts as an attempt.
        """
        counted = 1 if tried else 0
        logger.warning(
            "mail dead", extra={"message_id": str(row.id), "kind": row.kind, "error": reason}
        )
        async with self.database.sessionmaker() as session, session.begin():
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id, OutboxMessage.lease_id == lease)
                .values(
                    dead_at=utcnow(),
                    lease_id=None,
                    attempts=row.attempts + counted,
                    relay_attempts=row.relay_attempts + counted,
                    last_error=reason[:MAX_ERROR_LENGTH],
                    **_NO_BODY,
                )
            )

    def _backoff(self, attempts: int) -> timedelta:
        seconds = min(
            self.settings.mail_retry_base_seconds * 2 ** (attempts - 1),
            self.settings.mail_retry_max_seconds,
        )
        return timedelta(seconds=seconds)

    async def _failed(self, lease: uuid.UUID, row: OutboxMessage, exc: BaseException) -> None:
        """The relay turned this message away for now: it alone backs off, or is dead."""
        error = error_text(exc)
        relay_attempts = row.relay_attempts + 1
        if relay_attempts >= self.settings.mail_max_attempts:
            await self._dead(
                lease,
                row,
                f"gave up after {relay_attempts} attempts (AUTH_MAIL_MAX_ATTEMPTS): {error}",
                tried=True,
            )
            return
        logger.warning("mail refused, will retry", extra={"error": error})
        # Grows with this message's own refusals: rounds lost to an outage are no reason to
        # wait longer now that the relay answers.
        retry_at = utcnow() + self._backoff(relay_attempts)
        async with self.database.sessionmaker() as session, session.begin():
            await self._release_for_retry(session, lease, row, error, retry_at, relay=True)

    async def _outage(
        self, lease: uuid.UUID, rows: Sequence[OutboxMessage], exc: BaseException
    ) -> None:
        """The relay is unreachable: the whole queue backs off together.

        One shared retry time keeps the queue in order when the relay returns (mail claimed in
        `created_at` order), so a replaced code never arrives after the code that replaced it.
        The delay grows with the oldest waiting message's attempts.
        """
        error = error_text(exc)
        logger.warning(
            "mail relay unavailable, will retry", extra={"error": error, "messages": len(rows)}
        )
        now = utcnow()
        async with self.database.sessionmaker() as session, session.begin():
            most = await session.scalar(select(func.max(OutboxMessage.attempts)).where(*_PENDING))
            retry_at = now + self._backoff(max([most or 0, *(row.attempts for row in rows)]) + 1)
            for row in rows:
                await self._release_for_retry(session, lease, row, error, retry_at, relay=False)

            # Messages not tried this round wait for the same moment (other senders' leased
            # messages are theirs to settle).
            await session.execute(
                update(OutboxMessage)
                .where(*_PENDING, OutboxMessage.lease_id.is_(None))
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
        *,
        relay: bool,
    ) -> None:
        """Count the failed attempt and give the row back, unless another sender took it over."""
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row.id, OutboxMessage.lease_id == lease)
            .values(
                attempts=row.attempts + 1,
                relay_attempts=row.relay_attempts + (1 if relay else 0),
                last_error=error,
                lease_id=None,
                next_attempt_at=retry_at,
            )
        )

    async def purge(self) -> int:
        """Delete mail sent or given up more than the retention period ago; return how many."""
        cutoff = utcnow() - timedelta(days=self.settings.mail_retention_days)
        async with self.database.sessionmaker() as session, session.begin():
            result = await session.execute(
                delete(OutboxMessage)
                .where(or_(OutboxMessage.sent_at < cutoff, OutboxMessage.dead_at < cutoff))
                .execution_options(synchronize_session=False)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def run(self) -> None:
        """Deliver until cancelled: promptly after a commit that queued mail, else every poll."""
        loop = asyncio.get_running_loop()
        next_purge = loop.time()
        while not self._stopping:
            self.wakeup.clear()
            try:
                if loop.time() >= next_purge:
                    next_purge = loop.time() + PURGE_INTERVAL_SECONDS
                    await self.purge()
                    if self.housekeeping is not None:
                        await self.housekeeping(self.database)
                answered = 0
                if self.before_round is not None:
                    answered = await self.before_round(self.database)
                claimed = max(answered, await self.deliver_due())
            except Exception:  # the database may be briefly gone; the next round tries again
                logger.exception("outbox round failed")
                claimed = 0
            if claimed < self.settings.mail_batch_size and not self._stopping:
                await self.wakeup.wait(self.settings.mail_poll_seconds)
