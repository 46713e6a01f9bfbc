"""HEAD answers wherever GET does, and a 405 names every method of the resource in `Allow`."""

from __future__ import annotations

import shutil

import httpx

from tests.conftest import REQUIRED, TokenFactory
from tests.security.apps import assert_problem
from tests.security.forgery import forgeries

# Headers a HEAD must share with the GET of the same URL (RFC 9110 §9.3.2).
SHARED = ("content-type", "content-length", "etag", "cache-control", "last-modified", "vary")


async def _public_paths(news: httpx.AsyncClient, media: httpx.AsyncClient) -> list[str]:
    slug = (await news.get("/v1/news/articles")).json()["items"][0]["slug"]
    video_id = (await media.get("/v1/media/videos")).json()["items"][0]["id"]
    paths = [
        "/v1/news/articles",
        f"/v1/news/articles/{slug}",
        "/v1/news/feed.json",
        "/v1/news/feed.atom",
        "/v1/media/videos",
        f"/v1/media/videos/{video_id}",
    ]
    # The demo videos get their thumbnails from ffmpeg at ingest; without it there are none.
    if shutil.which("ffmpeg") is not None or "ffprobe" in REQUIRED:
        paths.append(f"/v1/media/videos/{video_id}/thumbnail.jpg")
    return paths


async def test_head_answers_wherever_get_does(
    news: httpx.AsyncClient, media: httpx.AsyncClient
) -> None:
    for path in await _public_paths(news, media):
        client = news if path.startswith("/v1/news") else media
        got = await client.get(path, headers={"Cache-Control": "no-cache"})
        head = await client.head(path, headers={"Cache-Control": "no-cache"})
        assert head.status_code == got.status_code == 200, (path, head.status_code)
        assert head.content == b"", path
        for name in SHARED:
            assert head.headers.get(name) == got.headers.get(name), (path, name)


async def test_head_with_a_failing_token_is_the_anonymous_answer_with_the_error(
    news: httpx.AsyncClient, media: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    expired = {"Authorization": f"Bearer {forgeries(tokens, ())['expired']}"}
    for path in (await _public_paths(news, media))[:6]:
        client = news if path.startswith("/v1/news") else media
        head = await client.head(path, headers=expired)
        assert head.status_code == 200, path
        assert head.headers["www-authenticate"].startswith('Bearer error="invalid_token"'), path
        assert head.headers["cache-control"] == "no-store", path


def _allow(response: httpx.Response) -> list[str]:
    assert_problem(response, 405, "method_not_allowed")
    return [method.strip() for method in response.headers["allow"].split(",")]


async def test_a_405_names_every_method_of_the_resource(
    auth: httpx.AsyncClient, news: httpx.AsyncClient, media: httpx.AsyncClient
) -> None:
    assert _allow(await auth.options("/v1/auth/clients")) == ["GET", "HEAD", "POST"]
    assert _allow(await auth.put("/v1/auth/clients")) == ["GET", "HEAD", "POST"]
    slug = (await news.get("/v1/news/articles")).json()["items"][0]["slug"]
    assert _allow(await news.put(f"/v1/news/articles/{slug}")) == [
        "GET",
        "HEAD",
        "PATCH",
        "DELETE",
    ]
    assert _allow(await news.delete("/v1/news/articles")) == ["GET", "HEAD", "POST"]
    assert _allow(await media.post("/v1/media/downloads/some/file")) == ["GET", "HEAD"]
