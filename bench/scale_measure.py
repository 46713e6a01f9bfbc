"""What `make bench-scale` times: an import as a child process, sequential reads, wrk runs."""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadgen import run_wrk, wrk_command


@dataclass(frozen=True)
class ImportRun:
    seconds: float
    peak_rss_mb: float
    exit_code: int
    output: str  # stdout and stderr, the progress bar's last frames included


def timed_import(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path, log: Path, timeout: float
) -> ImportRun:
    """Wall time and the child's own peak RSS (`wait4` reports it for that child alone)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as handle:
        started = time.monotonic()
        child = subprocess.Popen(
            list(argv), stdout=handle, stderr=subprocess.STDOUT, env=dict(env), cwd=cwd
        )
        deadline = started + timeout
        timed_out = False
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                timed_out = True
                child.kill()
                _, status, usage = os.wait4(child.pid, 0)
                break
            time.sleep(0.05)
        seconds = time.monotonic() - started
    # Popen did not reap the child itself: tell it, so it never waits for it again.
    child.returncode = os.waitstatus_to_exitcode(status)
    output = log.read_text(errors="replace")
    if timed_out:
        output += f"\n[scale] killed after {timeout:.0f} s\n"
    # ru_maxrss is in KiB on Linux.
    return ImportRun(seconds, usage.ru_maxrss / 1024, -9 if timed_out else child.returncode, output)


@dataclass(frozen=True)
class Latency:
    median_ms: float
    p95_ms: float
    samples: int


class Reader:
    """One keep-alive connection to a service, as a client paging through results would use."""

    def __init__(self, port: int, headers: Mapping[str, str] | None = None) -> None:
        self.port = port
        self.headers = dict(headers or {})
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            self.connection.request("GET", path, headers=self.headers)
            response = self.connection.getresponse()
        except (http.client.HTTPException, OSError):
            # A server may close an idle keep-alive connection: one retry on a new one.
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.connection.request("GET", path, headers=self.headers)
            response = self.connection.getresponse()
        return response.status, response.read()

    def json(self, path: str) -> dict[str, object]:
        status, body = self.get(path)
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}: {body[:300]!r}")
        document = json.loads(body)
        assert isinstance(document, dict)
        return document

    def close(self) -> None:
        self.connection.close()


def with_cursor(path: str, cursor: str) -> str:
    return f"{path}&cursor={urllib.parse.quote(cursor)}"


def page_path(reader: Reader, path: str, page: int) -> tuple[str | None, dict[str, object]]:
    """The path of page `page` (1-based), following each page's `next_cursor`; None when the
    results end before it. Also the first page's document."""
    first = reader.json(path)
    document, current = first, path
    for _ in range(page - 1):
        cursor = document.get("next_cursor")
        if not isinstance(cursor, str) or not document.get("items"):
            return None, first
        current = with_cursor(path, cursor)
        document = reader.json(current)
    if not document.get("items"):
        return None, first
    return current, first


def sequential_latency(
    reader: Reader, path: str, *, samples: int, time_limit: float, warmup: int = 2
) -> Latency:
    """Median and p95 of `samples` requests one after another (fewer if `time_limit` runs out,
    never fewer than five)."""
    for _ in range(warmup):
        reader.get(path)
    timings: list[float] = []
    deadline = time.monotonic() + time_limit
    while len(timings) < samples and (len(timings) < 5 or time.monotonic() < deadline):
        started = time.perf_counter()
        status, body = reader.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}: {body[:300]!r}")
    timings.sort()
    p95 = timings[min(len(timings) - 1, max(0, round(0.95 * len(timings)) - 1))]
    return Latency(statistics.median(timings), p95, len(timings))


def requests_per_second(
    url: str,
    *,
    headers: Mapping[str, str] | None,
    duration: float,
    connections: int,
    pin: Sequence[str],
) -> float:
    argv = wrk_command(url, duration=duration, threads=2, connections=connections, headers=headers)
    measurement = run_wrk(argv, pin, duration=duration)
    if measurement.errors or not measurement.requests:
        raise RuntimeError(f"wrk {url}: {measurement.detail or 'no answer'}")
    return measurement.requests_per_s
