"""The request boundary commits: a failed commit is an error response, never a silent 200."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, HTTPException, Request
from sqlalchemy import String, event, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.app import create_service_app
from services.common.database import (
    POOL_SIZE,
    Database,
    SessionDep,
    Timestamps,
    UnitOfWork,
    UUIDPrimaryKey,
    after_commit,
    make_metadata,
    time_ordered_uuid,
)
from services.common.settings import ServiceSettings
from tests.conftest import POSTGRES_URL, postgres_unreachable, unavailable


class Base(DeclarativeBase):
    metadata = make_metadata()


class Thing(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "things"
    name: Mapped[str] = mapped_column(String(50), unique=True)


router = APIRouter(prefix="/v1/things")
# What after-commit actions saw: each name, with the names committed at that moment.
announced: list[tuple[str, list[str]]] = []


def _add(session: AsyncSession, database: Database, name: str) -> None:
    session.add(Thing(name=name))

    async def announce() -> None:
        async with database.sessionmaker() as other:
            committed = (await other.scalars(select(Thing.name).order_by(Thing.name))).all()
        announced.append((name, list(committed)))

    after_commit(session, announce)


@router.post("/{name}", status_code=201)
async def add(name: str, session: SessionDep, request: Request) -> dict[str, str]:
    _add(session, request.app.state.database, name)
    return {"name": name}


@router.post("/own/{name}", status_code=201)
async def add_in_own_unit(name: str, request: Request, fail: bool = False) -> dict[str, str]:
    """The same, in a unit of work the route opens itself (as login does)."""
    database: Database = request.app.state.database
    async with UnitOfWork(database) as session:
        _add(session, database, name)
        await session.flush()
        if fail:
            raise HTTPException(409, "refused after the write")
    return {"name": name}


@router.get("")
async def names(session: SessionDep) -> list[str]:
    return list((await session.scalars(select(Thing.name).order_by(Thing.name))).all())


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'things.sqlite3'}")
    async with database.engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    app = create_service_app(
        title="things",
        description="",
        prefix="/v1/things",
        settings=ServiceSettings(NATOMEDIA_DATA_DIR=tmp_path),
        database=database,
        routers=[router],
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


# The same three promises from the session dependency and from a route's own unit of work.
BOTH = pytest.mark.parametrize("path", ["/v1/things", "/v1/things/own"])


@BOTH
async def test_commit_happens_before_the_response(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.post(f"{path}/a")).status_code == 201
    assert (await client.get("/v1/things")).json() == ["a"]


@BOTH
async def test_a_failed_commit_is_an_error_and_nothing_is_half_written(
    client: httpx.AsyncClient, path: str
) -> None:
    assert (await client.post(f"{path}/a")).status_code == 201
    duplicate = await client.post(f"{path}/a")
    assert duplicate.status_code >= 400
    assert duplicate.headers["content-type"] == "application/problem+json"
    assert (await client.get("/v1/things")).json() == ["a"]


@BOTH
async def test_after_commit_actions_run_after_the_commit_and_never_after_a_rollback(
    client: httpx.AsyncClient, path: str
) -> None:
    announced.clear()
    assert (await client.post(f"{path}/a")).status_code == 201
    # Done before the response: the row was already visible to another session.
    assert announced == [("a", ["a"])]
    assert (await client.post(f"{path}/a")).status_code >= 400  # the commit fails
    assert (await client.post(f"{path}/b")).status_code == 201
    assert announced == [("a", ["a"]), ("b", ["a", "b"])]


async def test_an_error_inside_a_unit_of_work_rolls_its_writes_back(
    client: httpx.AsyncClient,
) -> None:
    announced.clear()
    refused = await client.post("/v1/things/own/a", params={"fail": "true"})
    assert refused.status_code == 409
    assert (await client.get("/v1/things")).json() == []
    assert announced == []


async def test_timestamps_are_timezone_aware(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'tz.sqlite3'}")
    async with database.engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    async with database.sessionmaker() as session:
        session.add(Thing(name="z"))
        await session.commit()
    async with database.sessionmaker() as session:
        thing = (await session.scalars(select(Thing))).one()
        assert thing.created_at.tzinfo is not None
    await database.dispose()


async def test_readiness_fails_cleanly_when_the_database_is_gone(tmp_path: Path) -> None:
    database = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    app = create_service_app(
        title="gone",
        description="",
        prefix="/v1/gone",
        settings=ServiceSettings(NATOMEDIA_DATA_DIR=tmp_path),
        database=database,
        routers=[router],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.headers["retry-after"]
        listing = await http.get("/v1/things")
        assert listing.status_code == 503
        assert listing.json()["code"] == "service_unavailable"


def test_time_ordered_uuids_are_version_7_and_sort_by_the_millisecond_they_were_made() -> None:
    first = [time_ordered_uuid() for _ in range(1000)]
    time.sleep(0.002)
    later = time_ordered_uuid()
    assert all(value.version == 7 and value.variant == uuid.RFC_4122 for value in first)
    assert len(set(first)) == len(first)
    assert max(first) < later
    # The first 48 bits are the milliseconds since the epoch.
    assert abs((later.int >> 80) - time.time_ns() // 1_000_000) < 60_000


@pytest.mark.postgres
async def test_bursts_above_the_pool_wait_for_its_connections_instead_of_opening_new_ones() -> None:
    # A connection opened above the pool size used to be closed on return: under a burst of
    # concurrent reads every request paid a PostgreSQL connect (and the server a new backend).
    if reason := await postgres_unreachable():
        unavailable("postgres", reason)
    database = Database(POSTGRES_URL.replace("postgresql://", "postgresql+asyncpg://", 1))
    opened = closed = 0

    def on_connect(*_: object) -> None:
        nonlocal opened
        opened += 1

    def on_close(*_: object) -> None:
        nonlocal closed
        closed += 1

    event.listen(database.sync_engine, "connect", on_connect)
    event.listen(database.sync_engine, "close", on_close)

    async def read() -> int:
        async with database.engine.connect() as connection:
            result = await connection.execute(text("SELECT 1 FROM pg_sleep(0.005)"))
            return int(result.scalar_one())

    try:
        for _ in range(3):
            answers = await asyncio.gather(*(read() for _ in range(3 * POOL_SIZE)))
            assert answers == [1] * (3 * POOL_SIZE)
        assert 0 < opened <= POOL_SIZE
        assert closed == 0
    finally:
        await database.dispose()
