"""The editor's changes to a video: metadata, renditions, and who downloaded it.

Every change is one short transaction that locks the video's row, bumps its `version`, takes a
feed position (`feed.record_change`) and records the editor in the audit list.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from services.common.http_cache import strong_etag
from services.common.pagination import InvalidCursor, decode_cursor, encode_cursor
from services.media.config import MediaSettings
from services.media.exceptions import PreconditionFailed, RenditionNotFound, VideoNotFound
from services.media.feed import record_change
from services.media.ingest import download_filename
from services.media.models import DownloadGrant, Rendition, Video, VideoTag
from services.media.schemas import EditorVideo, RenditionOut, VideoDetail, VideoDownload
from services.media.service import PUBLISHED, normalize_tag, summary_fields

METADATA_FIELDS = (
    "title",
    "description",
    "language",
    "credits",
    "copyright",
    "location",
    "shot_list",
    "transcript",
)
# Columns that may not be null: a `null` in the patch leaves them unchanged.
REQUIRED_FIELDS = frozenset({"title", "description"})


async def load_for_change(session: AsyncSession, video_id: uuid.UUID) -> Video:
    """The video with its tags and renditions, its row locked until the transaction ends."""
    video = await session.scalar(
        select(Video)
        .where(Video.id == video_id)
        .options(selectinload(Video.tags), selectinload(Video.renditions))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if video is None:
        raise VideoNotFound
    return video


def _detail_fields(video: Video, settings: MediaSettings) -> dict[str, Any]:
    renditions = [RenditionOut.model_validate(rendition) for rendition in video.renditions]
    return {
        **summary_fields(video, [tag.tag for tag in video.tags], settings),
        "shot_list": video.shot_list,
        "transcript": video.transcript,
        "renditions": renditions,
    }


def editor_view(video: Video, settings: MediaSettings) -> EditorVideo:
    return EditorVideo(
        **_detail_fields(video, settings),
        withdrawn_at=video.withdrawn_at,
        reason_code=video.withdrawal_reason,
        withdrawal_note=video.withdrawal_note,
    )


def video_etag(video: Video, settings: MediaSettings) -> str:
    """The ETag `GET /videos/{id}` carries for this state of the video (built the same way);
    a withdrawn video has no public detail, so its editor view stands in."""
    if video.status == PUBLISHED:
        body = VideoDetail(**_detail_fields(video, settings)).model_dump_json()
    else:
        body = editor_view(video, settings).model_dump_json()
    return strong_etag(body.encode())


def check_if_match(if_match: str | None, video: Video, settings: MediaSettings) -> None:
    """RFC 9110 §13.1.1: strong comparison; `*` matches any current video."""
    if if_match is None or if_match.strip() == "*":
        return
    current = video_etag(video, settings)
    candidates = {tag.strip() for tag in if_match.split(",")}
    if current not in candidates:
        raise PreconditionFailed


async def update_video(
    session: AsyncSession,
    video_id: uuid.UUID,
    changes: dict[str, Any],
    *,
    editor: str,
    if_match: str | None,
    settings: MediaSettings,
) -> Video:
    """Apply the fields given; commits. Nothing that differs: no new version."""
    video = await load_for_change(session, video_id)
    check_if_match(if_match, video, settings)
    changed: list[str] = []
    for name in METADATA_FIELDS:
        if name not in changes:
            continue
        value = changes[name]
        if value is None and name in REQUIRED_FIELDS:
            continue
        if getattr(video, name) != value:
            setattr(video, name, value)
            changed.append(name)
    if "tags" in changes and changes["tags"] is not None:
        wanted = sorted({normalize_tag(tag) for tag in changes["tags"]} - {""})
        if wanted != [tag.tag for tag in video.tags]:
            kept = {tag.tag: tag for tag in video.tags}
            video.tags = [kept.get(tag) or VideoTag(tag=tag) for tag in wanted]
            changed.append("tags")
    if not changed:
        await session.rollback()
        return await load_for_change(session, video_id)
    if "title" in changed:
        for rendition in video.renditions:
            rendition.filename = download_filename(
                video.title, rendition.label, rendition.container, rendition.id
            )
    await record_change(session, video, action="update", editor=editor, fields=changed)
    await session.commit()
    return video


async def delete_rendition(
    session: AsyncSession, video_id: uuid.UUID, rendition_id: uuid.UUID, *, editor: str
) -> str:
    """Remove the rendition's row; commits and returns its storage key for the caller to delete."""
    video = await load_for_change(session, video_id)
    rendition = next((r for r in video.renditions if r.id == rendition_id), None)
    if rendition is None:
        raise RenditionNotFound
    storage_key = rendition.storage_key
    await session.execute(delete(Rendition).where(Rendition.id == rendition_id))
    await record_change(
        session, video, action="delete_rendition", editor=editor, fields=["renditions"]
    )
    await session.commit()
    return storage_key


async def list_downloads(
    session: AsyncSession, video_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[VideoDownload], str | None]:
    """Who obtained download URLs for the video, newest first."""
    if await session.get(Video, video_id) is None:
        raise VideoNotFound
    statement = select(DownloadGrant).where(DownloadGrant.video_id == video_id)
    if cursor is not None:
        instant_text, grant_text = decode_cursor(cursor, 2)
        try:
            instant = datetime.fromisoformat(str(instant_text))
            grant_id = uuid.UUID(str(grant_text))
        except ValueError as exc:
            raise InvalidCursor from exc
        statement = statement.where(
            or_(
                DownloadGrant.granted_at < instant,
                and_(DownloadGrant.granted_at == instant, DownloadGrant.id < grant_id),
            )
        )
    statement = statement.order_by(DownloadGrant.granted_at.desc(), DownloadGrant.id.desc())
    rows = list((await session.scalars(statement.limit(limit + 1))).all())
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = encode_cursor(last.granted_at.isoformat(), str(last.id))
    items = [
        VideoDownload(
            rendition_id=grant.rendition_id,
            subject=grant.subject,
            client_id=grant.client_id,
            client_name=grant.client_name,
            granted_at=grant.granted_at,
            expires_at=grant.expires_at,
        )
        for grant in page
    ]
    return items, next_cursor
