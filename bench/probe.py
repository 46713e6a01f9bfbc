"""A light, paced client: one keep-alive connection, one GET every interval, latencies as JSON.

It stands in for a user's health check or page view while a storm runs: it must not add load
of its own, so it waits between requests instead of firing back to back as wrk -c1 would.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import time
import urllib.parse


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--interval-ms", type=float, default=10.0)
    args = parser.parse_args()
    target = urllib.parse.urlsplit(args.url)
    path = target.path + (f"?{target.query}" if target.query else "")
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    started = time.perf_counter()
    deadline = started + args.duration
    while time.perf_counter() < deadline:
        sent = time.perf_counter()
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                errors[f"HTTP {response.status}"] = errors.get(f"HTTP {response.status}", 0) + 1
        except (OSError, http.client.HTTPException) as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            connection.close()
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
            continue
        latencies.append((time.perf_counter() - sent) * 1000)
        pause = args.interval_ms / 1000 - (time.perf_counter() - sent)
        if pause > 0:
            time.sleep(pause)
    elapsed = time.perf_counter() - started
    result = {
        "requests": len(latencies),
        "requests_per_s": len(latencies) / elapsed if elapsed else 0.0,
        "p50_ms": statistics.median(latencies) if latencies else None,
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies) if latencies else None,
        "errors": sum(errors.values()),
        "detail": ", ".join(f"{count} {kind}" for kind, count in errors.items()),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
