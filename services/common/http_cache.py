"""Strong ETags over response bytes and conditional GETs."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping

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


def cached_json(
    request: Request,
    body: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    media_type: str = "application/json",
) -> Response:
    """200 with the body and its ETag, or 304 when the client already holds it."""
    etag = strong_etag(body)
    all_headers = {"ETag": etag, **(headers or {})}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=all_headers)
    return Response(body, media_type=media_type, headers=all_headers)
