"""What the cache tests share: a hand-moved clock, a query counter and a connection counter."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy import event


class Monotonic:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def counted_queries(app: FastAPI) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = app.state.database.sync_engine

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@contextmanager
def borrowed_connections(app: FastAPI) -> Iterator[list[object]]:
    """Every connection lent by the app's pool meanwhile: reads that leave SQLAlchemy's
    statement events (media's video detail on PostgreSQL) still borrow one."""
    borrowed: list[object] = []
    engine = app.state.database.sync_engine

    def record(dbapi_connection: object, *_: Any) -> None:
        borrowed.append(dbapi_connection)

    event.listen(engine, "checkout", record)
    try:
        yield borrowed
    finally:
        event.remove(engine, "checkout", record)
