"""`make bench-scale`: the archive at 1,000 to 100,000 articles and videos, on both engines.

For each size and each engine (PostgreSQL, SQLite): generate the import files (seeded, so every
run imports the same archive), import them into fresh migrated databases with `natomedia news
import` and `natomedia media import` (wall time, peak RSS, rows counted), start the services as
`make bench` does (uvicorn, one process each, pinned to one core, load on the other), time
searches (a common word, a rare word, three words; first page and fifth), list pages (first and
deep), check each search's first page against exact ranking, and measure token-bearing reads
against anonymous ones with wrk. Writes bench/results-scale.md and bench/results-scale.png.

    .venv/bin/python bench/scale.py                         # 1,000, 10,000 and 100,000 rows
    .venv/bin/python bench/scale.py --rows 1000,10000       # sizes of your choice
    .venv/bin/python bench/scale.py --rows 1000 --smoke     # the harness in a minute; times nothing
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sqlite3
import statistics
import sys
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import (
    BENCH_DIR,
    PASSWORD,
    POSTGRES_URL,
    PROJECT_PYTHON,
    ROOT,
    UVICORN_FLAGS,
    expect,
    find_tool,
    free_port,
    http,
)
from machine import describe_machine
from processes import Pinning, Process, ProcessGroup, clean_env, wait_http
from scale_data import QUERIES, generate
from scale_measure import (
    Latency,
    Reader,
    page_path,
    requests_per_second,
    sequential_latency,
    timed_import,
)
from scale_ranking import compare, exact_first_page
from scale_report import ENGINES, draw, write_markdown

SEARCH_LIMIT = 20
LIST_LIMIT = 100
DEEP_PAGE = 50
TOKEN_ROUNDS = 3
SERVICE_NAMES = ("auth", "news", "media")


@dataclass
class ScaleOptions:
    sizes: list[int]
    engines: list[str]
    seed: int
    samples: int
    row_seconds: float
    wrk_seconds: float
    connections: int
    import_timeout: float
    workdir: Path
    output: Path
    picture: Path | None
    json_output: Path | None
    smoke: bool
    keep_data: bool


@dataclass
class Engine:
    """One engine at one size: its databases, data dir, services and what was measured."""

    name: str
    rows: int
    work: Path
    storage: Path
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"bench_scale_{os.getpid()}_{self.rows}_"

    def database_url(self, service: str, *, driver: bool = True) -> str:
        if self.name == "sqlite":
            return f"sqlite+aiosqlite:///{(self.work / f'{service}.sqlite3').resolve()}"
        base = POSTGRES_URL.rsplit("/", 1)[0]
        if driver:
            base = base.replace("postgresql://", "postgresql+asyncpg://")
        return f"{base}/{self.prefix}{service}"


def postgres(statements: list[str]) -> None:
    import asyncpg

    async def run() -> None:
        connection = await asyncpg.connect(POSTGRES_URL, timeout=10)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


def count_rows(engine: Engine, service: str, table: str) -> int:
    if engine.name == "sqlite":
        with sqlite3.connect(engine.work / f"{service}.sqlite3") as connection:
            return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    import asyncpg

    async def run() -> int:
        connection = await asyncpg.connect(engine.database_url(service, driver=False), timeout=10)
        try:
            return int(await connection.fetchval(f"SELECT count(*) FROM {table}"))
        finally:
            await connection.close()

    return asyncio.run(run())


class Scale:
    def __init__(self, options: ScaleOptions) -> None:
        self.options = options
        self.pinning = Pinning.detect()
        self.group = ProcessGroup(options.workdir / "logs", self.pinning)
        self.sink: Any = None
        self.ports = {name: free_port() for name in SERVICE_NAMES}
        self.servers: dict[str, Process] = {}
        self.wrk = find_tool("wrk")

    # ------------------------------------------------------------------ environment
    def env(self, engine: Engine, **extra: str) -> dict[str, str]:
        return clean_env(
            {
                "NATOMEDIA_ENV": "development",
                "NATOMEDIA_DATA_DIR": str(engine.work),
                "NATOMEDIA_LOG_LEVEL": "WARNING",
                "MEDIA_STORAGE_DIR": str(engine.storage),
                "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.ports['news']}",
                "JWKS_URL": f"http://127.0.0.1:{self.ports['auth']}/.well-known/jwks.json",
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(self.sink.port),
                "AUTH_LOGIN_RATE_LIMIT": "1000000/minute",
                "AUTH_REGISTER_RATE_LIMIT": "1000/minute",
                **{
                    f"{name.upper()}_DATABASE_URL": engine.database_url(name)
                    for name in SERVICE_NAMES
                },
                **extra,
            }
        )

    def natomedia(self, *args: str) -> list[str]:
        return [str(PROJECT_PYTHON), "-m", "services.gateway.cli", *args]

    # ------------------------------------------------------------------ one engine, one size
    def fresh_databases(self, engine: Engine) -> None:
        if engine.work.exists():
            shutil.rmtree(engine.work)
        engine.work.mkdir(parents=True)
        if engine.name == "postgresql":
            engine.values["unreachable"] = True
            postgres(
                [
                    statement
                    for service in SERVICE_NAMES
                    for statement in (
                        f'DROP DATABASE IF EXISTS "{engine.prefix}{service}" WITH (FORCE)',
                        f'CREATE DATABASE "{engine.prefix}{service}"',
                    )
                ]
            )
            del engine.values["unreachable"]

    def drop_databases(self, engine: Engine) -> None:
        if self.options.keep_data:
            return
        if engine.name == "postgresql" and "unreachable" not in engine.values:
            postgres(
                [
                    f'DROP DATABASE IF EXISTS "{engine.prefix}{service}" WITH (FORCE)'
                    for service in SERVICE_NAMES
                ]
            )
        shutil.rmtree(engine.work, ignore_errors=True)

    def migrate(self, engine: Engine) -> None:
        import subprocess

        completed = subprocess.run(
            self.natomedia("migrate"),
            env=self.env(engine),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{completed.stdout}\n{completed.stderr}")

    def run_import(self, engine: Engine, service: str, file: Path, table: str) -> bool:
        log = self.options.workdir / "logs" / f"import-{service}-{engine.name}-{engine.rows}.log"
        print(f"[scale] {engine.name} {engine.rows:,}: {service} import ...", flush=True)
        run = timed_import(
            self.natomedia(service, "import", str(file)),
            self.env(engine),
            ROOT,
            log,
            self.options.import_timeout,
        )
        prefix = f"import.{service}"
        if run.exit_code != 0:
            last = [line for line in run.output.strip().splitlines() if line.strip()][-1:]
            reason = "timed out" if run.exit_code == -9 else f"exit {run.exit_code}"
            engine.values[f"{prefix}.error"] = f"failed ({reason})"
            engine.values.setdefault("notes", []).append(
                f"{ENGINES[engine.name]}, {engine.rows:,} rows: {service} import {reason}: "
                f"{(last[0] if last else '')[:200]} (log: {log.name})"
            )
            print(f"[scale] {service} import failed: {run.output[-2000:]}", flush=True)
            return False
        found = re.search(r"imported (\d+) (?:article|video)", run.output)
        reported = int(found.group(1)) if found else -1
        stored = count_rows(engine, service, table)
        engine.values[f"{prefix}.seconds"] = run.seconds
        engine.values[f"{prefix}.rate"] = engine.rows / run.seconds
        engine.values[f"{prefix}.rss"] = run.peak_rss_mb
        engine.values[f"{prefix}.counted"] = (reported, stored)
        print(
            f"[scale] {service} import: {run.seconds:.1f} s, {engine.rows / run.seconds:,.0f} "
            f"rows/s, peak RSS {run.peak_rss_mb:.0f} MB, {reported} reported, {stored} stored",
            flush=True,
        )
        return True

    def start_services(self, engine: Engine, names: tuple[str, ...], **extra: str) -> None:
        for name in names:
            if name in self.servers:
                self.group.stop(self.servers.pop(name))
        for name in names:
            argv = [
                str(PROJECT_PYTHON),
                "-m",
                "uvicorn",
                *UVICORN_FLAGS,
                "--port",
                str(self.ports[name]),
                "--factory",
                f"services.{name}.app:create_app",
            ]
            label = f"{name}-{engine.name}-{engine.rows}"
            self.servers[name] = self.group.start(label, argv, self.env(engine, **extra), cwd=ROOT)
        for name in names:
            wait_http(f"http://127.0.0.1:{self.ports[name]}/healthz", self.servers[name])

    def stop_services(self) -> None:
        for name in list(self.servers):
            self.group.stop(self.servers.pop(name))

    def access_token(self, engine: Engine) -> str:
        """A reader's token (no `editor` scope): registered, verified by mail, logged in."""
        auth = f"http://127.0.0.1:{self.ports['auth']}"
        # An address per database: the sink keeps every earlier run's codes.
        email = f"scale.reader.{engine.name}.{engine.rows}@example.org"
        account = {"email": email, "password": PASSWORD}
        status, _, body = http("POST", f"{auth}/v1/auth/register", json_body=account)
        expect(status, body, 202, "register")
        deadline = time.monotonic() + 30
        code = None
        while code is None and time.monotonic() < deadline:
            code = next((mail.code for mail in self.sink.to(email) if mail.code), None)
            time.sleep(0.1)
        if code is None:
            raise RuntimeError("no verification code arrived at the mail sink within 30 s")
        status, _, body = http(
            "POST", f"{auth}/v1/auth/verify", json_body={"email": email, "code": code}
        )
        expect(status, body, 200, "verify")
        status, _, body = http("POST", f"{auth}/v1/auth/login", json_body=account)
        expect(status, body, 200, "login")
        return str(json.loads(body)["access_token"])

    def latency(self, reader: Reader, path: str) -> Latency:
        samples = 3 if self.options.smoke else self.options.samples
        return sequential_latency(
            reader, path, samples=samples, time_limit=self.options.row_seconds
        )

    def searches(self, engine: Engine) -> None:
        for service, port, base in (
            ("news", self.ports["news"], "/v1/news/articles"),
            ("video", self.ports["media"], "/v1/media/videos"),
        ):
            reader = Reader(port)
            try:
                for kind, query in QUERIES.items():
                    path = f"{base}?q={query.replace(' ', '+')}&limit={SEARCH_LIMIT}"
                    print(f"[scale] {service} search {query!r} ...", flush=True)
                    fifth, first = page_path(reader, path, 5)
                    engine.values[f"search.{service}.{kind}.1"] = self.latency(reader, path)
                    engine.values[f"search.{service}.{kind}.5"] = (
                        self.latency(reader, fifth)
                        if fifth is not None
                        else f"n/a (< {4 * SEARCH_LIMIT + 1} matches)"
                    )
                    ids = [str(item["id"]) for item in first["items"]]  # type: ignore[attr-defined]
                    exact = exact_first_page(
                        engine.database_url("news" if service == "news" else "media"),
                        service,
                        query,
                        SEARCH_LIMIT,
                    )
                    engine.values[f"exact.{service}.{kind}"] = (
                        compare(ids, exact),
                        exact.matches if exact is not None else None,
                    )
                list_path = f"{base}?limit={LIST_LIMIT}"
                print(f"[scale] {service} list pages ...", flush=True)
                engine.values[f"list.{service}.first"] = self.latency(reader, list_path)
                last_page = max(1, min(DEEP_PAGE, -(-engine.rows // LIST_LIMIT)))
                deep, _ = page_path(reader, list_path, last_page)
                if deep is not None:
                    engine.values[f"list.{service}.deep"] = self.latency(reader, deep)
                    engine.values[f"list.{service}.deep_page"] = last_page
            finally:
                reader.close()

    def token_reads(self, engine: Engine, token: str) -> None:
        news = f"http://127.0.0.1:{self.ports['news']}/v1/news/articles?limit=20"
        media = f"http://127.0.0.1:{self.ports['media']}/v1/media/videos"
        listing = Reader(self.ports["media"]).json("/v1/media/videos?limit=1")
        video = f"{media}/{listing['items'][0]['id']}"  # type: ignore[index]
        bearer = {"Authorization": f"Bearer {token}"}
        for read, url in (("news-list", news), ("video-detail", video)):
            sides = (("anonymous", None), ("token", bearer))
            for who, headers in sides:
                status, _, body = http("GET", url, headers=headers)
                expect(status, body, 200, f"{who} GET {url}")
            if self.options.smoke or self.wrk is None:
                for who, _ in sides:
                    why = "not timed (smoke)" if self.options.smoke else "n/a (no wrk)"
                    engine.values[f"token.{read}.{who}"] = why
                continue
            # In turns, rounds of each: the ratio is of two reads measured under the same drift
            # (one pair of back-to-back rows moved by up to 25% on this VM).
            rates: dict[str, list[float]] = {who: [] for who, _ in sides}
            try:
                for round_number in range(1, TOKEN_ROUNDS + 1):
                    for who, headers in sides:
                        print(f"[scale] {read}, {who}, round {round_number}: wrk ...", flush=True)
                        time.sleep(0.5)
                        rates[who].append(
                            requests_per_second(
                                url,
                                headers=headers,
                                duration=self.options.wrk_seconds,
                                connections=self.options.connections,
                                pin=self.pinning.client,
                            )
                        )
            except RuntimeError as exc:
                for who, _ in sides:
                    engine.values[f"token.{read}.{who}"] = f"error: {str(exc)[:120]}"
                continue
            for who, _ in sides:
                engine.values[f"token.{read}.{who}"] = statistics.fmean(rates[who])

    def one(self, engine: Engine, articles: Path, videos: Path) -> None:
        print(f"[scale] === {ENGINES[engine.name]}, {engine.rows:,} rows", flush=True)
        try:
            self.fresh_databases(engine)
            self.migrate(engine)
            news_ok = self.run_import(engine, "news", articles, "articles")
            media_ok = self.run_import(engine, "media", videos, "videos")
            if not (news_ok and media_ok):
                return
            # Searches with the public cache off, so each request searches.
            self.start_services(
                engine, SERVICE_NAMES, NEWS_PUBLIC_CACHE_SECONDS="0", MEDIA_PUBLIC_CACHE_SECONDS="0"
            )
            self.searches(engine)
            # Token-bearing reads with the services as configured by default.
            token = self.access_token(engine)
            self.start_services(engine, ("news", "media"))
            self.token_reads(engine, token)
        except Exception as exc:
            traceback.print_exc()
            engine.values.setdefault("notes", []).append(
                f"{ENGINES[engine.name]}, {engine.rows:,} rows: error: {str(exc).splitlines()[0]}"
            )
            engine.values["error"] = True
        finally:
            self.stop_services()
            self.drop_databases(engine)

    def run(self) -> dict[str, dict[int, dict[str, Any]]]:
        from services.gateway.mail_sink import MailSink

        options = self.options
        results: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in options.engines}
        self.sink = MailSink("127.0.0.1", free_port(), options.workdir / "mail")
        self.sink.start()
        try:
            for rows in options.sizes:
                data = options.workdir / f"data-{rows}"
                storage = data / "storage"
                started = time.monotonic()
                generated = generate(data, storage, rows, options.seed)
                print(
                    f"[scale] data for {rows:,} rows: {time.monotonic() - started:.1f} s",
                    flush=True,
                )
                for name in options.engines:
                    engine = Engine(name, rows, options.workdir / f"{name}-{rows}", storage)
                    self.one(engine, generated.articles, generated.videos)
                    results[name][rows] = engine.values
        finally:
            self.stop_services()
            self.group.stop_all()
            self.sink.stop()
        return results


def settings_text(options: ScaleOptions) -> dict[str, str]:
    return {
        "mode": "smoke (times nothing)" if options.smoke else "full",
        "sizes": ", ".join(f"{size:,}" for size in options.sizes),
        "engines": ", ".join(ENGINES[name] for name in options.engines),
        "data": f"bench/scale_data.py, seed {options.seed}: articles of 5 paragraphs; videos "
        "with 2 renditions (files in storage, given by key, size and SHA-256), a shot list and "
        "a transcript",
        "search latency": f"{options.samples} sequential requests a row after 2 unmeasured "
        f"(at least 5, at most {options.row_seconds:g} s), keep-alive, limit={SEARCH_LIMIT}; "
        f"page 5 reached through next_cursor; lists limit={LIST_LIMIT}",
        "token reads": f"wrk -t2 -c{options.connections}, {TOKEN_ROUNDS} rounds of "
        f"{options.wrk_seconds:g} s each side, anonymous and token in turns (the mean of the "
        "rounds), direct to the service; the token is a verified reader's (no editor scope)",
        "imports": "wall time of the `natomedia` child process, its peak RSS from wait4()",
    }


def parse_args(argv: list[str] | None = None) -> ScaleOptions:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--rows", default="1000,10000,100000", help="comma-separated sizes (default %(default)s)"
    )
    parser.add_argument(
        "--database",
        default="postgresql,sqlite",
        help="comma-separated engines: postgresql, sqlite (default both)",
    )
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--samples", type=int, default=60, help="requests per latency row")
    parser.add_argument("--row-seconds", type=float, default=20.0, help="time limit a row")
    parser.add_argument("--wrk-seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--import-timeout", type=float, default=1800.0)
    parser.add_argument("--smoke", action="store_true", help="check the harness; time nothing")
    parser.add_argument("--workdir", type=Path, default=BENCH_DIR / "work" / "scale")
    parser.add_argument("--output", type=Path, help="default bench/results-scale.md")
    parser.add_argument("--json", type=Path, help="also write the values as JSON here")
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="keep the SQLite files and PostgreSQL databases",
    )
    args = parser.parse_args(argv)
    try:
        sizes = sorted({int(value) for value in args.rows.split(",") if value.strip()})
    except ValueError:
        parser.error(f"--rows: comma-separated whole numbers, not {args.rows!r}")
    if not sizes or min(sizes) < 1:
        parser.error("--rows: at least one size, each at least 1")
    engines = [value.strip() for value in args.database.split(",") if value.strip()]
    if not engines or any(engine not in ENGINES for engine in engines):
        parser.error(f"--database: postgresql and/or sqlite, not {args.database!r}")
    output = (args.output or BENCH_DIR / "results-scale.md").resolve()
    return ScaleOptions(
        sizes=sizes,
        engines=engines,
        seed=args.seed,
        samples=args.samples,
        row_seconds=args.row_seconds,
        wrk_seconds=args.wrk_seconds,
        connections=args.connections,
        import_timeout=args.import_timeout,
        workdir=args.workdir.resolve(),
        output=output,
        picture=output.with_suffix(".png"),
        json_output=args.json.resolve() if args.json else None,
        smoke=args.smoke,
        keep_data=args.keep_data,
    )


def as_json(results: Mapping[str, Mapping[int, Mapping[str, Any]]]) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, Latency):
            return {"median_ms": value.median_ms, "p95_ms": value.p95_ms, "samples": value.samples}
        if isinstance(value, tuple):
            return list(value)
        return value

    return {
        engine: {
            str(rows): {key: plain(value) for key, value in values.items()}
            for rows, values in by_size.items()
        }
        for engine, by_size in results.items()
    }


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    options.workdir.mkdir(parents=True, exist_ok=True)
    scale = Scale(options)
    started = time.monotonic()
    results = scale.run()
    picture = options.picture
    try:
        assert picture is not None
        draw(picture, results)
    except Exception:
        traceback.print_exc()
        picture = None
    settings = settings_text(options)
    settings["duration"] = f"{time.monotonic() - started:.0f} s"
    machine = describe_machine(scale.pinning, Path("/nonexistent"))
    machine.pop("peer (own venv)", None)
    text = write_markdown(options.output, results, settings, machine, picture)
    if options.json_output is not None:
        options.json_output.write_text(json.dumps(as_json(results), indent=2))
    print(text)
    failed = any(values.get("error") for by_size in results.values() for values in by_size.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
