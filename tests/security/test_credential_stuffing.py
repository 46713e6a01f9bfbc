"""Password guessing: per account-and-address, per account and per address limits on failures.

Only failures count, in moving windows, and attempts refused while a limit holds are not
counted: an attacker can hold an account shut to new addresses for at most one window after
their last counted failure. Renewing that lock every window does not keep the owner out: an
address that signed in to the account lately is not held by the account-wide limit.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from services.auth.config import AuthSettings
from services.gateway.mail_sink import MailSink
from tests.security.apps import (
    STRONG_PASSWORD,
    assert_problem,
    auth_settings,
    create_app,
    from_address,
    prepare,
    register,
    serving,
)

VICTIM = "victim@example.org"


async def _login(
    client: httpx.AsyncClient, password: str, address: str, email: str = VICTIM
) -> httpx.Response:
    return await client.post(
        "/v1/auth/login",
        json={"email": email, "password": password},
        headers=from_address(address),
    )


async def test_one_address_gets_five_failures_per_account(auth: httpx.AsyncClient) -> None:
    assert (await register(auth, VICTIM)).status_code == 202
    for n in range(5):
        assert_problem(
            await _login(auth, f"Wrong-Guess-{n}-xx!", "198.51.100.9"), 401, "invalid_credentials"
        )
    blocked = await _login(auth, STRONG_PASSWORD, "198.51.100.9")
    assert_problem(blocked, 429, "rate_limited")
    assert int(blocked.headers["retry-after"]) >= 1
    # The owner, elsewhere, is not locked out by that address.
    assert (await _login(auth, STRONG_PASSWORD, "192.0.2.50")).status_code == 200


async def test_one_address_cannot_stuff_many_accounts(auth: httpx.AsyncClient) -> None:
    statuses = [
        (
            await _login(auth, "Wrong-Guess-1-xx!", "198.51.100.10", f"user{n}@example.org")
        ).status_code
        for n in range(40)
    ]
    assert statuses[:30] == [401] * 30
    assert set(statuses[30:]) == {429}


async def test_rotating_addresses_cannot_lock_the_owner_out(
    tmp_path: Path, mail_sink: MailSink
) -> None:
    settings = auth_settings(
        tmp_path / "auth",
        mail_sink,
        login_failures_per_account="4/hour",
        login_failures_per_account_and_address="100/hour",
    )
    await prepare("auth", settings)
    async with serving(create_app("auth", settings)) as client:
        assert (await register(client, VICTIM)).status_code == 202
        # The victim signed in from home at some point before the attack.
        assert (await _login(client, STRONG_PASSWORD, "192.0.2.50")).status_code == 200
        for n in range(4):
            response = await _login(client, f"Wrong-Guess-{n}-xx!", f"203.0.113.{n + 1}")
            assert_problem(response, 401, "invalid_credentials")
        # Further guesses are refused from any new address, with the right password or not...
        for n in range(5, 25):
            attacker = await _login(client, f"Wrong-Guess-{n}-xx!", f"203.0.113.{n}")
            assert_problem(attacker, 429, "account_locked")
            assert_problem(await _login(client, STRONG_PASSWORD, f"198.51.100.{n}"), 429)
            # ...but the victim, at home, is never locked out while the attack goes on.
            victim = await _login(client, STRONG_PASSWORD, "192.0.2.50")
            assert victim.status_code == 200, victim.text


async def test_rotating_addresses_meet_the_per_account_limit_and_the_lock_expires(
    tmp_path: Path, mail_sink: MailSink
) -> None:
    settings = auth_settings(
        tmp_path / "auth",
        mail_sink,
        login_failures_per_account="4/2second",
        login_failures_per_account_and_address="100/minute",
        # The owner retries every 50 ms until the lock ends: the per-address login limit (a
        # separate guard, tested on its own) must not be what stops them.
        login_rate_limit="1000/minute",
    )
    await prepare("auth", settings)
    async with serving(create_app("auth", settings)) as client:
        assert (await register(client, VICTIM)).status_code == 202
        for n in range(4):
            response = await _login(client, f"Wrong-Guess-{n}-xx!", f"203.0.113.{n + 1}")
            assert_problem(response, 401, "invalid_credentials")
        # Locked for every address that never signed in, the right password included: a
        # guesser cannot try further passwords.
        assert_problem(await _login(client, STRONG_PASSWORD, "192.0.2.50"), 429, "account_locked")
        # The attacker keeps hammering while locked; refused attempts do not extend the lock,
        # so a newcomer gets in once the window after the last counted failure has passed.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        hammered = 0
        while True:
            owner = await _login(client, STRONG_PASSWORD, "192.0.2.50")
            if owner.status_code != 429 or loop.time() > deadline:
                break
            hammered += 1
            attacker = await _login(client, "Wrong-Guess-x-xx!", f"203.0.113.{hammered % 200 + 10}")
            if attacker.status_code != 429:
                # The window ran out between the two calls: this failure is the first of a new
                # window (one of four), so the owner still gets in right after it.
                assert_problem(attacker, 401, "invalid_credentials")
                owner = await _login(client, STRONG_PASSWORD, "192.0.2.50")
                break
            assert_problem(attacker, 429, "account_locked")
            await asyncio.sleep(0.05)
        assert hammered > 0
        assert owner.status_code == 200, owner.text


async def test_a_direct_caller_cannot_name_another_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Out of the box no peer is a trusted proxy, not even loopback (httpx's ASGI peer here):
    # X-Real-IP / X-Forwarded-For from a caller reaching the service port are ignored.
    monkeypatch.delenv("NATOMEDIA_TRUSTED_PROXIES", raising=False)
    settings = AuthSettings(
        NATOMEDIA_ENV="test",
        NATOMEDIA_DATA_DIR=tmp_path / "auth",
        AUTH_MAIL_SENDER=False,
        REDIS_URL=None,
        database_url=None,
        login_rate_limit="3/minute",
        argon2_memory_cost=1024,
        argon2_rounds=1,
    )
    await prepare("auth", settings)
    async with serving(create_app("auth", settings)) as client:
        statuses = [
            (
                await client.post(
                    "/v1/auth/login",
                    json={"email": f"user{n}@example.org", "password": "Wrong-Guess-1-xx!"},
                    headers={"X-Real-IP": f"198.51.100.{n}", "X-Forwarded-For": f"192.0.2.{n}"},
                )
            ).status_code
            for n in range(5)
        ]
    assert statuses == [401, 401, 401, 429, 429]
