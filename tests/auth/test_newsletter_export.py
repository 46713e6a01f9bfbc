"""`natomedia users newsletter-export`: the verified subscribers, for the mailing tool."""

from __future__ import annotations

import argparse
import csv
import io
import json
import stat
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from services.auth import commands
from services.auth.commands import cli_newsletter_export
from services.auth.config import AuthSettings
from services.common.clock import FrozenClock
from services.gateway.cli import build_parser
from services.gateway.mail_sink import MailSink
from tests.auth.flows import STRONG_PASSWORD, bearer, register, verified_account

pytestmark = pytest.mark.usefixtures("backend")


def _at(clock: FrozenClock) -> str:
    return clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")


async def _verify(client: httpx.AsyncClient, sink: MailSink, address: str) -> dict[str, str]:
    code = (await sink.wait_for(address))[-1].code
    verified = await client.post("/v1/auth/verify", json={"email": address, "code": code})
    assert verified.status_code == 200, verified.text
    pair: dict[str, str] = verified.json()
    return pair


async def _subscribers(
    client: httpx.AsyncClient, sink: MailSink, clock: FrozenClock
) -> list[dict[str, str]]:
    """Makes five accounts of which two are verified subscribers; returns those two as exported.

    Access tokens are checked against the wall clock, so the business clock starts a day back
    for what needs none, and is back at the present for what does.
    """
    clock.advance(-timedelta(days=1))
    first = _at(clock)
    await register(client, "early@example.org", newsletter=True)
    await _verify(client, sink, "early@example.org")
    await register(client, "unverified@example.org", newsletter=True)
    await register(client, "amelie@example.fr", language="fr")

    clock.advance(timedelta(days=1))
    later = _at(clock)
    pair = await _verify(client, sink, "amelie@example.fr")
    patched = await client.patch(
        "/v1/auth/me", json={"newsletter": True}, headers=bearer(pair["access_token"])
    )
    assert patched.status_code == 200, patched.text

    # Not subscribers: unverified (above), never subscribed, subscribed then left.
    await verified_account(client, sink, "quiet@example.org")
    left = await verified_account(client, sink, "left@example.org")
    for subscribed in (True, False):
        answer = await client.put(
            "/v1/auth/me/newsletter",
            json={"subscribed": subscribed},
            headers=bearer(left["access_token"]),
        )
        assert answer.status_code == 200, answer.text
    return [
        {"email": "early@example.org", "language": "en", "subscribed_since": first},
        {"email": "amelie@example.fr", "language": "fr", "subscribed_since": later},
    ]


async def _export(settings: AuthSettings, export_format: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    args = argparse.Namespace(format=export_format, output=None)
    assert await cli_newsletter_export(settings, args, out=out, err=err) == 0, err.getvalue()
    return out.getvalue()


async def test_csv_and_json_list_only_verified_subscribers(
    client: httpx.AsyncClient, mail_sink: MailSink, clock: FrozenClock, settings: AuthSettings
) -> None:
    expected = await _subscribers(client, mail_sink, clock)

    text = await _export(settings, "csv")
    assert text.splitlines()[0] == "email,language,subscribed_since"
    assert list(csv.DictReader(io.StringIO(text))) == expected

    assert json.loads(await _export(settings, "json")) == expected


async def test_resubscribing_starts_the_subscription_again(
    client: httpx.AsyncClient, mail_sink: MailSink, clock: FrozenClock, settings: AuthSettings
) -> None:
    clock.advance(-timedelta(days=3))
    await register(client, "back@example.org", newsletter=True)
    await _verify(client, mail_sink, "back@example.org")
    assert json.loads(await _export(settings, "json"))[0]["subscribed_since"] == _at(clock)

    clock.advance(timedelta(days=3))
    login = await client.post(
        "/v1/auth/login", json={"email": "back@example.org", "password": STRONG_PASSWORD}
    )
    headers = bearer(login.json()["access_token"])
    # Asking for what is already so does not move the date.
    await client.put("/v1/auth/me/newsletter", json={"subscribed": True}, headers=headers)
    assert json.loads(await _export(settings, "json"))[0]["subscribed_since"] != _at(clock)

    await client.patch("/v1/auth/me", json={"newsletter": False}, headers=headers)
    assert json.loads(await _export(settings, "json")) == []
    await client.put("/v1/auth/me/newsletter", json={"subscribed": True}, headers=headers)
    assert json.loads(await _export(settings, "json")) == [
        {"email": "back@example.org", "language": "en", "subscribed_since": _at(clock)}
    ]


async def test_export_to_a_file_only_its_owner_reads(
    client: httpx.AsyncClient,
    mail_sink: MailSink,
    clock: FrozenClock,
    settings: AuthSettings,
    tmp_path: Path,
) -> None:
    expected = await _subscribers(client, mail_sink, clock)
    target = tmp_path / "subscribers.json"
    out, err = io.StringIO(), io.StringIO()
    args = argparse.Namespace(format="json", output=str(target))
    assert await cli_newsletter_export(settings, args, out=out, err=err) == 0
    assert out.getvalue() == ""
    assert "2 subscriber(s)" in err.getvalue()
    assert json.loads(target.read_text(encoding="utf-8")) == expected
    assert stat.S_IMODE(target.stat().st_mode) == 0o600

    args = argparse.Namespace(format="csv", output=str(tmp_path / "missing" / "list.csv"))
    assert await cli_newsletter_export(settings, args, out=out, err=err) == 1
    assert "cannot write" in err.getvalue()


def test_the_command_is_wired_into_the_cli() -> None:
    args = build_parser().parse_args(["users", "newsletter-export", "--format", "json"])
    assert (args.command, args.action, args.format, args.output) == (
        "users",
        "newsletter-export",
        "json",
        None,
    )
    assert build_parser().parse_args(["users", "newsletter-export"]).format == "csv"
    assert getattr(commands, "cli_" + args.action.replace("-", "_")) is cli_newsletter_export
    with pytest.raises(SystemExit):
        build_parser().parse_args(["users", "newsletter-export", "--format", "xml"])
