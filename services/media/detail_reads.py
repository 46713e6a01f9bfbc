"""`GET /videos/{id}` as one narrow read: a single joined statement, rows turned into the body.

Uncached detail reads (editors, and every read where the public cache is off) would spend most
of their time loading ORM entities with joined eager loading; plain rows skip that. The body is
built by the service's own `video_detail_from`, so the answer cannot drift.

On PostgreSQL the statement runs on asyncpg itself, on a connection from SQLAlchemy's pool:
SQLAlchemy's execution context and row processing cost more CPU than the query does, and this
read is the one an editor's app repeats. bench/README.md ("The video detail on the driver")
has the measurement that keeps this bend; `test_detail_reads.py` holds the driver's rows to the
ones SQLAlchemy returns. SQLAlchemy's statement events and `echo` do not see this read; the
pool's events do.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.media.config import MediaSettings
from services.media.exceptions import VideoNotFound
from services.media.models import Rendition, Video, VideoTag
from services.media.schemas import RenditionOut, VideoDetail
from services.media.service import check_published, video_detail_from

logger = logging.getLogger(__name__)

_RENDITION_FIELDS = tuple(RenditionOut.model_fields)
# A video with t tags and r renditions comes back as t x r rows (both handfuls). Ordered by tag
# first, so the first tag's rows list every rendition in the catalogue's order.
_DETAIL = (
    select(
        Video.__table__,
        VideoTag.tag.label("tag"),
        *(getattr(Rendition, name).label(f"rendition_{name}") for name in _RENDITION_FIELDS),
    )
    .outerjoin(VideoTag, VideoTag.video_id == Video.id)
    .outerjoin(Rendition, Rendition.video_id == Video.id)
    .where(Video.id == bindparam("video_id"))
    .order_by(VideoTag.tag, Rendition.height.desc(), Rendition.created_at)
)


@functools.cache
def _postgres_sql(dialect: Dialect) -> str:
    # asyncpg's numbered placeholders: the statement's one parameter is `$1`.
    return str(_DETAIL.compile(dialect=dialect))


async def detail_rows(engine: AsyncEngine, video_id: uuid.UUID) -> Sequence[Mapping[Any, Any]]:
    """The statement's rows by column name, on either engine."""
    # Its own connection, not the request session: one read-only statement with nothing to
    # commit, so no transaction around it either (no BEGIN and ROLLBACK round trips).
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            rows = await _on_asyncpg(connection, video_id)
            if rows is not None:
                return rows
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        return (await connection.execute(_DETAIL, {"video_id": video_id})).mappings().all()


async def _on_asyncpg(
    connection: AsyncConnection, video_id: uuid.UUID
) -> Sequence[Mapping[Any, Any]] | None:
    """The rows from asyncpg itself; None when it failed, for SQLAlchemy to read them again:
    it reports a failure as it does for every read (a lost connection as 503) and invalidates
    the pool's dead connections."""
    # Bend for the bench row "GET /v1/media/videos/{id} with an editor's token (never cached)".
    # Outside a transaction asyncpg runs the statement on its own; the pool gets the connection
    # back as it lent it.
    driver = (await connection.get_raw_connection()).driver_connection
    if driver is None:
        return None
    try:
        rows: Sequence[Mapping[Any, Any]] = await driver.fetch(
            _postgres_sql(connection.dialect), video_id
        )
    except Exception as error:
        logger.warning("video detail on asyncpg failed: %s", type(error).__name__)
        return None
    return rows


class _VideoRow:
    """A row's video columns as attributes, which is how `video_detail_from` reads a video."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[Any, Any]) -> None:
        self._values = values

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None


async def video_detail(
    engine: AsyncEngine, video_id: uuid.UUID, settings: MediaSettings
) -> VideoDetail:
    rows = await detail_rows(engine, video_id)
    if not rows:
        raise VideoNotFound
    video = _VideoRow(rows[0])
    check_published(video)
    tags = list(dict.fromkeys(row["tag"] for row in rows if row["tag"] is not None))
    renditions: dict[uuid.UUID, RenditionOut] = {}
    for row in rows:
        rendition_id = row["rendition_id"]
        if rendition_id is not None and rendition_id not in renditions:
            renditions[rendition_id] = RenditionOut.model_validate(
                {name: row[f"rendition_{name}"] for name in _RENDITION_FIELDS}
            )
    return video_detail_from(video, tags, list(renditions.values()), settings)
