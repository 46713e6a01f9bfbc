"""`GET /me` from memory: fresh after every change, shared invalidation through Redis."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.auth.account_cache import AccountCache, AccountChangeFeed
from services.gateway.mail_sink import MailSink
from tests.auth.flows import STRONG_PASSWORD, bearer, latest_code, register, verified_account
from tests.public_cache_support import Monotonic, counted_queries

ACCOUNT = uuid.UUID(int=7)


def test_a_body_is_kept_for_its_ttl_and_no_longer() -> None:
    clock = Monotonic()
    cache = AccountCache(30.0, monotonic=clock)
    cache.put(ACCOUNT, b"{}", cache.ticket())
    clock.now += 29.9
    assert cache.get(ACCOUNT) == b"{}"
    clock.now += 0.1
    assert cache.get(ACCOUNT) is None


def test_a_read_that_overlapped_a_change_is_not_kept() -> None:
    cache = AccountCache(30.0)
    ticket = cache.ticket()  # the read starts
    cache.forget(ACCOUNT)  # a change commits meanwhile
    cache.put(ACCOUNT, b'{"newsletter":false}', ticket)  # what the read saw may predate it
    assert cache.get(ACCOUNT) is None
    cache.put(ACCOUNT, b'{"newsletter":true}', cache.ticket())
    assert cache.get(ACCOUNT) == b'{"newsletter":true}'


def test_suspended_caches_nothing_until_resumed() -> None:
    cache = AccountCache(30.0)
    cache.put(ACCOUNT, b"{}", cache.ticket())
    cache.suspend()
    assert cache.get(ACCOUNT) is None
    cache.put(ACCOUNT, b"{}", cache.ticket())
    assert cache.get(ACCOUNT) is None
    cache.resume()
    cache.put(ACCOUNT, b"{}", cache.ticket())
    assert cache.get(ACCOUNT) == b"{}"


def test_zero_seconds_turns_it_off_and_the_size_is_bounded() -> None:
    off = AccountCache(0.0)
    off.put(ACCOUNT, b"{}", off.ticket())
    assert off.get(ACCOUNT) is None
    small = AccountCache(30.0, max_entries=2)
    first, second, third = (uuid.UUID(int=n) for n in (1, 2, 3))
    for account in (first, second):
        small.put(account, b"{}", small.ticket())
    small.get(first)  # reads do not refresh the order: the oldest write goes first
    small.put(third, b"{}", small.ticket())
    assert small.get(first) is None
    assert small.get(second) == small.get(third) == b"{}"


async def test_repeated_reads_skip_the_database(
    app: FastAPI, client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    pair = await verified_account(client, mail_sink, "cached@example.org")
    headers = bearer(pair["access_token"])
    with counted_queries(app) as statements:
        first = await client.get("/v1/auth/me", headers=headers)
        reads = len(statements)
        again = [await client.get("/v1/auth/me", headers=headers) for _ in range(5)]
    assert reads >= 1
    assert len(statements) == reads  # none after the first
    assert all(response.content == first.content for response in again)


async def test_every_change_shows_at_once(client: httpx.AsyncClient, mail_sink: MailSink) -> None:
    email = "changes@example.org"
    assert (await register(client, email)).status_code == 202
    code = await latest_code(mail_sink, email)
    # An unverified account may log in; its /me is cached before each change below.
    login = await client.post("/v1/auth/login", json={"email": email, "password": STRONG_PASSWORD})
    headers = bearer(login.json()["access_token"])
    assert (await client.get("/v1/auth/me", headers=headers)).json()["email_verified"] is False

    verified = await client.post("/v1/auth/verify", json={"email": email, "code": code})
    assert verified.status_code == 200
    assert (await client.get("/v1/auth/me", headers=headers)).json()["email_verified"] is True
    # Verification ended the session opened before it: changes need the new token.
    headers = bearer(verified.json()["access_token"])

    for subscribed in (True, False, True):
        put = await client.put(
            "/v1/auth/me/newsletter", json={"subscribed": subscribed}, headers=headers
        )
        assert put.status_code == 200
        me = await client.get("/v1/auth/me", headers=headers)
        assert me.json()["newsletter"] is subscribed
        assert me.content == put.content


async def test_a_password_reset_that_proves_the_address_shows_at_once(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    email = "reset-proves@example.org"
    assert (await register(client, email)).status_code == 202
    await latest_code(mail_sink, email)
    login = await client.post("/v1/auth/login", json={"email": email, "password": STRONG_PASSWORD})
    headers = bearer(login.json()["access_token"])
    assert (await client.get("/v1/auth/me", headers=headers)).json()["email_verified"] is False
    requested = await client.post("/v1/auth/password-reset", json={"email": email})
    assert requested.status_code == 202
    code = await latest_code(mail_sink, email, 2)
    proven = await client.post(
        "/v1/auth/password-reset/verify", json={"email": email, "code": code}
    )
    assert proven.status_code == 200
    assert (await client.get("/v1/auth/me", headers=headers)).json()["email_verified"] is True


async def test_setting_the_newsletter_to_what_it_is_keeps_the_cached_body(
    app: FastAPI, client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    pair = await verified_account(client, mail_sink, "unchanged@example.org")
    headers = bearer(pair["access_token"])
    before = await client.get("/v1/auth/me", headers=headers)
    cache: AccountCache = app.state.account_cache
    ticket = cache.ticket()
    same = await client.put("/v1/auth/me/newsletter", json={"subscribed": False}, headers=headers)
    assert same.status_code == 200
    assert cache.ticket() == ticket  # nothing changed, nothing dropped
    assert cache.get(uuid.UUID(before.json()["id"])) == before.content


def app_of(client: httpx.AsyncClient) -> FastAPI:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    assert isinstance(app, FastAPI)
    return app


async def _subscribed(app: FastAPI) -> None:
    feed: AccountChangeFeed = app.state.account_changes
    await asyncio.wait_for(feed.subscribed.wait(), timeout=5)


async def _eventually(check: Any, seconds: float = 2.0) -> bool:
    """True once `check()` is; the other replica hears Redis on its own schedule."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        if await check():
            return True
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)


@pytest.mark.redis
async def test_a_change_in_one_replica_reaches_the_others_through_redis(
    start_app: Any, redis_url: str, mail_sink: MailSink
) -> None:
    async with (
        start_app(REDIS_URL=redis_url) as one,
        start_app(REDIS_URL=redis_url) as two,
    ):
        app_one, app_two = app_of(one), app_of(two)
        await _subscribed(app_one)
        await _subscribed(app_two)
        pair = await verified_account(one, mail_sink, "replicas@example.org")
        headers = bearer(pair["access_token"])

        async def one_caches_it() -> bool:
            # Replica one also hears its own announcement of the verification, which drops a
            # copy read before it arrived.
            cached = await one.get("/v1/auth/me", headers=headers)
            assert cached.json()["newsletter"] is False
            kept = app_one.state.account_cache.get(uuid.UUID(cached.json()["id"]))
            return bool(kept == cached.content)

        assert await _eventually(one_caches_it)

        put = await two.put("/v1/auth/me/newsletter", json={"subscribed": True}, headers=headers)
        assert put.status_code == 200

        async def one_sees_it() -> bool:
            me = await one.get("/v1/auth/me", headers=headers)
            return bool(me.json()["newsletter"] is True)

        # Well inside the 60-second expiry: only the message can explain it.
        assert await _eventually(one_sees_it)


async def test_without_redis_answers_the_cache_stays_off(
    start_app: Any, mail_sink: MailSink
) -> None:
    # A port nothing listens on: the subscription never comes up, so no replica may trust
    # a copy it cannot hear changes about; every read goes to the database.
    async with start_app(REDIS_URL="redis://127.0.0.1:9/0") as client:
        app = app_of(client)
        pair = await verified_account(client, mail_sink, "no-redis@example.org")
        headers = bearer(pair["access_token"])
        with counted_queries(app) as statements:
            for _ in range(3):
                assert (await client.get("/v1/auth/me", headers=headers)).status_code == 200
        assert app.state.account_cache.active is False
        assert len(statements) >= 3
