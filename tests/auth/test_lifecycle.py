"""The account page: password and email changes, sessions, log out everywhere, erasure, export."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jose import jwt
from sqlalchemy import func, select

from services.auth.app import code_hash_key
from services.auth.config import AuthSettings
from services.auth.lifecycle import purge_session_addresses
from services.auth.mail_admin import CannotRetry, Recomposer
from services.auth.models import (
    ApiClient,
    KnownLoginAddress,
    OneTimeCode,
    OutboxMessage,
    SignInSession,
    User,
)
from services.common.clock import FrozenClock
from services.gateway.mail_sink import MailSink
from tests.auth.flows import (
    STRONG_PASSWORD,
    bearer,
    code_requests_answered,
    latest_code,
    register,
    verified_account,
)
from tests.auth.test_revocation import create_client, problem

NEW_PASSWORD = "Brand-New-Secret-99"


async def login(
    client: httpx.AsyncClient, email: str, password: str = STRONG_PASSWORD, agent: str = "tests"
) -> dict[str, Any]:
    response = await client.post(
        "/v1/auth/login",
        json={"email": email, "password": password},
        headers={"User-Agent": agent},
    )
    assert response.status_code == 200, response.text
    pair: dict[str, Any] = response.json()
    return pair


async def refresh(client: httpx.AsyncClient, pair: dict[str, Any]) -> httpx.Response:
    return await client.post(
        "/v1/auth/token/refresh", json={"refresh_token": pair["refresh_token"]}
    )


def sid(pair: dict[str, Any]) -> str:
    claims = jwt.get_unverified_claims(pair["access_token"])
    value: str = claims["sid"]
    return value


async def count(app: FastAPI, model: Any, *where: Any) -> int:
    async with app.state.database.sessionmaker() as session:
        found = await session.scalar(select(func.count()).select_from(model).where(*where))
    return int(found or 0)


async def test_change_password_keeps_this_session_and_ends_the_others(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    email = "change@example.org"
    await verified_account(client, mail_sink, email)
    this = await login(client, email, agent="laptop")
    other = await login(client, email, agent="phone")
    before = len(mail_sink.to(email))

    changed = await client.put(
        "/v1/auth/me/password",
        json={"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(this["access_token"]),
    )

    assert changed.status_code == 200, changed.text
    pair = changed.json()
    assert sid(pair) == sid(this)
    # This session goes on with the new pair; the other's tokens and the old pair are dead.
    assert (
        await client.get("/v1/auth/sessions", headers=bearer(pair["access_token"]))
    ).status_code == 200
    assert (await refresh(client, pair)).status_code == 200
    problem(await refresh(client, other), 401, "invalid_token")
    problem(await refresh(client, this), 401, "invalid_token")
    problem(
        await client.get("/v1/auth/sessions", headers=bearer(other["access_token"])),
        401,
        "invalid_token",
    )
    notices = await mail_sink.wait_for(email, before + 1)
    assert "password" in notices[-1].subject.lower()
    await login(client, email, NEW_PASSWORD)


async def test_a_wrong_current_password_is_403_and_counts_as_a_failed_login(
    start_app: Any, mail_sink: MailSink
) -> None:
    email = "guess@example.org"
    async with start_app(login_failures_per_account_and_address="2 per hour") as client:
        pair = await verified_account(client, mail_sink, email)
        for _ in range(2):
            wrong = await client.put(
                "/v1/auth/me/password",
                json={"current_password": "Not-The-Password-1", "new_password": NEW_PASSWORD},
                headers=bearer(pair["access_token"]),
            )
            problem(wrong, 403, "invalid_credentials")
        # The login's own limit for this address and account is spent by those guesses.
        locked = await client.post(
            "/v1/auth/login", json={"email": email, "password": STRONG_PASSWORD}
        )
        assert locked.status_code == 429, locked.text


async def test_a_weak_new_password_is_refused(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    pair = await verified_account(client, mail_sink, "weak@example.org")
    weak = await client.put(
        "/v1/auth/me/password",
        json={"current_password": STRONG_PASSWORD, "new_password": "short"},
        headers=bearer(pair["access_token"]),
    )
    problem(weak, 422, "weak_password")


async def test_sessions_list_and_end_one(client: httpx.AsyncClient, mail_sink: MailSink) -> None:
    email = "sessions@example.org"
    await verified_account(client, mail_sink, email)
    laptop = await login(client, email, agent="laptop")
    phone = await login(client, email, agent="phone")

    listed = await client.get("/v1/auth/sessions", headers=bearer(laptop["access_token"]))

    assert listed.status_code == 200, listed.text
    items = {item["id"]: item for item in listed.json()["items"]}
    assert set(items) >= {sid(laptop), sid(phone)}
    assert items[sid(laptop)]["current"] is True
    assert items[sid(phone)]["current"] is False
    assert items[sid(phone)]["user_agent"] == "phone"
    assert items[sid(phone)]["client_address"] == "127.0.0.1"

    ended = await client.delete(
        f"/v1/auth/sessions/{sid(phone)}", headers=bearer(laptop["access_token"])
    )
    assert ended.status_code == 204, ended.text
    problem(await refresh(client, phone), 401, "invalid_token")
    problem(
        await client.get("/v1/auth/sessions", headers=bearer(phone["access_token"])),
        401,
        "invalid_token",
    )
    assert (await refresh(client, laptop)).status_code == 200
    again = await client.get("/v1/auth/sessions", headers=bearer(laptop["access_token"]))
    assert sid(phone) not in {item["id"] for item in again.json()["items"]}


async def test_another_accounts_session_is_not_found(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    await verified_account(client, mail_sink, "mallory@example.org")
    await verified_account(client, mail_sink, "victim@example.org")
    mallory = await login(client, "mallory@example.org")
    victim = await login(client, "victim@example.org")

    for target in (sid(victim), "5b0c1f8e-8d0a-4c4f-b0a4-0d3c6a1d2e3f"):
        response = await client.delete(
            f"/v1/auth/sessions/{target}", headers=bearer(mallory["access_token"])
        )
        problem(response, 404, "not_found")
    assert (await refresh(client, victim)).status_code == 200
    problem(
        await client.delete("/v1/auth/sessions/nope", headers=bearer(mallory["access_token"])),
        422,
        "validation_error",
    )


async def test_logout_all_ends_every_session(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    email = "everywhere@example.org"
    await verified_account(client, mail_sink, email)
    one, two = await login(client, email), await login(client, email)

    done = await client.post("/v1/auth/logout-all", headers=bearer(one["access_token"]))

    assert done.status_code == 204, done.text
    for pair in (one, two):
        problem(await refresh(client, pair), 401, "invalid_token")
        problem(
            await client.get("/v1/auth/sessions", headers=bearer(pair["access_token"])),
            401,
            "invalid_token",
        )


async def test_change_email_moves_the_account_and_the_old_address_can_undo_it(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    old, new = "old@example.org", "New@Example.org"
    await verified_account(client, mail_sink, old)
    this = await login(client, old)
    other = await login(client, old)

    asked = await client.post(
        "/v1/auth/me/email",
        json={"new_email": new, "password": STRONG_PASSWORD},
        headers=bearer(this["access_token"]),
    )
    assert asked.status_code == 202, asked.text
    assert set(asked.json()) == {"code_expires_in", "resend_after"}
    code = await latest_code(mail_sink, "New@example.org")
    old_mail = len(mail_sink.to(old))

    verified = await client.post(
        "/v1/auth/me/email/verify", json={"code": code}, headers=bearer(this["access_token"])
    )

    assert verified.status_code == 200, verified.text
    body = verified.json()
    assert body["email"] == "New@example.org"
    me = await client.get("/v1/auth/me", headers=bearer(body["tokens"]["access_token"]))
    assert me.json()["email"] == "New@example.org"
    problem(await refresh(client, other), 401, "invalid_token")
    assert (await refresh(client, body["tokens"])).status_code == 200

    undo_code = await latest_code(mail_sink, old, old_mail + 1)
    wrong = await client.post(
        "/v1/auth/me/email/undo", json={"email": "someone@example.org", "code": undo_code}
    )
    problem(wrong, 400, "invalid_code")
    undone = await client.post("/v1/auth/me/email/undo", json={"email": old, "code": undo_code})
    assert undone.status_code == 204, undone.text
    notice = await mail_sink.wait_for(old, old_mail + 2)
    assert notice[-1].subject == "NATO Multimedia: your email change has been undone"
    # Back at the old address; whoever changed it is out, and their password too.
    problem(await refresh(client, body["tokens"]), 401, "invalid_token")
    failed = await client.post("/v1/auth/login", json={"email": old, "password": STRONG_PASSWORD})
    problem(failed, 401, "invalid_credentials")
    again = await client.post("/v1/auth/me/email/undo", json={"email": old, "code": undo_code})
    problem(again, 400, "invalid_code")


async def test_change_email_to_a_taken_address_answers_alike_and_tells_its_owner(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    await verified_account(client, mail_sink, "taker@example.org")
    await verified_account(client, mail_sink, "owner@example.org")
    pair = await login(client, "taker@example.org")
    before = len(mail_sink.to("owner@example.org"))

    asked = await client.post(
        "/v1/auth/me/email",
        json={"new_email": "owner@example.org", "password": STRONG_PASSWORD},
        headers=bearer(pair["access_token"]),
    )

    assert asked.status_code == 202, asked.text
    notices = await mail_sink.wait_for("owner@example.org", before + 1)
    assert notices[-1].code is None
    wrong = await client.post(
        "/v1/auth/me/email",
        json={"new_email": "fresh@example.org", "password": "Wrong-Password-11"},
        headers=bearer(pair["access_token"]),
    )
    problem(wrong, 403, "invalid_credentials")


async def test_delete_account_erases_it_and_the_address_can_register_again(
    app: FastAPI, client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    email = "leaving@example.org"
    pair = await verified_account(client, mail_sink, email)
    await create_client(client, pair["access_token"], "script")
    session_pair = await login(client, email)
    async with app.state.database.sessionmaker() as session:
        user_id = await session.scalar(select(User.id).where(User.email_canonical == email))

    wrong = await client.request(
        "DELETE",
        "/v1/auth/me",
        json={"password": "Wrong-Password-11"},
        headers=bearer(session_pair["access_token"]),
    )
    problem(wrong, 403, "invalid_credentials")
    before = len(mail_sink.to(email))
    deleted = await client.request(
        "DELETE",
        "/v1/auth/me",
        json={"password": STRONG_PASSWORD},
        headers=bearer(session_pair["access_token"]),
    )

    assert deleted.status_code == 204, deleted.text
    goodbye = await mail_sink.wait_for(email, before + 1)
    assert "deleted" in goodbye[-1].subject
    for model, column in (
        (User, User.id),
        (OneTimeCode, OneTimeCode.user_id),
        (SignInSession, SignInSession.user_id),
        (KnownLoginAddress, KnownLoginAddress.user_id),
        (ApiClient, ApiClient.owner_id),
    ):
        assert await count(app, model, column == user_id) == 0, model
    # Only the goodbye, which names the address and no account, is left in the outbox.
    async with app.state.database.sessionmaker() as session:
        kinds = list(
            await session.scalars(
                select(OutboxMessage.kind).where(OutboxMessage.recipient == email)
            )
        )
    assert kinds == ["account_deleted"]
    problem(
        await client.get("/v1/auth/me", headers=bearer(pair["access_token"])), 401, "invalid_token"
    )
    problem(await refresh(client, session_pair), 401, "invalid_token")
    assert (await register(client, email)).status_code == 202
    assert await count(app, User, User.email_canonical == email) == 1


async def test_export_holds_the_account_sessions_and_clients_without_secrets(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    email = "export@example.org"
    pair = await verified_account(client, mail_sink, email)
    created = await create_client(client, pair["access_token"], "script")
    session_pair = await login(client, email, agent="exporter")

    exported = await client.get("/v1/auth/me/export", headers=bearer(session_pair["access_token"]))

    assert exported.status_code == 200, exported.text
    body = exported.json()
    assert body["account"]["email"] == email
    # What the newsletter export tells the mailing tool is the owner's to see too.
    assert "newsletter_since" in body["account"]
    assert [c["client_id"] for c in body["api_clients"]] == [created["client_id"]]
    assert created["client_secret"] not in exported.text
    assert any(s["user_agent"] == "exporter" for s in body["sessions"])
    assert body["login_addresses"]["count"] >= 1
    assert "HMAC" in body["login_addresses"]["note"]


async def test_patch_me_sets_language_and_newsletter_and_me_shows_them(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    pair = await verified_account(client, mail_sink, "lang@example.org")
    headers = bearer(pair["access_token"])
    assert (await client.get("/v1/auth/me", headers=headers)).json()["language"] == "en"

    patched = await client.patch("/v1/auth/me", json={"language": "fr"}, headers=headers)

    assert patched.status_code == 200, patched.text
    assert patched.json()["language"] == "fr"
    me = (await client.get("/v1/auth/me", headers=headers)).json()
    assert me["language"] == "fr"
    both = await client.patch(
        "/v1/auth/me", json={"newsletter": True, "language": "en"}, headers=headers
    )
    assert (both.json()["newsletter"], both.json()["language"]) == (True, "en")
    problem(
        await client.patch("/v1/auth/me", json={"language": "de"}, headers=headers),
        422,
        "validation_error",
    )


async def test_session_addresses_are_cleared_after_30_days(
    app: FastAPI, client: httpx.AsyncClient, mail_sink: MailSink, clock: FrozenClock
) -> None:
    email = "retention@example.org"
    await verified_account(client, mail_sink, email)
    await login(client, email)
    kept = SignInSession.client_address.is_not(None)

    await purge_session_addresses(app.state.database, clock.now() + timedelta(days=29))
    # The verification's session and the login's.
    assert await count(app, SignInSession, kept) == 2
    await purge_session_addresses(app.state.database, clock.now() + timedelta(days=31))
    assert await count(app, SignInSession, kept) == 0
    # Its refresh tokens expired after 30 days too: the row itself is gone.
    assert await count(app, SignInSession) == 0


async def test_mail_retry_composes_the_new_notices_again_and_refuses_their_codes(
    app: FastAPI, client: httpx.AsyncClient, settings: AuthSettings
) -> None:
    # Composed again in the account's language, where there still is an account.
    assert (
        await client.post(
            "/v1/auth/register",
            json={"email": "fr@example.fr", "password": STRONG_PASSWORD, "language": "fr"},
        )
    ).status_code == 202
    await code_requests_answered(client)
    recomposer = Recomposer(settings, code_hash_key(settings))
    async with app.state.database.sessionmaker() as session:
        row = OutboxMessage(recipient="fr@example.fr", kind="email_change_taken", subject="")
        french = await recomposer.compose(session, row)
        assert french.subject.startswith("NATO Multimedia : quelqu’un a essayé")
        for kind, subject in (
            ("account_deleted", "NATO Multimedia: your account has been deleted"),
            ("email_change_taken", "NATO Multimedia: someone tried to use your address for"),
            ("email_change_undone", "NATO Multimedia: your email change has been undone"),
        ):
            row = OutboxMessage(recipient="gone@example.org", kind=kind, subject="")
            mail = await recomposer.compose(session, row)
            assert mail.subject.startswith(subject)
            assert mail.kind == kind
        for kind in ("email_change_code", "email_changed"):
            row = OutboxMessage(recipient="gone@example.org", kind=kind, subject="")
            with pytest.raises(CannotRetry, match="email change"):
                await recomposer.compose(session, row)


async def test_the_session_a_verification_starts_is_listed_at_once(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    email = "verified-session@example.org"
    assert (await register(client, email)).status_code == 202
    code = await latest_code(mail_sink, email)
    verified = await client.post(
        "/v1/auth/verify",
        json={"email": email, "code": code},
        headers={"User-Agent": "signup-tab"},
    )
    assert verified.status_code == 200, verified.text
    pair = verified.json()

    listed = await client.get("/v1/auth/sessions", headers=bearer(pair["access_token"]))
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["items"]
    assert item["id"] == sid(pair)
    assert item["current"] is True
    assert item["user_agent"] == "signup-tab"
    assert item["client_address"] == "127.0.0.1"
