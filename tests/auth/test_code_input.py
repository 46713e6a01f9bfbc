"""A code typed as people type it ("892 537", "892-537") is accepted wherever a code is asked
for; what is not a code gets a 422 saying in words what is expected."""

from __future__ import annotations

import httpx
import pytest

from services.gateway.mail_sink import MailSink
from tests.auth.flows import STRONG_PASSWORD, bearer, latest_code, register, verified_account
from tests.auth.test_router import problem


def _spaced(code: str) -> str:
    return f"{code[:3]} {code[3:]}"


def _hyphenated(code: str) -> str:
    return f"{code[:3]}-{code[3:]}"


@pytest.mark.parametrize("typed", [_spaced, _hyphenated])
async def test_verify_accepts_a_grouped_code(
    client: httpx.AsyncClient, mail_sink: MailSink, typed: object
) -> None:
    assert callable(typed)
    email = f"grouped-{typed.__name__.strip('_')}@example.org"
    assert (await register(client, email)).status_code == 202
    code = await latest_code(mail_sink, email)
    verified = await client.post("/v1/auth/verify", json={"email": email, "code": typed(code)})
    assert verified.status_code == 200, verified.text


async def test_password_reset_verify_accepts_a_grouped_code(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    email = "grouped-reset@example.org"
    await verified_account(client, mail_sink, email)
    before = len(mail_sink.to(email))
    assert (await client.post("/v1/auth/password-reset", json={"email": email})).status_code == 202
    code = await latest_code(mail_sink, email, before + 1)
    proven = await client.post(
        "/v1/auth/password-reset/verify", json={"email": email, "code": _spaced(code)}
    )
    assert proven.status_code == 200, proven.text


async def test_email_change_verify_accepts_a_grouped_code(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    pair = await verified_account(client, mail_sink, "grouped-old@example.org")
    asked = await client.post(
        "/v1/auth/me/email",
        json={"new_email": "grouped-new@example.org", "password": STRONG_PASSWORD},
        headers=bearer(pair["access_token"]),
    )
    assert asked.status_code == 202, asked.text
    code = await latest_code(mail_sink, "grouped-new@example.org")
    verified = await client.post(
        "/v1/auth/me/email/verify",
        json={"code": _hyphenated(code)},
        headers=bearer(pair["access_token"]),
    )
    assert verified.status_code == 200, verified.text


@pytest.mark.parametrize("typed", ["12345", "1234567", "12a456", "code", "", "١٢٣٤٥٦"])
async def test_what_is_not_a_code_is_told_what_is_expected(
    client: httpx.AsyncClient, typed: str
) -> None:
    response = await client.post(
        "/v1/auth/verify", json={"email": "someone@example.org", "code": typed}
    )
    body = problem(response, 422, "validation_error")
    [error] = body["errors"]
    assert error["field"] == "code"
    assert error["code"] == "invalid_code_format"
    assert "6-digit code" in error["message"]
    assert "\\d" not in error["message"]
    assert "^" not in error["message"]


async def test_a_boolean_is_a_json_boolean(client: httpx.AsyncClient) -> None:
    # The document says boolean: 0 or "yes" is refused, not guessed (schemathesis found 0).
    for value in (0, 1, "yes", "true"):
        response = await client.post(
            "/v1/auth/register",
            json={"email": "bool@example.org", "password": STRONG_PASSWORD, "newsletter": value},
        )
        problem(response, 422, "validation_error")
