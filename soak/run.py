"""Soak: a bounded mixed load against `natomedia stack` on PostgreSQL + Redis, then the books.

    .venv/bin/python soak/run.py --duration 60 [--workers 8] [--results soak/results.md]

Each virtual user walks the product: register, read the code from the SMTP server, verify, log in,
refresh, browse videos, ask for a download URL, search the news. Afterwards the run checks that
every registration's mail was delivered, no request got a 5xx, the services hold no more database
connections than their pools allow and none is left inside a transaction once the load has
stopped (pools keep idle connections by design; a leaked one stays checked out), and their memory
stayed flat.
Exit status 0 only when all of that holds. Needs nginx, PostgreSQL and Redis (URLs below).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.common.database import POOL_SIZE  # noqa: E402
from services.gateway.mail_sink import MailSink  # noqa: E402
from services.gateway.stack import Stack, free_port  # noqa: E402

PASSWORD = "Soak-Test-Password-42!"
SEARCH_WORDS = ["NATO", "summit", "exercise", "ministers", "council", "defence", "video", "zzz"]
# The soak speaks from one address through nginx: per-address limits would measure themselves.
GENEROUS_LIMITS = {
    "AUTH_REGISTER_RATE_LIMIT": "100000/minute",
    "AUTH_VERIFY_RATE_LIMIT": "100000/minute",
    "AUTH_RESEND_RATE_LIMIT": "100000/minute",
    "AUTH_LOGIN_RATE_LIMIT": "100000/minute",
    "AUTH_PASSWORD_RESET_RATE_LIMIT": "100000/minute",
    "MEDIA_DOWNLOAD_URL_RATE_LIMIT": "100000/minute",
}


@dataclass
class Books:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)

    def record(self, name: str, response: httpx.Response, seconds: float) -> None:
        self.latencies.setdefault(name, []).append(seconds)
        self.statuses[(name, response.status_code)] += 1
        if response.status_code >= 500:
            self.failures.append(f"{name}: {response.status_code} {response.text[:200]}")

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(count for (_, status), count in self.statuses.items() if status >= 500)


def p99(samples: list[float]) -> float:
    if len(samples) < 2:
        return samples[0] if samples else 0.0
    return statistics.quantiles(samples, n=100)[98]


async def timed(
    books: Books, name: str, client: httpx.AsyncClient, method: str, url: str, **kwargs: object
) -> httpx.Response:
    started = time.perf_counter()
    response = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
    books.record(name, response, time.perf_counter() - started)
    return response


async def journey(client: httpx.AsyncClient, sink: MailSink, books: Books, n: int) -> None:
    email = f"soak-{n}-{uuid.uuid4().hex[:8]}@example.org"
    registered = await timed(
        books,
        "register",
        client,
        "POST",
        "/v1/auth/register",
        json={"email": email, "password": PASSWORD},
    )
    if registered.status_code != 202:
        return
    books.registered.append(email)
    (mail,) = await sink.wait_for(email, 1, timeout=30)
    verified = await timed(
        books, "verify", client, "POST", "/v1/auth/verify", json={"email": email, "code": mail.code}
    )
    login = await timed(
        books,
        "login",
        client,
        "POST",
        "/v1/auth/login",
        json={"email": email, "password": PASSWORD},
    )
    pair = login.json() if login.status_code == 200 else verified.json()
    refreshed = await timed(
        books,
        "refresh",
        client,
        "POST",
        "/v1/auth/token/refresh",
        json={"refresh_token": pair.get("refresh_token", "")},
    )
    token = (refreshed.json() if refreshed.status_code == 200 else pair).get("access_token", "")
    for _ in range(3):
        videos = await timed(books, "browse", client, "GET", "/v1/media/videos?limit=20")
        items = videos.json().get("items", []) if videos.status_code == 200 else []
        if not items:
            continue
        video_id = random.choice(items)["id"]
        detail = await timed(books, "video", client, "GET", f"/v1/media/videos/{video_id}")
        renditions = detail.json().get("renditions", []) if detail.status_code == 200 else []
        if renditions:
            await timed(
                books,
                "download-url",
                client,
                "POST",
                f"/v1/media/videos/{video_id}/renditions/{renditions[0]['id']}/download-url",
                headers={"Authorization": f"Bearer {token}"},
            )
        await timed(
            books,
            "news-search",
            client,
            "GET",
            "/v1/news/articles",
            params={"q": random.choice(SEARCH_WORDS)},
        )


async def worker(
    client: httpx.AsyncClient, sink: MailSink, books: Books, until: float, ids: list[int]
) -> None:
    while time.monotonic() < until:
        ids[0] += 1
        try:
            await journey(client, sink, books, ids[0])
        except (httpx.HTTPError, TimeoutError, ValueError) as exc:
            books.failures.append(f"journey: {type(exc).__name__}: {exc}"[:300])


def rss_kib(pid: int | None) -> int:
    if pid is None:
        return 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


async def connections(admin_url: str, databases: list[str], *, busy: bool = False) -> int:
    """Connections to the services' databases; `busy`: only those not idle (in a statement or
    inside a transaction)."""
    connection = await asyncpg.connect(admin_url)
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = ANY($1::text[])"
    try:
        value = await connection.fetchval(
            query + (" AND state <> 'idle'" if busy else ""), databases
        )
    finally:
        await connection.close()
    return int(value)


async def held_connections(admin_url: str, databases: list[str]) -> int:
    """Connections still inside a transaction once the load has stopped: what a connection never
    returned to its pool looks like. A background task's short transaction (the outbox sender)
    may be caught once, so this is the least of a few readings over about two seconds."""
    readings = []
    for _ in range(5):
        readings.append(await connections(admin_url, databases, busy=True))
        if readings[-1] == 0:
            break
        await asyncio.sleep(0.4)
    return min(readings)


async def queued_mail(url: str) -> tuple[int, int]:
    connection = await asyncpg.connect(url)
    try:
        sent = await connection.fetchval(
            "SELECT count(*) FROM outbox_messages WHERE sent_at IS NOT NULL"
        )
        pending = await connection.fetchval(
            "SELECT count(*) FROM outbox_messages WHERE sent_at IS NULL"
        )
    finally:
        await connection.close()
    return int(sent), int(pending)


async def soak(args: argparse.Namespace) -> int:
    run_id = uuid.uuid4().hex[:8]
    admin_url = args.postgres_url
    base = admin_url.rsplit("/", 1)[0]
    databases = {name: f"natomedia_soak_{name}_{run_id}" for name in ("auth", "media", "news")}
    admin = await asyncpg.connect(admin_url)
    for database in databases.values():
        await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    data_dir = Path(tempfile.mkdtemp(prefix="natomedia-soak-"))
    sink = MailSink("127.0.0.1", free_port())
    sink.start()
    env = dict(os.environ)
    env.update(GENEROUS_LIMITS)
    env.update(
        {
            "NATOMEDIA_DATA_DIR": str(data_dir),
            "REDIS_URL": args.redis_url,
            "SMTP_HOST": sink.host,
            "SMTP_PORT": str(sink.port),
            "NATOMEDIA_LOG_LEVEL": "WARNING",
        }
    )
    for name, database in databases.items():
        env[f"{name.upper()}_DATABASE_URL"] = (
            f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{database}"
        )
    books = Books()
    rss: dict[str, list[int]] = {}
    conn_samples: list[int] = []
    exit_code = 1
    try:
        with Stack(port=0, env=env, seed=True, run_dir=data_dir / "stack") as stack:
            pids = {managed.name: managed.pid for managed in stack.processes()}
            async with httpx.AsyncClient(base_url=stack.url, timeout=30, trust_env=False) as client:
                # Warm-up: one journey per worker, so pools and caches are filled before counting.
                warm = Books()
                await asyncio.gather(
                    *(journey(client, sink, warm, -n - 1) for n in range(args.workers))
                )
                connections_before = await connections(admin_url, list(databases.values()))
                until = time.monotonic() + args.duration
                ids = [0]

                async def sample() -> None:
                    while time.monotonic() < until:
                        for name, pid in pids.items():
                            rss.setdefault(name, []).append(rss_kib(pid))
                        conn_samples.append(await connections(admin_url, list(databases.values())))
                        await asyncio.sleep(max(0.5, args.duration / 30))

                await asyncio.gather(
                    sample(),
                    *(worker(client, sink, books, until, ids) for _ in range(args.workers)),
                )
                # The books: every registration's mail delivered.
                missing = []
                for email in books.registered:
                    try:
                        await sink.wait_for(email, 1, timeout=15)
                    except TimeoutError:
                        missing.append(email)
                await asyncio.sleep(1)
                connections_after = await connections(admin_url, list(databases.values()))
                held_after = await held_connections(admin_url, list(databases.values()))
                sent, pending = await queued_mail(f"{base}/{databases['auth']}")
            exited = [managed.name for managed in stack.exited()]
        exit_code = report(
            args,
            books,
            rss,
            conn_samples,
            connections_before,
            connections_after,
            held_after,
            missing,
            sent,
            pending,
            exited,
            len(pids),
        )
    finally:
        sink.stop()
        admin = await asyncpg.connect(admin_url)
        for database in databases.values():
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
    return exit_code


# The pool never opens more than its size (no overflow).
POOL_LIMIT_PER_PROCESS = int(os.environ.get("NATOMEDIA_DATABASE_POOL_SIZE", POOL_SIZE))


def report(
    args: argparse.Namespace,
    books: Books,
    rss: dict[str, list[int]],
    conn_samples: list[int],
    before: int,
    after: int,
    held: int,
    missing: list[str],
    sent: int,
    pending: int,
    exited: list[str],
    processes: int,
) -> int:
    all_latencies = [value for values in books.latencies.values() for value in values]
    rows = [
        f"| {name} | {len(values)} | "
        f"{sum(c for (n, s), c in books.statuses.items() if n == name and s >= 400)} | "
        f"{statistics.median(values) * 1e3:.1f} | {p99(values) * 1e3:.1f} |"
        for name, values in sorted(books.latencies.items())
    ]
    memory = []
    flat = True
    for name, samples in sorted(rss.items()):
        third = max(1, len(samples) // 3)
        middle = statistics.mean(samples[third : 2 * third] or samples)
        last = statistics.mean(samples[-third:])
        growth = (last - middle) / middle if middle else 0.0
        flat = flat and growth < args.max_memory_growth
        memory.append(
            f"| {name} | {samples[0] // 1024} | {max(samples) // 1024} | "
            f"{samples[-1] // 1024} | {growth * 100:+.1f}% |"
        )
    peak = max(conn_samples, default=after)
    leaks = held > 0 or max(peak, after) > processes * POOL_LIMIT_PER_PROCESS
    checks = {
        "no 5xx": books.server_errors == 0,
        "every registration's mail delivered": not missing and pending == 0,
        "no leaked DB connections": not leaks,
        f"memory flat (<{args.max_memory_growth:.0%} growth, middle to last third)": flat,
        "no service process died": not exited,
        "no journey failed": not books.failures,
    }
    text = "\n".join(
        [
            "# Soak results",
            "",
            f"`soak/run.py --duration {args.duration:g} --workers {args.workers}` against "
            "`natomedia stack` (nginx, one process per service) on PostgreSQL + Redis, "
            f"mail to a local SMTP server. {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
            "",
            f"Requests {books.requests}, 5xx {books.server_errors}, "
            f"throughput {books.requests / args.duration:.0f} req/s, "
            f"p99 {p99(all_latencies) * 1e3:.1f} ms; registrations {len(books.registered)}, "
            f"mail delivered {sent}, mail still queued {pending}, missing {len(missing)}.",
            "",
            "| call | requests | 4xx/5xx | median ms | p99 ms |",
            "| --- | ---: | ---: | ---: | ---: |",
            *rows,
            "",
            f"Database connections: before {before}, peak {peak}, after {after} "
            f"(limit {processes * POOL_LIMIT_PER_PROCESS}), still in a transaction after the "
            f"load: {held}.",
            "",
            "| process | RSS start MiB | RSS max MiB | RSS end MiB | growth |",
            "| --- | ---: | ---: | ---: | ---: |",
            *memory,
            "",
            *(f"- [{'x' if ok else ' '}] {name}" for name, ok in checks.items()),
            *(f"- failure: {failure}" for failure in books.failures[:10]),
            "",
        ]
    )
    print(text)  # noqa: T201
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(text)
    return 0 if all(checks.values()) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--workers", type=int, default=8, help="concurrent virtual users")
    parser.add_argument("--results", default=str(ROOT / "soak" / "results.md"))
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "NATOMEDIA_SOAK_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("NATOMEDIA_SOAK_REDIS_URL", "redis://127.0.0.1:6379/13"),
    )
    parser.add_argument("--max-memory-growth", type=float, default=0.25)
    return asyncio.run(soak(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
