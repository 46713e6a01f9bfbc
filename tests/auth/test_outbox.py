"""The mail outbox: survives SMTP outages, retries with backoff, never sends twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from services.auth.emails import Email, verification_code
from services.auth.models import OutboxMessage
from services.auth.outbox import OutboxSender, queue_mail
from services.common.database import Database, utcnow
from services.gateway.mail_sink import MailSink
from tests.auth.conftest import make_settings
from tests.auth.flows import code_requests_answered, latest_code, register
from tests.auth.relays import Relay
from tests.conftest import free_port


def _code_mail(address: str) -> Email:
    return verification_code(address, "123456", 30, datetime.now(UTC) + timedelta(minutes=30))


async def _rows(database: Database) -> list[OutboxMessage]:
    async with database.sessionmaker() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at)))


async def _queue(database: Database, count: int, prefix: str = "user") -> None:
    async with database.sessionmaker() as session, session.begin():
        for index in range(count):
            queue_mail(session, _code_mail(f"{prefix}{index}@example.com"))


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
                rows = await _rows(database)  # empty until the sender answers the code requests
                if len(rows) == 2 and min(row.attempts for row in rows) >= 2:
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


async def test_a_refused_message_is_dead_and_the_rest_leave(
    database_url: str, tmp_path: Path
) -> None:
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
        assert refused.dead_at is not None
        assert refused.attempts == 1
        assert refused.last_error is not None
        assert "550" in refused.last_error
        assert by_recipient["welcome0@example.com"].sent_at is not None
    finally:
        controller.stop()
        await database.dispose()


# -- one message never stalls the rest -----------------------------------------------------------


async def _queue_to(
    database: Database, *addresses: str, subject: str | None = None, age: timedelta | None = None
) -> None:
    """Queue a verification mail to each address, in order (a distinct `created_at` each)."""
    for address in addresses:
        async with database.sessionmaker() as session, session.begin():
            queue_mail(session, _code_mail(address))
            await session.flush()
            row = await session.scalar(
                select(OutboxMessage).order_by(OutboxMessage.created_at.desc()).limit(1)
            )
            assert row is not None
            if subject is not None:
                row.subject = subject
            if age is not None:
                row.created_at = utcnow() - age
        await asyncio.sleep(0.002)


async def _by_recipient(database: Database) -> dict[str, list[OutboxMessage]]:
    found: dict[str, list[OutboxMessage]] = {}
    for row in await _rows(database):
        found.setdefault(row.recipient, []).append(row)
    return found


async def _make_due(database: Database) -> None:
    async with database.sessionmaker() as session, session.begin():
        for row in await session.scalars(select(OutboxMessage)):
            row.next_attempt_at = utcnow() - timedelta(seconds=1)


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    started = Relay()
    started.start()
    yield started
    started.stop()


@pytest.fixture
async def outbox_db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


async def test_a_message_that_cannot_be_built_is_dead_and_the_rest_leave(
    outbox_db: Database, tmp_path: Path, relay: Relay
) -> None:
    settings = make_settings(outbox_db.url, tmp_path, relay.port)
    await _queue_to(outbox_db, "broken@example.com", subject="Hello\nBcc: everyone@example.com")
    await _queue_to(outbox_db, "fine0@example.com", "fine1@example.com")
    assert await OutboxSender(outbox_db, settings).deliver_due() == 3
    assert sorted(mail.recipients[0] for mail in relay.messages) == [
        "fine0@example.com",
        "fine1@example.com",
    ]
    broken = (await _by_recipient(outbox_db))["broken@example.com"][0]
    assert broken.dead_at is not None
    assert broken.sent_at is None
    assert broken.last_error is not None
    assert "cannot build the message" in broken.last_error


async def test_a_permanent_refusal_is_dead_at_once_and_holds_back_no_later_mail(
    outbox_db: Database, tmp_path: Path, relay: Relay
) -> None:
    settings = make_settings(outbox_db.url, tmp_path, relay.port, mail_retry_base_seconds=60)
    relay.replies["twice@example.com"] = ["550 5.7.1 message refused"]
    await _queue_to(outbox_db, "twice@example.com", "twice@example.com")
    sender = OutboxSender(outbox_db, settings)
    # The second message waits for the first, as mail to one address leaves in order...
    assert await sender.deliver_due() == 1
    first, second = (await _by_recipient(outbox_db))["twice@example.com"]
    assert first.dead_at is not None
    assert first.attempts == 1
    assert first.last_error is not None
    assert "550" in first.last_error
    # ...but a dead one holds nothing back: the next round sends the second.
    assert await sender.deliver_due() == 1
    received = await relay.wait_for("twice@example.com")
    assert [mail.message["Message-ID"] for mail in received] == [f"<{second.id}@natomedia.outbox>"]


async def test_a_temporary_refusal_backs_off_that_message_alone(
    outbox_db: Database, tmp_path: Path, relay: Relay
) -> None:
    settings = make_settings(
        outbox_db.url, tmp_path, relay.port, mail_retry_base_seconds=60, mail_retry_max_seconds=90
    )
    relay.replies["busy@example.com"] = ["451 4.3.0 mailbox busy, try later"]
    await _queue_to(outbox_db, "busy@example.com", "calm0@example.com", "calm1@example.com")
    sender = OutboxSender(outbox_db, settings)
    assert await sender.deliver_due() == 3
    rows = await _by_recipient(outbox_db)
    busy = rows["busy@example.com"][0]
    assert busy.sent_at is None
    assert busy.dead_at is None
    assert busy.relay_attempts == 1
    assert busy.next_attempt_at > utcnow() + timedelta(seconds=50)
    assert busy.text_body  # still pending: the body stays until it leaves
    assert rows["calm0@example.com"][0].sent_at is not None
    assert rows["calm1@example.com"][0].sent_at is not None
    # The others were not held back with it.
    assert await sender.deliver_due() == 0
    await _make_due(outbox_db)
    assert await sender.deliver_due() == 1
    await relay.wait_for("busy@example.com")


async def test_a_relay_hanging_up_on_one_message_backs_off_that_message_alone(
    outbox_db: Database, tmp_path: Path, relay: Relay
) -> None:
    settings = make_settings(outbox_db.url, tmp_path, relay.port, mail_retry_base_seconds=60)
    relay.hang_up.add("cursed@example.com")
    await _queue_to(outbox_db, "cursed@example.com", "after0@example.com", "after1@example.com")
    assert await OutboxSender(outbox_db, settings).deliver_due() == 3
    # The rest went on a new connection, not deferred as in an outage.
    assert sorted(mail.recipients[0] for mail in relay.messages) == [
        "after0@example.com",
        "after1@example.com",
    ]
    rows = await _by_recipient(outbox_db)
    assert rows["after0@example.com"][0].sent_at is not None
    assert rows["after1@example.com"][0].sent_at is not None
    cursed = rows["cursed@example.com"][0]
    assert cursed.sent_at is None
    assert cursed.dead_at is None
    assert cursed.relay_attempts == 1


async def test_a_message_refused_for_now_too_often_is_dead(
    outbox_db: Database, tmp_path: Path, relay: Relay
) -> None:
    settings = make_settings(outbox_db.url, tmp_path, relay.port, mail_max_attempts=3)
    relay.always["full@example.com"] = "452 4.2.2 mailbox full"
    await _queue_to(outbox_db, "full@example.com")
    sender = OutboxSender(outbox_db, settings)
    for _ in range(3):
        await _make_due(outbox_db)
        assert await sender.deliver_due() == 1
    row = (await _rows(outbox_db))[0]
    assert row.dead_at is not None
    assert row.relay_attempts == 3
    assert row.last_error is not None
    assert "gave up after 3 attempts" in row.last_error
    assert "452" in row.last_error
    assert row.text_body is None
    # Dead is final: it is never tried again.
    await _make_due(outbox_db)
    assert await sender.deliver_due() == 0
    assert len(relay.refused) == 3


async def test_mail_older_than_the_max_age_is_dead_even_while_the_relay_is_down(
    outbox_db: Database, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens: an outage
    settings = make_settings(outbox_db.url, tmp_path, port, mail_max_age_seconds=3600)
    await _queue_to(outbox_db, "stale@example.com", age=timedelta(hours=2))
    await _queue_to(outbox_db, "fresh@example.com")
    sender = OutboxSender(outbox_db, settings)
    assert await sender.deliver_due() == 2
    rows = await _by_recipient(outbox_db)
    stale, fresh = rows["stale@example.com"][0], rows["fresh@example.com"][0]
    assert stale.dead_at is not None
    assert stale.last_error is not None
    assert "expired" in stale.last_error
    assert stale.text_body is None
    assert fresh.dead_at is None
    assert fresh.attempts == 1  # the outage: retried later
    relay = Relay(port)
    relay.start()
    try:
        await _make_due(outbox_db)
        assert await sender.deliver_due() == 1
        await relay.wait_for("fresh@example.com")
        assert relay.to("stale@example.com") == []
    finally:
        relay.stop()


async def test_bodies_are_dropped_once_sent_and_once_dead(
    outbox_db: Database, tmp_path: Path, relay: Relay
) -> None:
    settings = make_settings(outbox_db.url, tmp_path, relay.port)
    relay.always["gone@example.com"] = "550 5.1.1 no such mailbox"
    await _queue_to(outbox_db, "kept@example.com", "gone@example.com")
    await OutboxSender(outbox_db, settings).deliver_due()
    rows = await _by_recipient(outbox_db)
    sent, dead = rows["kept@example.com"][0], rows["gone@example.com"][0]
    assert sent.sent_at is not None
    assert dead.dead_at is not None
    for row in (sent, dead):
        assert row.text_body is None
        assert row.html_body is None
        assert row.kind == "verification_code"
        assert row.attempts == 1
        assert row.created_at is not None
    assert dead.last_error is not None
    assert "550" in dead.last_error
    async with outbox_db.engine.connect() as connection:
        stored = (await connection.execute(select(OutboxMessage.__table__))).all()
    assert not any("123456" in str(value) for row in stored for value in row)


async def test_the_sender_purges_settled_mail_after_the_retention_period(
    outbox_db: Database, tmp_path: Path, mail_sink: MailSink
) -> None:
    settings = make_settings(outbox_db.url, tmp_path, mail_sink.port, mail_retention_days=30)
    await _queue_to(outbox_db, "old-sent@example.com", "old-dead@example.com", "recent@example.com")
    await _queue_to(outbox_db, "pending@example.com", age=timedelta(hours=1))
    long_ago = utcnow() - timedelta(days=31)
    async with outbox_db.sessionmaker() as session, session.begin():
        for row in await session.scalars(select(OutboxMessage)):
            if row.recipient == "old-sent@example.com":
                row.sent_at = long_ago
            elif row.recipient == "old-dead@example.com":
                row.dead_at = long_ago
            elif row.recipient == "recent@example.com":
                row.sent_at = utcnow() - timedelta(days=29)
    sender = OutboxSender(outbox_db, settings)
    running = asyncio.create_task(sender.run())
    try:
        await mail_sink.wait_for("pending@example.com")
        for _ in range(400):
            recipients = {row.recipient for row in await _rows(outbox_db)}
            if "old-sent@example.com" not in recipients:
                break
            await asyncio.sleep(0.025)
    finally:
        sender.stop()
        await asyncio.wait_for(running, timeout=10)
    assert recipients == {"recent@example.com", "pending@example.com"}


async def test_register_refuses_a_non_ascii_address_without_smtputf8(
    start_app: Any, database_url: str
) -> None:
    async with start_app(MAIL_SMTPUTF8=False) as client:
        response = await register(client, "pöison@example.org")
        ascii_response = await register(client, "plain@example.org")
        await code_requests_answered(client)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "unsupported_address"
    assert [(error["field"], error["code"]) for error in body["errors"]] == [
        ("email", "unsupported_address")
    ]
    assert ascii_response.status_code == 202
    database = Database(database_url)
    try:
        assert [row.recipient for row in await _rows(database)] == ["plain@example.org"]
    finally:
        await database.dispose()


async def test_a_non_ascii_address_gets_its_code_with_smtputf8(
    start_app: Any, mail_sink: MailSink, tmp_path: Path
) -> None:
    async with start_app(MAIL_SMTPUTF8=True) as client:
        response = await register(client, "pöison@example.org")
        assert response.status_code == 202, response.text
        code = await latest_code(mail_sink, "pöison@example.org")
        verified = await client.post(
            "/v1/auth/verify", json={"email": "pöison@example.org", "code": code}
        )
        assert verified.status_code == 200, verified.text
    # The dev sink keeps such mail on disk too.
    saved = [path.read_bytes() for path in (tmp_path / "mail").glob("*.eml")]
    assert any("pöison@example.org".encode() in raw for raw in saved)


async def test_without_smtputf8_queued_mail_to_a_non_ascii_address_is_dead_unsent(
    outbox_db: Database, tmp_path: Path, relay: Relay
) -> None:
    # Queued before MAIL_SMTPUTF8 was turned off, say: it is not even offered to the relay.
    settings = make_settings(outbox_db.url, tmp_path, relay.port, MAIL_SMTPUTF8=False)
    await _queue_to(outbox_db, "pöison@example.com", "plain@example.com")
    assert await OutboxSender(outbox_db, settings).deliver_due() == 2
    assert [mail.recipients[0] for mail in relay.messages] == ["plain@example.com"]
    poison = (await _by_recipient(outbox_db))["pöison@example.com"][0]
    assert poison.dead_at is not None
    assert poison.relay_attempts == 0
    assert poison.last_error == "the address is not ASCII and MAIL_SMTPUTF8 is off"


async def test_a_temporary_refusal_after_an_outage_backs_off_from_the_start(
    outbox_db: Database, tmp_path: Path, relay: Relay
) -> None:
    settings = make_settings(
        outbox_db.url, tmp_path, relay.port, mail_retry_base_seconds=10, mail_retry_max_seconds=900
    )
    relay.replies["patient@example.com"] = ["421 4.3.2 system busy"]
    await _queue_to(outbox_db, "patient@example.com")
    async with outbox_db.sessionmaker() as session, session.begin():
        row = await session.scalar(select(OutboxMessage))
        assert row is not None
        row.attempts = 6  # six rounds lost to an outage
    before = utcnow()
    await OutboxSender(outbox_db, settings).deliver_due()
    row = (await _rows(outbox_db))[0]
    assert row.attempts == 7
    assert row.relay_attempts == 1
    assert round((row.next_attempt_at - before).total_seconds()) == 10
