"""`GET /videos/{id}` as one narrow read: a single joined statement, rows turned into the body.

Uncached detail reads (every partner request carrying a token) spend most of their time loading
ORM entities with joined eager loading; plain rows skip that. The bench row it is for:
"GET /v1/media/videos/{id} with a token (never cached)" (see bench/README.md). The body
is built by the service's own `video_detail_from`, so the answer cannot drift.
"""

from __future__ import annotations

import uuid

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.media.config import MediaSettings
from services.media.exceptions import VideoNotFound
from services.media.models import Rendition, Video, VideoTag
from services.media.schemas import RenditionOut, VideoDetail
from services.media.service import check_published, video_detail_from

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


async def video_detail(
    engine: AsyncEngine, video_id: uuid.UUID, settings: MediaSettings
) -> VideoDetail:
    # Its own connection, not the request session: one read-only statement with nothing to
    # commit, so no transaction around it either (no BEGIN and ROLLBACK round trips).
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        rows = (await connection.execute(_DETAIL, {"video_id": video_id})).all()
    if not rows:
        raise VideoNotFound
    check_published(rows[0])
    tags = list(dict.fromkeys(row.tag for row in rows if row.tag is not None))
    renditions: dict[uuid.UUID, RenditionOut] = {}
    for row in rows:
        values = row._mapping
        rendition_id = values["rendition_id"]
        if rendition_id is not None and rendition_id not in renditions:
            renditions[rendition_id] = RenditionOut.model_validate(
                {name: values[f"rendition_{name}"] for name in _RENDITION_FIELDS}
            )
    return video_detail_from(rows[0], tags, list(renditions.values()), settings)
