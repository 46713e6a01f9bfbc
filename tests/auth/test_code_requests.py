"""Asking for codes: no existence oracle in the try counter, and no way to starve a victim of mail.

Attack review, issue 16: a code request must reset the tries of an address with no account
exactly as a new code resets a real one's; a request refused by one mail limit must spend no
other; the account's own addresses have a budget strangers cannot use up; and every 202 says
when the next code can be asked for, identically for every address.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from services.auth.models import OutboxMessage
from services.common.database import Database
from services.gateway.mail_sink import MailSink
from tests.auth.flows import (
    STRONG_PASSWORD,
    code_requests_answered,
    latest_code,
    register,
    verified_account,
)

REAL = "real@example.org"
NOBODY = "nobody@example.org"
HOME = "192.0.2.10"
STRANGER = "203.0.113.7"

pytestmark = pytest.mark.usefixtures("backend")


def outcome(response: httpx.Response) -> tuple[int, str | None]:
    code = response.json().get("code") if response.content else None
    return response.status_code, code


class Flow:
    """One kind of code: where it is asked for and where it is redeemed."""

    def __init__(self, request_path: str, redeem_path: str) -> None:
        self.request_path = request_path
        self.redeem_path = redeem_path


VERIFY = Flow("/v1/auth/verify/resend", "/v1/auth/verify")
RESET = Flow("/v1/auth/password-reset", "/v1/auth/password-reset/verify")

# Each step: "guess" (a wrong code) or "ask" (a new code). Every order the review named.
SEQUENCES = {
    "guesses-ask-guess": ["guess"] * 5 + ["ask", "guess"],
    "ask-guesses-ask-guess": ["ask"] + ["guess"] * 5 + ["ask", "guess", "guess"],
    "some-guesses-ask-more": ["guess"] * 3 + ["ask"] + ["guess"] * 6,
}


async def _walk(
    app: FastAPI,
    client: httpx.AsyncClient,
    sink: MailSink,
    flow: Flow,
    email: str,
    steps: list[str],
    wrong: Callable[[], str],
) -> list[tuple[int, str | None]]:
    seen: list[tuple[int, str | None]] = []
    for step in steps:
        if step == "ask":
            before = len(sink.to(email))
            response = await client.post(flow.request_path, json={"email": email})
            assert response.status_code == 202, response.text
            await code_requests_answered(app)
            if email == REAL:
                await sink.wait_for(email, before + 1)
        else:
            response = await client.post(flow.redeem_path, json={"email": email, "code": wrong()})
            seen.append(outcome(response))
    return seen


@pytest.mark.parametrize("flow", [VERIFY, RESET], ids=["verify", "reset"])
@pytest.mark.parametrize("sequence", list(SEQUENCES))
async def test_the_try_counter_answers_alike_with_or_without_an_account(
    app: FastAPI, client: httpx.AsyncClient, mail_sink: MailSink, flow: Flow, sequence: str
) -> None:
    if flow is VERIFY:
        assert (await register(client, REAL)).status_code == 202
        await mail_sink.wait_for(REAL, 1)
    else:
        await verified_account(client, mail_sink, REAL)
        # A reset code of its own to guess at.
        await client.post(RESET.request_path, json={"email": REAL})
        await mail_sink.wait_for(REAL, 2)

    def wrong() -> str:
        # Never the live code (codes are random: pick one it cannot be).
        live = {mail.code for mail in mail_sink.to(REAL)}
        return next(code for code in ("000000", "111111", "222222") if code not in live)

    steps = SEQUENCES[sequence]
    real = await _walk(app, client, mail_sink, flow, REAL, steps, wrong)
    unknown = await _walk(app, client, mail_sink, flow, NOBODY, steps, wrong)
    assert real == unknown
    assert (429, "too_many_attempts") in real  # the walk did reach the limit


@pytest.fixture
def tight(start_app: Any) -> Callable[..., Any]:
    def start(limits: str) -> Any:
        return start_app(mail_per_address_limits=limits)

    return start


async def _ask(client: httpx.AsyncClient, path: str, email: str, address: str) -> dict[str, Any]:
    response = await client.post(path, json={"email": email}, headers={"X-Real-IP": address})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_request_refused_by_one_limit_spends_no_other(
    tight: Callable[..., Any], mail_sink: MailSink
) -> None:
    async with tight("1 per 2 seconds,3/hour") as client:
        assert (await register(client, REAL)).status_code == 202
        await mail_sink.wait_for(REAL, 1)
        for _ in range(4):
            # Refused by the 2-second limit: the hourly budget must stay untouched.
            refused = await _ask(client, VERIFY.request_path, REAL, STRANGER)
            assert 1 <= refused["resend_after"] <= 2
        wait = refused["resend_after"]
        for expected in (2, 3):
            await asyncio.sleep(wait + 0.1)
            body = await _ask(client, VERIFY.request_path, REAL, STRANGER)
            await mail_sink.wait_for(REAL, expected)
            wait = body["resend_after"]
        # Three mails an hour, as configured: the answer says the next one is most of an hour
        # away, and past the short limit nothing more is sent.
        assert wait > 3000
        await asyncio.sleep(2.1)
        spent = await _ask(client, VERIFY.request_path, REAL, STRANGER)
        assert spent["resend_after"] > 3000
        await asyncio.sleep(0.3)
        assert len(mail_sink.to(REAL)) == 3


async def test_the_owners_addresses_have_a_budget_strangers_cannot_spend(
    tight: Callable[..., Any], mail_sink: MailSink
) -> None:
    async with tight("2/hour") as client:
        await verified_account(client, mail_sink, REAL)
        login = await client.post(
            "/v1/auth/login",
            json={"email": REAL, "password": STRONG_PASSWORD},
            headers={"X-Real-IP": HOME},
        )
        assert login.status_code == 200
        before = len(mail_sink.to(REAL))
        for _ in range(5):
            await _ask(client, RESET.request_path, REAL, STRANGER)
        stranger_mail = len(await mail_sink.wait_for(REAL, before + 2))
        assert stranger_mail == before + 2

        owner = await _ask(client, RESET.request_path, REAL, HOME)
        assert owner["resend_after"] == 0
        await latest_code(mail_sink, REAL, before + 3)
        assert len(mail_sink.to(REAL)) == before + 3


async def test_resend_after_is_the_same_for_known_and_unknown_addresses(
    tight: Callable[..., Any], mail_sink: MailSink
) -> None:
    async with tight("1/minute,5/hour") as client:
        await verified_account(client, mail_sink, REAL)
        bodies = {}
        for email in (REAL, NOBODY):
            first = await _ask(client, RESET.request_path, email, STRANGER)
            second = await _ask(client, RESET.request_path, email, STRANGER)
            bodies[email] = (first, second)
        for first, second in bodies.values():
            assert first == {"code_expires_in": 1800, "resend_after": 60}
            assert 58 <= second["resend_after"] <= 60
        assert bodies[REAL][1]["code_expires_in"] == bodies[NOBODY][1]["code_expires_in"]

        registered = await register(client, "new@example.org")
        assert registered.json()["resend_after"] == 60
        taken = await register(client, REAL)
        assert taken.json() == {
            "status": "verification_pending",
            "code_expires_in": 1800,
            "resend_after": 60,
        }


async def test_two_senders_never_answer_one_request_twice(start_app: Any) -> None:
    # Two replicas each run a sender. Had both answered the request, the second code would
    # replace the first after its mail was queued: the first mail would carry a dead code.
    async with start_app(AUTH_MAIL_SENDER=False) as client:
        await register(client, REAL)
        app: FastAPI = client._transport.app  # type: ignore[attr-defined]
        other = Database(app.state.database.url)
        try:
            answered = await asyncio.gather(
                app.state.code_requests.answer_due(app.state.database),
                app.state.code_requests.answer_due(other),
            )
        finally:
            await other.dispose()
        assert sorted(answered) == [0, 1]
        async with app.state.database.sessionmaker() as session:
            queued = await session.scalar(select(func.count()).select_from(OutboxMessage))
        assert queued == 1
