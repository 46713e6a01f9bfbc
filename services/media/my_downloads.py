"""The caller's own download history, and how long media keeps the addresses it was asked from.

Grants are audited under the token's subject: an account's opaque id (or a partner client's
id), never an email address, so erasing an account at auth leaves nothing here that names the
person. The client address of a grant is personal data media needs only for abuse follow-up; it
is cleared after `ADDRESS_RETENTION_DAYS`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict
from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.database import Database, SessionDep
from services.common.jwt import Principal
from services.common.pagination import (
    Cursor,
    InvalidCursor,
    Limit,
    Page,
    decode_cursor,
    encode_cursor,
)
from services.common.problems import problem_responses
from services.common.query_params import strict_query
from services.common.security import principal
from services.media.models import DownloadGrant, Rendition, Video

# No service keeps a client address longer than this.
ADDRESS_RETENTION_DAYS = 30

router = APIRouter(prefix="/v1/media")

_GRANT_EXAMPLE: dict[str, Any] = {
    "video_id": "4f6c2a7e-3b1d-4c8e-9a5f-1d2e3c4b5a69",
    "video_title": "Foreign ministers meet in Oslo",
    "rendition_id": "9d1e5b3a-7c2f-4e8a-b6d4-2a1c3e5f7b90",
    "rendition_label": "1080p25",
    "granted_at": "2026-11-28T08:12:00Z",
    "expires_at": "2026-11-28T09:12:00Z",
}


class DownloadGrantOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_GRANT_EXAMPLE]})

    video_id: uuid.UUID
    video_title: str
    rendition_id: uuid.UUID
    rendition_label: str
    granted_at: datetime
    expires_at: datetime


class DownloadGrantPage(Page[DownloadGrantOut]):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [_GRANT_EXAMPLE],
                    "next_cursor": "WyIyMDI2LTExLTI4VDA4OjEyOjAwKzAwOjAwIiwiNGY2YyJd",
                }
            ]
        }
    )


Caller = Annotated[Principal, Depends(principal)]


async def my_downloads(
    session: AsyncSession, subject: str, *, limit: int, cursor: str | None
) -> tuple[list[DownloadGrantOut], str | None]:
    """Newest first, keyset on (granted_at, id)."""
    statement = (
        select(DownloadGrant, Video.title, Rendition.label)
        .join(Video, Video.id == DownloadGrant.video_id)
        .join(Rendition, Rendition.id == DownloadGrant.rendition_id)
        .where(DownloadGrant.subject == subject)
    )
    if cursor is not None:
        raw_instant, raw_id = decode_cursor(cursor, 2)
        try:
            instant = datetime.fromisoformat(str(raw_instant))
            grant_id = uuid.UUID(str(raw_id))
        except ValueError as exc:
            raise InvalidCursor from exc
        if instant.tzinfo is None:
            raise InvalidCursor
        statement = statement.where(
            or_(
                DownloadGrant.granted_at < instant,
                and_(DownloadGrant.granted_at == instant, DownloadGrant.id < grant_id),
            )
        )
    rows = list(
        await session.execute(
            statement.order_by(DownloadGrant.granted_at.desc(), DownloadGrant.id.desc()).limit(
                limit + 1
            )
        )
    )
    items = [
        DownloadGrantOut(
            video_id=grant.video_id,
            video_title=title,
            rendition_id=grant.rendition_id,
            rendition_label=label,
            granted_at=grant.granted_at,
            expires_at=grant.expires_at,
        )
        for grant, title, label in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1][0]
        next_cursor = encode_cursor(last.granted_at.isoformat(), str(last.id))
    return items, next_cursor


@router.get(
    "/me/downloads",
    dependencies=[Depends(strict_query(("limit", "cursor")))],
    response_model=DownloadGrantPage,
    summary="List your download grants",
    operation_id="listMyDownloads",
    tags=["downloads"],
    responses=problem_responses((401, "invalid_token"), (422, "validation_error")),
)
async def list_my_downloads(
    principal: Caller, session: SessionDep, limit: Limit = 20, cursor: Cursor = None
) -> DownloadGrantPage:
    """The download URLs the caller obtained (video, rendition, when, until when), newest
    first. Client addresses are not shown: media clears them after 30 days."""
    items, next_cursor = await my_downloads(session, principal.subject, limit=limit, cursor=cursor)
    return DownloadGrantPage(items=items, next_cursor=next_cursor)


async def purge_grant_addresses(database: Database, now: datetime) -> int:
    """Clear the client addresses of grants older than the retention period."""
    cutoff = now - timedelta(days=ADDRESS_RETENTION_DAYS)
    async with database.sessionmaker() as session, session.begin():
        result = await session.execute(
            update(DownloadGrant)
            .where(DownloadGrant.granted_at < cutoff, DownloadGrant.client_address.is_not(None))
            .values(client_address=None)
            .execution_options(synchronize_session=False)
        )
    return int(getattr(result, "rowcount", 0) or 0)
