"""Development secrets: made once per data dir, the same for every process that starts on it."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

from services.common.settings import ServiceSettings, dev_secret


def test_a_secret_is_made_once_and_kept(tmp_path: Path) -> None:
    settings = ServiceSettings(NATOMEDIA_DATA_DIR=tmp_path)
    first = dev_secret(settings, "signing").get_secret_value()
    assert len(first) >= 32
    assert dev_secret(settings, "signing").get_secret_value() == first
    assert dev_secret(settings, "other").get_secret_value() != first
    path = tmp_path / "secrets" / "signing"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["other", "signing"]


def race(settings: ServiceSettings, callers: int) -> list[str]:
    """`callers` threads released at once, each asking for the same secret."""
    start = threading.Barrier(callers)
    seen: list[str] = []

    def start_a_service() -> None:
        start.wait()
        seen.append(dev_secret(settings, "media-signing-secret").get_secret_value())

    threads = [threading.Thread(target=start_a_service) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return seen


def test_starting_together_every_caller_gets_the_same_secret(tmp_path: Path) -> None:
    """Replicas (or the bench's two media servers) start on one data dir at the same moment."""
    for round_number in range(20):
        seen = race(ServiceSettings(NATOMEDIA_DATA_DIR=tmp_path / str(round_number)), 12)
        assert len(seen) == 12
        assert len(set(seen)) == 1, f"round {round_number}: {len(set(seen))} different secrets"
        assert seen[0]  # never a half-written, empty file
        written = tmp_path / str(round_number) / "secrets"
        assert [p.name for p in written.iterdir()] == ["media-signing-secret"]
