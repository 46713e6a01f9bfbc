"""The editor API: PATCH with If-Match, delete a rendition, the downloads of a video; the
catalogue filters (`language`, every `tag`) and strict list parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.media.ingest import Ingested
from services.media.models import Video, VideoChange
from tests.conftest import TokenFactory
from tests.media.conftest import Catalogue, at
from tests.media.test_downloads import CONTENT, assert_problem, signed_url, url_path
from tests.media.test_withdrawal import editor

SINCE = (datetime.now(UTC) - timedelta(days=1)).isoformat()


@pytest.fixture
async def clip(catalogue: Catalogue) -> Ingested:
    return await catalogue.ingest_bytes(CONTENT, title="Oslo press point", tags=("oslo",))


async def patch(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory, body: dict[str, Any], **h: str
) -> httpx.Response:
    return await client.patch(
        f"/v1/media/videos/{clip.video_id}", json=body, headers={**editor(tokens), **h}
    )


async def test_patch_changes_every_metadata_field_and_bumps_the_version(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory, catalogue: Catalogue
) -> None:
    fields = {
        "title": "Conférence de presse à Oslo",
        "description": "Ministers answer questions",
        "tags": ["Oslo", "Press  Conference"],
        "language": "fr",
        "credits": "NATO",
        "copyright": "NATO 2026",
        "location": "Oslo, Norway",
        "shot_list": "1. Wide shot",
        "transcript": "Bonjour.",
    }
    response = await patch(client, clip, tokens, fields)
    assert response.status_code == 200, response.text
    body = response.json()
    for name, value in fields.items():
        if name != "tags":
            assert body[name] == value
    assert body["tags"] == ["oslo", "press conference"]
    assert body["version"] == 2
    assert response.headers["etag"]

    detail = (await client.get(f"/v1/media/videos/{clip.video_id}")).json()
    assert detail["transcript"] == "Bonjour."
    assert detail["version"] == 2
    # The download name follows the title, in ASCII, with the rendition id prefix.
    [rendition] = detail["renditions"]
    assert rendition["filename"] == (
        f"conference-de-presse-a-oslo-mp4-{clip.rendition_id.hex[:8]}.mp4"
    ).replace("-mp4-", "-")

    [item] = (await client.get("/v1/media/videos", params={"updated_since": SINCE})).json()["items"]
    assert (item["title"], item["version"]) == ("Conférence de presse à Oslo", 2)

    async with catalogue.database.sessionmaker() as session:
        change = await session.scalar(select(VideoChange).where(VideoChange.action == "update"))
    assert change is not None
    assert change.editor is not None
    assert set(change.fields) == set(fields)


async def test_patch_honours_if_match(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory
) -> None:
    etag = (await client.get(f"/v1/media/videos/{clip.video_id}")).headers["etag"]
    first = await patch(client, clip, tokens, {"title": "First"}, **{"If-Match": etag})
    assert first.status_code == 200, first.text
    # Another editor still holding the old ETag is refused, and changes nothing.
    stale = await patch(client, clip, tokens, {"title": "Second"}, **{"If-Match": etag})
    assert_problem(stale, 412, "precondition_failed")
    assert (await client.get(f"/v1/media/videos/{clip.video_id}")).json()["title"] == "First"
    # The ETag of the answer (and of a fresh read) is current.
    fresh = await client.get(f"/v1/media/videos/{clip.video_id}")
    assert fresh.headers["etag"] == first.headers["etag"]
    again = await patch(
        client, clip, tokens, {"title": "Second"}, **{"If-Match": first.headers["etag"]}
    )
    assert again.status_code == 200
    assert again.json()["version"] == 3


async def test_patch_without_a_change_keeps_the_version(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory
) -> None:
    response = await patch(client, clip, tokens, {"title": "Oslo press point"})
    assert response.status_code == 200
    assert response.json()["version"] == 1


@pytest.mark.parametrize(
    "body",
    [{"status": "withdrawn"}, {"title": ""}, {"title": "x" * 301}, {"tags": "oslo"}, {"id": "x"}],
)
async def test_patch_refuses_bad_fields(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory, body: dict[str, Any]
) -> None:
    assert_problem(await patch(client, clip, tokens, body), 422, "validation_error")


async def test_editor_calls_need_the_editor_role(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory
) -> None:
    reader = {"Authorization": f"Bearer {tokens.account()}"}
    video = f"/v1/media/videos/{clip.video_id}"
    calls = [
        ("PATCH", video, {"title": "x"}),
        ("POST", f"{video}/restore", None),
        ("DELETE", f"{video}/renditions/{clip.rendition_id}", None),
        ("GET", f"{video}/downloads", None),
    ]
    for method, path, body in calls:
        assert_problem(await client.request(method, path, json=body), 401, "invalid_token")
        response = await client.request(method, path, json=body, headers=reader)
        assert_problem(response, 403, "insufficient_scope")


async def test_delete_rendition(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory, catalogue: Catalogue
) -> None:
    link = url_path(await signed_url(client, clip, tokens))
    path = f"/v1/media/videos/{clip.video_id}/renditions/{clip.rendition_id}"
    response = await client.delete(path, headers=editor(tokens))
    assert response.status_code == 204
    detail = (await client.get(f"/v1/media/videos/{clip.video_id}")).json()
    assert detail["renditions"] == []
    assert detail["version"] == 2
    assert_problem(await client.get(link), 404, "not_found")
    assert not catalogue.storage.path(f"videos/{clip.video_id}/{clip.rendition_id}.mp4").exists()
    assert_problem(await client.delete(path, headers=editor(tokens)), 404, "not_found")
    # Who obtained a link to it is still known.
    downloads = await client.get(
        f"/v1/media/videos/{clip.video_id}/downloads", headers=editor(tokens)
    )
    [grant] = downloads.json()["items"]
    assert grant["rendition_id"] is None


async def test_downloads_of_a_video_name_who_obtained_links(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory
) -> None:
    await signed_url(client, clip, tokens)
    partner = await client.post(
        f"/v1/media/videos/{clip.video_id}/renditions/{clip.rendition_id}/download-url",
        headers={"Authorization": f"Bearer {tokens.client('bbc', 'BBC evening news')}"},
    )
    response = await client.get(
        f"/v1/media/videos/{clip.video_id}/downloads", headers=editor(tokens)
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert partner.status_code == 200
    assert len(items) == 2
    # The test clock stands still: both grants share an instant, so compare without order.
    assert {
        (item["subject"].startswith("client:"), item["client_id"], item["client_name"])
        for item in items
    } == {(True, "bbc", "BBC evening news"), (False, None, None)}
    for item in items:
        assert set(item) == {
            "rendition_id", "subject", "client_id", "client_name", "granted_at", "expires_at"
        }  # fmt: skip
        assert item["rendition_id"] == str(clip.rendition_id)


async def test_list_filters_by_language_and_every_tag(
    client: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    both = await catalogue.add_video("both", tags=("oslo", "summit"), published_at=at(1))
    await catalogue.add_video("one", tags=("oslo",), published_at=at(2))
    async with catalogue.database.sessionmaker() as session:
        video = await session.get(Video, both)
        assert video is not None
        video.language = "fr"
        await session.commit()
    catalogue._changed()

    response = await client.get("/v1/media/videos", params=[("tag", "oslo"), ("tag", "Summit")])
    assert [item["id"] for item in response.json()["items"]] == [str(both)]
    response = await client.get("/v1/media/videos", params={"language": "FR"})
    assert [item["id"] for item in response.json()["items"]] == [str(both)]
    response = await client.get("/v1/media/videos", params={"language": "de"})
    assert response.json()["items"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("sort=title", "sort"),
        ("languge=fr", "languge"),
        ("language=fr&language=de", "language"),
        ("limit=5&limit=6", "limit"),
        ("q=a&q=b", "q"),
    ],
)
async def test_unknown_or_repeated_list_parameters_are_422(
    client: httpx.AsyncClient, query: str, field: str
) -> None:
    response = await client.get(f"/v1/media/videos?{query}")
    assert_problem(response, 422, "validation_error")
    assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_feeds_and_single_reads_ignore_extra_parameters(
    client: httpx.AsyncClient, clip: Ingested
) -> None:
    response = await client.get(f"/v1/media/videos/{clip.video_id}?utm_source=x")
    assert response.status_code == 200
