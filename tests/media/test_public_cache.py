"""The catalogue's public reads from the micro-cache: no database the second time, within a TTL."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from services.common.database import Database
from services.media.models import Video
from tests.conftest import TokenFactory
from tests.media.conftest import Catalogue
from tests.public_cache_support import Monotonic, borrowed_connections


def _without_request_id(headers: httpx.Headers) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name != "x-request-id"}


async def rename_behind_the_apps_back(app: FastAPI, title: str) -> None:
    database: Database = app.state.database
    async with database.sessionmaker() as session:
        await session.execute(update(Video).values(title=title))
        await session.commit()


@pytest.mark.usefixtures("monotonic")
async def test_a_repeated_public_read_does_not_touch_the_database(
    app: FastAPI, client: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    ingested = await catalogue.ingest_bytes(b"\x00" * 1000, title="Ministers in Oslo")
    for path in (f"/v1/media/videos/{ingested.video_id}", "/v1/media/videos?limit=5"):
        first = await client.get(path)
        assert first.status_code == 200
        with borrowed_connections(app) as connections:
            again = await client.get(path)
            current = await client.get(path, headers={"If-None-Match": first.headers["etag"]})
        assert connections == [], path
        assert again.content == first.content
        assert again.headers["etag"] == first.headers["etag"]
        assert current.status_code == 304


@pytest.mark.usefixtures("monotonic")
async def test_a_token_without_the_editor_scope_is_served_the_same_entry(
    app: FastAPI, client: httpx.AsyncClient, catalogue: Catalogue, tokens: TokenFactory
) -> None:
    video_id = await catalogue.add_video("Original")
    path = f"/v1/media/videos/{video_id}"
    anonymous = await client.get(path)
    await rename_behind_the_apps_back(app, "Renamed")
    for token in (tokens.account(), tokens.client()):
        with borrowed_connections(app) as connections:
            reader = await client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert connections == []
        assert reader.content == anonymous.content
        assert _without_request_id(reader.headers) == _without_request_id(anonymous.headers)


@pytest.mark.usefixtures("monotonic")
async def test_editors_always_go_to_the_database(
    app: FastAPI, client: httpx.AsyncClient, catalogue: Catalogue, tokens: TokenFactory
) -> None:
    video_id = await catalogue.add_video("Original")
    path = f"/v1/media/videos/{video_id}"
    editor = {"Authorization": f"Bearer {tokens.account(roles=('editor',))}"}
    await client.get(path)
    await rename_behind_the_apps_back(app, "Renamed")
    with borrowed_connections(app) as connections:
        authenticated = await client.get(path, headers=editor)
    assert connections
    assert authenticated.json()["title"] == "Renamed"
    assert "x-accel-expires" not in authenticated.headers
    assert (await client.get(path)).json()["title"] == "Original"


async def test_a_change_from_elsewhere_shows_when_the_entry_expires(
    app: FastAPI, client: httpx.AsyncClient, catalogue: Catalogue, monotonic: Monotonic
) -> None:
    video_id = await catalogue.add_video("Original")
    path = f"/v1/media/videos/{video_id}"
    assert (await client.get(path)).json()["title"] == "Original"
    # `natomedia media ingest` runs in another process: this one hears nothing of it.
    await rename_behind_the_apps_back(app, "Renamed")
    monotonic.now += 0.9
    assert (await client.get(path)).json()["title"] == "Original"
    monotonic.now += 0.1
    assert (await client.get(path)).json()["title"] == "Renamed"


async def test_unknown_videos_are_not_kept(app: FastAPI, client: httpx.AsyncClient) -> None:
    path = "/v1/media/videos/00000000-0000-0000-0000-000000000000"
    assert (await client.get(path)).status_code == 404
    assert len(app.state.public_cache) == 0
