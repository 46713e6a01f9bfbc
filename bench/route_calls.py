"""Python function calls per request for each benched route: a cost that load cannot blur.

    .venv/bin/python bench/route_calls.py [--workdir bench/work/run]

Uses the data a bench run left in WORKDIR (its databases, its account), calls each route in
process through httpx, counts calls with cProfile and subtracts what the test client and a bare
ASGI app cost. Counts are deterministic, so a fix shows up the same on a busy machine as on a
quiet one; `--by-package ROUTE` says where a route's calls go.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import json
import os
import pstats
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
EMAIL = "bench.reader@example.org"
PASSWORD = "Bench-Reader-2024!x"


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def profile(
    app: Any, path: str, headers: Mapping[str, str] | None = None, n: int = 50
) -> pstats.Stats:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for _ in range(10):
            response = await client.get(path, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {response.status_code} {response.text[:200]}")
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(n):
            await client.get(path, headers=headers)
        profiler.disable()
    stats = pstats.Stats(profiler)
    stats.total_calls = round(stats.total_calls / n)  # type: ignore[attr-defined]
    return stats


def by_package(stats: pstats.Stats, n: int = 50) -> list[tuple[str, float]]:
    counter: collections.Counter[str] = collections.Counter()
    for (file, _line, _name), (_, calls, *_rest) in stats.stats.items():  # type: ignore[attr-defined]
        if "site-packages/" in file:
            key = file.split("site-packages/")[1].split("/")[0]
        elif "/services/" in file:
            key = "services/" + file.split("/services/")[1]
        elif file == "~":
            key = "builtins (C)"
        else:
            key = "stdlib " + file.rsplit("/", 1)[-1]
        counter[key] += calls / n
    return counter.most_common(15)


async def main(workdir: Path, detail: str | None) -> None:
    os.environ.update(
        {
            "NATOMEDIA_DATA_DIR": str(workdir / "data"),
            "AUTH_MAIL_SENDER": "false",
            "AUTH_LOGIN_RATE_LIMIT": "1000/minute",
        }
    )
    from services.gateway.registry import service

    manifest = json.loads((workdir / "bare-manifest.json").read_text())
    video = next(path for path in manifest if "/videos/" in path)
    apps = {name: service(name).module("app").create_app() for name in ("news", "media", "auth")}
    for app in apps.values():
        await app.router.lifespan_context(app).__aenter__()
    transport = httpx.ASGITransport(app=apps["auth"])
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        login = await client.post("/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
        login.raise_for_status()
    bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
    routes: dict[str, tuple[Any, str, Mapping[str, str] | None]] = {
        "healthz": (apps["news"], "/healthz", None),
        "news-list": (apps["news"], "/v1/news/articles?limit=20", None),
        "video-detail": (apps["media"], video, None),
        "me": (apps["auth"], "/v1/auth/me", bearer),
    }
    baseline = (await profile(bare, "/")).total_calls  # type: ignore[attr-defined]
    print(f"(test client and bare ASGI: {baseline} calls, subtracted)")
    for name, (app, path, headers) in routes.items():
        stats = await profile(app, path, headers)
        calls = stats.total_calls - baseline  # type: ignore[attr-defined]
        print(f"{name:14s} {calls:7d} Python calls/request   {path}")
        if detail == name:
            for package, count in by_package(stats):
                print(f"    {count:7.0f}  {package}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=BENCH_DIR / "work" / "run")
    parser.add_argument("--by-package", choices=("healthz", "news-list", "video-detail", "me"))
    args = parser.parse_args()
    asyncio.run(main(args.workdir.resolve(), args.by_package))
