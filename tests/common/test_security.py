"""Bearer tokens without a FastAPI dependency: parsing, verification, 401s and the document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request

from services.common.app import create_service_app
from services.common.database import Database
from services.common.jwt import Principal, TokenVerifier
from services.common.security import (
    TOKEN_OPTIONAL,
    TOKEN_REQUIRED,
    bearer_principal,
    require_principal,
)
from services.common.settings import ServiceSettings
from services.gateway.openapi import _routes, service_apps
from tests.conftest import TokenFactory

REQUIRED = "/v1/probe/required"
OPTIONAL = "/v1/probe/optional"


def _app(tmp_path: Path, verifier: TokenVerifier) -> FastAPI:
    router = APIRouter(prefix="/v1/probe")

    @router.get("/required", openapi_extra=TOKEN_REQUIRED)
    async def required(request: Request) -> dict[str, Any]:
        principal = await require_principal(request)
        return {"subject": principal.subject, "id": id(principal)}

    @router.get("/optional", openapi_extra=TOKEN_OPTIONAL)
    async def optional(request: Request) -> dict[str, Any]:
        principal = await bearer_principal(request)
        return {"subject": None if principal is None else principal.subject}

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
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    paths = document["paths"]
    assert paths[REQUIRED]["get"]["security"] == [{"bearerAuth": []}]
    assert paths[OPTIONAL]["get"]["security"] == [{}, {"bearerAuth": []}]
    assert "security" not in paths["/v1/probe/open"]["get"]
    # The declarations themselves are left as they were, for the next route and app.
    assert TOKEN_REQUIRED == {"security": [{"bearerAuth": []}]}
    assert TOKEN_OPTIONAL == {"security": [{}, {"bearerAuth": []}]}


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


def _solved_calls(dependant: Any) -> list[Any]:
    calls = []
    for dependency in dependant.dependencies:
        calls.append(dependency.call)
        calls.extend(_solved_calls(dependency))
    return calls


def test_no_service_route_resolves_the_token_as_a_dependency(tmp_path: Path) -> None:
    # A dependency node costs FastAPI more per request than verifying a cached token.
    checked = 0
    for name, app in service_apps(tmp_path).items():
        for route in _routes(app).values():
            calls = _solved_calls(route.dependant)
            assert bearer_principal not in calls, (name, route.path)
            assert require_principal not in calls, (name, route.path)
            checked += 1
    assert checked > 20
