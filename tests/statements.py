"""The statements a piece of code sends to the database, and what SQLite's planner makes of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text

from services.common.database import Database


async def has_statistics(database: Database) -> bool:
    async with database.engine.connect() as connection:
        found = await connection.scalar(
            text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
        )
    return bool(found)


@asynccontextmanager
async def recorded(database: Database, mentioning: str) -> AsyncIterator[list[tuple[str, Any]]]:
    """The statements (with their parameters) sent meanwhile that mention `mentioning`."""
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if mentioning in statement:
            statements.append((statement, parameters))

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", record)


async def plan_steps(database: Database, statement: str, parameters: Any) -> list[str]:
    """The SCAN and SEARCH steps of the statement's plan, outermost loop first."""
    async with database.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        plan = await raw.driver_connection.execute_fetchall(  # type: ignore[union-attr]
            f"EXPLAIN QUERY PLAN {statement}", parameters
        )
    return [row[3] for row in plan if row[3].startswith(("SCAN", "SEARCH"))]


async def planner_rows(database: Database, table: str) -> int:
    """How many rows the planner's statistics last counted in `table` (0 without any)."""
    async with database.engine.connect() as connection:
        if database.dialect == "sqlite":
            if not await has_statistics(database):
                return 0
            stat = await connection.scalar(
                text("SELECT stat FROM sqlite_stat1 WHERE tbl = :table LIMIT 1"), {"table": table}
            )
            return int(str(stat).split()[0]) if stat else 0
        counted = await connection.scalar(
            text("SELECT reltuples FROM pg_class WHERE relname = :table"), {"table": table}
        )
        return max(int(counted or 0), 0)
