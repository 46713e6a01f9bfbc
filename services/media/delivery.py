"""Answering a valid download URL: conditional and ranged GET/HEAD, streamed or handed to nginx."""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import quote

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from services.common.database import Database
from services.common.http_cache import is_fresh
from services.media.exceptions import FileMissing, RangeNotSatisfiable, VideoWithdrawn
from services.media.ingest import slugify
from services.media.models import Rendition, Video
from services.media.storage import Storage

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")
# Control characters and path separators have no place in a saved file name.
_UNSAFE_TITLE = re.compile(r"[\x00-\x1f\x7f/\\]+")


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
        """RFC 6266: an ASCII `filename` for every client, `filename*` with the real title."""
        ascii_name = safe_filename(self.filename)
        value = f'attachment; filename="{ascii_name}"'
        title = _UNSAFE_TITLE.sub(" ", self.title).strip()
        stem, dot, extension = ascii_name.rpartition(".")
        if title and dot:
            # The ASCII name is `<title slug>-<label slug>-<id prefix>`; the title slug is
            # replaced by the title itself, the rest (which tells renditions apart) is kept.
            suffix = _suffix_after_title(stem, self.title)
            original = f"{title}-{suffix}.{extension}" if suffix else f"{title}.{extension}"
            value += "; filename*=UTF-8''" + quote(original[:200], safe="")
        return value

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


def _suffix_after_title(stem: str, title: str) -> str:
    title_slug = slugify(title)
    if title_slug and stem.startswith(title_slug):
        return stem[len(title_slug) :].strip("-")
    return stem


def safe_filename(name: str) -> str:
    """ASCII letters, digits, dot, dash and underscore only: nothing to escape in a header."""
    cleaned = _UNSAFE_FILENAME.sub("-", name).strip(".-") or "download"
    return cleaned[:150]


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


async def file_response(
    request: Request,
    file: RenditionFile,
    storage: Storage,
    *,
    accel_prefix: str | None,
) -> Response:
    headers = file.headers()
    if is_fresh(request, file.etag):
        return Response(status_code=304, headers={"ETag": file.etag, "Cache-Control": "private"})

    if accel_prefix is not None:
        # nginx sends the file itself (sendfile, Range). It keeps Content-Type,
        # Content-Disposition, Accept-Ranges and Cache-Control from here; the internal location
        # must re-add ETag and Repr-Digest from $upstream_http_etag / $upstream_http_repr_digest.
        headers["X-Accel-Redirect"] = accel_prefix + file.storage_key
        return Response(status_code=200, headers=headers)

    byte_range = requested_range(request, file)
    if byte_range is None:
        status, start, end = 200, 0, file.size_bytes - 1
    else:
        status, (start, end) = 206, byte_range
        headers["Content-Range"] = f"bytes {start}-{end}/{file.size_bytes}"
    headers["Content-Length"] = str(max(0, end - start + 1))

    stored_size = await storage.size(file.storage_key)
    if stored_size != file.size_bytes:
        raise FileMissing
    if request.method == "HEAD" or file.size_bytes == 0:
        return Response(status_code=status, headers=headers)
    return StreamingResponse(storage.read(file.storage_key, start, end), status, headers)
