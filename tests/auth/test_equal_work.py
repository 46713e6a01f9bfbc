"""Whether an address has an account must not change the work a request does.

Timing differences come from work done differently: these tests count the work itself (the SQL
statements sent, the Argon2 computations, the rate-limit counters touched, the rows written) for
an address with an account and for one without, and require them equal. No clock is read: the
paired timings are in `bench/enumeration.py`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, select, update

from services.auth.models import CodeRequest, User
from tests.auth.flows import STRONG_PASSWORD

UNVERIFIED = "unverified@example.org"
VERIFIED = "verified@example.org"

pytestmark = pytest.mark.usefixtures("backend")


@dataclass
class Work:
    statements: list[str] = field(default_factory=list)
    hashes: int = 0
    counters: list[tuple[str, str, str]] = field(default_factory=list)


class Recorder:
    """Records the work of one request at a time on a running auth app."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.current: Work | None = None
        self.address = ""
        # Only the measured request's own statements: the app's background loops (mail
        # sender, retention purges) run in other tasks.
        self.task: asyncio.Task[Any] | None = None
        engine = app.state.database.engine.sync_engine
        event.listen(engine, "before_cursor_execute", self._statement)
        hasher, limiter = app.state.hasher, app.state.rate_limiter
        run, call = hasher._run, limiter._call

        async def counted_run(function: Callable[..., Any], *args: str) -> Any:
            if self.current is not None:
                self.current.hashes += 1
            return await run(function, *args)

        async def recorded_call(method: str, limit: Any, *key: str) -> Any:
            if self.current is not None:
                shown = "/".join(part.replace(self.address, "<address>") for part in key)
                self.current.counters.append((method, str(limit), shown))
            return await call(method, limit, *key)

        hasher._run = counted_run
        limiter._call = recorded_call

    def _statement(self, *args: Any) -> None:
        if self.current is not None and asyncio.current_task() is self.task:
            # The statement's text: the same statement is the same work, whatever its values.
            self.current.statements.append(re.sub(r"\s+", " ", args[2]).strip())

    async def measure(self, address: str, request: Awaitable[httpx.Response]) -> Work:
        self.current, self.address = Work(), address
        self.task = asyncio.current_task()
        try:
            response = await request
        finally:
            work, self.current = self.current, None
        assert response.status_code < 500, response.text
        return work


@pytest.fixture
async def quiet(start_app: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An auth app whose mail sender is off, so only the request's own work is seen."""
    async with start_app(AUTH_MAIL_SENDER=False) as client:
        app: FastAPI = client._transport.app  # type: ignore[attr-defined]
        for email in (UNVERIFIED, VERIFIED):
            response = await client.post(
                "/v1/auth/register", json={"email": email, "password": STRONG_PASSWORD}
            )
            assert response.status_code == 202
        async with app.state.database.engine.begin() as connection:
            await connection.execute(
                update(User)
                .where(User.email_canonical == VERIFIED)
                .values(email_verified_at=datetime.now(UTC))
            )
        for email in (UNVERIFIED, VERIFIED):
            await client.post("/v1/auth/password-reset", json={"email": email})
        # Both addresses now hold live codes of both kinds, as the sender leaves them.
        await app.state.code_requests.answer_due(app.state.database)
        yield app, client


Call = Callable[[httpx.AsyncClient, str, int], Awaitable[httpx.Response]]


async def _register(client: httpx.AsyncClient, email: str, n: int) -> httpx.Response:
    return await client.post(
        "/v1/auth/register",
        json={"email": email, "password": STRONG_PASSWORD},
        headers={"X-Real-IP": "198.51.100.9"},
    )


def _post_email(path: str) -> Call:
    async def call(client: httpx.AsyncClient, email: str, n: int) -> httpx.Response:
        return await client.post(path, json={"email": email}, headers={"X-Real-IP": "192.0.2.9"})

    return call


def _guess(path: str) -> Call:
    async def call(client: httpx.AsyncClient, email: str, n: int) -> httpx.Response:
        return await client.post(
            path,
            json={"email": email, "code": "000000"},
            headers={"X-Real-IP": "203.0.113.9"},
        )

    return call


CALLS: dict[str, Call] = {
    "register": _register,
    "resend": _post_email("/v1/auth/verify/resend"),
    "password_reset": _post_email("/v1/auth/password-reset"),
    "verify": _guess("/v1/auth/verify"),
    "password_reset_verify": _guess("/v1/auth/password-reset/verify"),
}


async def _code_requests(app: FastAPI) -> int:
    async with app.state.database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(CodeRequest)) or 0)


@pytest.mark.parametrize("call", sorted(CALLS))
async def test_the_same_work_for_every_address(
    quiet: tuple[FastAPI, httpx.AsyncClient], call: str
) -> None:
    app, client = quiet
    recorder = Recorder(app)
    addresses = [UNVERIFIED, VERIFIED, "nobody-here@example.org"]
    done: dict[str, Work] = {}
    for n, address in enumerate(addresses, start=1):
        before = await _code_requests(app)
        done[address] = await recorder.measure(address, CALLS[call](client, address, n))
        written = await _code_requests(app) - before
        assert written == (0 if "verify" in call else 1), (address, written)
    unknown = done[addresses[-1]]
    assert unknown.statements, "nothing was recorded"
    for address in addresses[:-1]:
        assert done[address].statements == unknown.statements, address
        assert done[address].hashes == unknown.hashes, address
        assert done[address].counters == unknown.counters, address


async def test_the_recorder_sees_a_difference_in_work(
    quiet: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    """The comparison above has teeth: a login (which only hashes for a real account's stored
    hash, and for others a stand-in) shows the same hashes but the recorder still tells
    statements apart when a request does a different query."""
    app, client = quiet
    recorder = Recorder(app)
    me = await recorder.measure(
        UNVERIFIED,
        client.post("/v1/auth/login", json={"email": UNVERIFIED, "password": STRONG_PASSWORD}),
    )
    wrong = await recorder.measure(
        UNVERIFIED,
        client.post("/v1/auth/login", json={"email": UNVERIFIED, "password": "Wrong-Pass-123!"}),
    )
    # A successful login remembers the address (an upsert); a failed one does not.
    assert me.statements != wrong.statements
    assert me.hashes >= 1
    assert wrong.hashes >= 1
