"""The catalogue's rules: listing with keyset cursors, detail, and issuing download URLs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from sqlalchemy import Select, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from services.common.jwt import Principal
from services.common.pagination import InvalidCursor, decode_position, encode_cursor
from services.common.revocation import token_epoch
from services.common.scopes import MEDIA_DOWNLOAD
from services.media.config import MediaSettings
from services.media.exceptions import RenditionNotFound, VideoNotFound
from services.media.models import DownloadGrant, Rendition, Video, VideoTag
from services.media.schemas import DownloadUrl, RenditionOut, VideoDetail, VideoSummary
from services.media.signing import DownloadSigner

Order = Literal["published", "updated"]


@dataclass(frozen=True)
class VideoFilters:
    q: str | None = None
    tag: str | None = None
    published_after: datetime | None = None
    published_before: datetime | None = None
    updated_since: datetime | None = None

    @property
    def order(self) -> Order:
        # A partner syncing wants the oldest change first, so the newest is never skipped.
        return "updated" if self.updated_since is not None else "published"


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def normalize_tag(tag: str) -> str:
    return " ".join(tag.split()).lower()


def _filtered(statement: Select[Video], filters: VideoFilters) -> Select[Video]:
    if filters.q:
        pattern = f"%{escape_like(filters.q.strip())}%"
        statement = statement.where(
            or_(
                Video.title.ilike(pattern, escape="\\"),
                Video.description.ilike(pattern, escape="\\"),
                exists().where(
                    VideoTag.video_id == Video.id, VideoTag.tag.ilike(pattern, escape="\\")
                ),
            )
        )
    if filters.tag:
        tagged = exists().where(
            VideoTag.video_id == Video.id, VideoTag.tag == normalize_tag(filters.tag)
        )
        statement = statement.where(tagged)
    if filters.published_after is not None:
        statement = statement.where(Video.published_at >= filters.published_after)
    if filters.published_before is not None:
        statement = statement.where(Video.published_at < filters.published_before)
    if filters.updated_since is not None:
        statement = statement.where(Video.updated_at >= filters.updated_since)
    return statement


def _cursor_position(cursor: str, order: Order) -> tuple[datetime, uuid.UUID]:
    (mode,), at, video_id = decode_position(cursor, leading=1)
    if mode != order[0]:
        raise InvalidCursor
    return at, video_id


async def list_videos(
    session: AsyncSession, filters: VideoFilters, *, limit: int, cursor: str | None
) -> tuple[list[Video], str | None]:
    """One page and the cursor for the next.

    Keyset pagination on (time, id): rows inserted while a client pages never shift the rest.
    In sync order (`updated_since`) the cursor is returned even on the last page, so a partner
    keeps it and later asks for exactly what changed since, with nothing missed or repeated.
    """
    order = filters.order
    column = Video.published_at if order == "published" else Video.updated_at
    statement = _filtered(select(Video).options(selectinload(Video.tags)), filters)
    if cursor is not None:
        instant, video_id = _cursor_position(cursor, order)
        if order == "published":
            statement = statement.where(
                or_(column < instant, and_(column == instant, Video.id < video_id))
            )
        else:
            statement = statement.where(
                or_(column > instant, and_(column == instant, Video.id > video_id))
            )
    if order == "published":
        statement = statement.order_by(column.desc(), Video.id.desc())
    else:
        statement = statement.order_by(column.asc(), Video.id.asc())
    rows = list((await session.scalars(statement.limit(limit + 1))).all())
    videos = rows[:limit]
    more = len(rows) > limit
    next_cursor = None
    if videos and (more or order == "updated"):
        last = videos[-1]
        instant = last.published_at if order == "published" else last.updated_at
        next_cursor = encode_cursor(order[0], instant.isoformat(), str(last.id))
    return videos, next_cursor


async def get_video(session: AsyncSession, video_id: uuid.UUID) -> Video:
    # One round trip: a video has a handful of tags and renditions, so their product is small.
    result = await session.execute(
        select(Video)
        .where(Video.id == video_id)
        .options(joinedload(Video.tags), joinedload(Video.renditions))
    )
    video = result.unique().scalar_one_or_none()
    if video is None:
        raise VideoNotFound
    return video


class VideoColumns(Protocol):
    """A video's own columns: an ORM `Video`, or a row of a statement that selects them."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def title(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def published_at(self) -> datetime: ...

    @property
    def updated_at(self) -> datetime: ...

    @property
    def duration_seconds(self) -> float | None: ...

    @property
    def language(self) -> str | None: ...

    @property
    def credits(self) -> str | None: ...

    @property
    def copyright(self) -> str | None: ...

    @property
    def location(self) -> str | None: ...

    @property
    def shot_list(self) -> str | None: ...

    @property
    def transcript(self) -> str | None: ...

    @property
    def thumbnail_key(self) -> str | None: ...

    @property
    def related_article_slugs(self) -> list[str] | None: ...


def thumbnail_url(video: VideoColumns, settings: MediaSettings) -> str | None:
    if video.thumbnail_key is None:
        return None
    return f"{settings.public_base_url}/v1/media/videos/{video.id}/thumbnail.jpg"


def _summary_fields(
    video: VideoColumns, tags: list[str], settings: MediaSettings
) -> dict[str, Any]:
    return {
        "id": video.id,
        "title": video.title,
        "description": video.description,
        "published_at": video.published_at,
        "updated_at": video.updated_at,
        "duration_seconds": video.duration_seconds,
        "language": video.language,
        "tags": tags,
        "credits": video.credits,
        "copyright": video.copyright,
        "location": video.location,
        "thumbnail_url": thumbnail_url(video, settings),
        "related_article_slugs": list(video.related_article_slugs or []),
    }


def video_summary(video: Video, settings: MediaSettings) -> VideoSummary:
    return VideoSummary(**_summary_fields(video, [tag.tag for tag in video.tags], settings))


def video_detail_from(
    video: VideoColumns,
    tags: list[str],
    renditions: list[RenditionOut],
    settings: MediaSettings,
) -> VideoDetail:
    # One validation from the row: not a summary dumped to a dict and validated again.
    return VideoDetail(
        **_summary_fields(video, tags, settings),
        shot_list=video.shot_list,
        transcript=video.transcript,
        renditions=renditions,
    )


class DownloadNotAllowed(Exception):
    """The principal may not download; `code` says why (mapped to 403 by the dependency)."""

    def __init__(self, code: Literal["email_not_verified", "insufficient_scope"]) -> None:
        super().__init__(code)
        self.code = code


def check_may_download(principal: Principal) -> None:
    """Partner clients need the download scope; people need a verified email."""
    if principal.is_client:
        if MEDIA_DOWNLOAD not in principal.scopes:
            raise DownloadNotAllowed("insufficient_scope")
        return
    if not principal.email_verified:
        raise DownloadNotAllowed("email_not_verified")


async def issue_download_url(
    session: AsyncSession,
    *,
    principal: Principal,
    video_id: uuid.UUID,
    rendition_id: uuid.UUID,
    signer: DownloadSigner,
    settings: MediaSettings,
    now: datetime,
    client_address: str | None,
) -> DownloadUrl:
    rendition = await session.scalar(
        select(Rendition).where(Rendition.id == rendition_id, Rendition.video_id == video_id)
    )
    if rendition is None:
        if await session.get(Video, video_id) is None:
            raise VideoNotFound
        raise RenditionNotFound
    expires = int(now.timestamp()) + settings.download_url_ttl_seconds
    expires_at = datetime.fromtimestamp(expires, UTC)
    path = signer.sign_path(
        str(rendition.id),
        rendition.filename,
        principal.subject,
        expires,
        issued_at=int(now.timestamp()),
        # What would revoke the token revokes the URL: the client, or the account's session.
        session_epoch=None if principal.is_client else token_epoch(principal),
        client_id=principal.client_id,
    )
    session.add(
        DownloadGrant(
            rendition_id=rendition.id,
            video_id=video_id,
            subject=principal.subject,
            client_id=principal.client_id,
            token_id=principal.token_id,
            client_address=client_address,
            granted_at=now,
            expires_at=expires_at,
        )
    )
    await session.flush()
    return DownloadUrl(
        url=settings.public_base_url + path,
        expires_at=expires_at,
        size_bytes=rendition.size_bytes,
        sha256=rendition.sha256,
    )
