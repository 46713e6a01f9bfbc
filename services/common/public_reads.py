"""Tokens on public reads: one rule for news and the catalogue.

A public GET/HEAD answers as for an anonymous caller when its bearer token fails (expired,
forged, revoked), instead of 401: an app holding an old token still shows the news. The
response says why the token was ignored in `WWW-Authenticate` (RFC 6750), so the client can
refresh, and is never cached: it carries a header meant for this caller only. A valid token
counts as what it is (an editor sees drafts); without the `editor` scope the answer is the
anonymous one, replayed from the same public cache (`public_cache.py`). Routes that need a token
keep `require_principal` and its 401.
"""

from __future__ import annotations

import enum
from typing import Final

from fastapi import Request
from fastapi.openapi.models import HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common import scopes
from services.common.jwt import Principal
from services.common.problems import InvalidToken
from services.common.security import (
    BEARER_AUTH,
    BearerChecks,
    Scheme,
    bearer_principal,
    scope_principal,
)

SCOPE_KEY: Final = "natomedia.refused_token"
CHALLENGE: Final = InvalidToken().headers["WWW-Authenticate"]
# Headers that would let a cache keep or replay the response.
_CACHING_HEADERS: Final = frozenset({b"cache-control", b"expires", b"x-accel-expires"})
Headers = list[tuple[bytes, bytes]]


class Reader(enum.Enum):
    """Which answer a public read gets, by its bearer token."""

    # No token, or a valid one without the `editor` scope: the public answer, cacheable.
    PUBLIC = "public"
    # A failing token: the public answer, marked for this caller only and never cached.
    REFUSED = "refused"
    # An editor: their own view (drafts), never from or into a cache.
    EDITOR = "editor"


def is_editor(caller: Principal | None) -> bool:
    return caller is not None and scopes.EDITOR in caller.scopes


async def reader_of(scope: Scope, checks: BearerChecks) -> Reader:
    """What this request's token makes of it (the token is verified once per request)."""
    try:
        caller = await scope_principal(scope, checks)
    except InvalidToken:
        return Reader.REFUSED
    return Reader.EDITOR if is_editor(caller) else Reader.PUBLIC


class PublicReader(Scheme):
    """Who a public read is for: the token's principal, or None without a usable token.

    As a dependency (`Security(public_reader)`) it also documents the token as optional.
    """

    async def __call__(self, request: Request) -> Principal | None:
        try:
            return await bearer_principal(request)
        except InvalidToken as error:
            request.scope[SCOPE_KEY] = error.headers.get("WWW-Authenticate", CHALLENGE)
            return None


public_reader = PublicReader(HTTPBearer(bearerFormat="JWT"), BEARER_AUTH, anonymous=True)


def refused_headers(headers: Headers, challenge: str) -> Headers:
    """A public answer's headers for a caller whose token was ignored: the error, and no-store."""
    marked = [
        (name, value)
        for name, value in headers
        if name.lower() not in _CACHING_HEADERS and name.lower() != b"www-authenticate"
    ]
    marked.append((b"www-authenticate", challenge.encode("latin-1")))
    marked.append((b"cache-control", b"no-store"))
    return marked


class RefusedTokenMiddleware:
    """Marks the response of a public read whose token was ignored: the error, and no-store."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def mark(message: Message) -> None:
            if message["type"] == "http.response.start":
                challenge = scope.get(SCOPE_KEY)
                if challenge is not None:
                    message["headers"] = refused_headers(message.get("headers", []), challenge)
            await send(message)

        await self.app(scope, receive, mark)
