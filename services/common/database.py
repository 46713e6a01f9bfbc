"""One async engine and session factory per service; one session per request."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import DateTime, Insert, MetaData, event, literal_column, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from services.common.private_files import touch_private

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def make_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware on the way in and out, whatever the database keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def time_ordered_uuid() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): the milliseconds since the epoch, then 74 random bits.

    Rows keyed by these land at the right-hand end of their indexes: a bulk import writes a few
    index pages per batch, where random keys dirty one page per row in every index once the
    index outgrows the cache.
    """
    millis = time.time_ns() // 1_000_000
    random = int.from_bytes(os.urandom(10), "big") >> 6
    value = (
        (millis & (1 << 48) - 1) << 80
        | 0x7 << 76
        | (random >> 62) << 64
        | 0b10 << 62
        | random & (1 << 62) - 1
    )
    return uuid.UUID(int=value)


class UUIDPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _create_private_sqlite_file(database: str | None) -> None:
    # SQLite would create the file under the umask (often world-readable) and gives its WAL and
    # shared-memory files the database file's mode: an empty file made 0600 is a valid database.
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    with contextlib.suppress(FileNotFoundError):  # no directory: SQLite reports that itself
        touch_private(Path(database))


# Connections one process keeps to PostgreSQL (the most it ever holds; one core's worth of
# requests never needs more at once).
POOL_SIZE = 20


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


class Database:
    """An engine and its session factory. Services flush; the request boundary commits."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = POOL_SIZE) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": False}
        if not is_sqlite(url):
            # No overflow: SQLAlchemy closes a connection above the pool size when it comes
            # back, so under a burst beyond the pool every request would open and close a
            # PostgreSQL connection. Requests beyond the pool wait for a connection instead.
            kwargs.update(pool_size=pool_size, max_overflow=0, pool_recycle=1800)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if is_sqlite(url):
            _create_private_sqlite_file(self.engine.url.database)
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def sync_engine(self) -> Engine:
        return self.engine.sync_engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def analyze(self) -> None:
        """Refresh the planner's statistics after a bulk load: until then it plans tables of
        100,000 rows as the empty ones it last saw (PostgreSQL's autovacuum catches up within
        minutes; SQLite never does by itself)."""
        async with self.engine.begin() as connection:
            await connection.execute(text("ANALYZE"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def conflict_insert(session: AsyncSession, model: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can say what to do ON CONFLICT, in the dialect of the session's database."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


async def insert_many(
    session: AsyncSession, statement: Insert, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert `rows` with `statement` in multi-row statements on PostgreSQL.

    asyncpg sends a plain executemany as one execution of the prepared INSERT per row, which
    the server pays for row by row; an INSERT with RETURNING takes SQLAlchemy's
    "insertmanyvalues" path instead: many rows per statement, one round trip per page. SQLite's
    executemany loops in C over one prepared statement already.
    """
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.returning(literal_column("1"))
    await session.execute(statement, list(rows))


_AFTER_COMMIT = "natomedia.after_commit"


def after_commit(session: AsyncSession, action: Callable[[], Awaitable[None]]) -> None:
    """Run `action` once the request's transaction has committed, before the response leaves.

    Never after a rollback. For what must follow the data (a cache told of a change), not for
    what may fail: an action that raises turns a committed request into an error answer.
    """
    session.sync_session.info.setdefault(_AFTER_COMMIT, []).append(action)


class UnitOfWork:
    """One session, committed when the block ends normally (then its after-commit actions run),
    rolled back when it raises, closed either way.

    What `SessionDep` gives a route, for work outside requests (commands, the outbox sender).
    """

    def __init__(self, database: Database) -> None:
        self.session = database.sessionmaker()

    async def __aenter__(self) -> AsyncSession:
        return self.session

    async def __aexit__(self, kind: type[BaseException] | None, *_: object) -> None:
        # Closed as the session's own `async with` closes it: shielded from cancellation.
        async with self.session as session:
            if kind is not None:
                await session.rollback()
                return
            try:
                await session.commit()
                for action in session.sync_session.info.pop(_AFTER_COMMIT, ()):
                    await action()
            except BaseException:
                await session.rollback()
                raise


async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The per-request session of the service whose app handles the request."""
    async with UnitOfWork(request.app.state.database) as session:
        yield session


# scope="function": commit before the response starts, so a failed commit is the answer.
SessionDep = Annotated[AsyncSession, Depends(request_session, scope="function")]
