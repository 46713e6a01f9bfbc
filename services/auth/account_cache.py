"""`GET /me` bodies kept in memory between changes, so the hottest read skips the database.

Bend kept for the bench row "GET /v1/auth/me" (with and without it in bench/README.md).

What /me shows changes only through this service: `created_at` is fixed, and `email_verified`,
`email`, `newsletter` and `language` change in a few calls (verify, a password reset that proves
the address, an email change or its undoing, the newsletter switch, `PATCH /me`, erasure). Each
of them reports the change once its transaction has committed, before the response leaves: the
body is dropped here and, when `REDIS_URL` is set, in every other replica through a Redis channel.
Entries also expire after a while, which bounds how stale a replica can be if an invalidation
is lost (say, a Redis outage: the cache then stays off until the channel is back, because what
was said meanwhile is unknown).

A body read from the database while a change was committing is not kept: every change moves a
counter, and a read only stores its body if the counter did not move while it was reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.bounded import keep_newest
from services.common.database import after_commit
from services.common.revocation import CHANNEL as REVOCATION_CHANNEL
from services.common.revocation import is_revocation_message
from services.common.tasks import cancel_and_wait

logger = logging.getLogger("natomedia.auth.account_cache")

# Shared with the revocation wake-ups that media and news listen for (and this feed ignores).
CHANNEL = REVOCATION_CHANNEL
MAX_ENTRIES = 10_000
RESUBSCRIBE_AFTER_SECONDS = 5.0


class AccountCache:
    """Account id → its `/me` JSON, for `ttl_seconds` at most (0 turns the cache off)."""

    def __init__(
        self,
        ttl_seconds: float,
        *,
        max_entries: int = MAX_ENTRIES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._now = monotonic
        self._bodies: OrderedDict[uuid.UUID, tuple[float, bytes]] = OrderedDict()
        self._changes = 0
        # Off until told otherwise when changes arrive from elsewhere (see AccountChangeFeed).
        self.active = ttl_seconds > 0

    def get(self, account_id: uuid.UUID) -> bytes | None:
        entry = self._bodies.get(account_id)
        if entry is None:
            return None
        expires, body = entry
        if self._now() >= expires:
            del self._bodies[account_id]
            return None
        return body

    def ticket(self) -> int:
        """Take before reading the database; hand to `put` with what was read."""
        return self._changes

    def put(self, account_id: uuid.UUID, body: bytes, ticket: int) -> None:
        # A change that committed during the read may be missing from `body`: not worth keeping.
        if not self.active or ticket != self._changes:
            return
        keep_newest(self._bodies, account_id, (self._now() + self.ttl, body), self.max_entries)

    def forget(self, account_id: uuid.UUID) -> None:
        self._changes += 1
        self._bodies.pop(account_id, None)

    def suspend(self) -> None:
        """Stop caching and drop everything: changes made elsewhere can no longer be heard."""
        self.active = False
        self._changes += 1
        self._bodies.clear()

    def resume(self) -> None:
        self._changes += 1
        self._bodies.clear()
        self.active = self.ttl > 0


class AccountChangeFeed:
    """Tells this replica's cache and, through Redis when configured, every other replica's."""

    def __init__(self, cache: AccountCache, redis_url: str | None) -> None:
        self.cache = cache
        self._client = (
            redis.Redis.from_url(
                redis_url,
                socket_connect_timeout=1.0,
                socket_timeout=1.0,
                # No silent reconnect: messages sent while the subscription was down would be
                # lost unnoticed. A failure ends the subscription, and the cache with it.
                retry=Retry(NoBackoff(), 0),
            )
            if redis_url and cache.ttl > 0
            else None
        )
        if self._client is not None:
            cache.suspend()  # until the subscription is up
        self._listener: asyncio.Task[None] | None = None
        self._reported_down = False
        self.subscribed = asyncio.Event()

    def changed(self, session: AsyncSession, account_id: uuid.UUID) -> None:
        """Report that this session changes what `/me` shows for `account_id`."""

        async def announce() -> None:
            self.cache.forget(account_id)
            if self._client is None:
                return
            try:
                await self._client.publish(CHANNEL, account_id.hex)
            except (redis.RedisError, OSError) as exc:
                # The others keep their copy until it expires, or until their own subscription
                # breaks on the same outage and they stop caching.
                logger.warning("could not announce an account change: %s", exc)

        after_commit(session, announce)

    async def start(self) -> None:
        if self._client is not None and self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="auth-account-changes")

    async def stop(self) -> None:
        await cancel_and_wait(self._listener)
        self._listener = None
        if self._client is not None:
            await self._client.aclose()

    async def _listen(self) -> None:
        assert self._client is not None
        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                # Whatever was said before the subscription was heard by nobody here.
                self.cache.resume()
                self.subscribed.set()
                if self._reported_down:
                    logger.warning("account changes heard again, caching /me resumed")
                    self._reported_down = False
                while True:
                    # No read timeout on an idle channel: a broken connection raises instead.
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                    if message is not None and message["type"] == "message":
                        self._forget(message["data"])
            except (redis.RedisError, OSError) as exc:
                if not self._reported_down:
                    logger.warning("account changes unheard, caching /me paused: %s", exc)
                    self._reported_down = True
                self.subscribed.clear()
                self.cache.suspend()
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(RESUBSCRIBE_AFTER_SECONDS)

    def _forget(self, data: bytes) -> None:
        if is_revocation_message(data):
            return  # for media and news; auth checks its database
        try:
            account_id = uuid.UUID(hex=data.decode())
        except (UnicodeDecodeError, ValueError):
            logger.warning("ignored a malformed account-change message")
            return
        self.cache.forget(account_id)
