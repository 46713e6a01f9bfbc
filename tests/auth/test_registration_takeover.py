"""Pre-registration account takeover (attack review, issue 15).

An attacker registers an address he does not own, with his password, and signs in: unverified
accounts get tokens. The owner then registers with her own password and redeems the emailed
code. Nothing the attacker held before that moment may survive it: not his sessions, not his
password, not his address's standing with the login limits.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.auth.login_addresses import KnownAddresses
from services.common.database import UnitOfWork
from services.gateway.mail_sink import MailSink
from tests.auth.flows import bearer, latest_code, register

VICTIM = "victim@example.org"
ATTACKER_PASSWORD = "Attacker-Owns-It-666!"
OWNER_PASSWORD = "Owner-Real-Secret-2026?"
ATTACKER_ADDRESS = "198.51.100.66"

pytestmark = pytest.mark.usefixtures("backend")


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


@pytest.fixture
async def attacker(app: FastAPI, client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """The same running app, reached from another client address."""
    transport = httpx.ASGITransport(app=app, client=(ATTACKER_ADDRESS, 40_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def login(client: httpx.AsyncClient, password: str) -> httpx.Response:
    return await client.post("/v1/auth/login", json={"email": VICTIM, "password": password})


async def verify(client: httpx.AsyncClient, code: str, **extra: str) -> httpx.Response:
    return await client.post("/v1/auth/verify", json={"email": VICTIM, "code": code, **extra})


async def address_is_known(app: FastAPI, access_token: str, address: str) -> bool:
    known: KnownAddresses = app.state.known_addresses
    me = await app_client_me(app, access_token)
    async with UnitOfWork(app.state.database) as session:
        return await known.is_known(session, uuid.UUID(me["id"]), address)


async def app_client_me(app: FastAPI, access_token: str) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/v1/auth/me", headers=bearer(access_token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def assert_attacker_is_out(
    app: FastAPI, client: httpx.AsyncClient, attacker: httpx.AsyncClient, held: dict[str, Any]
) -> None:
    """After the owner's verification: the attacker's session, password and address are gone."""
    refreshed = await attacker.post(
        "/v1/auth/token/refresh", json={"refresh_token": held["refresh_token"]}
    )
    problem(refreshed, 401, "invalid_token")
    # His access token outlives his session by minutes: it must not mint lasting credentials.
    minted = await attacker.post(
        "/v1/auth/clients", json={"name": "mine"}, headers=bearer(held["access_token"])
    )
    problem(minted, 401, "invalid_token")
    problem(await login(attacker, ATTACKER_PASSWORD), 401, "invalid_credentials")
    owner = await login(client, OWNER_PASSWORD)
    assert owner.status_code == 200, owner.text
    me = await app_client_me(app, owner.json()["access_token"])
    assert me["email_verified"] is True
    assert not await address_is_known(app, owner.json()["access_token"], ATTACKER_ADDRESS)


async def test_attacker_registers_first_and_the_owner_verifies_with_her_password(
    app: FastAPI, client: httpx.AsyncClient, attacker: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    assert (await register(attacker, VICTIM, ATTACKER_PASSWORD)).status_code == 202
    held = (await login(attacker, ATTACKER_PASSWORD)).json()
    assert await address_is_known(app, held["access_token"], ATTACKER_ADDRESS)

    assert (await register(client, VICTIM, OWNER_PASSWORD)).status_code == 202
    code = await latest_code(mail_sink, VICTIM, 2)
    verified = await verify(client, code, password=OWNER_PASSWORD)
    assert verified.status_code == 200, verified.text

    await assert_attacker_is_out(app, client, attacker, held)


async def test_a_contested_code_without_the_password_is_refused_and_not_spent(
    app: FastAPI, client: httpx.AsyncClient, attacker: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    await register(attacker, VICTIM, ATTACKER_PASSWORD)
    held = (await login(attacker, ATTACKER_PASSWORD)).json()
    await register(client, VICTIM, OWNER_PASSWORD)
    code = await latest_code(mail_sink, VICTIM, 2)

    body = problem(await verify(client, code), 422, "password_required")
    assert body["errors"][0]["field"] == "password"
    # Still the attacker's password, still his session: nothing was decided yet.
    assert (await login(attacker, ATTACKER_PASSWORD)).status_code == 200

    verified = await verify(client, code, password=OWNER_PASSWORD)
    assert verified.status_code == 200, verified.text
    await assert_attacker_is_out(app, client, attacker, held)


async def test_attacker_registering_again_after_the_owner_contests_it(
    app: FastAPI, client: httpx.AsyncClient, attacker: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    await register(client, VICTIM, OWNER_PASSWORD)
    await register(attacker, VICTIM, ATTACKER_PASSWORD)
    held = (await login(attacker, ATTACKER_PASSWORD)).status_code
    assert held == 401  # the password on file is still the owner's
    code = await latest_code(mail_sink, VICTIM, 2)

    problem(await verify(client, code), 422, "password_required")
    assert (await verify(client, code, password=OWNER_PASSWORD)).status_code == 200
    problem(await login(attacker, ATTACKER_PASSWORD), 401, "invalid_credentials")
    assert (await login(client, OWNER_PASSWORD)).status_code == 200


async def test_old_clients_without_a_password_keep_working_when_uncontested(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    await register(client, VICTIM, OWNER_PASSWORD)
    # The same person registering twice (same password) contests nothing.
    await register(client, VICTIM, OWNER_PASSWORD)
    code = await latest_code(mail_sink, VICTIM, 2)
    assert (await verify(client, code)).status_code == 200
    assert (await login(client, OWNER_PASSWORD)).status_code == 200


async def test_verification_ends_every_session_opened_before_it(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    await register(client, VICTIM, OWNER_PASSWORD)
    before = (await login(client, OWNER_PASSWORD)).json()
    code = await latest_code(mail_sink, VICTIM, 1)
    pair = (await verify(client, code)).json()

    stale = await client.post(
        "/v1/auth/token/refresh", json={"refresh_token": before["refresh_token"]}
    )
    problem(stale, 401, "invalid_token")
    fresh = await client.post(
        "/v1/auth/token/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert fresh.status_code == 200, fresh.text


async def test_a_weak_password_at_verify_spends_no_try(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    await register(client, VICTIM, OWNER_PASSWORD)
    code = await latest_code(mail_sink, VICTIM, 1)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(6):
        problem(await verify(client, wrong, password="short"), 422, "weak_password")
    verified = await verify(client, code, password="Another-Owner-Pass-99!")
    assert verified.status_code == 200, verified.text
    problem(await login(client, OWNER_PASSWORD), 401, "invalid_credentials")
    assert (await login(client, "Another-Owner-Pass-99!")).status_code == 200


async def test_a_reset_code_that_verifies_the_address_ends_the_attackers_hold(
    app: FastAPI, client: httpx.AsyncClient, attacker: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    await register(attacker, VICTIM, ATTACKER_PASSWORD)
    held = (await login(attacker, ATTACKER_PASSWORD)).json()

    assert (await client.post("/v1/auth/password-reset", json={"email": VICTIM})).status_code == 202
    code = await latest_code(mail_sink, VICTIM, 2)
    reset = await client.post(
        "/v1/auth/password-reset/verify", json={"email": VICTIM, "code": code}
    )
    assert reset.status_code == 200, reset.text

    # Even if the owner never completes the reset, the attacker's password and session are dead.
    problem(await login(attacker, ATTACKER_PASSWORD), 401, "invalid_credentials")
    refreshed = await attacker.post(
        "/v1/auth/token/refresh", json={"refresh_token": held["refresh_token"]}
    )
    problem(refreshed, 401, "invalid_token")

    completed = await client.post(
        "/v1/auth/password-reset/complete",
        json={"reset_token": reset.json()["reset_token"], "new_password": OWNER_PASSWORD},
    )
    assert completed.status_code == 204, completed.text
    await assert_attacker_is_out(app, client, attacker, held)
