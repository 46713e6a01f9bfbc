"""The video detail read as plain rows answers exactly what the ORM entities would."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from services.media import service
from services.media.config import MediaSettings
from services.media.models import Video
from services.media.schemas import RenditionOut
from tests.media.conftest import Catalogue


async def orm_rendering(app: FastAPI, video_id: uuid.UUID, settings: MediaSettings) -> bytes:
    """The detail built from the ORM relationships (their own `order_by`), as JSON."""
    async with app.state.database.sessionmaker() as session:
        video = await service.get_video(session, video_id)
        detail = service.video_detail_from(
            video,
            [tag.tag for tag in video.tags],
            [RenditionOut.model_validate(rendition) for rendition in video.renditions],
            settings,
        )
    return detail.model_dump_json().encode()


async def test_many_tags_and_renditions_each_appear_once_in_order(
    app: FastAPI, client: httpx.AsyncClient, catalogue: Catalogue, settings: MediaSettings
) -> None:
    # The joined statement returns tags x renditions rows: 3 x 3 here.
    first = await catalogue.ingest(tags=["Oslo", "NATO-Russia Council", "CFE"])
    await catalogue.ingest_bytes(b"\x00" * 64, video_id=first.video_id, label="Raw A")
    await catalogue.ingest_bytes(b"\x01" * 64, video_id=first.video_id, label="Raw B")
    response = await client.get(f"/v1/media/videos/{first.video_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["tags"] == ["cfe", "nato-russia council", "oslo"]
    assert len(body["renditions"]) == 3
    assert len({rendition["id"] for rendition in body["renditions"]}) == 3
    assert response.content == await orm_rendering(app, first.video_id, settings)


async def test_a_video_without_tags_or_renditions(
    app: FastAPI, client: httpx.AsyncClient, catalogue: Catalogue, settings: MediaSettings
) -> None:
    video_id = await catalogue.add_video("Bare")
    response = await client.get(f"/v1/media/videos/{video_id}")
    assert response.status_code == 200
    assert response.json()["tags"] == []
    assert response.json()["renditions"] == []
    assert response.content == await orm_rendering(app, video_id, settings)


async def test_the_pooled_connection_is_transactional_again_after_a_detail_read(
    app: FastAPI, client: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    # The detail read runs without a transaction; the pool must not hand that mode on, or a
    # later rollback would leave its writes in place.
    video_id = await catalogue.add_video("Kept")
    assert (await client.get(f"/v1/media/videos/{video_id}")).status_code == 200
    async with app.state.database.engine.connect() as connection:
        await connection.execute(
            update(Video).where(Video.id == video_id).values(title="Rolled back")
        )
        await connection.rollback()
    response = await client.get(f"/v1/media/videos/{video_id}")
    assert response.json()["title"] == "Kept"
