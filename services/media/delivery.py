"""Answering a valid download URL: conditional and ranged GET/HEAD, streamed or handed to nginx."""

from __future__ import annotations

import base64
import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from services.common.database import Database
from services.common.http_cache import is_fresh
from services.media.disposition import attachment
from services.media.disposition import safe_filename as safe_filename
from services.media.exceptions import (
    FileMissing,
    RangeNotSatisfiable,
    RenditionNotFound,
    VideoNotFound,
    VideoWithdrawn,
)
from services.media.models import Rendition, Video
from services.media.storage import LocalStorage, Storage, StorageUnavailable

logger = logging.getLogger("natomedia.media.delivery")

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class RenditionFile:
    """What serving a rendition needs, read with its video's status for every download."""

    id: uuid.UUID
    storage_key: str
    size_bytes: int
    sha256: str
    content_type: str
    filename: str
    created_at: datetime
    title: str = ""

    @property
    def etag(self) -> str:
        return f'"{self.sha256}"'

    @property
    def repr_digest(self) -> str:
        return "sha-256=:" + base64.b64encode(bytes.fromhex(self.sha256)).decode() + ":"

    @property
    def content_disposition(self) -> str:
        return attachment(self.filename, self.title)

    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": self.content_type,
            "ETag": self.etag,
            "Last-Modified": format_datetime(self.created_at, usegmt=True),
            "Accept-Ranges": "bytes",
            "Content-Disposition": self.content_disposition,
            "Repr-Digest": self.repr_digest,
            # The URL is a personal capability: shared caches must not keep the file under it.
            "Cache-Control": "private, max-age=3600",
            "X-Content-Type-Options": "nosniff",
        }


class RenditionFiles:
    """Rendition id -> file facts and its video's status: one primary-key read per download.

    Never cached: a withdrawal must stop links signed before it at once, in every process.
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    async def get(self, rendition_id: uuid.UUID) -> RenditionFile | None:
        # Its own short connection: download routes take no request session.
        """The file, None when unknown; `VideoWithdrawn` when its video was withdrawn."""
        async with self._database.engine.connect() as connection:
            row = (
                await connection.execute(
                    select(
                        Rendition.id,
                        Rendition.storage_key,
                        Rendition.size_bytes,
                        Rendition.sha256,
                        Rendition.content_type,
                        Rendition.filename,
                        Rendition.created_at,
                        Video.title,
                        Video.status,
                        Video.withdrawn_at,
                        Video.withdrawal_reason,
                    )
                    .join(Video, Video.id == Rendition.video_id)
                    .where(Rendition.id == rendition_id)
                )
            ).one_or_none()
        if row is None:
            return None
        if row.status != "published":
            raise VideoWithdrawn(row.withdrawn_at, row.withdrawal_reason)
        return RenditionFile(*row[:8])


def requested_range(request: Request, file: RenditionFile) -> tuple[int, int] | None:
    """The single byte range to send, None for the whole file; 416 when it cannot be met.

    Multiple ranges and malformed headers are ignored (RFC 9110 §14.2 allows it): the client
    gets the whole file with 200, which every downloader handles.
    """
    header = request.headers.get("range")
    if header is None:
        return None
    if_range = request.headers.get("if-range")
    # A range only applies to the version the client already holds part of.
    if if_range is not None and if_range.strip() != file.etag:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None
    first, last = match.groups()
    size = file.size_bytes
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(size)
    return start, min(end, size - 1)


@dataclass(frozen=True)
class Delivery:
    """How a valid download URL hands out the bytes (see the settings of the same names)."""

    # nginx in front: it sends the bytes, told where by X-Accel-Redirect.
    accel_prefix: str | None = None
    accel_store_prefix: str = "/_object_store/"
    # Object storage only: 302 to a presigned URL of the store instead of the bytes.
    redirect: bool = False
    presign_ttl_seconds: int = 60


async def file_response(
    request: Request,
    file: RenditionFile,
    storage: Storage,
    *,
    accel_prefix: str | None = None,
    delivery: Delivery | None = None,
) -> Response:
    delivery = delivery or Delivery(accel_prefix=accel_prefix)
    headers = file.headers()
    if is_fresh(request, file.etag):
        return Response(status_code=304, headers={"ETag": file.etag, "Cache-Control": "private"})

    if delivery.accel_prefix is not None and isinstance(storage, LocalStorage):
        # nginx sends the file itself (sendfile, Range). It keeps Content-Type,
        # Content-Disposition, Accept-Ranges and Cache-Control from here; the internal location
        # must re-add ETag and Repr-Digest from $upstream_http_etag / $upstream_http_repr_digest.
        headers["X-Accel-Redirect"] = delivery.accel_prefix + file.storage_key
        return Response(status_code=200, headers=headers)

    byte_range = requested_range(request, file)
    if byte_range is None:
        status, start, end = 200, 0, file.size_bytes - 1
    else:
        status, (start, end) = 206, byte_range
        headers["Content-Range"] = f"bytes {start}-{end}/{file.size_bytes}"
    headers["Content-Length"] = str(max(0, end - start + 1))

    await _check_stored(storage, file)
    if request.method == "HEAD" or file.size_bytes == 0:
        return Response(status_code=status, headers=headers)

    ranged_by_client = "range" in request.headers
    # A Range the client's If-Range ruled out would be applied by the store all the same (it
    # knows nothing of our ETag): then we send the whole file ourselves.
    if delivery.redirect and (byte_range is not None or not ranged_by_client):
        url = await _presign(storage, file, delivery.presign_ttl_seconds, for_client=True)
        if url is not None:
            return Response(
                status_code=302, headers={"Location": url, "Cache-Control": "private, no-store"}
            )

    if delivery.accel_prefix is not None:
        url = await _presign(storage, file, delivery.presign_ttl_seconds, for_client=False)
        if url is not None:
            headers["X-Accel-Redirect"] = delivery.accel_store_prefix + _accel_path(url)
            # nginx asks the store for exactly the range we decided on (none: the whole file).
            if byte_range is not None:
                headers["X-Natomedia-Range"] = f"bytes={start}-{end}"
            del headers["Content-Length"]
            headers.pop("Content-Range", None)
            # nginx would keep ours on a 200 only; its location adds one to every answer.
            del headers["Accept-Ranges"]
            return Response(status_code=200, headers=headers)

    chunks = storage.read(file.storage_key, start, end)
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""
    except FileNotFoundError as exc:
        _log_missing(file)
        raise RenditionNotFound from exc
    except StorageUnavailable as exc:
        logger.error("rendition %s: %s", file.id, exc)
        raise FileMissing from exc
    return StreamingResponse(_prepend(first, chunks), status, headers)


async def read_small(storage: Storage, key: str, *, video_id: uuid.UUID) -> bytes:
    """A small stored file (a thumbnail) whole: 404 when the store lacks it, 503 when it fails."""
    try:
        return b"".join([chunk async for chunk in storage.read(key)])
    except FileNotFoundError as exc:
        logger.error("video %s: its file %s is not in storage", video_id, key)
        raise VideoNotFound from exc
    except StorageUnavailable as exc:
        logger.error("video %s: %s", video_id, exc)
        raise FileMissing from exc


async def _check_stored(storage: Storage, file: RenditionFile) -> None:
    """404 when the catalogue names an object the store lacks, 503 when the store fails."""
    try:
        stored_size = await storage.size(file.storage_key)
    except StorageUnavailable as exc:
        logger.error("rendition %s: %s", file.id, exc)
        raise FileMissing from exc
    if stored_size is None:
        _log_missing(file)
        raise RenditionNotFound
    if stored_size != file.size_bytes:
        logger.error(
            "rendition %s: %s holds %d bytes, the catalogue says %d",
            file.id,
            file.storage_key,
            stored_size,
            file.size_bytes,
        )
        raise FileMissing


def _log_missing(file: RenditionFile) -> None:
    logger.error("rendition %s: its file %s is not in storage", file.id, file.storage_key)


async def _presign(
    storage: Storage, file: RenditionFile, ttl: int, *, for_client: bool
) -> str | None:
    try:
        if for_client:
            # The store answers with our type and name (the title may have changed since).
            return await storage.presign_get(
                file.storage_key,
                ttl,
                content_type=file.content_type,
                content_disposition=file.content_disposition,
            )
        return await storage.presign_get(file.storage_key, ttl)
    except StorageUnavailable as exc:
        logger.error("rendition %s: %s", file.id, exc)
        raise FileMissing from exc


def _accel_path(url: str) -> str:
    """`https://host:port/bucket/key?query` -> `https/host:port/bucket/key?query`: the internal
    location proxies to the scheme and host it reads back from the path."""
    parts = urlsplit(url)
    return f"{parts.scheme}/{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk
