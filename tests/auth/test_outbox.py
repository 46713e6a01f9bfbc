"""The mail outbox: survives SMTP outages, retries with backoff, never sends twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from services.auth.emails import verification_code
from services.auth.models import OutboxMessage
from services.auth.outbox import OutboxSender, queue_mail
from services.common.database import Database, utcnow
from services.gateway.mail_sink import MailSink
from tests.auth.conftest import make_settings
from tests.auth.flows import latest_code, register
from tests.conftest import free_port


async def _rows(database: Database) -> list[OutboxMessage]:
    async with database.sessionmaker() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at)))


async def _queue(database: Database, count: int, prefix: str = "user") -> None:
    async with database.sessionmaker() as session, session.begin():
        for index in range(count):
            queue_mail(session, verification_code(f"{prefix}{index}@example.com", "123456", 30))


async def test_smtp_down_then_up_the_code_still_arrives(
    start_app: Any, tmp_path: Path, database_url: str
) -> None:
    port = free_port()  # nothing listens here yet
    database = Database(database_url)
    try:
        async with start_app(smtp_port=port) as client:
            response = await register(client, "patient@example.com")
            assert response.status_code == 202  # an SMTP outage never fails a registration
            for _ in range(400):
                rows = await _rows(database)
                if rows and rows[0].attempts >= 1:
                    break
                await asyncio.sleep(0.025)
            assert rows[0].sent_at is None
            assert rows[0].last_error
            sink = MailSink("127.0.0.1", port, tmp_path / "late-mail")
            sink.start()
            try:
                code = await latest_code(sink, "patient@example.com")
                verified = await client.post(
                    "/v1/auth/verify", json={"email": "patient@example.com", "code": code}
                )
                assert verified.status_code == 200
            finally:
                sink.stop()
        row = (await _rows(database))[0]
        assert row.sent_at is not None
        assert row.attempts >= 2
    finally:
        await database.dispose()


async def test_a_failed_send_is_recorded_and_backed_off(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(
        database_url, tmp_path, free_port(), mail_retry_base_seconds=60, mail_retry_max_seconds=90
    )
    database = Database(database_url)
    try:
        await _queue(database, 1)
        sender = OutboxSender(database, settings)
        assert await sender.deliver_due() == 1
        row = (await _rows(database))[0]
        assert row.attempts == 1
        assert row.sent_at is None
        assert row.lease_id is None
        assert row.last_error is not None
        assert "Error" in row.last_error
        assert row.next_attempt_at > utcnow() + timedelta(seconds=50)
        # Not due again until the backoff runs out.
        assert await sender.deliver_due() == 0
    finally:
        await database.dispose()


async def test_backoff_doubles_and_is_capped(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(
        database_url, tmp_path, free_port(), mail_retry_base_seconds=10, mail_retry_max_seconds=25
    )
    database = Database(database_url)
    try:
        await _queue(database, 1)
        sender = OutboxSender(database, settings)
        delays = []
        for _ in range(3):
            async with database.sessionmaker() as session, session.begin():
                row = await session.scalar(select(OutboxMessage))
                assert row is not None
                row.next_attempt_at = utcnow() - timedelta(seconds=1)
            before = utcnow()
            await sender.deliver_due()
            row = (await _rows(database))[0]
            delays.append(round((row.next_attempt_at - before).total_seconds()))
        assert delays == [10, 20, 25]
    finally:
        await database.dispose()


async def test_mail_carries_text_and_html(
    database_url: str, tmp_path: Path, mail_sink: MailSink
) -> None:
    settings = make_settings(database_url, tmp_path, mail_sink.port)
    database = Database(database_url)
    try:
        await _queue(database, 1, prefix="parts")
        await OutboxSender(database, settings).deliver_due()
        mail = (await mail_sink.wait_for("parts0@example.com"))[0]
        assert mail.code == "123456"
        assert "<p" in mail.html
        assert mail.message["From"] == settings.mail_from
        assert mail.message["Message-ID"]
    finally:
        await database.dispose()


async def test_two_senders_never_send_a_message_twice(
    database_url: str, tmp_path: Path, mail_sink: MailSink, backend: str
) -> None:
    settings = make_settings(database_url, tmp_path, mail_sink.port, mail_batch_size=3)
    total = 24
    setup = Database(database_url)
    await _queue(setup, total, prefix="bulk")
    databases = [Database(database_url), Database(database_url)]
    senders = [OutboxSender(database, settings) for database in databases]

    async def drain(sender: OutboxSender) -> int:
        claimed = 0
        while True:
            batch = await sender.deliver_due()
            if batch == 0:
                return claimed
            claimed += batch

    try:
        for database in databases:
            await database.ping()  # both connected before the race starts
        claimed = await asyncio.gather(*(drain(sender) for sender in senders))
        assert sum(claimed) == total
        if backend == "postgresql":
            assert all(count > 0 for count in claimed), claimed  # both really took part
        ids = [mail.message["Message-ID"] for mail in mail_sink.messages]
        assert len(ids) == total
        assert len(set(ids)) == total
        async with setup.sessionmaker() as session:
            unsent = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.sent_at.is_(None))
            )
        assert unsent == 0
    finally:
        for database in [setup, *databases]:
            await database.dispose()


async def test_sender_wakes_on_commit_without_waiting_for_its_poll(
    start_app: Any, mail_sink: MailSink
) -> None:
    # With an hour between polls, only the after-commit wake-up can deliver in time.
    async with start_app(mail_poll_seconds=3600) as client:
        await register(client, "prompt@example.com")
        assert await latest_code(mail_sink, "prompt@example.com")


async def test_after_an_outage_mail_to_one_address_keeps_its_order(
    start_app: Any, tmp_path: Path, database_url: str
) -> None:
    port = free_port()
    database = Database(database_url)
    try:
        async with start_app(smtp_port=port) as client:
            await register(client, "first@example.com")
            await register(client, "second@example.com")
            for _ in range(400):  # a few failed rounds, so the early mail has backed off most
                rows = await _rows(database)
                if min(row.attempts for row in rows) >= 2:
                    break
                await asyncio.sleep(0.025)
            await register(client, "third@example.com")
            await client.post("/v1/auth/verify/resend", json={"email": "first@example.com"})
            sink = MailSink("127.0.0.1", port, tmp_path / "late-mail")
            sink.start()
            try:
                await sink.wait_for("second@example.com")
                await sink.wait_for("third@example.com")
                received = await sink.wait_for("first@example.com", 2)
                queued = [
                    row.id for row in await _rows(database) if row.recipient == "first@example.com"
                ]
                assert [mail.message["Message-ID"] for mail in received] == [
                    f"<{message_id}@natomedia.outbox>" for message_id in queued
                ]
                last_code = received[-1].code
                verified = await client.post(
                    "/v1/auth/verify", json={"email": "first@example.com", "code": last_code}
                )
                assert verified.status_code == 200
            finally:
                sink.stop()
    finally:
        await database.dispose()


class _RefusingRelay:
    """Accepts mail except for addresses starting with `refused`."""

    def __init__(self) -> None:
        self.delivered: list[str] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.startswith("refused"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.delivered.extend(envelope.rcpt_tos)
        return "250 OK"


async def test_a_refused_message_backs_off_alone(database_url: str, tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller

    relay = _RefusingRelay()
    port = free_port()
    controller = Controller(relay, hostname="127.0.0.1", port=port)
    controller.start()
    settings = make_settings(database_url, tmp_path, port, mail_retry_base_seconds=60)
    database = Database(database_url)
    try:
        await _queue(database, 1, prefix="refused")
        await _queue(database, 2, prefix="welcome")
        assert await OutboxSender(database, settings).deliver_due() == 3
        assert relay.delivered == ["welcome0@example.com", "welcome1@example.com"]
        by_recipient = {row.recipient: row for row in await _rows(database)}
        refused = by_recipient["refused0@example.com"]
        assert refused.sent_at is None
        assert refused.attempts == 1
        assert refused.last_error is not None
        assert "550" in refused.last_error
        assert by_recipient["welcome0@example.com"].sent_at is not None
    finally:
        controller.stop()
        await database.dispose()
