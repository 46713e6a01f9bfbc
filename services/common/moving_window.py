"""The in-process moving-window limit behind `ratelimit.RateLimiter`: plain memory, no threads.

`limits`' own memory storages expire their entries on other threads: the asyncio one sends every
key's expiry scan to a worker thread on each hit, the synchronous one starts a timer thread at
most every 10 ms while hits arrive. On a core that also hashes passwords each hand-over costs a
login more than the counting itself. This keeps the same rule as
`limits.strategies.MovingWindowRateLimiter` (at most `amount` counted hits in any `expiry`
seconds; a refused hit is not counted) with the last `amount` hit times per key, and drops idle
keys once a minute, on the caller's thread.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from limits import RateLimitItem, WindowStats

SWEEP_SECONDS = 60.0


class InProcessMovingWindow:
    """The strategy's `hit`, `test` and `get_window_stats`, for one process and one thread."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        # Per key: its window in seconds and its newest hit times, oldest first.
        self._hits: dict[str, tuple[int, deque[float]]] = {}
        self._next_sweep = clock() + SWEEP_SECONDS

    def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        now = self._clock()
        expiry = item.get_expiry()
        hits = self._times(item, identifiers)
        # `>=` here and `<=` in `test`, as the library: they disagree only at the exact instant.
        if len(hits) == item.amount and hits[0] >= now - expiry:
            return False
        hits.append(now)
        if now >= self._next_sweep:
            self._sweep(now)
        return True

    def test(self, item: RateLimitItem, *identifiers: str) -> bool:
        hits = self._times(item, identifiers)
        return len(hits) < item.amount or hits[0] <= self._clock() - item.get_expiry()

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        now = self._clock()
        expiry = item.get_expiry()
        recent = [at for at in self._times(item, identifiers) if at > now - expiry]
        if not recent:
            return WindowStats(now + expiry, item.amount)
        return WindowStats(recent[0] + expiry, item.amount - len(recent))

    def clear(self, item: RateLimitItem, *identifiers: str) -> None:
        self._hits.pop(item.key_for(*identifiers), None)

    def reset(self) -> None:
        self._hits.clear()

    def __len__(self) -> int:
        return len(self._hits)

    def _times(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> deque[float]:
        key = item.key_for(*identifiers)
        entry = self._hits.get(key)
        if entry is None:
            # Only the newest `amount` hits can decide anything: older ones fall off the end.
            entry = (item.get_expiry(), deque(maxlen=item.amount))
            self._hits[key] = entry
        return entry[1]

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + SWEEP_SECONDS
        idle = [
            key
            for key, (expiry, hits) in self._hits.items()
            if not hits or hits[-1] <= now - expiry
        ]
        for key in idle:
            del self._hits[key]
