"""What auth revoked, told to every service: ended sessions and revoked API clients.

Auth's database is the truth (an account's session epoch, a client's `revoked_at`) and auth checks
it itself. Media and news verify tokens and download URLs without asking auth, so auth also
writes each revocation to Redis as a key that outlives every credential it must stop (account →
the lowest session epoch still valid, client → revoked), then publishes a wake-up on the channel
its replicas already share for account changes. Every media and news process keeps the current
set in memory: it loads all the keys whenever its subscription (re)starts, reads the one key a
wake-up names, and reloads everything now and then to drop what expired.

Credentials carry what they were issued under: account access tokens the epoch (`sep`), client
tokens the client id, download URLs both (see media's signing). One without an epoch counts as
epoch 0, older than every revocation (epochs start at 0 and a revocation raises them), so
credentials issued before epochs were carried are refused after any revocation of their account
and never let through by mistake.

Without Redis nothing reaches media and news: there a revocation holds at auth at once and
elsewhere only as credentials expire (15 minutes for access tokens, the download-URL lifetime for
URLs). While Redis is unreachable a process keeps the set it has; what auth could not write is
retried every few seconds and reaches the others once Redis answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from services.common.jwt import Principal
from services.common.tasks import cancel_and_wait

logger = logging.getLogger("natomedia.revocation")

# Auth's account-change channel (its replicas drop cached `/me` bodies on it): one channel for
# every word auth says to the other processes.
CHANNEL = "natomedia:auth:account-changed"
MESSAGE_PREFIX = "revoked:"
KEY_PREFIX = "natomedia:revoked:"
ACCOUNT = "account"
CLIENT = "client"

# The longest a download URL may live (media refuses a longer MEDIA_DOWNLOAD_URL_TTL_SECONDS).
# Access tokens live minutes, so a key kept this long (plus a margin for clocks) outlives every
# credential issued before the revocation it records, whatever the services are configured with.
MAX_DOWNLOAD_URL_TTL_SECONDS = 7 * 24 * 3600
KEEP_SECONDS = MAX_DOWNLOAD_URL_TTL_SECONDS + 3600

RESUBSCRIBE_AFTER_SECONDS = 2.0
RELOAD_EVERY_SECONDS = 300.0
RETRY_EVERY_SECONDS = 5.0
MAX_PENDING = 100_000
SCAN_BATCH = 1000
# Written only when higher than what the key holds: two resets of one account publishing out of
# order must not lower the bar.
_RAISE_EPOCH = """
local current = tonumber(redis.call('GET', KEYS[1]))
if current == nil or current < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
"""


def key(kind: str, name: str) -> str:
    return f"{KEY_PREFIX}{kind}:{name}"


def is_revocation_message(data: bytes | str) -> bool:
    """Whether a message on CHANNEL is a revocation wake-up rather than an account change."""
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    return text.startswith(MESSAGE_PREFIX)


def token_epoch(principal: Principal) -> int:
    """The session epoch an account token was issued under (0 when it carries none)."""
    value = principal.claims.get("sep")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _redis_client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(
        redis_url,
        socket_connect_timeout=1.0,
        socket_timeout=1.0,
        # No silent reconnect: a wake-up sent while the subscription was down would be lost
        # unnoticed. A failure ends the subscription; the next one starts with a full load.
        retry=Retry(NoBackoff(), 0),
    )


class Revocations:
    """The revocations this process knows of; every lookup is a dict or set membership."""

    def __init__(self) -> None:
        self._accounts: dict[str, int] = {}
        self._clients: set[str] = set()

    def __len__(self) -> int:
        return len(self._accounts) + len(self._clients)

    def refuses(self, *, subject: str, client_id: str | None, epoch: int) -> bool:
        """Whether a credential issued to `subject` (or client) under `epoch` is revoked."""
        if client_id is not None:
            return client_id in self._clients
        minimum = self._accounts.get(subject)
        return minimum is not None and epoch < minimum

    def refuses_token(self, principal: Principal) -> bool:
        if not self._accounts and not self._clients:
            return False
        return self.refuses(
            subject=principal.subject, client_id=principal.client_id, epoch=token_epoch(principal)
        )

    def end_sessions(self, account_id: str, minimum_epoch: int) -> None:
        if minimum_epoch > self._accounts.get(account_id, 0):
            self._accounts[account_id] = minimum_epoch

    def revoke_client(self, client_id: str) -> None:
        self._clients.add(client_id)

    def record(self, kind: str, name: str, value: bytes | str | None) -> None:
        """Apply one stored key (`value` as Redis holds it; None: gone or unreadable)."""
        if value is None:
            return
        if kind == CLIENT:
            self.revoke_client(name)
        elif kind == ACCOUNT:
            with contextlib.suppress(ValueError):
                self.end_sessions(name, int(value))

    def replace(self, other: Revocations) -> None:
        self._accounts, self._clients = other._accounts, other._clients


def _split_key(raw: bytes | str) -> tuple[str, str] | None:
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    if not text.startswith(KEY_PREFIX):
        return None
    kind, separator, name = text[len(KEY_PREFIX) :].partition(":")
    if not separator or kind not in (ACCOUNT, CLIENT) or not name:
        return None
    return kind, name


class RevocationWatch:
    """Keeps `revocations` current from Redis (a no-op without `redis_url`)."""

    def __init__(
        self,
        redis_url: str | None,
        *,
        reload_every: float = RELOAD_EVERY_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.revocations = Revocations()
        self._client = _redis_client(redis_url) if redis_url else None
        self._reload_every = reload_every
        self._now = monotonic
        self._listener: asyncio.Task[None] | None = None
        self._reported_down = False
        # Set while subscribed with a full load done; `tried` once the first attempt ended.
        self.loaded = asyncio.Event()
        self._tried = asyncio.Event()

    async def start(self, *, wait_seconds: float = 2.0) -> None:
        """Start listening; wait (briefly) for the first load so a new replica starts informed."""
        if self._client is None or self._listener is not None:
            return
        self._listener = asyncio.create_task(self._listen(), name="revocation-watch")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._tried.wait(), wait_seconds)

    async def stop(self) -> None:
        await cancel_and_wait(self._listener)
        self._listener = None
        if self._client is not None:
            await self._client.aclose()

    async def reload(self) -> None:
        """Replace the set with every key Redis holds."""
        assert self._client is not None
        fresh = Revocations()
        batch: list[bytes] = []

        async def apply(names: list[bytes]) -> None:
            assert self._client is not None
            values = await self._client.mget(names)
            for name, value in zip(names, values, strict=True):
                parts = _split_key(name)
                if parts is not None:
                    fresh.record(*parts, value)

        async for name in self._client.scan_iter(match=f"{KEY_PREFIX}*", count=SCAN_BATCH):
            batch.append(name)
            if len(batch) >= SCAN_BATCH:
                await apply(batch)
                batch = []
        if batch:
            await apply(batch)
        self.revocations.replace(fresh)

    async def _listen(self) -> None:
        assert self._client is not None
        while True:
            pubsub = self._client.pubsub()
            try:
                # Subscribed before loading: a key written during the load is either in it or
                # announced after it.
                await pubsub.subscribe(CHANNEL)
                await self.reload()
                loaded_at = self._now()
                self.loaded.set()
                self._tried.set()
                if self._reported_down:
                    logger.warning("revocations heard again")
                    self._reported_down = False
                while True:
                    wait = max(0.0, loaded_at + self._reload_every - self._now())
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
                    if message is not None and message["type"] == "message":
                        await self._woken(message["data"])
                    if self._now() >= loaded_at + self._reload_every:
                        await self.reload()
                        loaded_at = self._now()
            except (redis.RedisError, OSError) as exc:
                if not self._reported_down:
                    logger.warning("revocations unheard (keeping the known set): %s", exc)
                    self._reported_down = True
                self.loaded.clear()
                self._tried.set()
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(RESUBSCRIBE_AFTER_SECONDS)

    async def _woken(self, data: bytes | str) -> None:
        if not is_revocation_message(data):
            return  # an account change for auth's own replicas
        text = data.decode(errors="replace") if isinstance(data, bytes) else data
        parts = _split_key(KEY_PREFIX + text[len(MESSAGE_PREFIX) :])
        if parts is None:
            logger.warning("ignored a malformed revocation message")
            return
        assert self._client is not None
        # The key, not the message, is the record: the message only says which one to read.
        self.revocations.record(*parts, await self._client.get(key(*parts)))


class RevocationPublisher:
    """Auth's side: writes each revocation's key and wakes the others (a no-op without Redis).

    What cannot be written (Redis down) is kept and retried every few seconds by `start`'s task;
    the request that revoked is not failed for it, its own database already holds the truth.
    """

    def __init__(self, redis_url: str | None, *, keep_seconds: int = KEEP_SECONDS) -> None:
        self._client = _redis_client(redis_url) if redis_url else None
        self.keep_seconds = keep_seconds
        self._pending: dict[tuple[str, str], int] = {}
        self._retrier: asyncio.Task[None] | None = None

    async def end_sessions(self, account_id: str, minimum_epoch: int) -> None:
        """Credentials of `account_id` issued under an epoch below `minimum_epoch` are revoked."""
        await self._send({(ACCOUNT, account_id): minimum_epoch})

    async def revoke_client(self, client_id: str) -> None:
        await self._send({(CLIENT, client_id): 1})

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def _send(self, entries: Mapping[tuple[str, str], int]) -> None:
        if self._client is None:
            return
        if self._pending:
            # Redis failed a moment ago: queue behind what waits (the retry task writes it)
            # rather than make this request wait for another timeout.
            self._keep(entries)
            return
        try:
            await self._write(entries.items())
        except (redis.RedisError, OSError) as exc:
            logger.warning("revocation not yet told to the other services: %s", exc)
            self._keep(entries)

    def _keep(self, entries: Mapping[tuple[str, str], int]) -> None:
        for entry, value in entries.items():
            if entry in self._pending or len(self._pending) < MAX_PENDING:
                self._pending[entry] = max(value, self._pending.get(entry, 0))

    async def _write(self, entries: Iterable[tuple[tuple[str, str], int]]) -> None:
        assert self._client is not None
        for (kind, name), value in entries:
            if kind == ACCOUNT:
                await self._client.eval(
                    _RAISE_EPOCH, 1, key(kind, name), str(value), str(self.keep_seconds)
                )
            else:
                await self._client.set(key(kind, name), str(value), ex=self.keep_seconds)
            await self._client.publish(CHANNEL, f"{MESSAGE_PREFIX}{kind}:{name}")

    async def flush(self) -> None:
        """Write what failed before; what fails again stays pending."""
        if not self._pending or self._client is None:
            return
        pending, self._pending = self._pending, {}
        try:
            await self._write(pending.items())
        except (redis.RedisError, OSError) as exc:
            logger.warning("revocations still not told to the other services: %s", exc)
            self._keep(pending)

    async def start(self) -> None:
        if self._client is not None and self._retrier is None:
            self._retrier = asyncio.create_task(self._retry(), name="revocation-retry")

    async def stop(self) -> None:
        await cancel_and_wait(self._retrier)
        self._retrier = None
        if self._client is not None:
            await self._client.aclose()

    async def _retry(self) -> None:
        while True:
            await asyncio.sleep(RETRY_EVERY_SECONDS)
            await self.flush()
