"""Forged access tokens get 401 invalid_token from media and news, never a grant."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import TokenFactory
from tests.security.apps import assert_problem
from tests.security.forgery import FORGERY_NAMES, forgeries


async def _download_url_path(media: httpx.AsyncClient) -> str:
    listing = (await media.get("/v1/media/videos")).json()
    video = (await media.get(f"/v1/media/videos/{listing['items'][0]['id']}")).json()
    rendition = video["renditions"][0]
    return f"/v1/media/videos/{video['id']}/renditions/{rendition['id']}/download-url"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _assert_invalid_token(response: httpx.Response) -> None:
    assert_problem(response, 401, "invalid_token")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_genuine_token_gets_a_download_url(
    media: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    response = await media.post(await _download_url_path(media), headers=_bearer(tokens.account()))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("forgery", FORGERY_NAMES)
async def test_forged_token_cannot_get_a_download_url(
    media: httpx.AsyncClient, tokens: TokenFactory, forgery: str
) -> None:
    token = forgeries(tokens, ())[forgery]
    response = await media.post(await _download_url_path(media), headers=_bearer(token))
    _assert_invalid_token(response)


def _article_body() -> dict[str, Any]:
    return {
        "title": "Forged article",
        "summary": "Should never be published.",
        "body": "<p>Should never be published.</p>",
        "tags": ["forgery"],
    }


async def _an_article_slug(news: httpx.AsyncClient) -> str:
    listing = (await news.get("/v1/news/articles")).json()
    return str(listing["items"][0]["slug"])


async def test_genuine_editor_token_may_delete(
    news: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    slug = await _an_article_slug(news)
    editor = _bearer(tokens.account(roles=("editor",)))
    response = await news.delete(f"/v1/news/articles/{slug}", headers=editor)
    assert response.status_code == 204, response.text


@pytest.mark.parametrize("forgery", FORGERY_NAMES)
async def test_forged_editor_token_is_refused(
    news: httpx.AsyncClient, tokens: TokenFactory, forgery: str
) -> None:
    token = forgeries(tokens, ("editor",))[forgery]
    slug = await _an_article_slug(news)
    created = await news.post("/v1/news/articles", json=_article_body(), headers=_bearer(token))
    _assert_invalid_token(created)
    deleted = await news.delete(f"/v1/news/articles/{slug}", headers=_bearer(token))
    _assert_invalid_token(deleted)
    assert (await news.get(f"/v1/news/articles/{slug}")).status_code == 200


async def test_genuine_token_without_editor_role_is_forbidden(
    news: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    slug = await _an_article_slug(news)
    response = await news.delete(f"/v1/news/articles/{slug}", headers=_bearer(tokens.account()))
    assert_problem(response, 403, "insufficient_scope")
