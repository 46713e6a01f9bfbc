"""The video detail read as plain rows answers exactly what the ORM entities would, and its
rows on the driver are the rows SQLAlchemy would have given."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from services.media import detail_reads, service
from services.media.config import MediaSettings
from services.media.models import Video
from services.media.schemas import RenditionOut
from tests.conftest import TokenFactory
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


def _described(row: Any) -> dict[str, tuple[type, Any, timedelta | None]]:
    return {
        name: (type(value), value, value.utcoffset() if isinstance(value, datetime) else None)
        for name, value in dict(row).items()
    }


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"])
async def test_on_postgresql_the_driver_gives_the_rows_sqlalchemy_would(
    app: FastAPI, catalogue: Catalogue
) -> None:
    # On PostgreSQL the detail skips SQLAlchemy's result processing: every column must come
    # back with SQLAlchemy's value and type anyway (UUIDs, UTC datetimes, the JSON list, floats,
    # NULLs), for the video's own columns and each tag's and rendition's.
    first = await catalogue.ingest(
        tags=["Oslo", "CFE"],
        related_article_slugs=["allies-meet-in-oslo", "cfe-treaty"],
        credits="NATO",
        location="Oslo, Norway",
        published_at=datetime(2026, 5, 14, 9, 30, tzinfo=UTC),
    )
    await catalogue.ingest_bytes(b"\x00" * 64, video_id=first.video_id, label="Raw A")
    engine = app.state.database.engine
    async with engine.begin() as connection:
        await connection.execute(
            update(Video)
            .where(Video.id == first.video_id)
            .values(
                withdrawn_at=datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=UTC),
                withdrawal_reason="rights",
                duration_seconds=12.5,
            )
        )
    on_driver = await detail_reads.detail_rows(engine, first.video_id)
    async with engine.connect() as connection:
        through_sqlalchemy = (
            (await connection.execute(detail_reads._DETAIL, {"video_id": first.video_id}))
            .mappings()
            .all()
        )
    assert len(through_sqlalchemy) == 4  # two tags x two renditions
    assert [_described(row) for row in on_driver] == [_described(row) for row in through_sqlalchemy]


async def _terminate_other_backends(database_url: str) -> None:
    admin = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        others = (
            "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        await admin.execute(f"SELECT pg_terminate_backend(pid) {others}")
        for _ in range(100):
            if not await admin.fetchval(f"SELECT count(*) {others}"):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the app's connections outlived pg_terminate_backend")
    finally:
        await admin.close()


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_lost_connection_answers_503_once_then_the_pool_reconnects(
    client: httpx.AsyncClient, catalogue: Catalogue, tokens: TokenFactory, database_url: str
) -> None:
    # The server dropped the pooled connection (a restart, a failover): the read on the driver
    # fails, and SQLAlchemy's read again reports it as every read does and drops the dead
    # connections, so the next request connects afresh.
    video_id = await catalogue.add_video("Kept")
    path = f"/v1/media/videos/{video_id}"
    editor = {"Authorization": f"Bearer {tokens.account(roles=('editor',))}"}
    assert (await client.get(path, headers=editor)).status_code == 200
    await _terminate_other_backends(database_url)
    lost = await client.get(path, headers=editor)
    assert lost.status_code == 503, lost.text
    assert lost.json()["code"] == "service_unavailable"
    assert int(lost.headers["retry-after"]) >= 1
    again = await client.get(path, headers=editor)
    assert again.status_code == 200, again.text
    assert again.json()["title"] == "Kept"
