"""Public reads replayed from the micro-cache: no query the second time, never for editors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from services.common.database import Database
from services.common.public_cache import PublicCache
from services.news.models import Article
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
