"""Tokens on public reads behind the gateway: nginx keeps anonymous reads only, so an editor's
view (drafts) never reaches anyone else, and a reader's token gets the anonymous answer."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx

from services.common.jwt import SigningKey, encode_token
from tests.e2e.conftest import E2E

ARTICLES = "/v1/news/articles?limit=50"


def _token(e2e: E2E, scope: str) -> dict[str, str]:
    """An access token signed with the stack's own key, as auth would issue it."""
    key = SigningKey(Path(e2e.stack.env["AUTH_SIGNING_KEY_FILE"]).read_bytes())
    now = int(time.time())
    claims = {
        "iss": "natomedia-auth",
        "aud": "natomedia-api",
        "sub": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "scope": scope,
        "email_verified": True,
        "sep": 0,
    }
    return {"Authorization": f"Bearer {encode_token(claims, key)}"}


def _titles(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {item["title"] for item in response.json()["items"]}


async def test_an_editors_view_is_never_given_to_anyone_else(
    e2e: E2E, gateway: httpx.AsyncClient
) -> None:
    editor = _token(e2e, "editor")
    draft = f"Draft {uuid.uuid4().hex[:8]}"
    created = await gateway.post(
        "/v1/news/articles",
        json={"title": draft, "summary": "Not yet.", "body": "<p>Not yet.</p>"},
        headers=editor,
    )
    assert created.status_code == 201, created.text

    # The editor asks first, so a gateway that kept what it answered would replay it below.
    mine = await gateway.get(ARTICLES, headers=editor)
    assert draft in _titles(mine)
    assert mine.headers["cache-control"] == "private, no-store"
    for _ in range(3):
        assert draft not in _titles(await gateway.get(ARTICLES))
    # An anonymous entry is kept now; the editor is still not given it.
    assert draft in _titles(await gateway.get(ARTICLES, headers=editor))

    reader = await gateway.get(ARTICLES, headers=_token(e2e, ""))
    anonymous = await gateway.get(ARTICLES)
    assert reader.content == anonymous.content
    assert "www-authenticate" not in reader.headers

    failing = await gateway.get(ARTICLES, headers={"Authorization": "Bearer not-a-token"})
    assert failing.content == anonymous.content
    assert failing.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert failing.headers["cache-control"] == "no-store"
    # What the failing token was told is not what anonymous callers are told next.
    assert "www-authenticate" not in (await gateway.get(ARTICLES)).headers
