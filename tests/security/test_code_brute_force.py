"""Guessing a 6-digit code: each code dies after 5 tries, and fresh codes are rationed per address.

The per-account bound, from the settings the service runs with:
    codes an attacker can make per hour  <= mail limit per address per hour (register and resend
                                            share it; beyond it the request is silently skipped)
    guesses per code                     <= code_max_attempts
    P(success within an hour)           <= codes * attempts / 10**6
With 5/hour and 5 tries: 25 guesses, odds 2.5e-5 per hour for email verification, and the same
again for password reset codes (their own mail budget): 5e-5 per hour in all, far below 1e-3.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.gateway.mail_sink import MailSink
from tests.security.apps import (
    assert_problem,
    auth_settings,
    create_app,
    from_address,
    prepare,
    register,
    serving,
)

CODE_SPACE = 10**6
ACCEPTABLE_ODDS_PER_HOUR = 1e-3


def _per_hour(limit_text: str) -> int:
    from limits import parse

    item = parse(limit_text)
    seconds = item.get_expiry()
    return item.amount * max(1, 3600 // seconds) if seconds <= 3600 else item.amount


def _wrong(code: str, n: int) -> str:
    return f"{(int(code) + 1 + n) % CODE_SPACE:06d}"


@pytest.fixture
async def auth_with_settings(
    tmp_path: Path, mail_sink: MailSink
) -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    settings = auth_settings(tmp_path / "auth", mail_sink)
    await prepare("auth", settings)
    async with serving(create_app("auth", settings)) as client:
        yield client, settings


def test_the_configured_limits_keep_guessing_odds_below_one_in_a_thousand_per_hour() -> None:
    settings = auth_settings(Path("/nonexistent"))
    # A burst limit (1/minute) would allow 60/hour; the hourly one is the binding bound.
    codes_per_hour = min(_per_hour(text) for text in settings.mail_per_address_limits)
    guesses_per_hour = codes_per_hour * settings.code_max_attempts
    # Email verification and password reset each have their own codes and mail budget.
    odds = 2 * guesses_per_hour / CODE_SPACE
    assert codes_per_hour == 5
    assert guesses_per_hour == 25
    assert odds < ACCEPTABLE_ODDS_PER_HOUR


async def test_a_code_dies_after_five_wrong_tries(
    auth: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    email = "victim@example.org"
    assert (await register(auth, email)).status_code == 202
    (mail,) = await mail_sink.wait_for(email)
    assert mail.code is not None
    for attempt in range(5):
        # A new address each time: the per-address limit is not what protects the code.
        response = await auth.post(
            "/v1/auth/verify",
            json={"email": email, "code": _wrong(mail.code, attempt)},
            headers=from_address(f"198.51.100.{attempt + 1}"),
        )
        assert response.status_code in {400, 429}, response.text
        if response.status_code == 429:
            assert attempt == 4
            assert_problem(response, 429, "too_many_attempts")
        else:
            assert_problem(response, 400, "invalid_code")
    right = await auth.post(
        "/v1/auth/verify",
        json={"email": email, "code": mail.code},
        headers=from_address("198.51.100.77"),
    )
    assert_problem(right, 429, "too_many_attempts")


async def test_fresh_code_per_guess_attack_is_held_to_the_bound(
    auth_with_settings: tuple[httpx.AsyncClient, object], mail_sink: MailSink
) -> None:
    client, settings = auth_with_settings
    email = "target@example.org"
    assert (await register(client, email)).status_code == 202
    await mail_sink.wait_for(email)
    evaluated = 0
    address = 0
    for _ in range(20):
        address += 1
        resent = await client.post(
            "/v1/auth/verify/resend",
            json={"email": email},
            headers=from_address(f"203.0.113.{address}"),
        )
        assert resent.status_code == 202, resent.text
        # Let the outbox deliver before reading the newest code.
        await mail_sink.wait_for(email, len(mail_sink.to(email)), timeout=2)
        code = mail_sink.to(email)[-1].code
        assert code is not None
        for guess in range(8):
            address += 1
            response = await client.post(
                "/v1/auth/verify",
                json={"email": email, "code": _wrong(code, guess)},
                headers=from_address(f"203.0.{address // 250}.{address % 250 + 1}"),
            )
            if response.status_code == 400:
                evaluated += 1
            else:
                assert response.status_code == 429, response.text
    codes_made = len(mail_sink.to(email))
    codes_per_hour = min(
        _per_hour(text)
        for text in settings.mail_per_address_limits  # type: ignore[attr-defined]
    )
    attempts = settings.code_max_attempts  # type: ignore[attr-defined]
    # 20 resends within one minute: the 1/minute limit allows none beyond the registration code.
    assert codes_made <= codes_per_hour
    assert evaluated <= codes_made * attempts
    assert evaluated / CODE_SPACE < ACCEPTABLE_ODDS_PER_HOUR


async def test_hourly_code_budget_holds_without_the_minute_limit(
    tmp_path: Path, mail_sink: MailSink
) -> None:
    settings = auth_settings(tmp_path / "auth", mail_sink, mail_per_address_limits=["5/hour"])
    await prepare("auth", settings)
    email = "hourly@example.org"
    async with serving(create_app("auth", settings)) as client:
        assert (await register(client, email)).status_code == 202
        for n in range(12):
            response = await client.post(
                "/v1/auth/verify/resend",
                json={"email": email},
                headers=from_address(f"192.0.2.{n + 1}"),
            )
            assert response.status_code == 202
        await mail_sink.wait_for(email, 5)
        # Give a sixth mail every chance to show up before counting.
        with pytest.raises(TimeoutError):
            await mail_sink.wait_for(email, 6, timeout=1.0)
        assert len(mail_sink.to(email)) == 5
        # Each of the five is a real code, and the last one sent is the one that works.
        codes = [mail.code for mail in mail_sink.to(email)]
        assert all(code is not None and code.isdigit() and len(code) == 6 for code in codes)
        verified = await client.post("/v1/auth/verify", json={"email": email, "code": codes[-1]})
        assert verified.status_code == 200, verified.text
