"""A bench process can be moved between the cores of a `Pinning`, children with it (nginx's
workers), and back: the gateway rows move the gateway beside the load generator."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def processes(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))
    import processes

    return processes


def test_a_process_and_its_children_move_to_the_named_core_and_back(
    processes: ModuleType, tmp_path: Path
) -> None:
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("one usable core: nothing to move between")
    pinning = processes.Pinning(("taskset", "-c", str(cores[0])), ("taskset", "-c", str(cores[1])))
    # A parent with one child, like nginx's master and its worker.
    parent = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "time.sleep(60)"
    )
    popen = subprocess.Popen([sys.executable, "-c", parent], start_new_session=True)
    process = processes.Process("parent", popen, tmp_path / "log")
    try:
        children_file = Path(f"/proc/{popen.pid}/task/{popen.pid}/children")
        children: list[int] = []
        for _ in range(200):
            children = [int(pid) for pid in children_file.read_text().split()]
            if children:
                break
            time.sleep(0.05)
        assert children, "the child never started"
        family = (popen.pid, *children)

        process.move_to(pinning.client)
        assert all(os.sched_getaffinity(pid) == {cores[1]} for pid in family)
        process.move_to(pinning.server)
        assert all(os.sched_getaffinity(pid) == {cores[0]} for pid in family)
        process.move_to(())  # no pinning: left where it is
        assert all(os.sched_getaffinity(pid) == {cores[0]} for pid in family)
    finally:
        process.stop(timeout=5)
