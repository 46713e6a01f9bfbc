"""Full-text search over videos on both engines: every word, stemming, accents, the shot list and
transcript, best match first, withdrawn videos never found, and the index follows edits."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.common.search import EXACT_RANKING_LIMIT, SearchBounds, fold_accents, search_terms
from services.media.service import VideoFilters, list_videos
from tests.conftest import TokenFactory
from tests.media.conftest import Catalogue, at
from tests.media.test_withdrawal import editor
from tests.statements import has_statistics, plan_steps, recorded


async def ids(client: httpx.AsyncClient, q: str, **params: str) -> list[str]:
    response = await client.get("/v1/media/videos", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_every_word_must_match_in_any_field(
    client: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    both = await catalogue.ingest_bytes(
        b"x", title="Press conference", shot_list="Wide shot of the Secretary General"
    )
    one = await catalogue.ingest_bytes(b"y", title="Press point", transcript="No questions")
    assert await ids(client, "press secretary") == [str(both.video_id)]
    assert sorted(await ids(client, "press")) == sorted([str(both.video_id), str(one.video_id)])
    assert await ids(client, "questions") == [str(one.video_id)]
    # Stemming: "conferences" finds "conference".
    assert await ids(client, "conferences") == [str(both.video_id)]


async def test_accents_do_not_matter(client: httpx.AsyncClient, catalogue: Catalogue) -> None:
    french = await catalogue.ingest_bytes(b"x", title="Conférence de presse à Bruxelles")
    assert await ids(client, "conference bruxelles") == [str(french.video_id)]
    assert await ids(client, "Conférence") == [str(french.video_id)]


async def test_best_match_first_then_newest(
    client: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    in_title = await catalogue.add_video("Oslo summit", published_at=at(1))
    in_description = await catalogue.add_video(
        "Summit", description="Ministers met in Oslo", published_at=at(2)
    )
    assert await ids(client, "oslo") == [str(in_title), str(in_description)]


async def test_search_pages_with_a_cursor(client: httpx.AsyncClient, catalogue: Catalogue) -> None:
    made = [await catalogue.add_video(f"Oslo {i}", published_at=at(i)) for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"q": "oslo", "limit": "2", **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/v1/media/videos", params=params)).json()
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(str(video) for video in made)
    assert len(seen) == len(set(seen))


async def test_edits_reach_the_index_and_withdrawn_videos_are_not_found(
    client: httpx.AsyncClient, catalogue: Catalogue, tokens: TokenFactory
) -> None:
    clip = await catalogue.ingest_bytes(b"x", title="Press point")
    response = await client.patch(
        f"/v1/media/videos/{clip.video_id}",
        json={"transcript": "The Secretary General answered questions"},
        headers=editor(tokens),
    )
    assert response.status_code == 200
    assert await ids(client, "answered") == [str(clip.video_id)]
    withdrawn = await client.post(
        f"/v1/media/videos/{clip.video_id}/withdraw",
        json={"reason_code": "error"},
        headers=editor(tokens),
    )
    assert withdrawn.status_code == 200
    assert await ids(client, "answered") == []


def test_word_handling_is_shared_with_news() -> None:
    from services.news import search as news_search

    assert news_search.search_terms is search_terms
    assert search_terms(fold_accents("Conférence à l'OTAN")) == ["conference", "l", "otan"]


async def service_ids(
    catalogue: Catalogue, q: str, bounds: SearchBounds, *, limit: int = 10, **filters: Any
) -> list[uuid.UUID]:
    """Every page of the search, followed by its cursors."""
    found: list[uuid.UUID] = []
    cursor = None
    async with catalogue.database.sessionmaker() as session:
        while True:
            videos, cursor = await list_videos(
                session, VideoFilters(q=q, **filters), limit=limit, cursor=cursor, bounds=bounds
            )
            found += [video.id for video in videos]
            if cursor is None:
                return found


async def test_up_to_the_limit_every_match_is_ranked_above_it_the_newest_few(
    catalogue: Catalogue,
) -> None:
    # The best match is the oldest: only exact ranking finds it first.
    best = await catalogue.add_video("Oslo Oslo summit", description="Oslo", published_at=at(1))
    rest = [
        await catalogue.add_video(
            f"Summit {n}", description="Ministers in Oslo", published_at=at(n)
        )
        for n in range(2, 6)
    ]
    newest_first = list(reversed(rest))

    exact = await service_ids(catalogue, "oslo", SearchBounds(exact_limit=5, candidates=2))
    assert exact == [best, *newest_first]
    # One match more than the limit: only the two newest are ranked, the best is left out.
    bounded = await service_ids(catalogue, "oslo", SearchBounds(exact_limit=4, candidates=2))
    assert bounded == newest_first[:2]
    # Pages of one walk the same bounded set.
    paged = await service_ids(catalogue, "oslo", SearchBounds(exact_limit=4, candidates=2), limit=1)
    assert paged == newest_first[:2]
    # Filters count before the limit: the two matches published before the third day are few
    # enough to be ranked exactly.
    few = SearchBounds(exact_limit=2, candidates=1)
    assert await service_ids(catalogue, "oslo", few, published_before=at(3)) == [best, rest[0]]
    assert await service_ids(catalogue, "oslo", few) == newest_first[:1]


async def test_the_default_bounds_are_the_shared_ones() -> None:
    assert SearchBounds().exact_limit == EXACT_RANKING_LIMIT == 10_000


async def test_the_index_follows_edits_withdrawals_and_rendition_deletes_through_the_api(
    client: httpx.AsyncClient, catalogue: Catalogue, tokens: TokenFactory, backend: str
) -> None:
    clip = await catalogue.ingest_bytes(b"x", title="Press point in Riga")
    other = await catalogue.ingest_bytes(b"y", title="Press point in Vilnius")
    video = str(clip.video_id)
    response = await client.patch(
        f"/v1/media/videos/{video}",
        json={"title": "Press point in Tallinn"},
        headers=editor(tokens),
    )
    assert response.status_code == 200
    assert await ids(client, "riga") == []
    assert await ids(client, "tallinn") == [video]
    withdrawn = await client.post(
        f"/v1/media/videos/{video}/withdraw", json={"reason_code": "error"}, headers=editor(tokens)
    )
    assert withdrawn.status_code == 200
    assert await ids(client, "tallinn") == []
    assert await ids(client, "press point") == [str(other.video_id)]
    restored = await client.post(f"/v1/media/videos/{video}/restore", headers=editor(tokens))
    assert restored.status_code == 200
    assert await ids(client, "tallinn") == [video]
    deleted = await client.delete(
        f"/v1/media/videos/{video}/renditions/{clip.rendition_id}", headers=editor(tokens)
    )
    assert deleted.status_code == 204
    assert await ids(client, "tallinn") == [video]
    assert sorted(await ids(client, "press")) == sorted([video, str(other.video_id)])
    if backend == "sqlite":
        # One FTS5 row per video, however often it changed.
        async with catalogue.database.sessionmaker() as session:
            rows = (await session.execute(text("SELECT count(*) FROM video_search"))).scalar()
            mapped = (
                await session.execute(text("SELECT count(*) FROM video_search_rows"))
            ).scalar()
        assert rows == mapped == 2


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("bounds", [SearchBounds(), SearchBounds(exact_limit=1, candidates=1)])
async def test_sqlite_search_starts_from_the_index_even_without_statistics(
    catalogue: Catalogue, bounds: SearchBounds
) -> None:
    # Without `sqlite_stat1` (a freshly imported file) the planner must still start from the
    # FTS5 match, not walk the catalogue asking FTS5 about each video.
    for n in range(1, 4):
        await catalogue.add_video(
            f"Summit {n}", description="Ministers in Oslo", published_at=at(n)
        )
    assert not await has_statistics(catalogue.database)
    async with recorded(catalogue.database, "video_search") as statements:
        found = await service_ids(catalogue, "oslo", bounds)
    assert found
    assert statements
    for statement, parameters in statements:
        steps = await plan_steps(catalogue.database, statement, parameters)
        assert steps[0].startswith("SCAN video_search VIRTUAL TABLE"), steps
