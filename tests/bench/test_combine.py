"""Login rows are measured in slices, in turns with the peer's: the slices add up to one row."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def loadgen(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))
    import loadgen

    return loadgen


def test_slices_add_up_over_their_time_not_by_averaging_rates(loadgen: ModuleType) -> None:
    Measurement = loadgen.Measurement
    slices = [
        # 250 requests in 5 s, 100 in 2 s, 100 in 5 s: the mean of the rates would say 40/s.
        Measurement(50.0, 600.0, 900.0, 1000.0, 250, 0, ""),
        Measurement(50.0, 650.0, 1200.0, 3000.0, 100, 2, "2 non-2xx"),
        Measurement(20.0, 700.0, 800.0, 0.0, 100, 0, ""),
    ]
    combined = loadgen.combine(slices)
    # 450 requests over 5 + 2 + 5 seconds.
    assert combined.requests == 450
    assert combined.requests_per_s == pytest.approx(450 / 12)
    assert combined.bytes_per_s == pytest.approx((1000 * 5 + 3000 * 2) / 12)
    assert combined.p50_ms == 650.0  # the median slice's
    assert combined.p99_ms == 1200.0  # the worst slice's
    assert combined.errors == 2
    assert combined.detail == "2 non-2xx"


def test_there_is_nothing_to_combine_without_a_slice(loadgen: ModuleType) -> None:
    with pytest.raises(ValueError, match="no slice"):
        loadgen.combine([])
