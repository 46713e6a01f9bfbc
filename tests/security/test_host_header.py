"""A hostile Host header never comes back in a redirect: a path spelt with a trailing slash is
an unknown path (404 problem+json), in each service and in `natomedia dev`'s one-process gateway.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.gateway.dev import build_gateway
from services.gateway.registry import SERVICE_NAMES, service
from tests.conftest import TokenFactory
from tests.security.apps import assert_problem, auth_settings, create_app, settings_for

HOSTILE = {"Host": "evil.example"}
SLASHED = [
    ("GET", "/v1/auth/me/"),
    ("POST", "/v1/auth/login/"),
    ("GET", "/v1/media/videos/"),
    ("GET", "/v1/news/articles/"),
    ("GET", "/v1/news/feed.json/"),
]


def _refused(response: httpx.Response) -> None:
    assert "location" not in response.headers
    assert "evil.example" not in response.text
    assert_problem(response, 404, "not_found")


@pytest.mark.parametrize(("method", "path"), SLASHED)
async def test_each_service_answers_a_slashed_path_with_404(
    tmp_path: Path, tokens: TokenFactory, method: str, path: str
) -> None:
    name = path.split("/")[2]
    if name == "auth":
        app = create_app(name, auth_settings(tmp_path))
    else:
        app = create_app(name, settings_for(name, tmp_path), token_verifier=tokens.verifier())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.example") as client:
        _refused(await client.request(method, path, headers=HOSTILE, json={}))


@pytest.fixture
async def dev_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("NATOMEDIA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("NATOMEDIA_ENV", "development")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://api.example")
    app = build_gateway({name: service(name).settings() for name in SERVICE_NAMES})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.example") as client:
        yield client


@pytest.mark.parametrize(("method", "path"), [*SLASHED, ("GET", "/.well-known/jwks.json/")])
async def test_the_dev_gateway_answers_a_slashed_path_with_404(
    dev_gateway: httpx.AsyncClient, method: str, path: str
) -> None:
    _refused(await dev_gateway.request(method, path, headers=HOSTILE, json={}))
