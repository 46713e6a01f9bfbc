"""Every operation asks for a token exactly where its service's document says it does.

FastAPI documents the security dependencies each route takes (the aliases in each service's
`auth.py`), and one hook adds the anonymous alternative where a token is optional. Here each
service's own document is walked and every operation called without a token and with a bad one,
so a route that checks a token another way than its dependencies say, fails.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

SERVICES = ("auth", "media", "news")
METHODS = ("get", "put", "post", "delete", "patch", "head")
BAD_TOKEN = {"Authorization": "Bearer not-a-token"}


def _declared(operation: dict[str, Any]) -> str:
    requirements: list[dict[str, Any]] = operation.get("security", [])
    if not any("bearerAuth" in requirement for requirement in requirements):
        return "none"
    return "optional" if {} in requirements else "required"


def _path(path: str, operation: dict[str, Any]) -> str:
    # Well-formed values, so a route gets as far as its token check.
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            value = str(uuid.uuid4()) if parameter["schema"].get("format") == "uuid" else "x"
            path = path.replace("{" + parameter["name"] + "}", value)
    return path


def _is_invalid_token(response: httpx.Response) -> bool:
    if response.status_code != 401:
        return False
    body: dict[str, Any] = response.json()
    return body.get("code") == "invalid_token"


async def _call(
    client: httpx.AsyncClient, method: str, path: str, operation: dict[str, Any], **headers: str
) -> httpx.Response:
    body = {"json": {}} if "requestBody" in operation else {}
    return await client.request(method.upper(), path, headers=headers, **body)


@pytest.fixture(params=SERVICES)
def served(request: pytest.FixtureRequest) -> tuple[str, httpx.AsyncClient]:
    """A service's name and its app (the `auth`, `media` or `news` fixture)."""
    name: str = request.param
    client: httpx.AsyncClient = request.getfixturevalue(name)
    return name, client


async def test_a_token_is_asked_for_where_the_document_says(
    served: tuple[str, httpx.AsyncClient],
) -> None:
    service, client = served
    document = (await client.get(f"/v1/{service}/openapi.json")).json()
    seen: dict[str, int] = {"none": 0, "optional": 0, "required": 0}
    for template, item in document["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]
            declared = _declared(operation)
            seen[declared] += 1
            path = _path(template, operation)
            label = f"{method.upper()} {template} ({declared})"
            anonymous = await _call(client, method, path, operation)
            bad = await _call(client, method, path, operation, **BAD_TOKEN)
            if declared == "required":
                assert _is_invalid_token(anonymous), (label, anonymous.text)
            else:
                assert not _is_invalid_token(anonymous), (label, anonymous.text)
            if declared == "none":
                # Not looking at the token at all: a bad one changes nothing.
                assert not _is_invalid_token(bad), (label, bad.text)
                assert "www-authenticate" not in bad.headers, label
            elif declared == "optional":
                # A public read: the anonymous answer, saying why the token was ignored.
                assert bad.status_code == anonymous.status_code, (label, bad.text)
                assert 'error="invalid_token"' in bad.headers["www-authenticate"], label
            else:
                assert _is_invalid_token(bad), (label, bad.text)
    if document["components"].get("securitySchemes"):
        assert document["components"]["securitySchemes"]["bearerAuth"] == {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
        }
    assert seen["required"] > 0, seen
    assert seen["none"] > 0, seen
