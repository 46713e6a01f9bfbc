"""The account-wide login lock holds guessers, never the owner at an address they signed in from."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from services.auth.models import KnownLoginAddress
from services.common.clock import FrozenClock
from services.common.database import Database
from services.gateway.mail_sink import MailSink
from tests.auth.flows import STRONG_PASSWORD, latest_code, verified_account

OWNER = "owner@example.com"
HOME = "192.0.2.10"
# Room for the attacker's failures from one address; the account-wide limit is what trips.
LOCK = {"login_failures_per_account": "4/hour", "login_failures_per_account_and_address": "50/hour"}


async def login(
    client: httpx.AsyncClient, address: str, password: str = STRONG_PASSWORD, email: str = OWNER
) -> httpx.Response:
    return await client.post(
        "/v1/auth/login",
        json={"email": email, "password": password},
        headers={"X-Real-IP": address},
    )


async def lock_from_many_addresses(client: httpx.AsyncClient, email: str = OWNER) -> None:
    for n in range(4):
        failed = await login(client, f"203.0.113.{n + 1}", f"Wrong-Guess-{n}-xx!", email)
        assert failed.status_code == 401, failed.text
    assert (await login(client, "203.0.113.99", "Wrong-Guess-9-xx!", email)).status_code == 429


async def test_owner_at_a_known_address_logs_in_while_the_account_is_locked(
    start_app: Any, mail_sink: MailSink
) -> None:
    async with start_app(**LOCK) as client:
        await verified_account(client, mail_sink, OWNER)
        assert (await login(client, HOME)).status_code == 200
        await lock_from_many_addresses(client)

        newcomer = await login(client, "192.0.2.77")
        assert newcomer.status_code == 429, newcomer.text
        assert newcomer.json()["code"] == "account_locked"
        assert int(newcomer.headers["retry-after"]) >= 1
        for n in range(3):
            # The attacker keeps at it in between: the owner still gets in, every time.
            assert (await login(client, f"203.0.113.{n + 50}", "Wrong-1-xx!")).status_code == 429
            owner = await login(client, HOME)
            assert owner.status_code == 200, owner.text


async def test_the_address_that_verified_the_account_is_known(
    start_app: Any, mail_sink: MailSink
) -> None:
    async with start_app(**LOCK) as client:
        registered = await client.post(
            "/v1/auth/register",
            json={"email": OWNER, "password": STRONG_PASSWORD},
            headers={"X-Real-IP": HOME},
        )
        assert registered.status_code == 202
        code = await latest_code(mail_sink, OWNER)
        verified = await client.post(
            "/v1/auth/verify", json={"email": OWNER, "code": code}, headers={"X-Real-IP": HOME}
        )
        assert verified.status_code == 200, verified.text
        await lock_from_many_addresses(client)
        assert (await login(client, HOME)).status_code == 200


async def test_a_known_address_still_meets_the_per_address_limit(
    start_app: Any, mail_sink: MailSink
) -> None:
    async with start_app(
        login_failures_per_account="4/hour", login_failures_per_account_and_address="3/hour"
    ) as client:
        await verified_account(client, mail_sink, OWNER)
        assert (await login(client, HOME)).status_code == 200
        await lock_from_many_addresses(client)
        for n in range(3):
            assert (await login(client, HOME, f"Wrong-Guess-{n}-xx!")).status_code == 401
        held = await login(client, HOME)
        assert held.status_code == 429, held.text


async def test_known_addresses_are_forgotten_after_the_retention_period(
    start_app: Any, mail_sink: MailSink, clock: FrozenClock
) -> None:
    async with start_app(known_login_address_days=30, **LOCK) as client:
        await verified_account(client, mail_sink, OWNER)
        assert (await login(client, HOME)).status_code == 200
        clock.advance(29 * 86400)
        await lock_from_many_addresses(client)
        assert (await login(client, HOME)).status_code == 200
        clock.advance(30 * 86400 + 1)
        assert (await login(client, HOME)).status_code == 429


async def test_completing_a_password_reset_lifts_the_lock(
    start_app: Any, mail_sink: MailSink
) -> None:
    async with start_app(**LOCK) as client:
        await verified_account(client, mail_sink, OWNER)
        await lock_from_many_addresses(client)
        travelling = {"X-Real-IP": "192.0.2.30"}
        assert (await login(client, "192.0.2.30")).status_code == 429

        await client.post("/v1/auth/password-reset", json={"email": OWNER}, headers=travelling)
        code = await latest_code(mail_sink, OWNER, 2)
        verified = await client.post(
            "/v1/auth/password-reset/verify", json={"email": OWNER, "code": code}
        )
        assert verified.status_code == 200, verified.text
        done = await client.post(
            "/v1/auth/password-reset/complete",
            json={"reset_token": verified.json()["reset_token"], "new_password": "Fresh-Start-77!"},
            headers=travelling,
        )
        assert done.status_code == 204, done.text
        assert (await login(client, "192.0.2.30", "Fresh-Start-77!")).status_code == 200
        # The owner proved the mailbox: the failures counted against the account are forgotten.
        assert (await login(client, "192.0.2.31", "Fresh-Start-77!")).status_code == 200


async def test_a_locked_unknown_email_answers_like_a_locked_account(
    start_app: Any, mail_sink: MailSink
) -> None:
    async with start_app(**LOCK) as client:
        await verified_account(client, mail_sink, OWNER)
        await lock_from_many_addresses(client)
        await lock_from_many_addresses(client, "nobody@example.com")
        known = await login(client, HOME)
        unknown = await login(client, HOME, email="nobody@example.com")
        assert known.status_code == unknown.status_code == 429
        assert known.json() == unknown.json()


async def test_addresses_are_stored_as_keyed_digests_bound_to_the_account(
    start_app: Any, mail_sink: MailSink, database_url: str
) -> None:
    async with start_app() as client:
        await verified_account(client, mail_sink, OWNER)
        await verified_account(client, mail_sink, "neighbour@example.com")
        for _ in range(2):
            assert (await login(client, HOME)).status_code == 200
        assert (await login(client, HOME, email="neighbour@example.com")).status_code == 200
    database = Database(database_url)
    try:
        async with database.sessionmaker() as session:
            rows = list(await session.scalars(select(KnownLoginAddress)))
    finally:
        await database.dispose()
    # Per account: the verifying address (the test client's own) and HOME; a repeat updates.
    assert len(rows) == 4
    digests = {row.address_hash for row in rows}
    assert len(digests) == 4, "one address on two accounts must not be linkable"
    plain = {hashlib.sha256(address.encode()).hexdigest() for address in (HOME, "127.0.0.1")}
    assert not digests & plain
    assert all(len(digest) == 64 for digest in digests)


async def test_a_repeat_login_within_the_hour_rewrites_nothing(
    start_app: Any, mail_sink: MailSink, database_url: str, clock: FrozenClock
) -> None:
    async def last_success() -> list[datetime]:
        database = Database(database_url)
        try:
            async with database.sessionmaker() as session:
                return list(await session.scalars(select(KnownLoginAddress.last_success_at)))
        finally:
            await database.dispose()

    async with start_app() as client:
        await verified_account(client, mail_sink, "someone-else@example.com")
        before = await last_success()  # the verifying address of another account
        await verified_account(client, mail_sink, OWNER)
        verified_at = clock.now()
        assert (await login(client, HOME)).status_code == 200
        first = await last_success()
        assert len(first) == len(before) + 2
        clock.advance(59 * 60)
        assert (await login(client, HOME)).status_code == 200
        assert await last_success() == first
        clock.advance(60)
        assert (await login(client, HOME)).status_code == 200
        later = await last_success()
        assert len(later) == len(first)
        assert set(later) - set(first) == {verified_at + timedelta(hours=1)}
