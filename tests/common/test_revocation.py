"""The revocation set every media and news process keeps, and how Redis keeps it current."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest
import redis.asyncio as redis

from services.common.jwt import TokenVerifier
from services.common.revocation import (
    CHANNEL,
    KEEP_SECONDS,
    MAX_DOWNLOAD_URL_TTL_SECONDS,
    RevocationPublisher,
    Revocations,
    RevocationWatch,
    key,
    token_epoch,
)
from tests.conftest import TokenFactory

ACCOUNT = str(uuid.UUID(int=1))


async def eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    """True once `check()` is, polled until `seconds` have passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def test_an_account_is_refused_below_its_minimum_epoch_only() -> None:
    revocations = Revocations()
    assert not revocations.refuses(subject=ACCOUNT, client_id=None, epoch=0)
    revocations.end_sessions(ACCOUNT, 2)
    assert revocations.refuses(subject=ACCOUNT, client_id=None, epoch=0)
    assert revocations.refuses(subject=ACCOUNT, client_id=None, epoch=1)
    assert not revocations.refuses(subject=ACCOUNT, client_id=None, epoch=2)
    # An older word arriving late never lowers the bar.
    revocations.end_sessions(ACCOUNT, 1)
    assert revocations.refuses(subject=ACCOUNT, client_id=None, epoch=1)
    assert not revocations.refuses(subject=str(uuid.UUID(int=2)), client_id=None, epoch=0)


def test_a_client_is_refused_whatever_its_owner_epoch() -> None:
    revocations = Revocations()
    revocations.revoke_client("nmc_1")
    assert revocations.refuses(subject="client:nmc_1", client_id="nmc_1", epoch=99)
    assert not revocations.refuses(subject="client:nmc_2", client_id="nmc_2", epoch=0)


async def test_tokens_are_judged_by_their_sep_and_client_id(tokens: TokenFactory) -> None:
    verifier: TokenVerifier = tokens.verifier()
    account = uuid.UUID(int=3)
    before = await verifier.verify(tokens.account(account_id=account, session_epoch=0))
    after = await verifier.verify(tokens.account(account_id=account, session_epoch=1))
    client = await verifier.verify(tokens.client("nmc_3"))
    legacy = await verifier.verify(
        tokens.issuer._issue(str(account), "media:download", {"email_verified": True}).token
    )
    assert (token_epoch(before), token_epoch(after), token_epoch(legacy)) == (0, 1, 0)
    revocations = Revocations()
    assert not any(revocations.refuses_token(p) for p in (before, after, client, legacy))
    revocations.end_sessions(str(account), 1)
    revocations.revoke_client("nmc_3")
    assert revocations.refuses_token(before)
    assert revocations.refuses_token(legacy)  # no `sep`: older than any revocation
    assert not revocations.refuses_token(after)
    assert revocations.refuses_token(client)


def test_keys_outlive_the_longest_download_url() -> None:
    assert KEEP_SECONDS > MAX_DOWNLOAD_URL_TTL_SECONDS


# --- through Redis ----------------------------------------------------------------------------


async def _stored(redis_url: str, name: str) -> tuple[bytes | None, int]:
    client = redis.from_url(redis_url)
    try:
        return await client.get(name), await client.ttl(name)
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_a_published_revocation_reaches_a_listening_process(redis_url: str) -> None:
    watch = RevocationWatch(redis_url)
    publisher = RevocationPublisher(redis_url)
    await watch.start()
    try:
        assert watch.loaded.is_set()
        revocations = watch.revocations
        await publisher.end_sessions(ACCOUNT, 1)
        await publisher.revoke_client("nmc_heard")
        assert await eventually(
            lambda: revocations.refuses(subject=ACCOUNT, client_id=None, epoch=0)
        )
        assert await eventually(
            lambda: revocations.refuses(subject="client:nmc_heard", client_id="nmc_heard", epoch=0)
        )
    finally:
        await watch.stop()
        await publisher.stop()
    value, ttl = await _stored(redis_url, key("account", ACCOUNT))
    assert value == b"1"
    assert MAX_DOWNLOAD_URL_TTL_SECONDS < ttl <= KEEP_SECONDS


@pytest.mark.redis
async def test_a_process_started_later_loads_what_was_revoked_before(redis_url: str) -> None:
    publisher = RevocationPublisher(redis_url)
    await publisher.end_sessions(ACCOUNT, 3)
    await publisher.end_sessions(ACCOUNT, 2)  # late and lower: the key keeps 3
    await publisher.revoke_client("nmc_before")
    await publisher.stop()
    watch = RevocationWatch(redis_url)
    await watch.start()
    try:
        # `start` waits for the first load: no wake-up was heard, the keys were read.
        assert watch.loaded.is_set()
        assert watch.revocations.refuses(subject=ACCOUNT, client_id=None, epoch=2)
        assert not watch.revocations.refuses(subject=ACCOUNT, client_id=None, epoch=3)
        assert watch.revocations.refuses(subject="c", client_id="nmc_before", epoch=0)
    finally:
        await watch.stop()


@pytest.mark.redis
async def test_account_changes_on_the_shared_channel_are_ignored(redis_url: str) -> None:
    watch = RevocationWatch(redis_url)
    await watch.start()
    client = redis.from_url(redis_url)
    try:
        # What auth replicas say to each other about `/me`, and junk: neither is a revocation.
        await client.publish(CHANNEL, uuid.uuid4().hex)
        await client.publish(CHANNEL, "revoked:nonsense")
        publisher = RevocationPublisher(redis_url)
        await publisher.revoke_client("nmc_after")
        await publisher.stop()
        assert await eventually(
            lambda: watch.revocations.refuses(subject="c", client_id="nmc_after", epoch=0)
        )
        assert len(watch.revocations) == 1
        assert watch.loaded.is_set()
    finally:
        await client.aclose()
        await watch.stop()


async def test_a_revocation_redis_cannot_take_is_kept_for_later_not_raised() -> None:
    # The reset already committed: auth answers it, and keeps the word for when Redis is back
    # (tests/faults/test_revocation_redis_down.py).
    down = RevocationPublisher("redis://127.0.0.1:9/0")
    try:
        await down.end_sessions(ACCOUNT, 1)
        await down.end_sessions(ACCOUNT, 2)
        await down.revoke_client("nmc_later")
        assert down.pending == 2
        await down.flush()
        assert down.pending == 2
    finally:
        await down.stop()


async def test_without_redis_nothing_is_published_or_kept() -> None:
    publisher = RevocationPublisher(None)
    await publisher.end_sessions(ACCOUNT, 1)
    assert publisher.pending == 0
    watch = RevocationWatch(None)
    await watch.start()
    assert len(watch.revocations) == 0
    await watch.stop()
