"""`natomedia mail status|retry`, and the stall they were made for: one bad message, all mail."""

from __future__ import annotations

import argparse
import asyncio
import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from services.auth.commands import cli_mail_retry, cli_mail_status
from services.auth.models import OutboxMessage
from services.common.database import Database
from services.gateway.cli import build_parser, main
from tests.auth.conftest import make_settings
from tests.auth.flows import latest_code, register, verified_account
from tests.auth.relays import Relay
from tests.conftest import free_port

FAST_RETRIES = {"mail_retry_base_seconds": 0.05, "mail_retry_max_seconds": 0.2}


async def _rows(database_url: str) -> list[OutboxMessage]:
    database = Database(database_url)
    try:
        async with database.sessionmaker() as session:
            query = select(OutboxMessage).order_by(OutboxMessage.created_at)
            return list(await session.scalars(query))
    finally:
        await database.dispose()


async def _wait_until_dead(
    database_url: str, *recipients: str, count: int | None = None
) -> list[OutboxMessage]:
    """The dead messages to `recipients`, once there are `count` (default: one each)."""
    for _ in range(400):
        rows = [row for row in await _rows(database_url) if row.recipient in recipients]
        dead = [row for row in rows if row.dead_at is not None]
        if len(dead) >= (count or len(recipients)):
            return dead
        await asyncio.sleep(0.025)
    raise AssertionError(f"not dead in time: {[(r.recipient, r.last_error) for r in rows]}")


async def _status(settings: Any) -> str:
    out, err = io.StringIO(), io.StringIO()
    assert await cli_mail_status(settings, argparse.Namespace(), out=out, err=err) == 0
    assert err.getvalue() == ""
    return out.getvalue()


async def _retry(settings: Any, *, id: str | None = None, dead: bool = False) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await cli_mail_retry(settings, argparse.Namespace(id=id, dead=dead), out=out, err=err)
    return code, out.getvalue() + err.getvalue()


async def test_an_undeliverable_message_queued_in_an_outage_stalls_no_other_mail(
    start_app: Any, database_url: str, tmp_path: Path
) -> None:
    # The relay is down while mail queues up; when it is back it lacks SMTPUTF8 (aiosmtpd's
    # default) and has no mailbox for one address.
    relay = Relay(free_port(), smtputf8=False)
    relay.always["nobody@example.org"] = "550 5.1.1 no such mailbox"
    good = [f"good{n}@example.org" for n in range(6)]
    async with start_app(smtp_port=relay.port, MAIL_SMTPUTF8=True, **FAST_RETRIES) as client:
        # Queued first, so it is the oldest message every round.
        assert (await register(client, "pöison@example.org")).status_code == 202
        for address in [*good[:3], "nobody@example.org", *good[3:]]:
            assert (await register(client, address)).status_code == 202
        for _ in range(400):  # a few rounds of the outage
            rows = await _rows(database_url)
            if len(rows) == 8 and min(row.attempts for row in rows) >= 2:
                break
            await asyncio.sleep(0.025)
        relay.start()
        try:
            for address in good:
                await relay.wait_for(address)
            dead = await _wait_until_dead(database_url, "pöison@example.org", "nobody@example.org")
        finally:
            relay.stop()
    by_recipient = {row.recipient: row for row in dead}
    poison, nobody = by_recipient["pöison@example.org"], by_recipient["nobody@example.org"]
    # Dead after its first permanent failure: one round in which the relay answered.
    assert poison.relay_attempts == 1
    assert nobody.relay_attempts == 1
    assert poison.last_error is not None
    assert "SMTPNotSupported" in poison.last_error
    assert nobody.last_error is not None
    assert "550" in nobody.last_error
    status = await _status(make_settings(database_url, tmp_path, relay.port))
    lines = status.splitlines()
    assert "dead: 2" in lines
    assert "due: 0" in lines
    assert "oldest pending: none" in lines
    poison_line = next(line for line in lines if "pöison@example.org" in line)
    assert poison_line.startswith(f"dead {poison.id} verification_code ")
    assert "SMTPNotSupported" in poison_line
    assert any("nobody@example.org" in line and "550" in line for line in lines)


async def test_status_counts_due_and_deferred_mail_and_the_oldest_age(
    start_app: Any, database_url: str, tmp_path: Path
) -> None:
    async with start_app(smtp_port=free_port(), AUTH_MAIL_SENDER=False) as client:
        await register(client, "waiting0@example.org")
        await register(client, "waiting1@example.org")
        # With no sender here, answer the two requests for a code as one would.
        app = client._transport.app  # type: ignore[attr-defined]
        assert await app.state.code_requests.answer_due(app.state.database) == 2
    settings = make_settings(database_url, tmp_path, free_port())
    lines = (await _status(settings)).splitlines()
    assert "due: 2" in lines
    assert "deferred: 0" in lines
    assert "dead: 0" in lines
    oldest = next(line for line in lines if line.startswith("oldest pending: "))
    assert oldest.endswith("Z)")
    assert " s (queued " in oldest
    # After a failed round (nothing listens), the mail is deferred to its next attempt.
    from services.auth.outbox import OutboxSender

    database = Database(database_url)
    try:
        await OutboxSender(database, settings).deliver_due()
    finally:
        await database.dispose()
    lines = (await _status(settings)).splitlines()
    assert "due: 0" in lines
    assert any(line.startswith("deferred: 2 (next attempt in ") for line in lines)


async def test_retry_puts_a_dead_code_back_with_a_fresh_code_that_works(
    start_app: Any, database_url: str, tmp_path: Path
) -> None:
    relay = Relay()
    relay.replies["late@example.org"] = ["550 5.1.1 mailbox not there yet"]
    relay.start()
    settings = make_settings(database_url, tmp_path, relay.port)
    try:
        async with start_app(smtp_port=relay.port) as client:
            await register(client, "late@example.org")
            (dead,) = await _wait_until_dead(database_url, "late@example.org")
            assert dead.text_body is None
            code, output = await _retry(settings, id=str(dead.id))
            assert code == 0, output
            assert output == f"queued {dead.id} verification_code to late@example.org\n"
            fresh = await latest_code(relay, "late@example.org")
            verified = await client.post(
                "/v1/auth/verify", json={"email": "late@example.org", "code": fresh}
            )
            assert verified.status_code == 200, verified.text
        (row,) = await _rows(database_url)
        assert row.id == dead.id  # the same message, put back
        assert row.sent_at is not None
        assert row.dead_at is None
        assert row.retried_at is not None
        assert row.text_body is None
        assert (
            relay.to("late@example.org")[0].message["Message-ID"] == f"<{row.id}@natomedia.outbox>"
        )
    finally:
        relay.stop()


async def test_retry_dead_puts_back_what_can_still_be_sent(
    start_app: Any, database_url: str, tmp_path: Path
) -> None:
    relay = Relay()
    relay.start()
    settings = make_settings(database_url, tmp_path, relay.port)
    try:
        async with start_app(smtp_port=relay.port, **FAST_RETRIES) as client:
            # A code that died, and the owner verified with a code sent after it.
            relay.replies["owner@example.org"] = ["554 5.7.1 rejected"]
            await register(client, "owner@example.org")
            (stale,) = await _wait_until_dead(database_url, "owner@example.org")
            await client.post("/v1/auth/verify/resend", json={"email": "owner@example.org"})
            code = await latest_code(relay, "owner@example.org")
            verified = await client.post(
                "/v1/auth/verify", json={"email": "owner@example.org", "code": code}
            )
            assert verified.status_code == 200
            # A notice that died: someone registered the taken address again.
            relay.replies["owner@example.org"] = ["550 5.2.1 mailbox disabled"]
            await register(client, "owner@example.org")
            rows = await _wait_until_dead(database_url, "owner@example.org", count=2)
            (notice,) = [row for row in rows if row.kind == "account_exists"]

            exit_code, output = await _retry(settings, dead=True)
            assert exit_code == 1, output  # one of them could not be put back
            assert f"queued {notice.id} account_exists to owner@example.org" in output
            assert f"not queued {stale.id}: the address is verified already" in output
            arrived = await relay.wait_for("owner@example.org", 2)
            assert "already have" in arrived[-1].subject
        by_id = {row.id: row for row in await _rows(database_url)}
        assert by_id[notice.id].sent_at is not None
        assert by_id[stale.id].dead_at is not None
    finally:
        relay.stop()


async def test_retry_answers_usage_errors_in_one_line(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, free_port())
    for kwargs, expected in (
        ({}, 2),
        ({"id": "0b6c0d2e-0000-4000-8000-000000000000", "dead": True}, 2),
        ({"id": "not-an-id"}, 2),
        ({"id": "0b6c0d2e-0000-4000-8000-000000000000"}, 1),
    ):
        code, output = await _retry(settings, **kwargs)
        assert code == expected, (kwargs, output)
        assert len(output.splitlines()) == 1, output
        assert "Traceback" not in output
    code, output = await _retry(settings, dead=True)
    assert (code, output) == (0, "no dead mail\n")


async def test_mail_commands_run_from_the_natomedia_cli(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build_parser().parse_args(["mail", "retry", "--dead"]).dead is True
    monkeypatch.setenv("NATOMEDIA_ENV", "test")
    monkeypatch.setenv("AUTH_DATABASE_URL", database_url)
    monkeypatch.setenv("AUTH_CODE_HASH_KEY", "test-code-key")
    assert await asyncio.to_thread(main, ["mail", "status"]) == 0
    assert "dead: 0" in capsys.readouterr().out.splitlines()
    assert await asyncio.to_thread(main, ["mail", "retry", "nope"]) == 2
    assert "not a message ID" in capsys.readouterr().err
    monkeypatch.setenv("AUTH_DATABASE_URL", "postgresql+asyncpg://nobody@127.0.0.1:1/none")
    assert await asyncio.to_thread(main, ["mail", "status"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mail status failed: ")
    assert len(err.splitlines()) == 1


async def test_retry_puts_a_dead_reset_code_back_with_a_fresh_code_that_works(
    start_app: Any, database_url: str, tmp_path: Path
) -> None:
    relay = Relay()
    relay.start()
    settings = make_settings(database_url, tmp_path, relay.port)
    try:
        async with start_app(smtp_port=relay.port) as client:
            await verified_account(client, relay, "forgetful@example.org")
            relay.replies["forgetful@example.org"] = ["550 5.7.1 try another day"]
            await client.post("/v1/auth/password-reset", json={"email": "forgetful@example.org"})
            (dead,) = await _wait_until_dead(database_url, "forgetful@example.org")
            assert dead.kind == "password_reset_code"
            code, output = await _retry(settings, id=str(dead.id))
            assert (code, output) == (
                0,
                f"queued {dead.id} password_reset_code to forgetful@example.org\n",
            )
            fresh = await latest_code(relay, "forgetful@example.org", 2)
            reset = await client.post(
                "/v1/auth/password-reset/verify",
                json={"email": "forgetful@example.org", "code": fresh},
            )
            assert reset.status_code == 200, reset.text
            assert reset.json()["reset_token"]
    finally:
        relay.stop()
