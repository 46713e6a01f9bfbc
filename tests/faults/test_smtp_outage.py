"""SMTP down for a while, then back: every queued mail arrives exactly once, none lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from services.gateway.mail_sink import MailSink
from tests.conftest import free_port
from tests.security.apps import auth_settings, create_app, from_address, prepare, register, serving

pytestmark = pytest.mark.fault

ADDRESSES = [f"outage{n:02d}@example.org" for n in range(20)]
RESENT = ADDRESSES[::4]


async def _outage(tmp_path: Path) -> tuple[MailSink, list[str], httpx.Response]:
    """Queue mail while the relay is down, bring it back; the arrivals and a late verify."""
    sink = MailSink("127.0.0.1", free_port())  # not started: the relay is down
    settings = auth_settings(
        tmp_path / "auth",
        sink,
        mail_retry_base_seconds=0.05,
        mail_retry_max_seconds=0.3,
        mail_per_address_limits=["10/minute"],
    )
    await prepare("auth", settings)
    queued: list[str] = []
    async with serving(create_app("auth", settings)) as client:
        for n, address in enumerate(ADDRESSES):
            response = await register(client, address, **from_address(f"10.9.0.{n + 1}"))
            # An SMTP outage delays mail; it never fails a registration.
            assert response.status_code == 202, response.text
            queued.append(address)
            await asyncio.sleep(0.05)
        for n, address in enumerate(RESENT):
            resent = await client.post(
                "/v1/auth/verify/resend",
                json={"email": address},
                headers=from_address(f"10.9.1.{n + 1}"),
            )
            assert resent.status_code == 202
            queued.append(address)
        await asyncio.sleep(1.5)  # several failed delivery rounds while the relay is down
        assert sink.messages == []
        sink.start()
        try:
            for address in ADDRESSES:
                await sink.wait_for(address, queued.count(address), timeout=20)
            await asyncio.sleep(1.0)  # room for a duplicate to show up
            # The code a user received last must be the one that works.
            last_code = sink.to(RESENT[0])[-1].code
            verify = await client.post(
                "/v1/auth/verify", json={"email": RESENT[0], "code": last_code}
            )
        finally:
            sink.stop()
    return sink, queued, verify


async def test_mail_queued_during_an_outage_is_delivered_exactly_once(tmp_path: Path) -> None:
    sink, queued, _ = await _outage(tmp_path)
    recipients = [mail.recipients[0] for mail in sink.messages]
    assert sorted(recipients) == sorted(queued), "mail lost or duplicated"
    codes = [mail.code for mail in sink.messages]
    assert all(codes)
    assert len(set(codes)) == len(codes)


async def test_after_an_outage_the_last_code_received_is_the_valid_one(tmp_path: Path) -> None:
    _, _, verify = await _outage(tmp_path)
    assert verify.status_code == 200, verify.text


async def test_mail_queued_during_an_outage_leaves_in_queue_order(tmp_path: Path) -> None:
    sink, queued, _ = await _outage(tmp_path)
    assert [mail.recipients[0] for mail in sink.messages] == queued
