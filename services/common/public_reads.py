"""Tokens on public reads: one rule for news and the catalogue.

A public GET/HEAD answers as for an anonymous caller when its bearer token fails (expired,
forged, revoked), instead of 401: an app holding an old token still shows the news. The
response says why the token was ignored in `WWW-Authenticate` (RFC 6750), so the client can
refresh, and is never cached: it carries a header meant for this caller only. A valid token
counts as what it is (an editor sees drafts); without the `editor` scope the answer is the
anonymous one. Routes that need a token keep `require_principal` and its 401.
"""

from __future__ import annotations

from typing import Final

from fastapi import Request
from fastapi.openapi.models import HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.jwt import Principal
from services.common.problems import InvalidToken
from services.common.security import BEARER_AUTH, Scheme, bearer_principal

SCOPE_KEY: Final = "natomedia.refused_token"
# Headers that would let a cache keep or replay the response.
_CACHING_HEADERS: Final = frozenset({b"cache-control", b"expires", b"x-accel-expires"})


class PublicReader(Scheme):
    """Who a public read is for: the token's principal, or None without a usable token.

    As a dependency (`Security(public_reader)`) it also documents the token as optional.
    """

    async def __call__(self, request: Request) -> Principal | None:
        try:
            return await bearer_principal(request)
        except InvalidToken as error:
            request.scope[SCOPE_KEY] = error.headers.get("WWW-Authenticate", "Bearer")
            return None


public_reader = PublicReader(HTTPBearer(bearerFormat="JWT"), BEARER_AUTH, anonymous=True)


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
                    headers = [
                        (name, value)
                        for name, value in message.get("headers", [])
                        if name.lower() not in _CACHING_HEADERS
                        and name.lower() != b"www-authenticate"
                    ]
                    headers.append((b"www-authenticate", challenge.encode("latin-1")))
                    headers.append((b"cache-control", b"no-store"))
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, mark)
