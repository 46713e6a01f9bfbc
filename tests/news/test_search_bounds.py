"""Search ranks every match up to a bound, and only the newest matches beyond it; the index
follows every write."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.common.database import Database
from services.common.search import ESTIMATE_MARGIN
from services.news.config import NewsSettings
from services.news.search import EXACT_RANKING_LIMIT, SearchBounds
from services.news.service import ArticleQuery, list_articles
from tests.news.conftest import Editor
from tests.statements import has_statistics, plan_steps, recorded

ARTICLES = "/v1/news/articles"


def day(number: int) -> datetime:
    return datetime(2024, 1, number, 12, tzinfo=UTC)


@pytest.fixture
async def database(settings: NewsSettings) -> AsyncIterator[Database]:
    database = Database(settings.resolved_database_url)
    yield database
    await database.dispose()


@pytest.fixture
async def harbour(editor: Editor) -> list[str]:
    """Six published articles about a harbour, created oldest first; the oldest says it in
    its title, the fifth in its summary, the others only in their bodies."""
    slugs = []
    for number in range(1, 7):
        fields: dict[str, Any] = {
            "title": f"Port call {number}",
            "summary": f"Ships arrive, visit {number}.",
            "body": f"<p>The crew reached the harbour on visit {number}.</p>",
            "status": "published",
            "published_at": day(number),
            "tags": ["ports"] if number <= 3 else [],
        }
        if number == 1:
            fields["title"] = "Harbour welcomes the fleet"
        if number == 5:
            fields["summary"] = "A harbour visit, the fifth."
        slugs.append((await editor.create(**fields))["slug"])
    return slugs


async def search(
    database: Database, q: str, bounds: SearchBounds, **fields: Any
) -> tuple[list[str], str | None]:
    async with database.sessionmaker() as session:
        items, cursor = await list_articles(session, ArticleQuery(q=q, **fields), bounds=bounds)
    return [item.slug for item in items], cursor


async def every_page(database: Database, q: str, bounds: SearchBounds, **fields: Any) -> list[str]:
    slugs: list[str] = []
    cursor = None
    while True:
        page, cursor = await search(database, q, bounds, cursor=cursor, limit=2, **fields)
        slugs += page
        if cursor is None:
            return slugs


async def test_up_to_the_bound_every_match_is_ranked(
    database: Database, harbour: list[str]
) -> None:
    exact = SearchBounds(exact_limit=6, candidates=2)
    slugs, _ = await search(database, "harbour", exact)
    # The title beats the summary, which beats the bodies; equal ranks go newest first.
    assert slugs[:2] == [harbour[0], harbour[4]]
    assert sorted(slugs) == sorted(harbour)
    assert await every_page(database, "harbour", exact) == slugs
    assert EXACT_RANKING_LIMIT == SearchBounds().exact_limit == 10_000
    assert SearchBounds().uncounted_from == ESTIMATE_MARGIN * EXACT_RANKING_LIMIT == 20_000


async def test_beyond_the_bound_only_the_newest_matches_are_ranked(
    database: Database, harbour: list[str]
) -> None:
    bounded = SearchBounds(exact_limit=5, candidates=3)
    slugs, _ = await search(database, "harbour", bounded)
    # The three newest, best first: the oldest, best match is not among them.
    assert slugs[0] == harbour[4]
    assert sorted(slugs) == sorted(harbour[3:])
    assert await every_page(database, "harbour", bounded) == slugs


async def test_the_bound_applies_after_the_filters(database: Database, harbour: list[str]) -> None:
    # Three tagged matches, more than the bound of two: the two newest tagged ones are
    # ranked, not the newest matches overall (which have no tag).
    bounded = SearchBounds(exact_limit=2, candidates=2)
    slugs, _ = await search(database, "harbour", bounded, tag="ports")
    assert sorted(slugs) == sorted(harbour[1:3])
    within, _ = await search(database, "harbour", SearchBounds(exact_limit=3), tag="ports")
    assert within[0] == harbour[0]


async def check_index(backend: str, database: Database) -> None:
    if backend == "sqlite":
        async with database.sessionmaker() as session, session.begin():
            # Compares every entry with the articles' current text; raises when they differ.
            await session.execute(
                text(
                    "INSERT INTO article_search(article_search, rank) VALUES ('integrity-check', 1)"
                )
            )


async def test_the_index_follows_create_publish_edit_and_delete(
    backend: str, database: Database, client: httpx.AsyncClient, editor: Editor
) -> None:
    async def found(q: str, headers: dict[str, str] | None = None) -> list[str]:
        response = await client.get(
            ARTICLES, params={"q": q}, headers={"Cache-Control": "no-cache", **(headers or {})}
        )
        return [item["slug"] for item in response.json()["items"]]

    other = await editor.create(title="Frigate in the fjord", status="published")
    draft = await editor.create(title="Frigate trials planned")
    slug = draft["slug"]
    await check_index(backend, database)
    assert await found("frigate") == [other["slug"]]
    assert sorted(await found("frigate", editor.headers)) == sorted([slug, other["slug"]])

    published = await editor.http.patch(
        f"{ARTICLES}/{slug}", json={"status": "published"}, headers=editor.headers
    )
    assert published.status_code == 200
    assert sorted(await found("trials")) == [slug]

    edited = await editor.http.patch(
        f"{ARTICLES}/{slug}",
        json={"title": "Corvette trials", "body": "<p>Sea state five.</p>"},
        headers=editor.headers,
    )
    assert edited.status_code == 200
    await check_index(backend, database)
    assert await found("frigate") == [other["slug"]]
    assert await found("corvette sea") == [slug]

    deleted = await editor.http.delete(f"{ARTICLES}/{slug}", headers=editor.headers)
    assert deleted.status_code == 204
    await check_index(backend, database)
    assert await found("corvette") == []
    assert await found("frigate") == [other["slug"]]


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("bounds", [SearchBounds(), SearchBounds(exact_limit=2, candidates=2)])
async def test_sqlite_search_starts_from_the_index_even_without_statistics(
    database: Database, harbour: list[str], bounds: SearchBounds
) -> None:
    # A freshly imported file has no `sqlite_stat1`: the planner then guessed that walking the
    # published articles and asking FTS5 about each was cheaper, which reads the whole archive
    # for every search. Every statement a search sends must start from the FTS5 match.
    assert not await has_statistics(database)
    async with recorded(database, "article_search") as statements:
        slugs, _ = await search(database, "harbour", bounds)
    assert len(slugs) > 1
    assert len(statements) == 2  # the count, then the candidates
    for statement, parameters in statements:
        steps = await plan_steps(database, statement, parameters)
        assert steps[0].startswith("SCAN article_search VIRTUAL TABLE"), steps
        assert not any("ix_articles_status" in step for step in steps), steps


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"])
async def test_statistics_far_above_the_bound_spare_the_count(
    database: Database, editor: Editor
) -> None:
    # Counting reads every match's index entry: for a word in most of the archive that costs
    # more than the rest of the search. Once the planner's statistics put the matches at
    # ESTIMATE_MARGIN times the bound, the search is bounded without counting (the default
    # threshold follows the default bound; a test's small bound must name its own).
    for number in range(1, 31):
        await editor.create(
            title=f"Harbour call {number}", status="published", published_at=day(1 + number % 28)
        )
    bounds = SearchBounds(exact_limit=5, candidates=3, uncounted_from=ESTIMATE_MARGIN * 5)

    async def searched() -> tuple[list[str], list[str]]:
        async with recorded(database, "count(*)") as counts:
            slugs, _ = await search(database, "harbour", bounds)
        return slugs, [statement for statement, _ in counts]

    # Never analysed: the planner guesses few rows, so the search counts.
    counted, counts = await searched()
    assert len(counts) == 1
    async with database.engine.begin() as connection:
        await connection.execute(text("ANALYZE articles"))
    estimated, counts = await searched()
    assert counts == []
    # Bounded either way: the same three newest, best first.
    assert estimated == counted
    assert len(estimated) == 3
    assert bounds.uncounted_from <= 30
