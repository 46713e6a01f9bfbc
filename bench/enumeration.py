"""Paired timings of the calls that must not tell whether an address has an account.

For each call, requests for an address with an account and for one without are sent in turns
(so drift in the machine's speed falls on both), each pair on a quiet process: the mail sender's
work for the previous request (a code and its mail, or an unsent code) is let finish first, as it
runs after the answer has left. Reports each side's median and the gap between them; the target
is a gap under 2 ms. The auth app runs in this process (the same code `natomedia dev` serves),
with the production Argon2id cost, on PostgreSQL (default) or SQLite.

    .venv/bin/python bench/enumeration.py [--database sqlite] [--pairs 60]

Writes `bench/results-enumeration.md`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy import func, select

from services.auth.app import create_app
from services.auth.commands import migrate_database
from services.auth.config import AuthSettings
from services.auth.models import CodeRequest, OutboxMessage
from services.common.database import Database
from services.gateway.mail_sink import MailSink

POSTGRES_URL = os.environ.get(
    "NATOMEDIA_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PASSWORD = "Correct-Horse-42-Battery"
TARGET_MS = 2.0
RESULTS = Path(__file__).parent / "results-enumeration.md"

Call = Callable[[httpx.AsyncClient, str, int], Awaitable[httpx.Response]]


def _from(n: int) -> dict[str, str]:
    # A new client address per request: the per-address limits are not what is measured.
    return {"X-Real-IP": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"}


async def _register(client: httpx.AsyncClient, email: str, n: int) -> httpx.Response:
    return await client.post(
        "/v1/auth/register", json={"email": email, "password": PASSWORD}, headers=_from(n)
    )


def _email_call(path: str) -> Call:
    async def call(client: httpx.AsyncClient, email: str, n: int) -> httpx.Response:
        return await client.post(path, json={"email": email}, headers=_from(n))

    return call


def _guess(path: str) -> Call:
    async def call(client: httpx.AsyncClient, email: str, n: int) -> httpx.Response:
        return await client.post(path, json={"email": email, "code": "000000"}, headers=_from(n))

    return call


async def _login(client: httpx.AsyncClient, email: str, n: int) -> httpx.Response:
    return await client.post(
        "/v1/auth/login", json={"email": email, "password": "Wrong-Password-42!"}, headers=_from(n)
    )


# Guesses are timed right after a new code was asked for the same address (not timed): both
# sides then hold a live code with no tries spent, as after an attacker's own request.
PREPARE: dict[str, Call] = {
    "POST /v1/auth/verify": _email_call("/v1/auth/verify/resend"),
    "POST /v1/auth/password-reset/verify": _email_call("/v1/auth/password-reset"),
}

CALLS: dict[str, Call] = {
    "POST /v1/auth/register": _register,
    "POST /v1/auth/verify/resend": _email_call("/v1/auth/verify/resend"),
    "POST /v1/auth/password-reset": _email_call("/v1/auth/password-reset"),
    "POST /v1/auth/verify": _guess("/v1/auth/verify"),
    "POST /v1/auth/password-reset/verify": _guess("/v1/auth/password-reset/verify"),
    "POST /v1/auth/login (wrong password)": _login,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _sender_idle(database: Database) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        async with database.sessionmaker() as session:
            waiting = await session.scalar(select(func.count()).select_from(CodeRequest))
            pending = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.sent_at.is_(None), OutboxMessage.dead_at.is_(None))
            )
        if not waiting and not pending:
            return
        await asyncio.sleep(0.005)
    raise TimeoutError("the mail sender did not settle")


async def _database_url(engine: str, workdir: Path) -> tuple[str, Callable[[], Awaitable[None]]]:
    if engine == "sqlite":

        async def nothing() -> None:
            return None

        return f"sqlite+aiosqlite:///{workdir / 'auth.sqlite3'}", nothing
    name = f"natomedia_bench_enum_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(POSTGRES_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()

    async def drop() -> None:
        admin = await asyncpg.connect(POSTGRES_URL)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}", drop


async def measure(engine: str, pairs: int) -> list[tuple[str, float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url, drop = await _database_url(engine, workdir)
        sink = MailSink("127.0.0.1", _free_port(), workdir / "mail")
        sink.start()
        try:
            database = Database(url)
            await migrate_database(database)
            await database.dispose()
            settings = AuthSettings(
                NATOMEDIA_ENV="test",
                NATOMEDIA_DATA_DIR=workdir,
                REDIS_URL=None,
                database_url=url,
                SMTP_HOST="127.0.0.1",
                SMTP_PORT=sink.port,
                SMTP_TLS="none",
                NATOMEDIA_TRUSTED_PROXIES="127.0.0.1",
                mail_poll_seconds=0.05,
                mail_per_address_limits=["100000/minute"],
                register_rate_limit="100000/minute",
                verify_rate_limit="100000/minute",
                resend_rate_limit="100000/minute",
                password_reset_rate_limit="100000/minute",
                login_rate_limit="100000/minute",
            )
            app = create_app(settings)
            rows = []
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://bench"
                ) as client:
                    known = "known@example.org"
                    assert (await _register(client, known, 0)).status_code == 202
                    await sink.wait_for(known)
                    n = 1
                    for name, call in CALLS.items():
                        samples: dict[str, list[float]] = {"known": [], "unknown": []}
                        for index in range(pairs + 5):
                            for side, email in (
                                ("known", known),
                                (
                                    "unknown",
                                    "absent@example.org"
                                    if name in PREPARE
                                    else f"absent-{n}@example.org",
                                ),
                            ):
                                if name in PREPARE:
                                    await PREPARE[name](client, email, n)
                                    n += 1
                                await _sender_idle(app.state.database)
                                started = time.perf_counter()
                                response = await call(client, email, n)
                                elapsed = time.perf_counter() - started
                                n += 1
                                assert response.status_code < 500, response.text
                                if index >= 5:  # the first pairs warm up
                                    samples[side].append(elapsed)
                        rows.append(
                            (
                                name,
                                statistics.median(samples["known"]) * 1e3,
                                statistics.median(samples["unknown"]) * 1e3,
                            )
                        )
        finally:
            sink.stop()
            await drop()
    return rows


def report(engine: str, pairs: int, rows: list[tuple[str, float, float]]) -> str:
    lines = [
        f"### {engine} ({pairs} pairs a call; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        "| call | median, account exists (ms) | median, no account (ms) | gap (ms) | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, known, unknown in rows:
        gap = known - unknown
        verdict = "met" if abs(gap) < TARGET_MS else "NOT met"
        lines.append(
            f"| {name} | {known:.2f} | {unknown:.2f} | {gap:+.2f} | < {TARGET_MS:g} {verdict} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--pairs", type=int, default=60)
    args = parser.parse_args()
    rows = asyncio.run(measure(args.database, args.pairs))
    text = report(args.database, args.pairs, rows)
    print(text)
    header = "# Paired timings: does the answer's time tell whether an address has an account?\n\n"
    previous = RESULTS.read_text() if RESULTS.exists() else header
    if not previous.startswith(header):
        previous = header + previous
    # Keep the other engine's latest table; replace this engine's.
    sections = [part for part in previous[len(header) :].split("### ") if part.strip()]
    kept = [f"### {part}" for part in sections if not part.startswith(args.database)]
    RESULTS.write_text(header + "\n".join([*kept, text]))


if __name__ == "__main__":
    main()
