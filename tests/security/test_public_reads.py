"""A token that fails on a public read is ignored: the anonymous answer, with `WWW-Authenticate`
saying why, never cached. Calls that need a token keep their 401."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI

from services.common.revocation import Revocations
from tests.conftest import TokenFactory
from tests.security.apps import assert_problem
from tests.security.forgery import forgeries

BROKEN = ("expired", "attacker_key_claiming_real_kid", "garbage", "signature_stripped")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _news_paths(news: httpx.AsyncClient) -> list[str]:
    slug = (await news.get("/v1/news/articles")).json()["items"][0]["slug"]
    return [
        "/v1/news/articles",
        f"/v1/news/articles/{slug}",
        "/v1/news/feed.json",
        "/v1/news/feed.atom",
    ]


async def _media_paths(media: httpx.AsyncClient) -> list[str]:
    video_id = (await media.get("/v1/media/videos")).json()["items"][0]["id"]
    return ["/v1/media/videos", f"/v1/media/videos/{video_id}"]


def _assert_anonymous_with_challenge(
    anonymous: httpx.Response, stale: httpx.Response, path: str
) -> None:
    assert stale.status_code == 200, (path, stale.text)
    assert stale.content == anonymous.content, path
    assert stale.headers["www-authenticate"].startswith('Bearer error="invalid_token"'), path
    # Meant for this caller only: no cache keeps it, not the gateway's either.
    assert stale.headers["cache-control"] == "no-store", path
    assert "x-accel-expires" not in stale.headers, path
    assert "www-authenticate" not in anonymous.headers, path


@pytest.mark.parametrize("broken", BROKEN)
async def test_news_answers_a_failing_token_as_an_anonymous_caller(
    news: httpx.AsyncClient, tokens: TokenFactory, broken: str
) -> None:
    # An editor's token that failed shows no drafts: it counts for nothing.
    token = forgeries(tokens, ("editor",))[broken]
    for path in await _news_paths(news):
        anonymous = await news.get(path)
        _assert_anonymous_with_challenge(
            anonymous, await news.get(path, headers=_bearer(token)), path
        )


@pytest.mark.parametrize("broken", BROKEN)
async def test_the_catalogue_answers_a_failing_token_as_an_anonymous_caller(
    media: httpx.AsyncClient, tokens: TokenFactory, broken: str
) -> None:
    token = forgeries(tokens, ())[broken]
    for path in await _media_paths(media):
        anonymous = await media.get(path)
        stale = await media.get(path, headers=_bearer(token))
        _assert_anonymous_with_challenge(anonymous, stale, path)


async def test_a_revoked_token_on_a_public_read_is_ignored(
    news: httpx.AsyncClient, media: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    account = uuid.uuid4()
    token = tokens.account(account_id=account, session_epoch=0)
    for client, paths in ((news, await _news_paths(news)), (media, await _media_paths(media))):
        transport = client._transport
        assert isinstance(transport, httpx.ASGITransport)
        app = transport.app
        assert isinstance(app, FastAPI)
        revocations = Revocations()
        revocations.end_sessions(str(account), 1)  # what a password reset publishes
        app.state.bearer_checks.revocations = revocations
        for path in paths:
            anonymous = await client.get(path)
            stale = await client.get(path, headers=_bearer(token))
            _assert_anonymous_with_challenge(anonymous, stale, path)


async def test_a_valid_token_without_the_editor_scope_gets_the_anonymous_answer(
    news: httpx.AsyncClient, media: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    reader = _bearer(tokens.account())
    for client, paths in ((news, await _news_paths(news)), (media, await _media_paths(media))):
        for path in paths:
            anonymous = await client.get(path)
            with_token = await client.get(path, headers=reader)
            assert with_token.status_code == anonymous.status_code == 200, path
            assert with_token.content == anonymous.content, path
            for name in ("cache-control", "etag", "content-type", "vary"):
                assert with_token.headers.get(name) == anonymous.headers.get(name), (path, name)
            assert "www-authenticate" not in with_token.headers, path


async def test_calls_that_need_a_token_keep_their_401(
    news: httpx.AsyncClient, media: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    expired = forgeries(tokens, ("editor",))["expired"]
    slug = (await _news_paths(news))[1].rsplit("/", 1)[1]
    assert_problem(
        await news.delete(f"/v1/news/articles/{slug}", headers=_bearer(expired)),
        401,
        "invalid_token",
    )
    video = (await media.get((await _media_paths(media))[1])).json()
    path = f"/v1/media/videos/{video['id']}/renditions/{video['renditions'][0]['id']}/download-url"
    assert_problem(await media.post(path, headers=_bearer(expired)), 401, "invalid_token")
