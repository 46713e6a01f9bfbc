"""Bearer tokens as security dependencies: parsing, verification, 401s and the document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Security

from services.common.app import create_service_app
from services.common.database import Database
from services.common.jwt import Principal, TokenVerifier
from services.common.security import (
    AuthorizationHeader,
    client_basic,
    optional_principal,
    principal,
)
from services.common.settings import ServiceSettings
from tests.conftest import TokenFactory

REQUIRED = "/v1/probe/required"
OPTIONAL = "/v1/probe/optional"


def _app(tmp_path: Path, verifier: TokenVerifier) -> FastAPI:
    router = APIRouter(prefix="/v1/probe")

    @router.get("/required")
    async def required(caller: Annotated[Principal, Security(principal)]) -> dict[str, Any]:
        return {"subject": caller.subject, "id": id(caller)}

    @router.get("/optional")
    async def optional(
        caller: Annotated[Principal | None, Depends(optional_principal)],
    ) -> dict[str, Any]:
        return {"subject": None if caller is None else caller.subject}

    @router.get("/editor")
    async def editor(
        caller: Annotated[Principal, Security(principal, scopes=["editor"])],
    ) -> dict[str, Any]:
        return {"subject": caller.subject}

    @router.post("/basic")
    async def basic(header: Annotated[str | None, Security(client_basic)]) -> dict[str, Any]:
        return {"header": header}

    @router.get("/open")
    async def open_route() -> dict[str, str]:
        return {"ok": "yes"}

    settings = ServiceSettings(NATOMEDIA_DATA_DIR=tmp_path)
    return create_service_app(
        title="probe",
        description="probe",
        prefix="/v1/probe",
        settings=settings,
        # Never opened: no route touches a database.
        database=Database(f"sqlite+aiosqlite:///{tmp_path / 'probe.sqlite3'}"),
        routers=[router],
        token_verifier=verifier,
    )


@pytest.fixture
def verifier(tokens: TokenFactory) -> TokenVerifier:
    return tokens.verifier()


@pytest.fixture
def app(tmp_path: Path, verifier: TokenVerifier) -> FastAPI:
    return _app(tmp_path, verifier)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def _assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "invalid_token"
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_a_good_token_names_its_subject(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    token = tokens.client("acme")
    for path in (REQUIRED, OPTIONAL):
        response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        assert response.json()["subject"] == "client:acme"


async def test_no_token_is_anonymous_where_optional_and_a_401_where_required(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(OPTIONAL)
    assert response.status_code == 200
    assert response.json() == {"subject": None}
    required = await client.get(REQUIRED)
    _assert_invalid_token(required)
    assert required.json()["detail"] == "An access token is required."


@pytest.mark.parametrize(
    "authorization",
    ["Basic dXNlcjpwYXNz", "Token abc", "Bearer", "Bearer    ", "Bearer\tabc", ""],
)
async def test_another_scheme_or_no_credentials_is_no_token(
    client: httpx.AsyncClient, authorization: str
) -> None:
    response = await client.get(OPTIONAL, headers={"Authorization": authorization})
    assert response.json() == {"subject": None}
    _assert_invalid_token(await client.get(REQUIRED, headers={"Authorization": authorization}))


async def test_the_scheme_is_case_insensitive_and_credentials_are_trimmed(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    token = tokens.client("acme")
    response = await client.get(REQUIRED, headers={"Authorization": f"bEaReR   {token}  "})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", [REQUIRED, OPTIONAL])
async def test_a_bad_token_is_a_401_even_where_a_token_is_optional(
    client: httpx.AsyncClient, tokens: TokenFactory, path: str
) -> None:
    other_issuer = TokenFactory().account()  # well formed, signed by a key nobody trusts
    for token in ("not-a-jwt", other_issuer, tokens.account() + "x"):
        response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
        _assert_invalid_token(response)
        assert response.json()["detail"] != "An access token is required."


async def test_a_route_without_a_token_check_ignores_the_header(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/probe/open", headers={"Authorization": "Bearer garbage"})
    assert response.status_code == 200


async def test_a_token_seen_before_comes_from_the_verifiers_cache(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    verifier: TokenVerifier,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = tokens.account()
    headers = {"Authorization": f"Bearer {token}"}
    first = await client.get(REQUIRED, headers=headers)
    assert first.status_code == 200

    async def uncached(raw: str) -> Principal:
        raise AssertionError("verified again")

    monkeypatch.setattr(verifier, "_verify_uncached", uncached)
    again = await client.get(REQUIRED, headers=headers)
    assert again.status_code == 200
    # The very principal the first request got.
    assert again.json() == first.json()


async def test_the_document_declares_what_each_route_takes(app: FastAPI) -> None:
    document = app.openapi()
    assert document["components"]["securitySchemes"] == {
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        "clientBasic": {"type": "http", "scheme": "basic"},
    }
    paths = document["paths"]
    assert paths[REQUIRED]["get"]["security"] == [{"bearerAuth": []}]
    # The one thing FastAPI cannot say itself: anonymous callers are served too.
    assert paths[OPTIONAL]["get"]["security"] == [{}, {"bearerAuth": []}]
    assert paths["/v1/probe/basic"]["post"]["security"] == [{}, {"clientBasic": []}]
    # `Security(..., scopes=[...])` is what the document lists.
    assert paths["/v1/probe/editor"]["get"]["security"] == [{"bearerAuth": ["editor"]}]
    assert "security" not in paths["/v1/probe/open"]["get"]
    # Asked for again, the document is the same (the hook does not add a second `{}`).
    assert app.openapi()["paths"][OPTIONAL]["get"]["security"] == [{}, {"bearerAuth": []}]


async def test_the_schemes_hand_the_raw_header_to_the_dependency(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/v1/probe/basic", headers={"Authorization": "Basic xyz"})
    assert response.json() == {"header": "Basic xyz"}
    assert (await client.post("/v1/probe/basic")).json() == {"header": None}
    assert isinstance(client_basic, AuthorizationHeader)


async def test_a_document_without_tokens_defines_no_scheme(tmp_path: Path) -> None:
    router = APIRouter(prefix="/v1/plain")

    @router.get("/open")
    async def open_route() -> dict[str, str]:
        return {"ok": "yes"}

    app = create_service_app(
        title="plain",
        description="plain",
        prefix="/v1/plain",
        settings=ServiceSettings(NATOMEDIA_DATA_DIR=tmp_path),
        database=Database(f"sqlite+aiosqlite:///{tmp_path / 'plain.sqlite3'}"),
        routers=[router],
    )
    assert "securitySchemes" not in app.openapi().get("components", {})
