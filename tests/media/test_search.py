"""Full-text search over videos on both engines: every word, stemming, accents, the shot list and
transcript, best match first, withdrawn videos never found, and the index follows edits."""

from __future__ import annotations

import httpx

from services.common.search import fold_accents, search_terms
from tests.conftest import TokenFactory
from tests.media.conftest import Catalogue, at
from tests.media.test_withdrawal import editor


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
