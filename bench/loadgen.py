"""Load generators: wrk for throughput and latency, a paced prober for the storm's bystander."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
UNITS_BYTES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


@dataclass(frozen=True)
class Measurement:
    requests_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    bytes_per_s: float
    requests: int
    errors: int
    detail: str = ""


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not match:
        raise ValueError(f"unreadable wrk duration {text!r}")
    return float(match.group(1)) * UNITS_MS[match.group(2)]


def _size_bytes(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(B|KB|MB|GB|TB)", text.strip())
    if not match:
        raise ValueError(f"unreadable wrk size {text!r}")
    return float(match.group(1)) * UNITS_BYTES[match.group(2)]


def parse_wrk(output: str) -> Measurement:
    """wrk's `--latency` report: requests/s, the 50%/99% lines, transfer, errors."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    if rps is None:
        raise ValueError(f"wrk printed no Requests/sec:\n{output}")
    percentiles = dict(re.findall(r"^\s+(50|99)(?:\.000)?%\s+(\S+)", output, re.M))
    transfer = re.search(r"^Transfer/sec:\s+(\S+)", output, re.M)
    total = re.search(r"^\s+(\d+) requests in", output, re.M)
    errors = 0
    details = []
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
        details.append(f"{non_2xx.group(1)} non-2xx")
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if sockets:
        counts = dict(zip(("connect", "read", "write", "timeout"), sockets.groups(), strict=True))
        for kind, count in counts.items():
            if int(count):
                errors += int(count)
                details.append(f"{count} {kind} errors")
    requests = int(total.group(1)) if total else 0
    # With no completed request wrk prints 0us percentiles: there is no latency to report.
    latencies = percentiles if requests else {}
    return Measurement(
        requests_per_s=float(rps.group(1)),
        p50_ms=_duration_ms(latencies["50"]) if "50" in latencies else None,
        p99_ms=_duration_ms(latencies["99"]) if "99" in latencies else None,
        bytes_per_s=_size_bytes(transfer.group(1)) if transfer else 0.0,
        requests=requests,
        errors=errors,
        detail=", ".join(details),
    )


def combine(slices: Sequence[Measurement]) -> Measurement:
    """One row measured in several slices: totals over the slices' time.

    wrk reports percentiles, not latencies, so these cannot be merged exactly: p50 is the
    median slice's and p99 the worst slice's.
    """
    if not slices:
        raise ValueError("no slice to combine")
    seconds = [
        part.requests / part.requests_per_s if part.requests_per_s else 0.0 for part in slices
    ]
    elapsed = sum(seconds)
    p50s = sorted(part.p50_ms for part in slices if part.p50_ms is not None)
    p99s = [part.p99_ms for part in slices if part.p99_ms is not None]
    requests = sum(part.requests for part in slices)
    moved = sum(part.bytes_per_s * took for part, took in zip(slices, seconds, strict=True))
    return Measurement(
        requests_per_s=requests / elapsed if elapsed else 0.0,
        p50_ms=p50s[(len(p50s) - 1) // 2] if p50s else None,
        p99_ms=max(p99s) if p99s else None,
        bytes_per_s=moved / elapsed if elapsed else 0.0,
        requests=requests,
        errors=sum(part.errors for part in slices),
        detail="; ".join(part.detail for part in slices if part.detail),
    )


def wrk_script(
    path: Path, *, method: str, body: str = "", headers: Mapping[str, str] | None = None
) -> Path:
    """A wrk Lua script that sends one fixed request (wrk's flags cannot set a body)."""
    lines = [f"wrk.method = {json.dumps(method)}"]
    if body:
        lines.append(f"wrk.body = {json.dumps(body)}")
    for name, value in (headers or {}).items():
        lines.append(f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def wrk_command(
    url: str,
    *,
    duration: float,
    threads: int,
    connections: int,
    headers: Mapping[str, str] | None = None,
    script: Path | None = None,
    timeout_s: int = 30,
) -> list[str]:
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={timeout_s}s",
        "--latency",
    ]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(url)
    return argv


def run_wrk(argv: Sequence[str], pin: Sequence[str], *, duration: float) -> Measurement:
    completed = subprocess.run(
        [*pin, *argv],
        capture_output=True,
        text=True,
        timeout=duration + 120,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}")
    return parse_wrk(completed.stdout)


def prober_command(url: str, *, duration: float, interval_ms: float) -> list[str]:
    return [
        sys.executable,
        str(Path(__file__).with_name("probe.py")),
        url,
        f"--duration={duration}",
        f"--interval-ms={interval_ms}",
    ]


def parse_probe(output: str) -> Measurement:
    data = json.loads(output.strip().splitlines()[-1])
    return Measurement(
        requests_per_s=data["requests_per_s"],
        p50_ms=data["p50_ms"],
        p99_ms=data["p99_ms"],
        bytes_per_s=0.0,
        requests=data["requests"],
        errors=data["errors"],
        detail=data.get("detail", ""),
    )
