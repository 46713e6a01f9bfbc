"""SQLite connections take one trip to their thread per statement, and none for an idle commit.

Every check runs through `Database`, so it covers what the services get; results must equal what
sqlite3 itself gives (rows, rowcount, lastrowid, errors, transactions), only with fewer trips.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Integer, String, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.database import Database, make_metadata
from services.common.sqlite_connection import OneTripConnection


class Base(DeclarativeBase):
    metadata = make_metadata()


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'items.sqlite3'}")
    async with database.engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    yield database
    await database.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of each function sent to a connection's thread, in order."""
    sent: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(
        self: aiosqlite.Connection, fn: Callable[..., Any], *args: Any, **kw: Any
    ) -> Any:
        sent.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kw)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return sent


async def test_the_engine_opens_one_trip_connections(database: Database) -> None:
    async with database.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        assert isinstance(raw.driver_connection, OneTripConnection)


async def test_a_write_takes_a_trip_per_statement_and_one_for_the_commit(
    database: Database, trips: list[str]
) -> None:
    async with database.sessionmaker() as session:
        await session.execute(select(Item).where(Item.name == "a"))
        session.add(Item(name="a"))
        await session.commit()
    # aiosqlite through SQLAlchemy's adapter: cursor, execute, fetchall, close for the SELECT;
    # cursor, execute, close for the INSERT; the commit; the pool's rollback: nine.
    assert trips == ["_run", "_run", "commit"]


async def test_a_read_ends_without_a_trip(database: Database, trips: list[str]) -> None:
    async with database.sessionmaker() as session:
        assert (await session.scalars(select(Item.name))).all() == []
        await session.commit()
    assert trips == ["_run"]


async def test_rows_counts_and_ids_are_sqlite3s(database: Database) -> None:
    async with database.sessionmaker() as session:
        first = Item(name="first")
        session.add(first)
        await session.flush()
        assert first.id == 1  # lastrowid, read after the cursor was closed on its thread
        await session.execute(insert(Item), [{"name": f"n{i}"} for i in range(5)])  # executemany
        changed = await session.execute(
            update(Item).where(Item.name.like("n%")).values(name=Item.name + "x")
        )
        assert changed.rowcount == 5  # type: ignore[attr-defined]
        rows = (await session.execute(text("SELECT id, name FROM items ORDER BY id"))).all()
        assert [tuple(row) for row in rows] == [(1, "first")] + [
            (i + 2, f"n{i}x") for i in range(5)
        ]
        await session.commit()


async def test_streamed_results_come_in_chunks_and_all_arrive(database: Database) -> None:
    async with database.sessionmaker() as session:
        await session.execute(insert(Item), [{"name": f"s{i:03}"} for i in range(150)])
        await session.commit()
    async with database.engine.connect() as connection:
        result = await connection.stream(select(Item.name).order_by(Item.name))
        chunks = [list(chunk) async for chunk in result.partitions(64)]
    assert [len(chunk) for chunk in chunks] == [64, 64, 22]
    assert [row.name for chunk in chunks for row in chunk] == [f"s{i:03}" for i in range(150)]


async def test_a_failed_statement_raises_and_its_transaction_rolls_back(
    database: Database, trips: list[str]
) -> None:
    async with database.sessionmaker() as session:
        session.add(Item(name="taken"))
        await session.commit()
    trips.clear()
    async with database.sessionmaker() as session:
        session.add(Item(name="kept-out"))
        await session.flush()
        with pytest.raises(IntegrityError):
            await session.execute(insert(Item).values(name="taken"))
        await session.rollback()
    # The open transaction is rolled back on the thread; then nothing is left to roll back.
    assert trips == ["_run", "_run", "rollback"]
    async with database.sessionmaker() as session:
        assert (await session.scalars(select(Item.name))).all() == ["taken"]


async def test_a_commit_is_seen_by_other_connections(database: Database) -> None:
    async with database.sessionmaker() as writer, database.sessionmaker() as reader:
        writer.add(Item(name="shared"))
        await writer.flush()
        assert (await reader.scalars(select(Item.name))).all() == []
        await writer.commit()
        assert (await reader.scalars(select(Item.name))).all() == ["shared"]
