"""What the bench smoke tests share: PostgreSQL, which `make bench` and `make bench-scale` use."""

from __future__ import annotations

import asyncio

import asyncpg

from tests.conftest import POSTGRES_URL, unavailable


def require_postgres() -> str:
    """The server's URL; skips (or fails, when NATOMEDIA_REQUIRE names it) if unreachable."""

    async def reach() -> str | None:
        try:
            connection = await asyncpg.connect(POSTGRES_URL, timeout=3)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            return str(exc) or type(exc).__name__
        await connection.close()
        return None

    problem = asyncio.run(reach())
    if problem is not None:
        unavailable("postgres", problem)
    return POSTGRES_URL
