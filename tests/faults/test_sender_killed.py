"""A mail sender killed mid-batch: the rows it held come due again; nothing is lost.

SMTP has no two-phase commit: a sender killed after the relay accepted a message but before it
recorded that, sends it again. At most the one message in flight can repeat, and it repeats with
the same Message-ID, so the relay and mail clients see one message.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import pytest

from services.common.database import Database
from services.gateway.mail_sink import MailSink, ReceivedMail
from tests.security.apps import (
    auth_settings,
    create_app,
    from_address,
    prepare,
    register,
    service_module,
    serving,
)

pytestmark = pytest.mark.fault
ADDRESSES = [f"batch{n:02d}@example.org" for n in range(15)]


def _slow(sink: MailSink, seconds: float) -> None:
    original = sink.deliver

    def deliver(mail: ReceivedMail, raw: bytes) -> None:
        time.sleep(seconds)  # the relay is slow: a batch takes a while
        original(mail, raw)

    sink.deliver = deliver  # type: ignore[method-assign]


async def test_killing_the_sender_mid_batch_loses_nothing_and_repeats_at_most_one(
    tmp_path: Path, mail_sink: MailSink
) -> None:
    settings: Any = auth_settings(
        tmp_path / "auth",
        mail_sink,
        AUTH_MAIL_SENDER=False,
        mail_lease_seconds=1.0,
        mail_batch_size=20,
    )
    await prepare("auth", settings)
    app = create_app("auth", settings)
    async with serving(app) as client:
        for n, address in enumerate(ADDRESSES):
            response = await register(client, address, **from_address(f"10.6.0.{n + 1}"))
            assert response.status_code == 202
        # No sender runs here: answer the requests for codes, which queues their mail.
        answered = await app.state.code_requests.answer_due(app.state.database)
        assert answered == len(ADDRESSES)
    _slow(mail_sink, 0.1)
    outbox = service_module("auth", "outbox")
    database = Database(settings.resolved_database_url)
    try:
        first = asyncio.create_task(outbox.OutboxSender(database, settings).run())
        deadline = asyncio.get_running_loop().time() + 30
        while len(mail_sink.messages) < 5:
            assert not first.done(), first
            assert asyncio.get_running_loop().time() < deadline, len(mail_sink.messages)
            await asyncio.sleep(0.01)
        # Killed mid-batch, between two messages or during one. A killed process cannot decline,
        # so cancel until the task is gone: after the whole suite, one cancellation was seen not
        # to end the sender within 10 s (cause not found; noted on the issue).
        for _ in range(100):
            first.cancel()
            done, _ = await asyncio.wait({first}, timeout=0.1)
            if done:
                break
        assert first.done(), "the sender outlived 100 cancellations"
        with contextlib.suppress(asyncio.CancelledError):
            await first
        delivered_before = len(mail_sink.messages)
        assert delivered_before < len(ADDRESSES)

        second = outbox.OutboxSender(database, settings)
        running = asyncio.create_task(second.run())
        try:
            for address in ADDRESSES:
                await mail_sink.wait_for(address, 1, timeout=20)
            await asyncio.sleep(2 * settings.mail_lease_seconds + 0.5)  # leases run out
        finally:
            second.stop()
            await asyncio.wait_for(running, timeout=10)
    finally:
        await database.dispose()
    recipients = sorted(mail.recipients[0] for mail in mail_sink.messages)
    assert set(recipients) == set(ADDRESSES), "mail lost"
    message_ids = {mail.recipients[0]: set() for mail in mail_sink.messages}
    for mail in mail_sink.messages:
        message_ids[mail.recipients[0]].add(mail.message["Message-ID"])
    # One message per registration, however many times the relay saw it.
    assert all(len(ids) == 1 for ids in message_ids.values()), message_ids
    # Only what was in flight at the kill went twice.
    assert len(recipients) - len(ADDRESSES) <= 1, recipients
