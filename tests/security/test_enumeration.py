"""Whether an address has an account must not show: same status, same body, comparable time.

Timing: the known and unknown cases are interleaved (so drift hits both alike), each measured
many times; the gap between their medians must sit within the noise of the measurements
themselves (a multiple of their interquartile ranges), not under a fixed number of milliseconds.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from itertools import count

import httpx
import pytest
from sqlalchemy import func, select

from services.auth.models import CodeRequest, OutboxMessage
from services.gateway.mail_sink import MailSink
from tests.security.apps import from_address, register

KNOWN = "known@example.org"
TRIES = 30
_addresses = count(1)


def _address() -> dict[str, str]:
    # A new client address per request: the per-address limits are not what is measured here.
    n = next(_addresses)
    return from_address(f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}")


Call = Callable[[httpx.AsyncClient, str], Awaitable[httpx.Response]]


async def _register(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await register(client, email, **_address())


async def _login(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post(
        "/v1/auth/login",
        json={"email": email, "password": "Wrong-Password-42!"},
        headers=_address(),
    )


async def _reset(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/v1/auth/password-reset", json={"email": email}, headers=_address())


async def _resend(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/v1/auth/verify/resend", json={"email": email}, headers=_address())


CALLS: dict[str, Call] = {
    "register": _register,
    "login": _login,
    "password_reset": _reset,
    "resend": _resend,
}


async def _sender_idle(client: httpx.AsyncClient) -> None:
    """Wait (bounded) until no request for a code is unanswered and no mail is pending."""
    app = client._transport.app  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        async with app.state.database.sessionmaker() as session:
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


def _comparable(response: httpx.Response) -> tuple[int, bytes, str | None]:
    return response.status_code, response.content, response.headers.get("content-type")


def _iqr(samples: list[float]) -> float:
    quartiles = statistics.quantiles(samples, n=4)
    return quartiles[2] - quartiles[0]


def _median_standard_error(samples: list[float]) -> float:
    # Robust sigma from the IQR; the median's standard error is about 1.253 sigma / sqrt(n).
    return 1.253 * (_iqr(samples) / 1.349) / len(samples) ** 0.5


def distinguishable(known: list[float], unknown: list[float]) -> tuple[bool, str]:
    """Whether the medians differ by more than measurement noise (4 standard errors of their
    difference) plus a tenth of the faster one (small systematic costs such as one more row)."""
    gap = abs(statistics.median(known) - statistics.median(unknown))
    noise = (_median_standard_error(known) ** 2 + _median_standard_error(unknown) ** 2) ** 0.5
    tolerance = 4 * noise + 0.1 * min(statistics.median(known), statistics.median(unknown))
    summary = (
        f"median known {statistics.median(known) * 1e3:.2f} ms, unknown "
        f"{statistics.median(unknown) * 1e3:.2f} ms, tolerance {tolerance * 1e3:.2f} ms"
    )
    return gap > tolerance, summary


@pytest.fixture
async def known_account(auth: httpx.AsyncClient, mail_sink: MailSink) -> httpx.AsyncClient:
    assert (await register(auth, KNOWN)).status_code == 202
    await mail_sink.wait_for(KNOWN)
    # That registration started the address's mail window, and `resend_after` counts down from
    # it: an address nobody asked about would show a later time whatever accounts exist. What is
    # compared here is the account, so both addresses start with no asks behind them.
    app = auth._transport.app  # type: ignore[attr-defined]
    await app.state.limits.limiter.reset()
    return auth


@pytest.mark.parametrize("call", sorted(CALLS))
async def test_known_and_unknown_addresses_get_the_same_answer(
    known_account: httpx.AsyncClient, call: str
) -> None:
    known = await CALLS[call](known_account, KNOWN)
    unknown = await CALLS[call](known_account, "nobody-here@example.org")
    assert known.status_code < 500
    assert _comparable(known) == _comparable(unknown)


@pytest.mark.parametrize("call", sorted(CALLS))
async def test_known_and_unknown_addresses_take_comparable_time(
    known_account: httpx.AsyncClient, call: str
) -> None:
    """The request's own time. What the sender does afterwards (a real code and its mail for
    an account, an unsent code otherwise) runs off the request; it is let finish between
    samples so it is not charged to whichever request happens to follow it."""
    fn = CALLS[call]
    for warmup in range(3):
        await fn(known_account, KNOWN)
        await fn(known_account, f"warm{warmup}@example.org")
    known: list[float] = []
    unknown: list[float] = []
    for n in range(TRIES):
        for target, samples in ((KNOWN, known), (f"absent{n}@example.org", unknown)):
            await _sender_idle(known_account)
            started = time.perf_counter()
            response = await fn(known_account, target)
            samples.append(time.perf_counter() - started)
            assert response.status_code < 500, response.text
    differs, summary = distinguishable(known, unknown)
    assert not differs, summary


async def test_login_timing_test_would_catch_a_missing_dummy_hash(
    known_account: httpx.AsyncClient,
) -> None:
    """The check above has teeth: an unknown address answered without hashing shows up."""
    hasher = known_account._transport.app.state.hasher  # type: ignore[attr-defined]
    original = hasher.verify_nothing

    async def skip(_: str) -> None:
        return None

    hasher.verify_nothing = skip
    try:
        known: list[float] = []
        unknown: list[float] = []
        for n in range(TRIES):
            for target, samples in ((KNOWN, known), (f"absent{n}@example.org", unknown)):
                started = time.perf_counter()
                await _login(known_account, target)
                samples.append(time.perf_counter() - started)
    finally:
        hasher.verify_nothing = original
    differs, summary = distinguishable(known, unknown)
    assert differs, summary
