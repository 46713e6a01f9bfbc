"""Conditional GETs: strong ETags over response bytes, `If-None-Match` and `If-Modified-Since`.

Every route that answers 304 goes through `conditional_response` (or `is_fresh`, for a file
answered without its bytes in memory).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime

from starlette.requests import Request
from starlette.responses import Response


def strong_etag(body: bytes) -> str:
    digest = hashlib.sha256(body).digest()[:18]
    return '"' + base64.urlsafe_b64encode(digest).decode() + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    # Weak comparison for If-None-Match (RFC 9110 §13.1.2).
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in candidates


def _not_modified_since(header: str | None, last_modified: datetime | None) -> bool:
    if header is None or last_modified is None:
        return False
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return False  # an unreadable date is ignored, as RFC 9110 asks
    if since.tzinfo is None:
        return False
    # HTTP dates have whole seconds.
    return last_modified.replace(microsecond=0) <= since


def is_fresh(request: Request, etag: str, last_modified: datetime | None = None) -> bool:
    """Whether the client's copy is current; `If-None-Match` wins over `If-Modified-Since`."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        return etag_matches(if_none_match, etag)
    return _not_modified_since(request.headers.get("if-modified-since"), last_modified)


def conditional_response(
    request: Request,
    body: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    media_type: str = "application/json",
    last_modified: datetime | None = None,
) -> Response:
    """200 with the body, its ETag (and `Last-Modified`), or 304 when the client holds it."""
    etag = strong_etag(body)
    all_headers = {"ETag": etag, **(headers or {})}
    if last_modified is not None:
        all_headers["Last-Modified"] = format_datetime(last_modified, usegmt=True)
    if is_fresh(request, etag, last_modified):
        return Response(status_code=304, headers=all_headers)
    return Response(body, media_type=media_type, headers=all_headers)
