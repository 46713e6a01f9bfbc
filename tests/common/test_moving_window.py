"""The in-process moving window decides as `limits`' own moving window does, without threads."""

from __future__ import annotations

import random
import types

import pytest
from limits import parse
from limits.storage import MemoryStorage
from limits.storage import memory as limits_memory
from limits.strategies import MovingWindowRateLimiter

from services.common.moving_window import SWEEP_SECONDS, InProcessMovingWindow


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_at_most_amount_hits_in_any_window_and_refusals_do_not_count() -> None:
    clock = FakeClock()
    window = InProcessMovingWindow(clock)
    limit = parse("3/10second")
    start = clock.now
    for offset in (0, 1, 2):
        clock.now = start + offset
        assert window.hit(limit, "k")
    clock.now = start + 5
    assert not window.hit(limit, "k")
    assert not window.test(limit, "k")
    # The hit at +0 leaves the window at +10; the refused one at +5 never counted.
    clock.now = start + 10.5
    assert window.test(limit, "k")
    assert window.hit(limit, "k")
    clock.now = start + 10.6
    assert not window.hit(limit, "k")
    clock.now = start + 11.5
    assert window.hit(limit, "k")


def test_keys_and_limits_are_counted_apart() -> None:
    window = InProcessMovingWindow(FakeClock())
    one, two = parse("1/minute"), parse("2/minute")
    assert window.hit(one, "a")
    assert not window.hit(one, "a")
    assert window.hit(one, "b")
    assert window.hit(two, "a")
    assert window.hit(two, "a")
    assert not window.hit(two, "a")


def test_window_stats_give_the_reset_time_of_the_oldest_hit_in_the_window() -> None:
    clock = FakeClock()
    window = InProcessMovingWindow(clock)
    limit = parse("2/minute")
    start = clock.now
    assert window.get_window_stats(limit, "k") == (start + 60, 2)
    window.hit(limit, "k")
    clock.now = start + 20
    window.hit(limit, "k")
    assert window.get_window_stats(limit, "k") == (start + 60, 0)
    clock.now = start + 70
    assert window.get_window_stats(limit, "k") == (start + 80, 1)


def test_idle_keys_are_dropped_once_a_minute_and_busy_ones_kept() -> None:
    clock = FakeClock()
    window = InProcessMovingWindow(clock)
    short, long = parse("5/second"), parse("5/hour")
    for n in range(100):
        window.hit(short, f"idle-{n}")
    window.hit(long, "busy")
    assert len(window) == 101
    clock.now += SWEEP_SECONDS
    window.hit(short, "trigger")
    assert len(window) == 2  # "busy" (its hour is not over) and the key that just hit
    assert window.get_window_stats(long, "busy").remaining == 4


def test_same_decisions_as_the_librarys_moving_window(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    # The library reads `time.time()` in its memory storage: give it the same clock.
    monkeypatch.setattr(limits_memory, "time", types.SimpleNamespace(time=clock))
    storage = MemoryStorage()
    # Its expiry thread prunes the same lists the test reads, racing the test on a busy machine
    # (it drops a key's lock while holding it); decisions never depend on that pruning.
    monkeypatch.setattr(storage, "_MemoryStorage__schedule_expiry", lambda: None)
    library = MovingWindowRateLimiter(storage)
    ours = InProcessMovingWindow(clock)
    limits = [parse("3/5second"), parse("10/minute"), parse("1/second")]
    chooser = random.Random(20261127)
    for _ in range(3000):
        clock.now += chooser.choice((0.01, 0.1, 0.3, 1.0, 2.5))
        limit = chooser.choice(limits)
        key = chooser.choice(("a", "b", "c"))
        if chooser.random() < 0.7:
            assert ours.hit(limit, key) == library.hit(limit, key)
        else:
            assert ours.test(limit, key) == library.test(limit, key)
            ours_stats = ours.get_window_stats(limit, key)
            theirs = library.get_window_stats(limit, key)
            assert ours_stats.remaining == theirs.remaining
            # With nothing in the window the library's reset time is that of a stale entry.
            if ours_stats.remaining < limit.amount:
                assert ours_stats.reset_time == pytest.approx(theirs.reset_time)
