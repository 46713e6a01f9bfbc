"""The catalogue's rules: listing with keyset cursors, detail, and issuing download URLs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from sqlalchemy import ColumnElement, Select, Subquery, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from services.common.jwt import Principal
from services.common.pagination import InvalidCursor, decode_cursor, decode_position, encode_cursor
from services.common.revocation import token_epoch
from services.common.scopes import MEDIA_DOWNLOAD
from services.common.search import SearchBounds
from services.media.config import MediaSettings
from services.media.exceptions import RenditionNotFound, VideoNotFound, VideoWithdrawn
from services.media.models import DownloadGrant, Rendition, Video, VideoTag
from services.media.schemas import (
    DownloadUrl,
    RenditionOut,
    VideoDetail,
    VideoSummary,
    VideoTombstone,
)
from services.media.search import search_for, video_terms
from services.media.signing import DownloadSigner

Order = Literal["published", "updated"]
PUBLISHED = "published"
DEFAULT_BOUNDS = SearchBounds()
WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class VideoFilters:
    q: str | None = None
    tag: str | tuple[str, ...] | None = None
    language: str | None = None
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


def _conditions(filters: VideoFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    wanted = (filters.tag,) if isinstance(filters.tag, str) else filters.tag or ()
    for tag in dict.fromkeys(normalize_tag(tag) for tag in wanted):
        # Every tag must match: one indexed EXISTS per tag.
        conditions.append(exists().where(VideoTag.video_id == Video.id, VideoTag.tag == tag))
    if filters.language is not None:
        conditions.append(func.lower(Video.language) == filters.language.lower())
    if filters.published_after is not None:
        conditions.append(Video.published_at >= filters.published_after)
    if filters.published_before is not None:
        conditions.append(Video.published_at < filters.published_before)
    if filters.order == "published":
        # The public catalogue never lists a withdrawn video; the feed shows it as a tombstone.
        conditions.append(Video.status == PUBLISHED)
    return conditions


def _filtered(statement: Select[Video], filters: VideoFilters) -> Select[Video]:
    return statement.where(*_conditions(filters))


def _cursor_position(cursor: str, order: Order) -> tuple[datetime, uuid.UUID]:
    (mode,), at, video_id = decode_position(cursor, leading=1)
    if mode != order[0]:
        raise InvalidCursor
    return at, video_id


async def list_videos(
    session: AsyncSession,
    filters: VideoFilters,
    *,
    limit: int,
    cursor: str | None,
    bounds: SearchBounds = DEFAULT_BOUNDS,
) -> tuple[list[Video], str | None]:
    """One page and the cursor for the next.

    Newest first: keyset pagination on (published_at, id), so rows inserted while a client
    pages never shift the rest. A search (`q`) orders best match first, then newest: every
    match when at most `bounds.exact_limit` match, else the best of the `bounds.candidates`
    newest (see `search.VideoSearch.ranked`). In sync order (`updated_since`) the page walks
    feed positions, which become visible in commit order: the cursor (returned even on the last
    page) names the last position seen, so a partner keeps it and later asks for exactly what
    changed since.
    """
    if filters.order == "updated":
        return await _feed_page(session, filters, limit=limit, cursor=cursor)
    if filters.q is not None:
        return await _search_page(session, filters, filters.q, limit, cursor, bounds)
    column = Video.published_at
    statement = _filtered(select(Video).options(selectinload(Video.tags)), filters)
    if cursor is not None:
        _, instant, video_id = _published_cursor(cursor, ranked=False)
        statement = statement.where(
            or_(column < instant, and_(column == instant, Video.id < video_id))
        )
    rows = list(
        await session.scalars(statement.order_by(column.desc(), Video.id.desc()).limit(limit + 1))
    )
    videos = rows[:limit]
    next_cursor = None
    if videos and len(rows) > limit:
        last = videos[-1]
        next_cursor = encode_cursor("p", last.published_at.isoformat(), str(last.id))
    return videos, next_cursor


async def _search_page(
    session: AsyncSession,
    filters: VideoFilters,
    q: str,
    limit: int,
    cursor: str | None,
    bounds: SearchBounds,
) -> tuple[list[Video], str | None]:
    terms = video_terms(q)
    if not terms:
        return [], None
    search = search_for(session)
    conditions = _conditions(filters)
    found = await search.count_matches(session, terms, conditions, bounds)
    newest = None if found <= bounds.exact_limit else bounds.candidates
    matches = search.ranked(terms, conditions, newest)
    rank, column = matches.c.rank, Video.published_at
    # The page is chosen from ids, ranks and dates alone; only its own rows are read whole.
    page = (
        select(Video.id.label("video_id"), rank.label("rank"))
        .join(matches, matches.c.video_id == Video.id)
        .where(*conditions)
    )
    if cursor is not None:
        after_rank, instant, video_id = _published_cursor(cursor, ranked=True)
        before = or_(column < instant, and_(column == instant, Video.id < video_id))
        page = page.where(or_(rank < after_rank, and_(rank == after_rank, before)))
    # Best match first; equal ranks newest first.
    chosen = (
        page.order_by(rank.desc(), column.desc(), Video.id.desc()).limit(limit + 1).subquery("page")
    )
    statement = (
        select(Video, chosen.c.rank)
        .options(selectinload(Video.tags))
        .join(chosen, chosen.c.video_id == Video.id)
        .order_by(chosen.c.rank.desc(), column.desc(), Video.id.desc())
    )
    rows = (await session.execute(statement)).all()
    videos = [row[0] for row in rows[:limit]]
    next_cursor = None
    if videos and len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(
            "r", float(last.rank), last[0].published_at.isoformat(), str(last[0].id)
        )
    return videos, next_cursor


def _matches(session: AsyncSession, q: str) -> Subquery | None:
    """The search's (video_id, rank) rows; None when `q` has no searchable word."""
    terms = video_terms(q)
    if not terms:
        return None
    return search_for(session).matches(terms)


def _published_cursor(cursor: str, *, ranked: bool) -> tuple[float, datetime, uuid.UUID]:
    if not ranked:
        instant, video_id = _cursor_position(cursor, "published")
        return 0.0, instant, video_id
    values = decode_cursor(cursor, 4)
    if values[0] != "r" or not isinstance(values[1], int | float):
        raise InvalidCursor
    instant, video_id = _cursor_position(encode_cursor("p", values[2], values[3]), "published")
    return float(values[1]), instant, video_id


FEED_CURSOR = "f"


async def _feed_page(
    session: AsyncSession, filters: VideoFilters, *, limit: int, cursor: str | None
) -> tuple[list[Video], str | None]:
    statement = _filtered(select(Video).options(selectinload(Video.tags)), filters)
    assert filters.updated_since is not None
    statement = statement.where(Video.updated_at >= filters.updated_since)
    if filters.q is not None:
        matches = _matches(session, filters.q)
        if matches is None:
            return [], None
        statement = statement.where(Video.id.in_(select(matches.c.video_id)))
    if cursor is not None:
        mode, value, _ = decode_cursor(cursor, 3)
        if mode == FEED_CURSOR:
            try:
                position = int(value)
            except (TypeError, ValueError) as exc:
                raise InvalidCursor from exc
            # Positions alone: everything after the last one seen, whatever its timestamp.
            statement = statement.where(Video.feed_position > position)
        elif mode == "u":
            # An (updated_at, id) cursor: partners may hold saved cursors of this form.
            instant, video_id = _cursor_position(cursor, "updated")
            statement = statement.where(
                or_(
                    Video.updated_at > instant,
                    and_(Video.updated_at == instant, Video.id > video_id),
                )
            )
        else:
            raise InvalidCursor
    statement = statement.order_by(Video.feed_position.asc())
    videos = list((await session.scalars(statement.limit(limit))).all())
    next_cursor = None
    if videos:
        next_cursor = encode_cursor(FEED_CURSOR, str(videos[-1].feed_position), "")
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

    @property
    def status(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def withdrawn_at(self) -> datetime | None: ...

    @property
    def withdrawal_reason(self) -> str | None: ...


def thumbnail_url(video: VideoColumns, settings: MediaSettings) -> str | None:
    if video.thumbnail_key is None:
        return None
    return f"{settings.public_base_url}/v1/media/videos/{video.id}/thumbnail.jpg"


def summary_fields(video: VideoColumns, tags: list[str], settings: MediaSettings) -> dict[str, Any]:
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
        "status": video.status,
        "version": video.version,
    }


def video_summary(video: Video, settings: MediaSettings) -> VideoSummary:
    return VideoSummary(**summary_fields(video, [tag.tag for tag in video.tags], settings))


def tombstone(video: VideoColumns) -> VideoTombstone:
    return VideoTombstone(
        id=video.id,
        status=WITHDRAWN,
        version=video.version,
        withdrawn_at=video.withdrawn_at,
        reason_code=video.withdrawal_reason,
        updated_at=video.updated_at,
    )


def feed_item(video: Video, settings: MediaSettings) -> VideoSummary | VideoTombstone:
    """What the public sees of a video in a page: a tombstone once it is withdrawn."""
    if video.status == WITHDRAWN:
        return tombstone(video)
    return video_summary(video, settings)


def check_published(video: VideoColumns) -> None:
    if video.status != PUBLISHED:
        raise VideoWithdrawn(video.withdrawn_at, video.withdrawal_reason)


def video_detail_from(
    video: VideoColumns,
    tags: list[str],
    renditions: list[RenditionOut],
    settings: MediaSettings,
) -> VideoDetail:
    # One validation from the row: not a summary dumped to a dict and validated again.
    return VideoDetail(
        **summary_fields(video, tags, settings),
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


def _client_name(principal: Principal) -> str | None:
    """The partner client's name its token carries (tokens issued before it carried none)."""
    name = principal.claims.get("client_name") if principal.is_client else None
    return name[:100] if isinstance(name, str) and name else None


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
    found = (
        await session.execute(
            select(Rendition, Video.status, Video.withdrawn_at, Video.withdrawal_reason)
            .join(Video, Video.id == Rendition.video_id)
            .where(Rendition.id == rendition_id, Rendition.video_id == video_id)
        )
    ).one_or_none()
    if found is None:
        video = await session.get(Video, video_id)
        if video is None:
            raise VideoNotFound
        check_published(video)
        raise RenditionNotFound
    rendition, status, withdrawn_at, reason = found
    if status != PUBLISHED:
        raise VideoWithdrawn(withdrawn_at, reason)
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
            client_name=_client_name(principal),
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
