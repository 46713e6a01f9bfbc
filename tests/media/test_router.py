"""The catalogue over HTTP: listing, filters, cursors, sync, detail and conditional GETs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.common.pagination import encode_cursor
from services.common.problems import PROBLEM_JSON
from tests.media.conftest import PUBLIC_BASE_URL, Catalogue, at

RENDITION_CONTRACT_FIELDS = {
    "id",
    "label",
    "container",
    "video_codec",
    "width",
    "height",
    "bitrate",
    "size_bytes",
    "sha256",
}


async def all_ids(client: httpx.AsyncClient, **params: str) -> list[str]:
    response = await client.get("/v1/media/videos", params={"limit": "100", **params})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_empty_catalogue(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/media/videos")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"items": [], "next_cursor": None}


async def test_list_newest_first_with_summary_fields(
    client: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    old = await catalogue.add_video("Old", published_at=at(1), tags=["archive"])
    new = await catalogue.add_video("New", published_at=at(2))
    response = await client.get("/v1/media/videos")
    body = response.json()
    assert [item["id"] for item in body["items"]] == [str(new), str(old)]
    assert body["next_cursor"] is None
    item = body["items"][1]
    assert item["title"] == "Old"
    assert item["tags"] == ["archive"]
    assert item["published_at"] == "2020-01-02T00:00:00Z"
    assert "renditions" not in item


async def test_detail_has_contract_rendition_fields(
    client: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    ingested = await catalogue.ingest(
        title="Foreign Ministers meet in Oslo",
        tags=["Oslo", "NATO-Russia Council"],
        related_article_slugs=["nato-russia-council-oslo-2007"],
        credits="NATO",
        location="Oslo, Norway",
    )
    response = await client.get(f"/v1/media/videos/{ingested.video_id}")
    assert response.status_code == 200
    video = response.json()
    assert video["id"] == str(ingested.video_id)
    assert video["tags"] == ["nato-russia council", "oslo"]
    assert video["related_article_slugs"] == ["nato-russia-council-oslo-2007"]
    assert video["credits"] == "NATO"
    assert video["location"] == "Oslo, Norway"
    [rendition] = video["renditions"]
    assert RENDITION_CONTRACT_FIELDS <= set(rendition)
    assert rendition["id"] == str(ingested.rendition_id)
    assert rendition["size_bytes"] == ingested.size_bytes
    assert rendition["sha256"] == ingested.sha256
    assert rendition["container"] == "mp4"
    assert rendition["content_type"] == "video/mp4"
    assert "storage_key" not in rendition


async def test_detail_unknown_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v1/media/videos/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == "not_found"


async def test_detail_unknown_is_told_in_french_when_asked(client: httpx.AsyncClient) -> None:
    response = await client.get(
        f"/v1/media/videos/{uuid.uuid4()}", headers={"Accept-Language": "fr-FR, en;q=0.5"}
    )
    assert response.status_code == 404
    assert response.json()["detail"] == "Aucune vidéo n’a cet identifiant."
    assert response.headers["content-language"] == "fr"


async def test_detail_malformed_id_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/media/videos/not-a-uuid")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "video_id"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"published_after": "2020-01-01T00:00:00"}, "published_after"),
        ({"published_before": "0001-01-01T00:00:00+01:00"}, "published_before"),
        ({"q": "nul\x00byte"}, "q"),
        ({"q": "\x00"}, "q"),
        ({"tag": "\x00"}, "tag"),
        (
            {"cursor": encode_cursor("p", "0001-01-01T00:00:00+01:00", str(uuid.UUID(int=0)))},
            "cursor",
        ),
        ({"cursor": encode_cursor("p", "2020-01-01T00:00:00", str(uuid.UUID(int=0)))}, "cursor"),
        ({"cursor": encode_cursor("p", "2020-01-01T00:00:00Z", "nope")}, "cursor"),
    ],
)
async def test_bad_list_parameters_are_422(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await client.get("/v1/media/videos", params=params)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_q_searches_title_description_and_tags(
    client: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    by_title = await catalogue.add_video("Ministers in OSLO", published_at=at(1))
    by_description = await catalogue.add_video(
        "Summit", description="held in oslo", published_at=at(2)
    )
    by_tag = await catalogue.add_video("Press point", tags=["oslo 2007"], published_at=at(3))
    await catalogue.add_video("Brussels", description="elsewhere", published_at=at(4))
    found = await all_ids(client, q="Oslo")
    assert sorted(found) == sorted([str(by_tag), str(by_description), str(by_title)])
    # A match in the title weighs more than one in the description.
    assert found.index(str(by_title)) < found.index(str(by_description))


async def test_q_syntax_is_never_passed_to_the_engine(
    client: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    percent = await catalogue.add_video("100% coverage", published_at=at(1))
    await catalogue.add_video("plain title", published_at=at(2))
    assert await all_ids(client, q="%") == []
    assert await all_ids(client, q="100%") == [str(percent)]
    assert await all_ids(client, q='"coverage" OR (') == [str(percent)]
    assert await all_ids(client, q="\\") == []


async def test_tag_filter_is_exact_and_case_insensitive(
    client: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    tagged = await catalogue.add_video("A", tags=["missile defence"], published_at=at(1))
    await catalogue.add_video("B", tags=["missile"], published_at=at(2))
    assert await all_ids(client, tag="Missile Defence") == [str(tagged)]


async def test_published_window(client: httpx.AsyncClient, catalogue: Catalogue) -> None:
    first = await catalogue.add_video("1", published_at=at(1))
    second = await catalogue.add_video("2", published_at=at(2))
    await catalogue.add_video("3", published_at=at(3))
    ids = await all_ids(
        client,
        published_after=at(1).isoformat(),
        published_before=at(3).isoformat(),
    )
    assert ids == [str(second), str(first)]


async def test_pagination_visits_each_video_once_while_videos_are_added(
    client: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    same_instant = at(10)
    original = {str(await catalogue.add_video(f"v{i}", published_at=at(i % 7))) for i in range(12)}
    original |= {
        str(await catalogue.add_video(f"tie{i}", published_at=same_instant)) for i in range(5)
    }
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "4", **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/v1/media/videos", params=params)).json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        # Newer videos arrive between pages, some at the very instant the cursor sits on.
        await catalogue.add_video("breaking", published_at=datetime.now(UTC))
        await catalogue.add_video("tie-late", published_at=same_instant + timedelta(microseconds=1))
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 5
    assert len(seen) == len(set(seen))
    assert set(seen) == original


async def test_updated_since_syncs_changes_without_gaps_or_repeats(
    client: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    base = datetime(2024, 5, 1, tzinfo=UTC)
    videos = [
        await catalogue.add_video(f"v{i}", published_at=at(i), updated_at=base + timedelta(hours=i))
        for i in range(5)
    ]
    await catalogue.add_video("before", updated_at=base - timedelta(days=1))

    synced: list[str] = []
    cursor = None
    while True:
        params = {"updated_since": base.isoformat(), "limit": "2"}
        response = await client.get(
            "/v1/media/videos", params={**params, **({"cursor": cursor} if cursor else {})}
        )
        body = response.json()
        if not body["items"]:
            assert body["next_cursor"] is None
            break
        synced += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        assert cursor is not None
    # Oldest change first, so an interrupted sync resumes where it stopped.
    assert synced == [str(video) for video in videos]

    # Later: one video changes, one is added (at the same instant), and the saved cursor
    # brings exactly those two.
    later = base + timedelta(days=2)
    await catalogue.touch(videos[1], later, title="v1 corrected")
    added = await catalogue.add_video("new", updated_at=later)
    response = await client.get(
        "/v1/media/videos",
        params={"updated_since": base.isoformat(), "cursor": cursor, "limit": "10"},
    )
    changed = response.json()
    assert sorted(item["id"] for item in changed["items"]) == sorted([str(videos[1]), str(added)])
    assert {item["title"] for item in changed["items"]} == {"v1 corrected", "new"}
    assert changed["next_cursor"] is not None

    nothing = await client.get(
        "/v1/media/videos",
        params={"updated_since": base.isoformat(), "cursor": changed["next_cursor"]},
    )
    assert nothing.json() == {"items": [], "next_cursor": None}


async def test_cursor_of_one_order_is_refused_in_the_other(
    client: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    for i in range(3):
        await catalogue.add_video(f"v{i}", published_at=at(i))
    cursor = (await client.get("/v1/media/videos", params={"limit": "1"})).json()["next_cursor"]
    response = await client.get(
        "/v1/media/videos",
        params={"cursor": cursor, "updated_since": "2000-01-01T00:00:00Z"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "invalid_cursor"


async def test_list_etag_and_304(client: httpx.AsyncClient, catalogue: Catalogue) -> None:
    video = await catalogue.add_video("First", published_at=at(1))
    first = await client.get("/v1/media/videos")
    etag = first.headers["etag"]
    assert etag.startswith('"')
    again = await client.get("/v1/media/videos", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag

    await catalogue.touch(video, datetime.now(UTC), title="First, corrected")
    changed = await client.get("/v1/media/videos", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag


async def test_detail_etag_and_304(client: httpx.AsyncClient, catalogue: Catalogue) -> None:
    ingested = await catalogue.ingest()
    path = f"/v1/media/videos/{ingested.video_id}"
    etag = (await client.get(path)).headers["etag"]
    assert (await client.get(path, headers={"If-None-Match": etag})).status_code == 304
    assert (await client.get(path, headers={"If-None-Match": f"W/{etag}"})).status_code == 304
    assert (await client.get(path, headers={"If-None-Match": '"other"'})).status_code == 200

    await catalogue.ingest(video_id=ingested.video_id, label="Second rendition")
    refreshed = await client.get(path, headers={"If-None-Match": etag})
    assert refreshed.status_code == 200
    assert len(refreshed.json()["renditions"]) == 2


@pytest.mark.usefixtures("ffprobe")
async def test_thumbnail(client: httpx.AsyncClient, catalogue: Catalogue) -> None:
    ingested = await catalogue.ingest()
    video = (await client.get(f"/v1/media/videos/{ingested.video_id}")).json()
    url = video["thumbnail_url"]
    assert url == f"{PUBLIC_BASE_URL}/v1/media/videos/{ingested.video_id}/thumbnail.jpg"
    response = await client.get(url.removeprefix(PUBLIC_BASE_URL))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content.startswith(b"\xff\xd8")
    cached = await client.get(
        url.removeprefix(PUBLIC_BASE_URL), headers={"If-None-Match": response.headers["etag"]}
    )
    assert cached.status_code == 304


async def test_thumbnail_missing_is_404(client: httpx.AsyncClient, catalogue: Catalogue) -> None:
    video = await catalogue.add_video()
    response = await client.get(f"/v1/media/videos/{video}/thumbnail.jpg")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_openapi_documents_the_media_api(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/v1/media/openapi.json")).json()
    paths = schema["paths"]
    download_url = paths["/v1/media/videos/{video_id}/renditions/{rendition_id}/download-url"]
    post = download_url["post"]
    assert post["summary"] == "Get a signed download URL"
    # The partners' grant comes from the route's dependencies, not a table beside them.
    assert post["security"] == [{"bearerAuth": []}, {"clientCredentials": ["media:download"]}]
    codes_403 = post["responses"]["403"]["content"][PROBLEM_JSON]["schema"]["allOf"][1]
    assert codes_403["properties"]["code"]["enum"] == ["email_not_verified", "insufficient_scope"]
    download = paths["/v1/media/downloads/{rendition_id}/{filename}"]
    assert {"get", "head"} <= set(download)
    assert {"200", "206", "403", "410", "416"} <= set(download["get"]["responses"])
    listing = paths["/v1/media/videos"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {
        "q", "tag", "updated_since", "published_after", "published_before", "limit", "cursor"
    }  # fmt: skip
    assert "examples" in schema["components"]["schemas"]["VideoDetail"]
