"""English and French (issue 19): mail in the account's language, problems in the caller's.

Mail is read from the real SMTP sink the suite runs; every flow runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from email.utils import parseaddr
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from services.auth.config import AuthSettings
from services.auth.models import CodeRequest
from services.auth.passwords import MIN_LENGTH
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

pytestmark = pytest.mark.usefixtures("backend")

FRENCH_SUBJECT = "NATO Multimedia : votre code de vérification"


def _until(clock: FrozenClock, minutes: int = 30) -> str:
    return (clock.now() + timedelta(minutes=minutes)).strftime("%H:%M UTC")


async def test_a_french_registration_gets_a_french_code_mail(
    client: httpx.AsyncClient, mail_sink: MailSink, clock: FrozenClock
) -> None:
    response = await register(client, "amelie@example.fr", language="fr")
    assert response.status_code == 202, response.text

    mail = (await mail_sink.wait_for("amelie@example.fr"))[0]
    assert mail.subject == FRENCH_SUBJECT
    assert parseaddr(mail.message["From"])[0] == "NATO Multimedia"
    assert mail.message.get_content_type() == "multipart/alternative"
    assert mail.code is not None
    assert mail.text.startswith(f"Votre code : {mail.code}")
    assert f"Il est valable 30 minutes, jusqu’à {_until(clock)}." in mail.text
    assert "Your code" not in mail.text
    assert "valid for" not in mail.text
    assert '<html lang="fr">' in mail.html
    assert mail.code in mail.html
    assert "jusqu’à" in mail.html
    # A first code replaces none.
    assert "ne fonctionnent plus" not in mail.text

    resent = await client.post("/v1/auth/verify/resend", json={"email": "amelie@example.fr"})
    assert resent.status_code == 202
    again = (await mail_sink.wait_for("amelie@example.fr", 2))[-1]
    assert again.subject == FRENCH_SUBJECT
    assert "les codes envoyés auparavant ne fonctionnent plus" in again.text
    old = await client.post(
        "/v1/auth/verify", json={"email": "amelie@example.fr", "code": mail.code}
    )
    if mail.code != again.code:
        assert old.status_code == 400, old.text

    verified = await client.post(
        "/v1/auth/verify", json={"email": "amelie@example.fr", "code": again.code}
    )
    assert verified.status_code == 200, verified.text
    me = await client.get("/v1/auth/me", headers=bearer(verified.json()["access_token"]))
    assert me.json()["language"] == "fr"


async def test_an_english_registration_says_so_in_english(
    client: httpx.AsyncClient, mail_sink: MailSink, clock: FrozenClock
) -> None:
    assert (await register(client, "ada@example.org")).status_code == 202
    mail = (await mail_sink.wait_for("ada@example.org"))[0]
    assert mail.subject == "NATO Multimedia: your verification code"
    assert f"It is valid for 30 minutes, until {_until(clock)}." in mail.text
    assert '<html lang="en">' in mail.html


async def test_mail_follows_the_accounts_language_not_the_requests(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    pair = await verified_account(client, mail_sink, "owner@example.org")
    headers = bearer(pair["access_token"])
    changed = await client.patch("/v1/auth/me", json={"language": "fr"}, headers=headers)
    assert changed.status_code == 200, changed.text

    # Registered again in English by someone else: the owner is told in French, as chosen.
    taken = await register(client, "owner@example.org", "Another-Pass-77!", language="en")
    assert taken.status_code == 202
    notice = (await mail_sink.wait_for("owner@example.org", 2))[-1]
    assert notice.subject == "NATO Multimedia : vous avez déjà un compte"
    assert "Vous avez déjà un compte : rien n’a été modifié." in notice.text

    asked = await client.post(
        "/v1/auth/password-reset",
        json={"email": "owner@example.org"},
        headers={"Accept-Language": "en"},
    )
    assert asked.status_code == 202
    reset = (await mail_sink.wait_for("owner@example.org", 3))[-1]
    assert reset.subject == "NATO Multimedia : votre code de réinitialisation du mot de passe"
    assert reset.code is not None

    back = await client.patch("/v1/auth/me", json={"language": "en"}, headers=headers)
    assert back.status_code == 200
    await client.post("/v1/auth/password-reset", json={"email": "owner@example.org"})
    english = (await mail_sink.wait_for("owner@example.org", 4))[-1]
    assert english.subject == "NATO Multimedia: your password reset code"


@pytest.fixture
def recorded_requests() -> Iterator[list[CodeRequest]]:
    """Every code-request row as it is written, before the sender answers (and deletes) it."""
    seen: list[CodeRequest] = []

    def collect(session: Session, *_: Any) -> None:
        seen.extend(item for item in session.new if isinstance(item, CodeRequest))

    event.listen(Session, "before_flush", collect)
    try:
        yield seen
    finally:
        event.remove(Session, "before_flush", collect)


async def test_a_code_request_carries_the_language_it_was_asked_in(
    client: httpx.AsyncClient, recorded_requests: list[CodeRequest]
) -> None:
    await register(client, "new@example.fr", language="fr")
    await register(client, "new@example.org")
    await client.post(
        "/v1/auth/password-reset",
        json={"email": "nobody@example.fr"},
        headers={"Accept-Language": "fr-CA, en;q=0.5"},
    )
    await client.post("/v1/auth/verify/resend", json={"email": "nobody@example.org"})
    await code_requests_answered(client)
    assert [(row.address, row.action, row.language) for row in recorded_requests] == [
        ("new@example.fr", "register", "fr"),
        ("new@example.org", "register", "en"),
        ("nobody@example.fr", "reset", "fr"),
        ("nobody@example.org", "resend", None),
    ]


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


@pytest.mark.parametrize(
    ("accept_language", "language"),
    [
        (None, "en"),
        ("fr", "fr"),
        ("fr-BE, en;q=0.8", "fr"),
        ("de, fr;q=0.5, en;q=0.4", "fr"),
        ("en-GB, fr;q=0.9", "en"),
        ("en;q=0.2, fr;q=0.7", "fr"),
        ("de", "en"),
        ("nonsense;;q=x", "en"),
    ],
)
async def test_problem_details_follow_accept_language(
    client: httpx.AsyncClient, accept_language: str | None, language: str
) -> None:
    headers = {"Accept-Language": accept_language} if accept_language is not None else {}
    response = await client.post(
        "/v1/auth/login",
        json={"email": "nobody@example.org", "password": STRONG_PASSWORD},
        headers=headers,
    )
    body = _problem(response, 401, "invalid_credentials")
    expected = {
        "en": ("Unauthorized", "The email or password is wrong."),
        "fr": ("Non autorisé", "L’adresse e-mail ou le mot de passe est erroné."),
    }[language]
    assert (body["title"], body["detail"]) == expected
    assert response.headers["content-language"] == language


async def test_a_french_registration_is_refused_in_french(client: httpx.AsyncClient) -> None:
    refused = await register(client, "weak@example.fr", "password", language="fr")
    body = _problem(refused, 422, "weak_password")
    assert body["detail"] == "Le mot de passe ne respecte pas les règles."
    messages = {error["code"]: error["message"] for error in body["errors"]}
    assert messages["missing_uppercase"] == "Ajoutez une lettre majuscule."

    # Accept-Language, when sent, is the caller's own word on how to be answered.
    english = await register(
        client, "weak@example.fr", "password", language="fr", headers={"Accept-Language": "en"}
    )
    assert _problem(english, 422, "weak_password")["detail"] == (
        "The password does not meet the rules."
    )


async def test_problems_of_a_signed_in_caller_follow_accept_language(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    pair = await verified_account(client, mail_sink, "reader@example.org")
    wrong = await client.post(
        "/v1/auth/verify",
        json={"email": "reader@example.org", "code": "000000"},
        headers={"Accept-Language": "fr"},
    )
    body = _problem(wrong, 400, "invalid_code")
    assert body["detail"] == "Le code est erroné ou n’est plus valable."
    assert body["title"] == "Requête incorrecte"
    assert pair["access_token"]


async def test_the_code_is_found_in_mail_of_either_language(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    for address, language in (("one@example.fr", "fr"), ("two@example.org", "en")):
        await register(client, address, language=language)
        code = await latest_code(mail_sink, address)
        assert re.fullmatch(r"\d{6}", code)
        verified = await client.post("/v1/auth/verify", json={"email": address, "code": code})
        assert verified.status_code == 200, verified.text


@pytest.mark.parametrize(
    ("accept_language", "too_short", "too_large"),
    [
        ("en", "Use at least {} characters.", "The request body exceeds {} bytes."),
        ("fr", "Utilisez au moins {} caractères.", "Le corps de la requête dépasse {} octets."),
    ],
)
async def test_texts_with_values_are_translated_then_filled(
    client: httpx.AsyncClient,
    settings: AuthSettings,
    accept_language: str,
    too_short: str,
    too_large: str,
) -> None:
    headers = {"Accept-Language": accept_language}
    short = await register(client, "short@example.org", "Ab1!", headers=headers)
    messages = {
        error["code"]: error["message"] for error in _problem(short, 422, "weak_password")["errors"]
    }
    assert messages["too_short"] == too_short.format(MIN_LENGTH)

    limit = settings.max_body_bytes
    large = await client.post(
        "/v1/auth/register",
        content=b'{"email": "' + b"a" * limit + b'"}',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert _problem(large, 413, "payload_too_large")["detail"] == too_large.format(limit)
