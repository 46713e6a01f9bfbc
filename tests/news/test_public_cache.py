"""Public reads replayed from the micro-cache: no query the second time, never for editors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from services.common.clock import FrozenClock
from services.common.database import Database
from services.common.public_cache import PublicCache
from services.common.revocation import Revocations
from services.news.app import create_app
from services.news.config import NewsSettings
from services.news.models import Article
from tests.conftest import TokenFactory
from tests.news.conftest import Editor
from tests.public_cache_support import Monotonic, counted_queries

ARTICLES = "/v1/news/articles"


def published(day: int) -> dict[str, Any]:
    return {"status": "published", "published_at": datetime(2026, 5, day, 8, tzinfo=UTC)}


@pytest.mark.usefixtures("monotonic")
async def test_a_repeated_public_read_does_not_touch_the_database(
    app: FastAPI, client: httpx.AsyncClient, editor: Editor
) -> None:
    article = await editor.create(title="Ministers meet", **published(1))
    for path in (
        f"{ARTICLES}?limit=20",
        f"{ARTICLES}/{article['slug']}",
        "/v1/news/feed.json",
        "/v1/news/feed.atom",
    ):
        first = await client.get(path)
        assert first.status_code == 200
        with counted_queries(app) as statements:
            again = await client.get(path)
            current = await client.get(path, headers={"If-None-Match": first.headers["etag"]})
        assert statements == [], path
        assert again.content == first.content
        assert again.headers["etag"] == first.headers["etag"]
        assert again.headers["cache-control"] == first.headers["cache-control"]
        assert current.status_code == 304


@pytest.mark.usefixtures("monotonic")
async def test_editors_are_never_served_from_it_nor_fill_it(
    app: FastAPI, client: httpx.AsyncClient, editor: Editor
) -> None:
    await editor.create(title="Public piece", **published(1))
    await editor.create(title="Secret draft")
    public = (await client.get(ARTICLES)).json()
    assert [item["title"] for item in public["items"]] == ["Public piece"]

    with counted_queries(app) as statements:
        mine = await client.get(ARTICLES, headers=editor.headers)
    assert statements
    assert {item["title"] for item in mine.json()["items"]} == {"Public piece", "Secret draft"}
    assert mine.headers["cache-control"] == "private, no-store"

    # The editor's view was not stored: a fresh anonymous read still shows no draft.
    cache: PublicCache = app.state.public_cache
    cache.clear()
    await client.get(ARTICLES, headers=editor.headers)
    assert len(cache) == 0
    assert [item["title"] for item in (await client.get(ARTICLES)).json()["items"]] == [
        "Public piece"
    ]


@pytest.mark.usefixtures("monotonic")
async def test_an_editors_write_shows_at_once(client: httpx.AsyncClient, editor: Editor) -> None:
    first = await editor.create(title="First", **published(1))
    assert [item["title"] for item in (await client.get(ARTICLES)).json()["items"]] == ["First"]
    before = (await client.get(f"{ARTICLES}/{first['slug']}")).json()

    await editor.create(title="Second", **published(2))
    listed = (await client.get(ARTICLES)).json()
    assert [item["title"] for item in listed["items"]] == ["Second", "First"]

    patched = await editor.http.patch(
        f"{ARTICLES}/{first['slug']}", json={"title": "First, corrected"}, headers=editor.headers
    )
    assert patched.status_code == 200
    after = (await client.get(f"{ARTICLES}/{first['slug']}")).json()
    assert (before["title"], after["title"]) == ("First", "First, corrected")

    deleted = await editor.http.delete(f"{ARTICLES}/{first['slug']}", headers=editor.headers)
    assert deleted.status_code == 204
    assert (await client.get(f"{ARTICLES}/{first['slug']}")).status_code == 404


async def test_a_change_from_elsewhere_shows_when_the_entry_expires(
    app: FastAPI, client: httpx.AsyncClient, editor: Editor, monotonic: Monotonic
) -> None:
    article = await editor.create(title="Before", **published(1))
    path = f"{ARTICLES}/{article['slug']}"
    assert (await client.get(path)).json()["title"] == "Before"

    # Another process (an import, another worker) changes the row; this one hears nothing.
    database: Database = app.state.database
    async with database.sessionmaker() as session:
        await session.execute(update(Article).values(title="After"))
        await session.commit()

    monotonic.now += 0.9
    assert (await client.get(path)).json()["title"] == "Before"
    monotonic.now += 0.1
    assert (await client.get(path)).json()["title"] == "After"


async def test_a_draft_is_never_kept(
    app: FastAPI, client: httpx.AsyncClient, editor: Editor
) -> None:
    draft = await editor.create(title="Not yet")
    path = f"{ARTICLES}/{draft['slug']}"
    assert (await client.get(path, headers=editor.headers)).status_code == 200
    assert (await client.get(path)).status_code == 404
    assert len(app.state.public_cache) == 0


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _shared_headers(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name != "x-request-id"}


@pytest.mark.usefixtures("monotonic")
async def test_a_reader_with_a_token_is_served_the_anonymous_entry(
    app: FastAPI, client: httpx.AsyncClient, editor: Editor, tokens: TokenFactory
) -> None:
    article = await editor.create(title="Ministers meet", **published(1))
    await editor.create(title="Secret draft")
    readers = [tokens.account(), tokens.account(verified=False), tokens.client()]
    for path in (
        f"{ARTICLES}?limit=20",
        f"{ARTICLES}/{article['slug']}",
        "/v1/news/feed.json",
        "/v1/news/feed.atom",
    ):
        anonymous = await client.get(path)
        assert anonymous.status_code == 200
        for token in readers:
            with counted_queries(app) as statements:
                reader = await client.get(path, headers=_bearer(token))
            assert statements == [], path
            assert reader.content == anonymous.content, path
            assert _shared_headers(reader) == _shared_headers(anonymous), path
        # And the other way round: an entry a reader filled is the one anonymous callers get.
        app.state.public_cache.clear()
        filled = await client.get(path, headers=_bearer(readers[0]))
        with counted_queries(app) as statements:
            again = await client.get(path)
        assert statements == [], path
        assert again.content == filled.content == anonymous.content, path


@pytest.mark.usefixtures("monotonic")
async def test_a_failing_token_gets_the_public_answer_marked_and_keeps_only_the_public_one(
    app: FastAPI, client: httpx.AsyncClient, editor: Editor, tokens: TokenFactory
) -> None:
    await editor.create(title="Public piece", **published(1))
    await editor.create(title="Secret draft")
    cache: PublicCache = app.state.public_cache
    account = uuid.uuid4()
    revoked = tokens.account(account_id=account, roles=("editor",))
    revocations = Revocations()
    revocations.end_sessions(str(account), 1)  # what ending the account's sessions publishes
    app.state.bearer_checks.revocations = revocations
    for token in ("not-a-token", revoked):
        cache.clear()
        # Nothing kept yet: the route answers as for an anonymous reader, and that answer
        # (not this caller's marked copy) is kept, so failing tokens cannot each reach the
        # database while nobody without a token reads.
        first = await client.get(ARTICLES, headers=_bearer(token))
        assert len(cache) == 1
        with counted_queries(app) as statements:
            second = await client.get(ARTICLES, headers=_bearer(token))
            anonymous = await client.get(ARTICLES)
        assert statements == []
        for stale in (first, second):
            assert stale.status_code == 200
            assert stale.content == anonymous.content
            assert [item["title"] for item in stale.json()["items"]] == ["Public piece"]
            assert stale.headers["www-authenticate"] == 'Bearer error="invalid_token"'
            assert stale.headers["cache-control"] == "no-store"
            assert "x-accel-expires" not in stale.headers
        assert "www-authenticate" not in anonymous.headers


@pytest.mark.parametrize("seconds", [1.0, 0.0])
async def test_the_rule_holds_with_the_cache_on_or_off(
    settings: NewsSettings, clock: FrozenClock, tokens: TokenFactory, seconds: float
) -> None:
    app = create_app(
        settings.model_copy(update={"public_cache_seconds": seconds}),
        clock=clock,
        token_verifier=tokens.verifier(),
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        assert (app.state.public_cache is None) == (seconds == 0)
        writer = Editor(client, tokens.account(roles=("editor",)))
        await writer.create(title="Public piece", **published(1))
        await writer.create(title="Secret draft")
        anonymous = await client.get(ARTICLES)
        reader = await client.get(ARTICLES, headers=_bearer(tokens.account()))
        failing = await client.get(ARTICLES, headers=_bearer("not-a-token"))
        mine = await client.get(ARTICLES, headers=writer.headers)
        titles = [item["title"] for item in anonymous.json()["items"]]
        assert titles == ["Public piece"]
        assert reader.content == failing.content == anonymous.content
        assert _shared_headers(reader) == _shared_headers(anonymous)
        assert failing.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert failing.headers["cache-control"] == "no-store"
        assert {item["title"] for item in mine.json()["items"]} == {"Public piece", "Secret draft"}
        assert mine.headers["cache-control"] == "private, no-store"
        assert "x-accel-expires" not in mine.headers
        # After an editor's read, anonymous callers still see no draft.
        assert (await client.get(ARTICLES)).content == anonymous.content


@pytest.mark.parametrize("kind", ["editor", "reader", "failing"])
async def test_a_token_is_verified_once_per_request(
    app: FastAPI,
    client: httpx.AsyncClient,
    editor: Editor,
    tokens: TokenFactory,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    await editor.create(title="Public piece", **published(1))
    token = {"editor": editor.token, "reader": tokens.account(), "failing": "not-a-token"}[kind]
    verifier = app.state.bearer_checks.verifier
    calls: list[str] = []
    verify = verifier.verify

    async def counted(credentials: str) -> Any:
        calls.append(credentials)
        return await verify(credentials)

    monkeypatch.setattr(verifier, "verify", counted)
    app.state.public_cache.clear()
    # Not served from the cache: the route runs, and its dependency reads the same token.
    response = await client.get(ARTICLES, headers=_bearer(token))
    assert response.status_code == 200
    assert calls == [token]
