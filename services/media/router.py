"""HTTP routes of the media service: catalogue, download URLs and the downloads themselves."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Security
from starlette.responses import Response

from services.common.database import SessionDep
from services.common.http_cache import conditional_response
from services.common.instants import AwareInstant
from services.common.pagination import Cursor, Limit
from services.common.problems import (
    RATE_LIMIT_HEADERS,
    FieldError,
    ProblemError,
    problem_responses,
)
from services.common.public_cache import allow_public_cache
from services.common.public_reads import public_reader
from services.common.query_params import strict_query
from services.common.revocation import Revocations
from services.common.text import NulFreeText
from services.media import detail_reads, service
from services.media.auth import Downloader
from services.media.delivery import Delivery, file_response, read_small
from services.media.dependencies import (
    ClientAddressDep,
    ClockDep,
    RenditionFilesDep,
    SettingsDep,
    SignerDep,
    StorageDep,
)
from services.media.exceptions import (
    InvalidSignature,
    LinkRevoked,
    RenditionNotFound,
    VideoNotFound,
)
from services.media.schemas import DownloadUrl, VideoDetail, VideoPage

router = APIRouter(prefix="/v1/media")


VideoId = Annotated[uuid.UUID, Path(description="The video's id")]
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the `If-None-Match` ETag is current"}
}
FILE_HEADERS = {
    "Content-Length": {"schema": {"type": "integer"}, "description": "Bytes in this response"},
    "ETag": {"schema": {"type": "string"}, "description": "Strong: the file's quoted SHA-256"},
    "Accept-Ranges": {"schema": {"type": "string", "enum": ["bytes"]}},
    "Content-Disposition": {
        "schema": {"type": "string"},
        "description": 'attachment; filename="…"',
    },
    "Repr-Digest": {
        "schema": {"type": "string"},
        "description": "RFC 9530 digest of the whole file: `sha-256=:<base64>:`",
    },
}


def _tags(values: list[str] | None) -> tuple[str, ...]:
    for value in values or ():
        if "\x00" in value or len(value) > 100:
            raise ProblemError(
                "A tag must be at most 100 characters, without NUL.",
                status=422,
                code="validation_error",
                errors=[FieldError(field="tag", code="invalid", message="Invalid tag")],
            )
    return tuple(values or ())


LIST_PARAMETERS = (
    "limit",
    "cursor",
    "q",
    "tag",
    "language",
    "published_after",
    "published_before",
    "updated_since",
)


@router.get(
    "/videos",
    operation_id="listVideos",
    # Anyone may read: a token that fails is noted and ignored (`public_reads`).
    dependencies=[
        Depends(strict_query(LIST_PARAMETERS, repeatable=("tag",))),
        Security(public_reader),
    ],
    response_model=VideoPage,
    summary="List videos",
    tags=["catalogue"],
    responses={**NOT_MODIFIED, **problem_responses((422, "validation_error"))},
)
async def list_videos(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    limit: Limit = 20,
    cursor: Cursor = None,
    q: Annotated[
        NulFreeText | None,
        Query(
            min_length=1,
            max_length=200,
            description=(
                "Full text over title, tags, description, shot list and transcript: every word "
                "must match (stemmed, case- and accent-insensitive), best match first. A search "
                "matching at most 10,000 videos (after the other filters) is ranked exactly; "
                "above that, only its 200 newest matches are ranked (the latest published on "
                "PostgreSQL, the most recently indexed on SQLite). PostgreSQL takes a search as "
                "above the bound without counting when its statistics expect twice as many "
                "matches"
            ),
            examples=["oslo"],
        ),
    ] = None,
    tag: Annotated[
        list[str] | None,
        Query(
            description="Exact tag; repeat it for videos carrying every one given",
            examples=["foreign ministers"],
        ),
    ] = None,
    language: Annotated[
        NulFreeText | None,
        Query(
            min_length=2,
            max_length=35,
            pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$",
            description="BCP 47 language tag, matched exactly (case-insensitive)",
            examples=["fr"],
        ),
    ] = None,
    published_after: Annotated[
        AwareInstant | None, Query(description="Published at or after this instant")
    ] = None,
    published_before: Annotated[
        AwareInstant | None, Query(description="Published before this instant")
    ] = None,
    updated_since: Annotated[
        AwareInstant | None,
        Query(
            description=(
                "Sync mode: videos created or changed at or after this instant, oldest change "
                "first. `next_cursor` is then given on every page with items, the last too: "
                "keep the last non-null one and call again later with it (and the same "
                "`updated_since`) to receive exactly what changed since. An empty page with "
                "`next_cursor: null` means you are up to date."
            ),
            examples=["2026-01-01T00:00:00Z"],
        ),
    ] = None,
) -> Response:
    """Newest first (by `published_at`), with keyset cursors that stay stable while videos are
    added. Carries an `ETag`; send it back in `If-None-Match` to get 304 when nothing changed."""
    filters = service.VideoFilters(
        q=q,
        tag=_tags(tag),
        language=language,
        published_after=published_after,
        published_before=published_before,
        updated_since=updated_since,
    )
    videos, next_cursor = await service.list_videos(session, filters, limit=limit, cursor=cursor)
    page = VideoPage(
        items=[service.feed_item(video, settings) for video in videos],
        next_cursor=next_cursor,
    )
    allow_public_cache(request)
    return conditional_response(
        request, page.model_dump_json().encode(), headers={"Cache-Control": "no-cache"}
    )


@router.get(
    "/videos/{video_id}",
    operation_id="getVideo",
    response_model=VideoDetail,
    summary="Get a video with its renditions",
    tags=["catalogue"],
    responses={
        **NOT_MODIFIED,
        **problem_responses(
            (404, "not_found"), (410, "video_withdrawn"), (422, "validation_error")
        ),
    },
    # Anyone may read: a token that fails is noted and ignored (`public_reads`).
    dependencies=[Security(public_reader)],
)
async def get_video(request: Request, video_id: VideoId, settings: SettingsDep) -> Response:
    """Everything about one video, including each downloadable rendition with its size and
    SHA-256. Carries an `ETag` for `If-None-Match`."""
    detail = await detail_reads.video_detail(request.app.state.database.engine, video_id, settings)
    body = detail.model_dump_json().encode()
    allow_public_cache(request)
    return conditional_response(request, body, headers={"Cache-Control": "no-cache"})


@router.get(
    "/videos/{video_id}/thumbnail.jpg",
    operation_id="getVideoThumbnail",
    summary="A still image of the video",
    tags=["catalogue"],
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "JPEG still"},
        **NOT_MODIFIED,
        **problem_responses(
            (404, "not_found"), (422, "validation_error"), (503, "file_unavailable")
        ),
    },
)
async def get_thumbnail(
    request: Request, video_id: VideoId, session: SessionDep, storage: StorageDep
) -> Response:
    """The JPEG still named by the video's `thumbnail_url`."""
    video = await service.get_video(session, video_id)
    service.check_published(video)
    if video.thumbnail_key is None:
        raise VideoNotFound
    still = await read_small(storage, video.thumbnail_key, video_id=video.id)
    allow_public_cache(request)
    return conditional_response(
        request,
        still,
        media_type="image/jpeg",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.post(
    "/videos/{video_id}/renditions/{rendition_id}/download-url",
    operation_id="createDownloadUrl",
    response_model=DownloadUrl,
    summary="Get a signed download URL",
    tags=["downloads"],
    responses={
        200: {"description": "The signed URL", "headers": RATE_LIMIT_HEADERS},
        **problem_responses(
            (401, "invalid_token"),
            (403, "email_not_verified"),
            (403, "insufficient_scope"),
            (404, "not_found"),
            (410, "video_withdrawn"),
            (422, "validation_error"),
            (429, "rate_limited"),
        ),
    },
)
async def create_download_url(
    request: Request,
    video_id: VideoId,
    rendition_id: Annotated[uuid.UUID, Path(description="One of the video's renditions")],
    principal: Downloader,
    session: SessionDep,
    settings: SettingsDep,
    signer: SignerDep,
    clock: ClockDep,
    address: ClientAddressDep,
) -> Response:
    """For verified accounts and partner clients holding `media:download`. The URL is signed,
    expires after `MEDIA_DOWNLOAD_URL_TTL_SECONDS` (one hour by default), needs no token to
    use, and supports `Range` so interrupted downloads resume. Each grant is audited."""
    grant = await service.issue_download_url(
        session,
        principal=principal,
        video_id=video_id,
        rendition_id=rendition_id,
        signer=signer,
        settings=settings,
        now=clock.now(),
        client_address=address,
    )
    rate_limit: dict[str, str] = getattr(request.state, "rate_limit_headers", {})
    return Response(
        grant.model_dump_json(),
        media_type="application/json",
        headers={"Cache-Control": "no-store", **rate_limit},
    )


DOWNLOAD_PATH = "/downloads/{rendition_id}/{filename}"
DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The whole file",
        "content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}},
        "headers": FILE_HEADERS,
    },
    206: {
        "description": "The requested byte range (`Content-Range` says which)",
        "content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}},
        "headers": {**FILE_HEADERS, "Content-Range": {"schema": {"type": "string"}}},
    },
    302: {
        "description": (
            "Only with `MEDIA_DELIVERY=redirect` (object storage): the file is at `Location`, a "
            "presigned URL of the store that lives `MEDIA_REDIRECT_TTL_SECONDS`; its answer "
            "carries the store's own ETag. HEAD is never redirected"
        ),
        "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
    },
    304: {"description": "Not modified: the `If-None-Match` ETag is current"},
    **problem_responses(
        (403, "invalid_signature"),
        (403, "link_revoked"),
        (404, "not_found"),
        (410, "link_expired"),
        (410, "video_withdrawn"),
        (416, "range_not_satisfiable"),
        (503, "file_unavailable"),
    ),
}


@router.get(
    DOWNLOAD_PATH,
    operation_id="downloadFile",
    summary="Download a file through a signed URL",
    tags=["downloads"],
    response_class=Response,
    responses=DOWNLOAD_RESPONSES,
)
@router.head(
    DOWNLOAD_PATH,
    operation_id="headDownloadFile",
    summary="Headers of a download (size, ETag, digest) without the body",
    tags=["downloads"],
    response_class=Response,
    responses=DOWNLOAD_RESPONSES,
)
async def download(
    request: Request,
    rendition_id: str,
    filename: str,
    settings: SettingsDep,
    signer: SignerDep,
    clock: ClockDep,
    storage: StorageDep,
    files: RenditionFilesDep,
    sub: Annotated[str | None, Query(description="Who the URL was issued to")] = None,
    cid: Annotated[str | None, Query(description="The API client it was issued to")] = None,
    sep: Annotated[str | None, Query(description="The session it was issued under")] = None,
    iat: Annotated[str | None, Query(description="Issue time, Unix seconds")] = None,
    exp: Annotated[str | None, Query(description="Expiry, Unix seconds")] = None,
    sig: Annotated[str | None, Query(description="HMAC-SHA256 signature")] = None,
) -> Response:
    """Answers `GET` and `HEAD`; a single `Range` gets 206 and an unsatisfiable one 416;
    `If-Range` and `If-None-Match` are honoured. A forged or altered URL gets 403
    `invalid_signature`, one whose session ended (a password reset) or whose API client was
    revoked 403 `link_revoked`, an expired one 410 `link_expired`. The filename is cosmetic."""
    grant = signer.verify(
        rendition_id,
        sub,
        exp,
        sig,
        issued_at=iat,
        session_epoch=sep,
        client_id=cid,
        now=clock.now(),
    )
    revocations: Revocations | None = request.app.state.bearer_checks.revocations
    if revocations is not None and revocations.refuses(
        subject=grant.subject, client_id=grant.client_id, epoch=grant.session_epoch
    ):
        raise LinkRevoked
    try:
        parsed_id = uuid.UUID(rendition_id)
    except ValueError as exc:  # only reachable with our own secret: treat as forged
        raise InvalidSignature from exc
    file = await files.get(parsed_id)
    if file is None:
        raise RenditionNotFound
    delivery = Delivery(
        accel_prefix=settings.accel_prefix if settings.accel_redirect else None,
        accel_store_prefix=settings.accel_store_prefix,
        redirect=settings.delivery == "redirect",
        presign_ttl_seconds=settings.redirect_ttl_seconds,
    )
    return await file_response(request, file, storage, delivery=delivery)
