"""The real services behind nginx answer as in `natomedia dev`: ids, limits, CORS, health."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.gateway.dev import build_gateway
from services.gateway.registry import SERVICE_NAMES, service
from tests.e2e.conftest import CORS_ORIGIN, E2E, PASSWORD, new_email

pytestmark = [pytest.mark.e2e, pytest.mark.nginx, pytest.mark.postgres, pytest.mark.redis]

PREFLIGHTS = [
    ("/v1/auth/login", "POST", "content-type"),
    ("/v1/auth/me", "GET", "authorization"),
    ("/v1/media/videos", "GET", "if-none-match"),
    (
        "/v1/media/videos/00000000-0000-0000-0000-000000000000/renditions/"
        "00000000-0000-0000-0000-000000000000/download-url",
        "POST",
        "authorization,x-request-id",
    ),
    ("/v1/news/articles", "GET", "if-none-match,range"),
]


@pytest.fixture
async def dev_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """`natomedia dev`'s one-process gateway with the stack's CORS_ORIGINS."""
    monkeypatch.setenv("NATOMEDIA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CORS_ORIGINS", CORS_ORIGIN)
    monkeypatch.setenv("NATOMEDIA_ENV", "development")
    all_settings = {name: service(name).settings() for name in SERVICE_NAMES}
    app = build_gateway(all_settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        yield client


def cors_part(response: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    headers = {
        name: value
        for name, value in response.headers.items()
        if name.startswith("access-control-") or name == "vary"
    }
    return response.status_code, response.content, headers


@pytest.mark.parametrize(("path", "method", "request_headers"), PREFLIGHTS)
async def test_cors_preflight_is_answered_as_in_dev_mode(
    gateway: httpx.AsyncClient,
    dev_mode: httpx.AsyncClient,
    path: str,
    method: str,
    request_headers: str,
) -> None:
    headers = {
        "Origin": CORS_ORIGIN,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": request_headers,
    }

    behind_nginx = await gateway.options(path, headers=headers)
    in_dev_mode = await dev_mode.options(path, headers=headers)

    assert behind_nginx.status_code == 200
    assert behind_nginx.headers["access-control-allow-origin"] == CORS_ORIGIN
    assert cors_part(behind_nginx) == cors_part(in_dev_mode)


async def test_cors_from_an_unlisted_origin_is_refused_in_both(
    gateway: httpx.AsyncClient, dev_mode: httpx.AsyncClient
) -> None:
    headers = {"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"}

    behind_nginx = await gateway.options("/v1/auth/login", headers=headers)
    in_dev_mode = await dev_mode.options("/v1/auth/login", headers=headers)

    assert behind_nginx.status_code == 400
    assert cors_part(behind_nginx) == cors_part(in_dev_mode)


async def test_cors_headers_on_a_real_request_match_dev_mode(
    gateway: httpx.AsyncClient, dev_mode: httpx.AsyncClient
) -> None:
    headers = {"Origin": CORS_ORIGIN}

    behind_nginx = await gateway.get("/.well-known/jwks.json", headers=headers)
    in_dev_mode = await dev_mode.get("/.well-known/jwks.json", headers=headers)

    assert behind_nginx.headers["access-control-allow-origin"] == CORS_ORIGIN
    allow = "access-control-allow-origin"
    expose = "access-control-expose-headers"
    assert behind_nginx.headers[allow] == in_dev_mode.headers[allow]
    assert behind_nginx.headers.get(expose) == in_dev_mode.headers.get(expose)


async def test_unknown_paths_are_answered_as_in_dev_mode(
    gateway: httpx.AsyncClient, dev_mode: httpx.AsyncClient
) -> None:
    behind_nginx = await gateway.get("/v2/nothing-here")
    in_dev_mode = await dev_mode.get("/v2/nothing-here")

    assert behind_nginx.status_code == in_dev_mode.status_code == 404
    assert behind_nginx.headers["content-type"] == in_dev_mode.headers["content-type"]
    assert behind_nginx.json() == in_dev_mode.json()


async def test_request_ids_are_made_echoed_and_single(gateway: httpx.AsyncClient) -> None:
    made = await gateway.get("/v1/news/articles", params={"limit": 1})
    echoed = await gateway.get("/v1/news/articles", headers={"X-Request-ID": "e2e-trace-7"})

    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert echoed.headers.get_list("x-request-id") == ["e2e-trace-7"]


async def test_a_body_over_one_megabyte_is_refused_with_problem_json(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.post(
        "/v1/auth/register",
        json={"email": new_email(), "password": PASSWORD, "padding": "x" * 1_100_000},
    )

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "payload_too_large"


@pytest.mark.parametrize("name", SERVICE_NAMES)
async def test_each_service_is_ready_behind_the_gateway(
    gateway: httpx.AsyncClient, name: str
) -> None:
    ready = await gateway.get(f"/v1/{name}/readyz")
    alive = await gateway.get(f"/v1/{name}/healthz")

    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}
    assert alive.status_code == 200


async def test_the_gateway_answers_healthz_and_hardens_responses(
    gateway: httpx.AsyncClient,
) -> None:
    health = await gateway.get("/healthz")
    plain = await gateway.get("/v1/news/articles", headers={"Accept-Encoding": "identity"})
    compressed = await gateway.get("/v1/news/articles", headers={"Accept-Encoding": "gzip"})

    assert health.json() == {"status": "ok"}
    for response in (health, plain, compressed):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "strict-transport-security" not in response.headers
    assert len(plain.content) > 1024  # above gzip_min_length: a page of articles is
    assert "content-encoding" not in plain.headers
    assert compressed.headers["content-encoding"] == "gzip"
    assert compressed.json() == plain.json()


async def test_the_jwks_through_the_gateway_is_the_auth_services(
    e2e: E2E, gateway: httpx.AsyncClient
) -> None:
    through_gateway = await gateway.get("/.well-known/jwks.json")
    async with httpx.AsyncClient(
        base_url=e2e.stack.replicas["auth"][0].url, trust_env=False
    ) as direct:
        straight = await direct.get("/.well-known/jwks.json")

    assert through_gateway.status_code == 200
    assert through_gateway.json() == straight.json()
    assert through_gateway.json()["keys"][0]["alg"] == "ES256"


async def test_the_merged_api_document_is_served_as_in_dev_mode(
    e2e: E2E, gateway: httpx.AsyncClient
) -> None:
    document = await gateway.get("/openapi.json")
    docs = await gateway.get("/docs")

    assert document.status_code == 200, "the stack could not run `natomedia openapi`"
    assert document.json()["openapi"].startswith("3.1")
    assert document.json()["servers"][0]["url"] == e2e.url
    assert "/v1/auth/register" in document.json()["paths"]
    assert "/v1/media/videos" in document.json()["paths"]
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text
