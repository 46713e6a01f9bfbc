"""Every auth call of CONTRACT.md through HTTP, with mail read from a real SMTP server."""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from services.auth.config import AuthSettings
from services.auth.models import OutboxMessage, RefreshFamily, User
from services.auth.schemas import TokenPair
from services.common.clock import FrozenClock
from services.common.database import Database
from services.gateway.mail_sink import MailSink
from tests.auth.flows import (
    STRONG_PASSWORD,
    bearer,
    code_requests_answered,
    latest_code,
    register,
    verified_account,
)
from tests.strict_lists import assert_strict_list

PROBLEM = "application/problem+json"


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


async def outbox_count(database_url: str, recipient: str) -> int:
    database = Database(database_url)
    try:
        async with database.sessionmaker() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.recipient == recipient)
            )
    finally:
        await database.dispose()
    return int(count or 0)


# -- register and verify ---------------------------------------------------------------------


async def test_register_emails_a_code_that_verifies_the_account(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    response = await register(client, "Ada@Example.ORG", newsletter=True)
    assert response.status_code == 202
    # The suite's mail limit (1000/minute) leaves room for another code at once.
    assert response.json() == {
        "status": "verification_pending",
        "code_expires_in": 1800,
        "resend_after": 0,
    }

    mail = (await mail_sink.wait_for("Ada@example.org"))[0]
    assert mail.code is not None
    assert re.search(r"valid for 30 minutes, until \d\d:\d\d UTC\.", mail.text)
    # The code mail is the code, not a note that a code was sent.
    assert "have sent" not in mail.text
    assert "no longer work" not in mail.text  # a first code replaces none
    assert mail.code in mail.html
    assert mail.subject == "NATO Multimedia: your verification code"

    verified = await client.post(
        "/v1/auth/verify", json={"email": "ada@EXAMPLE.org", "code": mail.code}
    )
    assert verified.status_code == 200, verified.text
    pair = verified.json()
    assert set(pair) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert pair["token_type"] == "Bearer"
    assert pair["expires_in"] == 900
    assert verified.headers["cache-control"] == "no-store"
    token_claims = claims(pair["access_token"])
    assert token_claims["email_verified"] is True
    assert token_claims["scope"] == "media:download"
    assert jwt.get_unverified_header(pair["access_token"])["typ"] == "at+jwt"

    me = await client.get("/v1/auth/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200
    body = me.json()
    assert body["email"] == "Ada@example.org"
    assert body["email_verified"] is True
    assert body["newsletter"] is True
    assert body["id"] == token_claims["sub"]
    assert set(body) == {"id", "email", "email_verified", "newsletter", "language", "created_at"}

    # Single use: the same code again is refused.
    again = await client.post(
        "/v1/auth/verify", json={"email": "ada@example.org", "code": mail.code}
    )
    problem(again, 400, "invalid_code")


async def test_register_refuses_invalid_email(client: httpx.AsyncClient) -> None:
    body = problem(await register(client, "not-an-address"), 422, "validation_error")
    assert body["errors"][0]["field"] == "email"
    assert body["errors"][0]["code"] == "invalid_email"
    problem(
        await client.post("/v1/auth/register", json={"email": "a@b.example"}),
        422,
        "validation_error",
    )


@pytest.mark.parametrize(
    ("password", "failed"),
    [
        ("abc", ["too_short", "missing_uppercase", "missing_digit", "missing_symbol"]),
        ("A" * 129 + "a1!", ["too_long"]),
        ("has Space 1234!", ["whitespace"]),
        ("Password123!", ["too_common"]),
        ("xx-Grace.Hopper-99X", ["contains_email"]),
        ("ALLUPPERCASE123!", ["missing_lowercase"]),
    ],
)
async def test_weak_password_lists_every_failed_rule(
    client: httpx.AsyncClient, mail_sink: MailSink, password: str, failed: list[str]
) -> None:
    response = await register(client, "grace.hopper@example.com", password)
    body = problem(response, 422, "weak_password")
    assert [error["code"] for error in body["errors"]] == failed
    assert {error["field"] for error in body["errors"]} == {"password"}
    assert all(error["message"] for error in body["errors"])
    assert mail_sink.to("grace.hopper@example.com") == []


async def test_taken_address_answers_alike_and_mails_the_owner(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    await verified_account(client, mail_sink, "owner@example.com")
    fresh = await register(client, "someone-new@example.com", "Another-Pass-77!")
    taken = await register(client, "OWNER@example.com", "Another-Pass-77!")
    assert (taken.status_code, taken.json()) == (fresh.status_code, fresh.json())

    notice = (await mail_sink.wait_for("owner@example.com", 2))[-1]
    assert notice.subject == "NATO Multimedia: you already have an account"
    assert "You already have an account, so nothing was changed." in notice.text
    assert notice.code is None
    # The password on file did not change.
    old = await client.post(
        "/v1/auth/login", json={"email": "owner@example.com", "password": STRONG_PASSWORD}
    )
    assert old.status_code == 200
    new = await client.post(
        "/v1/auth/login", json={"email": "owner@example.com", "password": "Another-Pass-77!"}
    )
    problem(new, 401, "invalid_credentials")


async def test_registering_an_unverified_address_again_sends_a_fresh_code(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    await register(client, "twice@example.com")
    first = await latest_code(mail_sink, "twice@example.com", 1)
    await register(client, "twice@example.com")
    second = await latest_code(mail_sink, "twice@example.com", 2)
    if first != second:
        stale = await client.post(
            "/v1/auth/verify", json={"email": "twice@example.com", "code": first}
        )
        problem(stale, 400, "invalid_code")
    ok = await client.post("/v1/auth/verify", json={"email": "twice@example.com", "code": second})
    assert ok.status_code == 200


async def test_five_wrong_codes_kill_the_code(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    await register(client, "guess@example.com")
    code = await latest_code(mail_sink, "guess@example.com")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    answers = [
        await client.post("/v1/auth/verify", json={"email": "guess@example.com", "code": wrong})
        for _ in range(5)
    ]
    assert [r.json()["code"] for r in answers] == ["invalid_code"] * 4 + ["too_many_attempts"]
    assert answers[-1].status_code == 429
    right = await client.post("/v1/auth/verify", json={"email": "guess@example.com", "code": code})
    problem(right, 429, "too_many_attempts")


async def test_code_expires_after_thirty_minutes(
    client: httpx.AsyncClient, mail_sink: MailSink, clock: FrozenClock
) -> None:
    await register(client, "late@example.com")
    code = await latest_code(mail_sink, "late@example.com")
    clock.advance(1801)
    late = await client.post("/v1/auth/verify", json={"email": "late@example.com", "code": code})
    problem(late, 400, "code_expired")


async def test_wrong_codes_answer_alike_with_or_without_an_account(
    client: httpx.AsyncClient, mail_sink: MailSink, clock: FrozenClock
) -> None:
    await register(client, "real@example.com")
    code = await latest_code(mail_sink, "real@example.com")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    async def five(email: str) -> list[tuple[int, str]]:
        answers = []
        for _ in range(5):
            response = await client.post("/v1/auth/verify", json={"email": email, "code": wrong})
            answers.append((response.status_code, response.json()["code"]))
        return answers

    clock.advance(1801)  # an old, never verified registration shows no more than none at all
    assert await five("real@example.com") == await five("nobody-here@example.com")


async def test_verify_unknown_address_or_malformed_code(client: httpx.AsyncClient) -> None:
    unknown = await client.post(
        "/v1/auth/verify", json={"email": "nobody@example.com", "code": "123456"}
    )
    problem(unknown, 400, "invalid_code")
    malformed = await client.post(
        "/v1/auth/verify", json={"email": "nobody@example.com", "code": "12ab"}
    )
    problem(malformed, 422, "validation_error")


async def test_resend_replaces_the_code(client: httpx.AsyncClient, mail_sink: MailSink) -> None:
    await register(client, "resend@example.com")
    first = await latest_code(mail_sink, "resend@example.com", 1)
    response = await client.post("/v1/auth/verify/resend", json={"email": "resend@example.com"})
    assert response.status_code == 202
    assert response.json() == {"code_expires_in": 1800, "resend_after": 0}
    second = await latest_code(mail_sink, "resend@example.com", 2)
    if first != second:
        stale = await client.post(
            "/v1/auth/verify", json={"email": "resend@example.com", "code": first}
        )
        problem(stale, 400, "invalid_code")
    ok = await client.post("/v1/auth/verify", json={"email": "resend@example.com", "code": second})
    assert ok.status_code == 200


async def test_mail_per_address_is_limited_silently(
    start_app: Any, mail_sink: MailSink, database_url: str
) -> None:
    async with start_app(mail_per_address_limits=["1/minute", "5/hour"]) as client:
        await register(client, "limited@example.com")
        await mail_sink.wait_for("limited@example.com")
        resend = await client.post("/v1/auth/verify/resend", json={"email": "limited@example.com"})
        assert resend.status_code == 202
        # Unknown addresses are counted too, and answered alike.
        for _ in range(3):
            unknown = await client.post(
                "/v1/auth/verify/resend", json={"email": "ghost@example.com"}
            )
            assert unknown.status_code == 202
        await code_requests_answered(client)
    assert await outbox_count(database_url, "limited@example.com") == 1

    async with start_app(mail_per_address_limits=["5/hour"]) as client:
        await register(client, "hourly@example.com")
        for _ in range(7):
            response = await client.post(
                "/v1/auth/verify/resend", json={"email": "hourly@example.com"}
            )
            assert response.status_code == 202
        await code_requests_answered(client)
    assert await outbox_count(database_url, "hourly@example.com") == 5


async def test_resend_is_rate_limited_per_client_address(start_app: Any) -> None:
    async with start_app(resend_rate_limit="2/minute") as client:
        for _ in range(2):
            ok = await client.post("/v1/auth/verify/resend", json={"email": "x@example.com"})
            assert ok.status_code == 202
        limited = await client.post("/v1/auth/verify/resend", json={"email": "y@example.com"})
        problem(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1
        other = await client.post(
            "/v1/auth/verify/resend",
            json={"email": "y@example.com"},
            headers={"X-Real-IP": "203.0.113.9"},
        )
        assert other.status_code == 202


async def test_register_is_rate_limited_per_client_address(start_app: Any) -> None:
    async with start_app(register_rate_limit="2/minute") as client:
        for index in range(2):
            assert (await register(client, f"r{index}@example.com")).status_code == 202
        problem(await register(client, "r3@example.com"), 429, "rate_limited")


# -- login, refresh, logout ------------------------------------------------------------------


async def test_login_works_for_unverified_accounts(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    await register(client, "early@example.com")
    response = await client.post(
        "/v1/auth/login", json={"email": "EARLY@example.com", "password": STRONG_PASSWORD}
    )
    assert response.status_code == 200
    # The body is written as bytes, not through the response model: it must still be one.
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    pair = TokenPair.model_validate_json(response.content)
    assert pair.model_dump() == response.json()
    assert pair.expires_in == 900
    token_claims = claims(pair.access_token)
    assert token_claims["email_verified"] is False
    assert "media:download" not in token_claims["scope"].split()


async def test_a_login_holds_no_database_connection_while_it_waits_for_the_hash(
    app: FastAPI, client: httpx.AsyncClient, mail_sink: MailSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    await verified_account(client, mail_sink, "pool@example.com")
    hasher = app.state.hasher
    hashing, release = asyncio.Event(), asyncio.Event()
    verify = hasher.verify

    async def held_verify(password: str, stored: str) -> tuple[bool, str | None]:
        hashing.set()
        await release.wait()
        return await verify(password, stored)

    monkeypatch.setattr(hasher, "verify", held_verify)
    pool = app.state.database.engine.pool
    # The outbox sender may still hold a connection for the verification mail: not the login's.
    for _ in range(500):
        if pool.checkedout() == 0:
            break
        await asyncio.sleep(0.01)
    assert pool.checkedout() == 0
    login = asyncio.create_task(
        client.post(
            "/v1/auth/login", json={"email": "pool@example.com", "password": STRONG_PASSWORD}
        )
    )
    await hashing.wait()
    # A storm of logins queued for the hashing thread leaves the pool to everyone else. The
    # mail sender borrows a connection now and then: the pool must empty while the hash waits.
    pool = app.state.database.engine.pool
    deadline = asyncio.get_running_loop().time() + 5
    while pool.checkedout() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.005)
    assert pool.checkedout() == 0
    release.set()
    assert (await login).status_code == 200


async def test_login_failures_are_identical_for_unknown_emails(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    await verified_account(client, mail_sink, "known@example.com")
    wrong = await client.post(
        "/v1/auth/login", json={"email": "known@example.com", "password": "Wrong-Password-1!"}
    )
    unknown = await client.post(
        "/v1/auth/login", json={"email": "unknown@example.com", "password": "Wrong-Password-1!"}
    )
    problem(wrong, 401, "invalid_credentials")
    assert (wrong.status_code, wrong.json()) == (unknown.status_code, unknown.json())


async def test_login_limits_failures_per_account_and_address_without_locking_the_owner_out(
    start_app: Any, mail_sink: MailSink
) -> None:
    async with start_app(login_failures_per_account_and_address="3/minute") as client:
        await verified_account(client, mail_sink, "target@example.com")
        attacker = {"X-Real-IP": "198.51.100.66"}
        for _ in range(3):
            failed = await client.post(
                "/v1/auth/login",
                json={"email": "target@example.com", "password": "Guess-Guess-1!"},
                headers=attacker,
            )
            problem(failed, 401, "invalid_credentials")
        blocked = await client.post(
            "/v1/auth/login",
            json={"email": "target@example.com", "password": STRONG_PASSWORD},
            headers=attacker,
        )
        problem(blocked, 429, "rate_limited")
        assert int(blocked.headers["retry-after"]) >= 1
        owner = await client.post(
            "/v1/auth/login",
            json={"email": "target@example.com", "password": STRONG_PASSWORD},
            headers={"X-Real-IP": "192.0.2.10"},
        )
        assert owner.status_code == 200


async def test_login_limits_failures_per_account_from_everywhere(start_app: Any) -> None:
    async with start_app(login_failures_per_account="3/minute") as client:
        for index in range(3):
            await client.post(
                "/v1/auth/login",
                json={"email": "spread@example.com", "password": "Guess-Guess-1!"},
                headers={"X-Real-IP": f"198.51.100.{index}"},
            )
        blocked = await client.post(
            "/v1/auth/login",
            json={"email": "spread@example.com", "password": "Guess-Guess-1!"},
            headers={"X-Real-IP": "198.51.100.200"},
        )
        problem(blocked, 429, "account_locked")


async def test_login_is_rate_limited_per_client_address(start_app: Any) -> None:
    async with start_app(login_rate_limit="2/minute") as client:
        for _ in range(2):
            await client.post("/v1/auth/login", json={"email": "a@example.com", "password": "x"})
        limited = await client.post(
            "/v1/auth/login", json={"email": "b@example.com", "password": "x"}
        )
        problem(limited, 429, "rate_limited")


async def test_refresh_rotates_and_reuse_revokes_the_family(
    client: httpx.AsyncClient, mail_sink: MailSink, clock: FrozenClock, settings: AuthSettings
) -> None:
    pair = await verified_account(client, mail_sink, "rotate@example.com")
    first = pair["refresh_token"]
    rotated = await client.post("/v1/auth/token/refresh", json={"refresh_token": first})
    assert rotated.status_code == 200
    second = rotated.json()["refresh_token"]
    assert second != first
    assert claims(rotated.json()["access_token"])["email_verified"] is True

    # Another login is another family, untouched by what follows.
    other = await client.post(
        "/v1/auth/login", json={"email": "rotate@example.com", "password": STRONG_PASSWORD}
    )
    other_refresh = other.json()["refresh_token"]

    # Past the two-tabs grace (AUTH_REFRESH_REUSE_GRACE_SECONDS) a spent token is a replay.
    clock.advance(settings.refresh_reuse_grace_seconds + 1)
    reuse = await client.post("/v1/auth/token/refresh", json={"refresh_token": first})
    problem(reuse, 401, "invalid_token")
    assert reuse.headers["www-authenticate"].startswith("Bearer")
    after = await client.post("/v1/auth/token/refresh", json={"refresh_token": second})
    problem(after, 401, "invalid_token")
    survivor = await client.post("/v1/auth/token/refresh", json={"refresh_token": other_refresh})
    assert survivor.status_code == 200


async def test_refresh_family_expires_after_thirty_days(
    client: httpx.AsyncClient, mail_sink: MailSink, clock: FrozenClock
) -> None:
    pair = await verified_account(client, mail_sink, "old@example.com")
    token = pair["refresh_token"]
    for _ in range(3):
        clock.advance(9 * 24 * 3600)
        response = await client.post("/v1/auth/token/refresh", json={"refresh_token": token})
        assert response.status_code == 200
        token = response.json()["refresh_token"]
    clock.advance(4 * 24 * 3600)
    problem(
        await client.post("/v1/auth/token/refresh", json={"refresh_token": token}),
        401,
        "invalid_token",
    )


async def test_refresh_refuses_unknown_tokens(client: httpx.AsyncClient) -> None:
    unknown = await client.post("/v1/auth/token/refresh", json={"refresh_token": "nope"})
    problem(unknown, 401, "invalid_token")
    problem(await client.post("/v1/auth/token/refresh", json={}), 422, "validation_error")


async def test_logout_ends_the_session(
    client: httpx.AsyncClient, mail_sink: MailSink, database_url: str
) -> None:
    pair = await verified_account(client, mail_sink, "bye@example.com")
    response = await client.post("/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert response.status_code == 204
    assert response.content == b""
    problem(
        await client.post("/v1/auth/token/refresh", json={"refresh_token": pair["refresh_token"]}),
        401,
        "invalid_token",
    )
    assert (
        await client.post("/v1/auth/logout", json={"refresh_token": "unknown"})
    ).status_code == 204


# -- password reset --------------------------------------------------------------------------


async def test_password_reset_end_to_end(
    client: httpx.AsyncClient, mail_sink: MailSink, database_url: str
) -> None:
    pair = await verified_account(client, mail_sink, "forgot@example.com")
    requested = await client.post("/v1/auth/password-reset", json={"email": "forgot@example.com"})
    assert requested.status_code == 202
    assert requested.json() == {"code_expires_in": 1800, "resend_after": 0}
    mail = (await mail_sink.wait_for("forgot@example.com", 2))[-1]
    assert mail.subject == "NATO Multimedia: your password reset code"
    assert mail.code is not None

    verified = await client.post(
        "/v1/auth/password-reset/verify", json={"email": "forgot@example.com", "code": mail.code}
    )
    assert verified.status_code == 200, verified.text
    body = verified.json()
    assert set(body) == {"reset_token", "expires_in"}
    assert body["expires_in"] == 900

    weak = await client.post(
        "/v1/auth/password-reset/complete",
        json={"reset_token": body["reset_token"], "new_password": "short"},
    )
    weak_body = problem(weak, 422, "weak_password")
    assert {error["field"] for error in weak_body["errors"]} == {"new_password"}
    assert "too_short" in [error["code"] for error in weak_body["errors"]]

    done = await client.post(
        "/v1/auth/password-reset/complete",
        json={"reset_token": body["reset_token"], "new_password": "Brand-New-Secret-99"},
    )
    assert done.status_code == 204

    notice = (await mail_sink.wait_for("forgot@example.com", 3))[-1]
    assert notice.subject == "NATO Multimedia: your password has been changed"
    problem(
        await client.post("/v1/auth/token/refresh", json={"refresh_token": pair["refresh_token"]}),
        401,
        "invalid_token",
    )
    old = await client.post(
        "/v1/auth/login", json={"email": "forgot@example.com", "password": STRONG_PASSWORD}
    )
    problem(old, 401, "invalid_credentials")
    new = await client.post(
        "/v1/auth/login", json={"email": "forgot@example.com", "password": "Brand-New-Secret-99"}
    )
    assert new.status_code == 200

    reused = await client.post(
        "/v1/auth/password-reset/complete",
        json={"reset_token": body["reset_token"], "new_password": "Another-New-Secret-98"},
    )
    problem(reused, 400, "invalid_token")


async def test_password_reset_codes_fail_like_verification_codes(
    client: httpx.AsyncClient, mail_sink: MailSink, clock: FrozenClock
) -> None:
    await verified_account(client, mail_sink, "codes@example.com")
    await client.post("/v1/auth/password-reset", json={"email": "codes@example.com"})
    code = await latest_code(mail_sink, "codes@example.com", 2)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    problem(
        await client.post(
            "/v1/auth/password-reset/verify", json={"email": "codes@example.com", "code": wrong}
        ),
        400,
        "invalid_code",
    )
    clock.advance(1801)
    problem(
        await client.post(
            "/v1/auth/password-reset/verify", json={"email": "codes@example.com", "code": code}
        ),
        400,
        "code_expired",
    )
    # A verification code is no reset code.
    problem(
        await client.post(
            "/v1/auth/password-reset/verify", json={"email": "nobody@example.com", "code": code}
        ),
        400,
        "invalid_code",
    )


async def test_reset_token_expires(
    client: httpx.AsyncClient, mail_sink: MailSink, clock: FrozenClock
) -> None:
    await verified_account(client, mail_sink, "slow@example.com")
    await client.post("/v1/auth/password-reset", json={"email": "slow@example.com"})
    code = await latest_code(mail_sink, "slow@example.com", 2)
    token = (
        await client.post(
            "/v1/auth/password-reset/verify", json={"email": "slow@example.com", "code": code}
        )
    ).json()["reset_token"]
    clock.advance(901)
    problem(
        await client.post(
            "/v1/auth/password-reset/complete",
            json={"reset_token": token, "new_password": "Brand-New-Secret-99"},
        ),
        400,
        "invalid_token",
    )


async def test_password_reset_for_unknown_address_sends_nothing(
    client: httpx.AsyncClient, mail_sink: MailSink, database_url: str
) -> None:
    response = await client.post("/v1/auth/password-reset", json={"email": "ghost@example.com"})
    assert response.status_code == 202
    assert await outbox_count(database_url, "ghost@example.com") == 0


async def test_password_reset_is_rate_limited_per_client_address(start_app: Any) -> None:
    async with start_app(password_reset_rate_limit="1/minute") as client:
        await client.post("/v1/auth/password-reset", json={"email": "a@example.com"})
        limited = await client.post("/v1/auth/password-reset", json={"email": "b@example.com"})
        problem(limited, 429, "rate_limited")


async def test_enumeration_every_answer_is_the_same_for_known_and_unknown_emails(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    await verified_account(client, mail_sink, "exists@example.com")

    for index, (path, fields) in enumerate(
        (
            ("/v1/auth/register", {"password": "Fresh-Password-55!"}),
            ("/v1/auth/login", {"password": "Fresh-Password-55!"}),
            ("/v1/auth/password-reset", {}),
            ("/v1/auth/verify/resend", {}),
        )
    ):
        known = await client.post(path, json={"email": "exists@example.com", **fields})
        unknown = await client.post(path, json={"email": f"missing{index}@example.com", **fields})
        assert known.status_code == unknown.status_code, path
        assert known.content == unknown.content, path
        assert known.headers.get("content-type") == unknown.headers.get("content-type"), path


# -- the account -----------------------------------------------------------------------------


async def test_me_requires_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/auth/me")
    problem(response, 401, "invalid_token")
    assert response.headers["www-authenticate"].startswith("Bearer")
    problem(
        await client.put("/v1/auth/me/newsletter", json={"subscribed": True}), 401, "invalid_token"
    )


async def test_newsletter_opt_in_and_out(client: httpx.AsyncClient, mail_sink: MailSink) -> None:
    pair = await verified_account(client, mail_sink, "news@example.com")
    headers = bearer(pair["access_token"])
    on = await client.put("/v1/auth/me/newsletter", json={"subscribed": True}, headers=headers)
    assert on.status_code == 200
    assert on.json()["newsletter"] is True
    assert (await client.get("/v1/auth/me", headers=headers)).json()["newsletter"] is True
    off = await client.put("/v1/auth/me/newsletter", json={"subscribed": False}, headers=headers)
    assert off.json()["newsletter"] is False
    problem(
        await client.put("/v1/auth/me/newsletter", json={"subscribed": "maybe"}, headers=headers),
        422,
        "validation_error",
    )


# -- partner clients -------------------------------------------------------------------------


async def test_unverified_accounts_cannot_create_clients(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    await register(client, "pending@example.com")
    login = await client.post(
        "/v1/auth/login", json={"email": "pending@example.com", "password": STRONG_PASSWORD}
    )
    response = await client.post(
        "/v1/auth/clients", json={"name": "x"}, headers=bearer(login.json()["access_token"])
    )
    problem(response, 403, "email_not_verified")
    problem(await client.post("/v1/auth/clients", json={"name": "x"}), 401, "invalid_token")


async def test_client_lifecycle_and_client_credentials(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    pair = await verified_account(client, mail_sink, "partner@example.com")
    headers = bearer(pair["access_token"])
    created = await client.post("/v1/auth/clients", json={"name": "Broadcaster"}, headers=headers)
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"client_id", "client_secret", "name", "created_at"}
    client_id, secret = body["client_id"], body["client_secret"]

    listed = await client.get("/v1/auth/clients", headers=headers)
    assert listed.status_code == 200
    assert listed.json() == {
        "items": [
            {"client_id": client_id, "name": "Broadcaster", "created_at": body["created_at"]}
        ],
        "next_cursor": None,
    }

    form = await client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert form.status_code == 200, form.text
    token = form.json()
    assert set(token) == {"access_token", "token_type", "expires_in", "scope"}
    assert token["scope"] == "media:download"
    assert token["token_type"] == "Bearer"
    assert form.headers["cache-control"] == "no-store"
    token_claims = claims(token["access_token"])
    assert token_claims["client_id"] == client_id
    assert token_claims["client_name"] == "Broadcaster"  # for media's download audit
    assert token_claims["scope"] == "media:download"

    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    via_basic = await client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials", "scope": "media:download"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert via_basic.status_code == 200, via_basic.text

    # A client token speaks for no account.
    problem(
        await client.get("/v1/auth/me", headers=bearer(token["access_token"])), 401, "invalid_token"
    )

    revoked = await client.delete(f"/v1/auth/clients/{client_id}", headers=headers)
    assert revoked.status_code == 204
    after = await client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    problem(after, 401, "invalid_client")
    problem(await client.delete(f"/v1/auth/clients/{client_id}", headers=headers), 404, "not_found")
    assert (await client.get("/v1/auth/clients", headers=headers)).json()["items"] == []


async def test_clients_are_paginated_and_private(
    client: httpx.AsyncClient, mail_sink: MailSink, clock: FrozenClock
) -> None:
    owner = bearer((await verified_account(client, mail_sink, "many@example.com"))["access_token"])
    stranger = bearer(
        (await verified_account(client, mail_sink, "other@example.com"))["access_token"]
    )
    ids = []
    for index in range(3):
        clock.advance(1)
        created = await client.post("/v1/auth/clients", json={"name": f"c{index}"}, headers=owner)
        ids.append(created.json()["client_id"])
    first = (await client.get("/v1/auth/clients?limit=2", headers=owner)).json()
    assert [item["client_id"] for item in first["items"]] == ids[:2]
    second = (
        await client.get(f"/v1/auth/clients?limit=2&cursor={first['next_cursor']}", headers=owner)
    ).json()
    assert [item["client_id"] for item in second["items"]] == ids[2:]
    assert second["next_cursor"] is None
    assert (await client.get("/v1/auth/clients", headers=stranger)).json()["items"] == []
    problem(await client.delete(f"/v1/auth/clients/{ids[0]}", headers=stranger), 404, "not_found")
    bad = await client.get("/v1/auth/clients?cursor=garbage", headers=owner)
    problem(bad, 422, "validation_error")


async def test_token_endpoint_errors(client: httpx.AsyncClient, mail_sink: MailSink) -> None:
    pair = await verified_account(client, mail_sink, "errors@example.com")
    created = (
        await client.post(
            "/v1/auth/clients", json={"name": "n"}, headers=bearer(pair["access_token"])
        )
    ).json()
    good = {
        "grant_type": "client_credentials",
        "client_id": created["client_id"],
        "client_secret": created["client_secret"],
    }
    wrong = await client.post("/v1/auth/token", data={**good, "client_secret": "nms_wrong"})
    body = problem(wrong, 401, "invalid_client")
    assert body["error"] == "invalid_client"
    unknown = await client.post("/v1/auth/token", data={**good, "client_id": "nmc_unknown"})
    assert unknown.json() == wrong.json()
    bad_basic = await client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic !!notbase64"},
    )
    problem(bad_basic, 401, "invalid_client")
    assert bad_basic.headers["www-authenticate"].startswith("Basic")

    grant = await client.post("/v1/auth/token", data={**good, "grant_type": "password"})
    assert problem(grant, 400, "unsupported_grant_type")["error"] == "unsupported_grant_type"
    missing = await client.post("/v1/auth/token", data={"client_id": "x"})
    problem(missing, 400, "invalid_request")
    scope = await client.post("/v1/auth/token", data={**good, "scope": "admin"})
    problem(scope, 400, "invalid_scope")
    no_secret = await client.post(
        "/v1/auth/token", data={"grant_type": "client_credentials", "client_id": "x"}
    )
    problem(no_secret, 401, "invalid_client")


async def test_token_endpoint_is_rate_limited_per_client(
    start_app: Any, mail_sink: MailSink
) -> None:
    async with start_app(
        token_rate_limit_per_client="2/minute", token_failures_per_client="2/minute"
    ) as client:
        pair = await verified_account(client, mail_sink, "busy@example.com")
        created = (
            await client.post(
                "/v1/auth/clients", json={"name": "n"}, headers=bearer(pair["access_token"])
            )
        ).json()
        good = {
            "grant_type": "client_credentials",
            "client_id": created["client_id"],
            "client_secret": created["client_secret"],
        }
        # Wrong secrets are limited on their own and do not use up the client's quota.
        for _ in range(2):
            await client.post("/v1/auth/token", data={**good, "client_secret": "nms_bad"})
        problem(
            await client.post("/v1/auth/token", data={**good, "client_secret": "nms_bad"}),
            429,
            "rate_limited",
        )
        for _ in range(2):
            assert (await client.post("/v1/auth/token", data=good)).status_code == 200
        limited = await client.post("/v1/auth/token", data=good)
        problem(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1


# -- keys ------------------------------------------------------------------------------------


async def test_jwks_is_cacheable(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert "max-age" in response.headers["cache-control"]
    keys = response.json()["keys"]
    assert keys
    assert keys[0]["alg"] == "ES256"
    assert "d" not in keys[0]
    cached = await client.get(
        "/.well-known/jwks.json", headers={"If-None-Match": response.headers["etag"]}
    )
    assert cached.status_code == 304


async def _families(database_url: str) -> list[tuple[int, bool]]:
    """(generation, revoked) of every refresh family on file."""
    database = Database(database_url)
    try:
        async with database.sessionmaker() as session:
            rows = await session.execute(
                select(RefreshFamily.generation, RefreshFamily.revoked_at.is_not(None))
            )
            return [(generation, revoked) for generation, revoked in rows]
    finally:
        await database.dispose()


async def test_a_login_writes_no_refresh_row_and_its_first_refresh_writes_the_family(
    client: httpx.AsyncClient, mail_sink: MailSink, database_url: str
) -> None:
    await verified_account(client, mail_sink, "lazy@example.com")
    login = await client.post(
        "/v1/auth/login", json={"email": "lazy@example.com", "password": STRONG_PASSWORD}
    )
    assert login.status_code == 200, login.text
    assert await _families(database_url) == []

    token = login.json()["refresh_token"]
    for generation in (1, 2):
        rotated = await client.post("/v1/auth/token/refresh", json={"refresh_token": token})
        assert rotated.status_code == 200, rotated.text
        token = rotated.json()["refresh_token"]
        assert await _families(database_url) == [(generation, False)]


async def test_logout_after_a_refresh_ends_the_newest_token(
    client: httpx.AsyncClient, mail_sink: MailSink, database_url: str
) -> None:
    pair = await verified_account(client, mail_sink, "later@example.com")
    rotated = await client.post(
        "/v1/auth/token/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    newest = rotated.json()["refresh_token"]
    assert (await client.post("/v1/auth/logout", json={"refresh_token": newest})).status_code == 204
    assert await _families(database_url) == [(1, True)]
    problem(
        await client.post("/v1/auth/token/refresh", json={"refresh_token": newest}),
        401,
        "invalid_token",
    )


async def test_two_refreshes_of_one_token_at_once_get_the_same_successor(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    # Two tabs refreshing at the same moment: the reuse grace gives both the same next token.
    pair = await verified_account(client, mail_sink, "twice@example.com")
    body = {"refresh_token": pair["refresh_token"]}
    answers = await asyncio.gather(
        client.post("/v1/auth/token/refresh", json=body),
        client.post("/v1/auth/token/refresh", json=body),
    )
    assert [answer.status_code for answer in answers] == [200, 200], [a.text for a in answers]
    successors = {answer.json()["refresh_token"] for answer in answers}
    assert len(successors) == 1
    (successor,) = successors
    rotated = await client.post("/v1/auth/token/refresh", json={"refresh_token": successor})
    assert rotated.status_code == 200, rotated.text


async def test_two_refreshes_of_one_token_at_once_end_the_family_without_a_grace(
    start_app: Any, mail_sink: MailSink
) -> None:
    async with start_app(refresh_reuse_grace_seconds=0) as client:
        pair = await verified_account(client, mail_sink, "twice@example.com")
        body = {"refresh_token": pair["refresh_token"]}
        answers = await asyncio.gather(
            client.post("/v1/auth/token/refresh", json=body),
            client.post("/v1/auth/token/refresh", json=body),
        )
        assert sorted(answer.status_code for answer in answers) == [200, 401]
        (winner,) = [answer for answer in answers if answer.status_code == 200]
        problem(
            await client.post(
                "/v1/auth/token/refresh", json={"refresh_token": winner.json()["refresh_token"]}
            ),
            401,
            "invalid_token",
        )


async def test_login_rehashes_a_password_stored_with_old_parameters(
    start_app: Any, mail_sink: MailSink, database_url: str
) -> None:
    async with start_app(argon2_memory_cost=1024, argon2_rounds=1) as client:
        await register(client, "legacy@example.com")
    async with start_app(argon2_memory_cost=2048, argon2_rounds=2) as client:
        response = await client.post(
            "/v1/auth/login", json={"email": "legacy@example.com", "password": STRONG_PASSWORD}
        )
        assert response.status_code == 200
    database = Database(database_url)
    try:
        async with database.sessionmaker() as session:
            stored = await session.scalar(
                select(User.password_hash).where(User.email_canonical == "legacy@example.com")
            )
    finally:
        await database.dispose()
    assert stored is not None
    assert "m=2048,t=2" in stored


async def test_the_client_list_refuses_unknown_and_repeated_parameters(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    pair = await verified_account(client, mail_sink, "lists@example.org")
    await assert_strict_list(client, "/v1/auth/clients", bearer(pair["access_token"]))
