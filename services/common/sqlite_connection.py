"""An aiosqlite connection whose statements each take one trip to the connection's thread.

aiosqlite runs every sqlite3 call on the connection's own thread, and SQLAlchemy's adapter makes
four such calls per statement (open a cursor, execute, fetch, close), then one for the commit and
one for the pool's rollback, even when there is nothing to commit or roll back. Each trip wakes
the event loop from another thread; on a core shared with password hashing, every wake-up also
starts the loop's work on a cold cache (a login paid 3.8 ms of loop time for 1.5 ms of work).

Here a statement is executed, fully fetched and its cursor closed in one trip, and a commit or
rollback with no transaction open is answered on the loop without a trip: exactly what sqlite3
would do on the thread (it checks the same flag), minus the wake-up. Rows are buffered at
execute, as SQLAlchemy's adapter buffers them anyway for every cursor but server-side ones,
which no service uses. Everything else is aiosqlite's.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, cast

import aiosqlite
from aiosqlite.context import contextmanager
from sqlalchemy import event
from sqlalchemy.engine import Engine

Row = Any
_Parameters = Iterable[Any]


def _run(
    connection: sqlite3.Connection, sql: str, parameters: Any, *, many: bool
) -> tuple[sqlite3.Cursor, list[Row]]:
    """On the connection's thread: execute, fetch every row, close the cursor."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        else:
            cursor.execute(sql, parameters)
        rows = cursor.fetchall() if cursor.description is not None else []
    finally:
        # Closing keeps description, rowcount and lastrowid, which is all that is read later.
        cursor.close()
    return cursor, rows


class OneTripCursor(aiosqlite.Cursor):
    """A cursor over rows fetched at execute; fetching and closing need no trip."""

    def __init__(self, connection: OneTripConnection) -> None:
        # The sqlite3 cursor is made on the connection's thread, with each statement.
        self.iter_chunk_size = connection._iter_chunk_size
        self._conn = connection
        self._done: sqlite3.Cursor | None = None
        self._rows: deque[Row] = deque()

    async def _statement(self, sql: str, parameters: Any, *, many: bool) -> OneTripCursor:
        # aiosqlite's own way onto the connection's thread (its cursors use it too); untyped.
        on_thread = cast(
            Callable[..., Awaitable[tuple[sqlite3.Cursor, list[Row]]]], self._conn._execute
        )
        self._done, rows = await on_thread(_run, self._conn._conn, sql, parameters, many=many)
        self._rows = deque(rows)
        return self

    async def execute(self, sql: str, parameters: _Parameters | None = None) -> OneTripCursor:
        return await self._statement(sql, [] if parameters is None else parameters, many=False)

    async def executemany(self, sql: str, parameters: Iterable[_Parameters]) -> OneTripCursor:
        return await self._statement(sql, parameters, many=True)

    async def fetchone(self) -> Row | None:
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Row]:
        count = self.arraysize if size is None else size
        return [self._rows.popleft() for _ in range(min(count, len(self._rows)))]

    async def fetchall(self) -> list[Row]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def close(self) -> None:
        self._rows.clear()

    @property
    def rowcount(self) -> int:
        return -1 if self._done is None else self._done.rowcount

    @property
    def lastrowid(self) -> int | None:
        return None if self._done is None else self._done.lastrowid

    @property
    def description(self) -> Any:
        return None if self._done is None else self._done.description

    @property
    def arraysize(self) -> int:
        return self.iter_chunk_size

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self.iter_chunk_size = value


class OneTripConnection(aiosqlite.Connection):
    """aiosqlite's connection, with one-trip cursors and no trip to end a transaction not begun."""

    @contextmanager
    async def cursor(self) -> aiosqlite.Cursor:
        return OneTripCursor(self)

    async def commit(self) -> None:
        if self._conn.in_transaction:
            await super().commit()

    async def rollback(self) -> None:
        if self._conn.in_transaction:
            await super().rollback()


def connect(database: str | bytes, **kwargs: Any) -> OneTripConnection:
    """`aiosqlite.connect` with the arguments SQLAlchemy's aiosqlite dialect passes to it."""
    location = database.decode() if isinstance(database, bytes) else str(database)

    def connector() -> sqlite3.Connection:
        connection: sqlite3.Connection = sqlite3.connect(location, **kwargs)
        return connection

    connection = OneTripConnection(connector, 64)
    # As SQLAlchemy marks aiosqlite's own threads: a forgotten connection must not hold the
    # process open at exit.
    connection._thread.daemon = True
    return connection


def use_one_trip_connections(engine: Engine) -> None:
    """Have `engine` (sqlite+aiosqlite) open its connections with `connect` above."""

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, _args: Sequence[Any], params: dict[str, Any]) -> None:
        # The dialect's dbapi shim takes this keyword in place of aiosqlite.connect; every
        # argument it derived from the URL is still passed, to `connect` above.
        params["async_creator_fn"] = connect
