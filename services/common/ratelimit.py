"""Rate limits on the `limits` library: in-process by default, Redis when REDIS_URL is set.

When Redis stops answering, limits fall back to in-process counters (with a warning) instead of
failing requests, and Redis is tried again after a short pause.

The in-process counters are `moving_window.InProcessMovingWindow`, called directly on the event
loop: the library's own memory storages hand their expiry work to other threads on every hit.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from services.common.moving_window import InProcessMovingWindow
from services.common.problems import RateLimited

logger = logging.getLogger("natomedia.ratelimit")

RETRY_REDIS_AFTER_SECONDS = 5.0


def policy_name(key: Sequence[str]) -> str:
    """The policy's name in the headers: the key's first part (`login`, `media-download-url`),
    never the caller's address or id that follows it."""
    name = key[0] if key else "default"
    return "".join(char for char in name if char.isalnum() or char in "-_.") or "default"


def rule(text: str) -> RateLimitItem:
    """`"5/minute"`, `"20 per hour"`: the limits library's notation."""
    return parse(text)


class RateLimiter:
    def __init__(self, redis_url: str | None = None, *, namespace: str = "natomedia") -> None:
        self.namespace = namespace
        self._memory = InProcessMovingWindow()
        self._shared: MovingWindowRateLimiter | None = None
        self._storage: Storage | None = None
        self._pool: redis.ConnectionPool | None = None
        if redis_url:
            # Our own pool, so shutdown can close its sockets (the storage offers no close).
            self._pool = redis.ConnectionPool.from_url(
                redis_url, socket_connect_timeout=1.0, socket_timeout=1.0
            )
            # limits types its options as scalars, but hands them to the redis client as they are.
            pool_option: dict[str, Any] = {"connection_pool": self._pool}
            storage = RedisStorage(
                _async_uri(redis_url), key_prefix=namespace, implementation="redispy", **pool_option
            )
            self._storage = storage
            self._shared = MovingWindowRateLimiter(storage)
        self._shared_down_until = 0.0

    @property
    def backend(self) -> str:
        return "redis" if self._shared is not None else "memory"

    async def _call(self, method: str, *args: Any) -> Any:
        if self._shared is not None and time.monotonic() >= self._shared_down_until:
            try:
                return await getattr(self._shared, method)(*args)
            except Exception as exc:  # the storage raises its driver's own errors
                self._shared_down_until = time.monotonic() + RETRY_REDIS_AFTER_SECONDS
                logger.warning(
                    "rate-limit storage unavailable, using in-process limits",
                    extra={"error": type(exc).__name__},
                )
        return getattr(self._memory, method)(*args)

    async def allow(self, limit: RateLimitItem, *key: str) -> bool:
        """Count a hit; False (without counting) when the limit is already reached."""
        return bool(await self._call("hit", limit, *key))

    async def would_allow(self, limit: RateLimitItem, *key: str) -> bool:
        return bool(await self._call("test", limit, *key))

    async def retry_after(self, limit: RateLimitItem, *key: str) -> int:
        stats = await self._call("get_window_stats", limit, *key)
        return max(1, math.ceil(float(stats.reset_time) - time.time()))

    async def allow_all(self, limits: Sequence[RateLimitItem], *key: str) -> bool:
        """Count one hit in every limit, or (when any is reached) in none.

        Counting each on its own would let a request one limit refuses still spend the others.
        Two requests at once may both pass the test: each limit overshoots by at most the
        requests in flight.
        """
        for limit in limits:
            if not await self.would_allow(limit, *key):
                return False
        for limit in limits:
            await self.allow(limit, *key)
        return True

    async def wait_seconds(self, limits: Sequence[RateLimitItem], *key: str) -> int:
        """Whole seconds until every limit would count another hit (0: now)."""
        waits = [0.0]
        for limit in limits:
            stats = await self._call("get_window_stats", limit, *key)
            if stats.remaining <= 0:
                waits.append(float(stats.reset_time) - time.time())
        return max(0, math.ceil(max(waits)))

    async def clear(self, limit: RateLimitItem, *key: str) -> None:
        """Forget every hit counted against `limit` for `key`."""
        self._memory.clear(limit, *key)
        await self._call("clear", limit, *key)

    async def hit(self, limit: RateLimitItem, *key: str) -> dict[str, str]:
        """Count a hit or raise 429 `rate_limited` with Retry-After; the limit's state after
        the hit as `RateLimit` and `RateLimit-Policy` headers, for a response that shows it."""
        if not await self.allow(limit, *key):
            raise await self.refusal(limit, *key)
        return await self.headers(limit, *key)

    async def check(self, limit: RateLimitItem, *key: str) -> None:
        """Raise 429 if the limit is reached, without counting (pair with `allow` on failure)."""
        if not await self.would_allow(limit, *key):
            raise await self.refusal(limit, *key)

    async def headers(self, limit: RateLimitItem, *key: str) -> dict[str, str]:
        """The IETF `RateLimit` / `RateLimit-Policy` headers (draft-ietf-httpapi-ratelimit-headers):
        the policy's quota `q` per window `w` seconds, the remaining `r` and seconds `t` until the
        window frees a request."""
        stats = await self._call("get_window_stats", limit, *key)
        reset = max(0, math.ceil(float(stats.reset_time) - time.time()))
        name = policy_name(key)
        return {
            "RateLimit": f'"{name}";r={max(0, int(stats.remaining))};t={reset}',
            "RateLimit-Policy": f'"{name}";q={limit.amount};w={limit.get_expiry()}',
        }

    async def refusal(self, limit: RateLimitItem, *key: str) -> RateLimited:
        """The 429 for a reached limit, with Retry-After and the RateLimit headers."""
        return RateLimited(
            await self.retry_after(limit, *key), rate_limit=await self.headers(limit, *key)
        )

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.disconnect()

    async def reset(self) -> None:
        self._memory.reset()
        if self._storage is not None:
            await self._storage.reset()


def _async_uri(url: str) -> str:
    return url if url.startswith("async+") else f"async+{url}"
