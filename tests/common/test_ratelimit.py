"""Rate limits count per key, answer 429 with Retry-After, share state through Redis."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import limits.storage.memory as limits_memory
import pytest

from services.common.problems import RateLimited
from services.common.ratelimit import RateLimiter, rule


async def test_in_process_limits_count_per_key() -> None:
    limiter = RateLimiter(None, namespace="t-memory")
    limit = rule("3/minute")
    assert [await limiter.allow(limit, "a") for _ in range(4)] == [True, True, True, False]
    assert await limiter.allow(limit, "b")
    with pytest.raises(RateLimited) as raised:
        await limiter.hit(limit, "a")
    assert raised.value.status == 429
    assert 55 <= int(raised.value.headers["Retry-After"]) <= 60


async def test_check_does_not_count() -> None:
    limiter = RateLimiter(None, namespace="t-check")
    limit = rule("1/minute")
    for _ in range(5):
        await limiter.check(limit, "k")
    await limiter.hit(limit, "k")
    with pytest.raises(RateLimited):
        await limiter.check(limit, "k")


async def test_in_process_limits_stay_on_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """No thread per hit: `limits`' asyncio storage sent each key's expiry to a worker thread,
    its synchronous one starts a timer thread."""
    sent: list[Callable[..., Any]] = []
    to_thread = asyncio.to_thread

    async def counted(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        sent.append(function)
        return await to_thread(function, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", counted)
    started: list[threading.Thread] = []

    class CountedTimer(threading.Timer):
        def start(self) -> None:
            started.append(self)
            super().start()

    # Only `limits`' synchronous storage sees the counting timer, not every thread in the run.
    monkeypatch.setattr(
        limits_memory, "threading", SimpleNamespace(Timer=CountedTimer, RLock=threading.RLock)
    )
    threads_before = set(threading.enumerate())
    limiter = RateLimiter(None, namespace="t-loop")
    limit = rule("5/minute")
    for key in ("a", "b", "c"):
        await limiter.hit(limit, "login", key)
        await limiter.check(limit, "login", key)
        assert await limiter.would_allow(limit, "login", key)
        assert await limiter.retry_after(limit, "login", key) >= 1
    await asyncio.sleep(0.05)  # long enough for a scheduled expiry pass to have started
    assert sent == []
    assert started == []
    assert set(threading.enumerate()) <= threads_before


@pytest.mark.redis
async def test_replicas_share_limits_through_redis(redis_url: str) -> None:
    first, second = RateLimiter(redis_url, namespace="t"), RateLimiter(redis_url, namespace="t")
    assert first.backend == "redis"
    limit = rule("2/minute")
    assert await first.allow(limit, "shared")
    assert await second.allow(limit, "shared")
    assert not await first.allow(limit, "shared")
    assert not await second.allow(limit, "shared")
    await first.aclose()
    await second.aclose()


async def test_redis_down_degrades_to_in_process(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RateLimiter("redis://127.0.0.1:1/0", namespace="t-down")
    limit = rule("2/minute")
    results = [await limiter.allow(limit, "k") for _ in range(3)]
    assert results == [True, True, False]
    assert any("in-process" in record.getMessage() for record in caplog.records)
    await limiter.aclose()
