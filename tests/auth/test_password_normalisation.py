"""Passwords over HTTP: NFKC-normalised before the rule and the hash, invisible characters
refused, over-long ones judged by the rule, and accounts hashed before normalisation still in."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select, update

from services.auth.config import AuthSettings
from services.auth.models import User
from services.auth.passwords import PasswordHasher
from services.common.database import Database
from services.gateway.mail_sink import MailSink
from tests.auth.flows import register, verified_account
from tests.auth.test_passwords import full_width
from tests.auth.test_router import problem

# Full-width letters and digits: what some input methods type for "Correct-Horse-42-Battery".
FULL_WIDTH = full_width("Correct-Horse-42-Battery")
ASCII_FORM = "Correct-Horse-42-Battery"


async def _login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/v1/auth/login", json={"email": email, "password": password})


async def _stored_hash(database_url: str, email: str) -> str:
    database = Database(database_url)
    try:
        async with database.sessionmaker() as session:
            stored = await session.scalar(select(User.password_hash).where(User.email == email))
    finally:
        await database.dispose()
    assert stored is not None
    return stored


@pytest.mark.parametrize(
    ("password", "failed"),
    [
        # Over the schema's old 1024-character bound too: the rule answers, not the schema.
        ("Aa1!" * 40, ["too_long"]),
        ("Aa1!" * 300, ["too_long"]),
        ("Correct-Horse-42-Battery\u200b", ["invalid_character"]),
        ("Correct-Horse-42-Battery\x00", ["invalid_character"]),
        ("Correct-Horse-42-Battery\u202e", ["invalid_character"]),
        # Invisible characters are not the symbol the rule asks for.
        ("CorrectHorse42Battery\u2066", ["missing_symbol", "invalid_character"]),
        # The email's local part hidden behind full-width letters.
        (full_width("Grace-Long-Pass-42"), ["contains_email"]),
    ],
)
async def test_the_rule_judges_the_normalised_password(
    client: httpx.AsyncClient, mail_sink: MailSink, password: str, failed: list[str]
) -> None:
    response = await register(client, "grace@example.com", password)
    body = problem(response, 422, "weak_password")
    assert [error["code"] for error in body["errors"]] == failed
    assert all(error["message"] for error in body["errors"])
    assert mail_sink.to("grace@example.com") == []


async def test_an_over_long_new_password_at_reset_is_a_weak_password(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    email = "reset@example.com"
    await verified_account(client, mail_sink, email)
    assert (await client.post("/v1/auth/password-reset", json={"email": email})).status_code == 202
    code = (await mail_sink.wait_for(email, 2))[-1].code
    verified = await client.post(
        "/v1/auth/password-reset/verify", json={"email": email, "code": code}
    )
    assert verified.status_code == 200, verified.text
    response = await client.post(
        "/v1/auth/password-reset/complete",
        json={"reset_token": verified.json()["reset_token"], "new_password": "Aa1!" * 300},
    )
    body = problem(response, 422, "weak_password")
    assert [(error["field"], error["code"]) for error in body["errors"]] == [
        ("new_password", "too_long")
    ]


async def test_the_same_password_typed_in_another_form_logs_in(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    await verified_account(client, mail_sink, "wide@example.com", FULL_WIDTH)
    assert (await _login(client, "wide@example.com", ASCII_FORM)).status_code == 200
    assert (await _login(client, "wide@example.com", FULL_WIDTH)).status_code == 200


async def test_an_account_hashed_before_normalisation_logs_in_and_is_rehashed(
    client: httpx.AsyncClient, mail_sink: MailSink, settings: AuthSettings, database_url: str
) -> None:
    email = "legacy@example.com"
    await verified_account(client, mail_sink, email)
    # What registration stored before passwords were normalised: the raw full-width form.
    legacy_hash = PasswordHasher(settings).context.hash(FULL_WIDTH)
    database = Database(database_url)
    try:
        async with database.sessionmaker() as session, session.begin():
            await session.execute(
                update(User).where(User.email == email).values(password_hash=legacy_hash)
            )
    finally:
        await database.dispose()

    assert (await _login(client, email, FULL_WIDTH)).status_code == 200

    rehashed = await _stored_hash(database_url, email)
    assert rehashed != legacy_hash
    context = PasswordHasher(settings).context
    assert context.verify(ASCII_FORM, rehashed)
    # From now on either form logs in; a wrong password still does not.
    assert (await _login(client, email, ASCII_FORM)).status_code == 200
    assert (await _login(client, email, FULL_WIDTH)).status_code == 200
    problem(await _login(client, email, full_width("Wrong-Horse-42")), 401, "invalid_credentials")
