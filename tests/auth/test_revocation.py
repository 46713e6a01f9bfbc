"""A password reset ends every session and API client at auth itself, checked in its database.

What media and news learn of it (through Redis) is in tests/security/test_revocation.py.
"""

from __future__ import annotations

from typing import Any

import httpx
from jose import jwt
from sqlalchemy import update

from services.auth.models import User
from services.gateway.mail_sink import MailSink
from tests.auth.flows import bearer, latest_code, verified_account

NEW_PASSWORD = "Brand-New-Secret-99"


def problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code, response.text


async def reset_password(
    client: httpx.AsyncClient, sink: MailSink, email: str, new_password: str = NEW_PASSWORD
) -> None:
    before = len(sink.to(email))
    assert (await client.post("/v1/auth/password-reset", json={"email": email})).status_code == 202
    code = await latest_code(sink, email, before + 1)
    verified = await client.post(
        "/v1/auth/password-reset/verify", json={"email": email, "code": code}
    )
    assert verified.status_code == 200, verified.text
    done = await client.post(
        "/v1/auth/password-reset/complete",
        json={"reset_token": verified.json()["reset_token"], "new_password": new_password},
    )
    assert done.status_code == 204, done.text


async def create_client(client: httpx.AsyncClient, token: str, name: str) -> dict[str, Any]:
    created = await client.post("/v1/auth/clients", json={"name": name}, headers=bearer(token))
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def client_token(client: httpx.AsyncClient, credentials: dict[str, Any]) -> httpx.Response:
    return await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": credentials["client_id"],
            "client_secret": credentials["client_secret"],
        },
    )


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.get_unverified_claims(token)
    return decoded


async def test_access_tokens_carry_the_session_epoch_a_reset_raises(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    email = "epoch@example.org"
    pair = await verified_account(client, mail_sink, email)
    # Verifying the address ended the sessions opened before it: epoch 0 to 1.
    assert claims(pair["access_token"])["sep"] == 1
    await reset_password(client, mail_sink, email)
    login = await client.post("/v1/auth/login", json={"email": email, "password": NEW_PASSWORD})
    assert claims(login.json()["access_token"])["sep"] == 2
    refreshed = await client.post(
        "/v1/auth/token/refresh", json={"refresh_token": login.json()["refresh_token"]}
    )
    assert claims(refreshed.json()["access_token"])["sep"] == 2


async def test_after_a_reset_the_old_access_token_changes_nothing_and_mints_nothing(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    email = "stolen-token@example.org"
    old = (await verified_account(client, mail_sink, email))["access_token"]
    kept = await create_client(client, old, "Before the reset")
    # The token works until the owner resets the password...
    assert (await client.get("/v1/auth/clients", headers=bearer(old))).status_code == 200

    await reset_password(client, mail_sink, email)

    # ...and then, though unexpired and validly signed, no longer at any call that changes the
    # account or mints credentials.
    problem(
        await client.post("/v1/auth/clients", json={"name": "thief"}, headers=bearer(old)),
        401,
        "invalid_token",
    )
    problem(await client.get("/v1/auth/clients", headers=bearer(old)), 401, "invalid_token")
    problem(
        await client.delete(f"/v1/auth/clients/{kept['client_id']}", headers=bearer(old)),
        401,
        "invalid_token",
    )
    problem(
        await client.put("/v1/auth/me/newsletter", json={"subscribed": True}, headers=bearer(old)),
        401,
        "invalid_token",
    )
    refused = await client.post("/v1/auth/clients", json={"name": "thief"}, headers=bearer(old))
    assert refused.headers["www-authenticate"].startswith("Bearer")

    # The owner, logged in again, can.
    login = await client.post("/v1/auth/login", json={"email": email, "password": NEW_PASSWORD})
    fresh = login.json()["access_token"]
    await create_client(client, fresh, "After the reset")
    listed = await client.get("/v1/auth/clients", headers=bearer(fresh))
    assert [item["name"] for item in listed.json()["items"]] == ["After the reset"]


async def test_a_reset_revokes_every_api_client_and_the_notice_names_them(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    email = "partner-owner@example.org"
    token = (await verified_account(client, mail_sink, email))["access_token"]
    ingest = await create_client(client, token, "Newsroom ingest")
    archive = await create_client(client, token, "Archive <mirror>")
    assert (await client_token(client, ingest)).status_code == 200

    await reset_password(client, mail_sink, email)

    for credentials in (ingest, archive):
        problem(await client_token(client, credentials), 401, "invalid_client")
    notice = (await mail_sink.wait_for(email, 3))[-1]
    assert notice.subject == "NATO Multimedia: your password has been changed"
    assert "Newsroom ingest" in notice.text
    assert "Archive <mirror>" in notice.text
    assert "Archive &lt;mirror&gt;" in notice.html


async def test_a_reset_of_an_account_without_clients_says_nothing_of_clients(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    email = "no-clients@example.org"
    await verified_account(client, mail_sink, email)
    await reset_password(client, mail_sink, email)
    notice = (await mail_sink.wait_for(email, 3))[-1]
    assert notice.subject == "NATO Multimedia: your password has been changed"
    assert "API client" not in notice.text


async def test_a_token_issued_before_epochs_were_carried_counts_as_epoch_0(
    app: Any, client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    email = "legacy-token@example.org"
    pair = await verified_account(client, mail_sink, email)
    issuer = app.state.issuer
    subject = claims(pair["access_token"])["sub"]
    # An account verified by the previous release is still at epoch 0.
    async with app.state.database.engine.begin() as connection:
        await connection.execute(update(User).values(session_epoch=0))
    # What the previous release issued: the same claims without `sep`.
    legacy = issuer._issue(subject, "media:download", {"email_verified": True}).token
    assert "sep" not in claims(legacy)
    assert (await client.get("/v1/auth/clients", headers=bearer(legacy))).status_code == 200
    await reset_password(client, mail_sink, email)
    problem(await client.get("/v1/auth/clients", headers=bearer(legacy)), 401, "invalid_token")


async def test_client_names_in_the_notice_stay_on_one_line(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    # Whoever held the stolen token named the client: its text must not shape the owner's mail.
    email = "layout@example.org"
    token = (await verified_account(client, mail_sink, email))["access_token"]
    await create_client(client, token, "Ingest\n\nYour account is locked,\r\ncall us\x1b")
    await reset_password(client, mail_sink, email)
    notice = (await mail_sink.wait_for(email, 3))[-1]
    assert "“Ingest Your account is locked, call us”" in notice.text
