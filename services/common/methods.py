"""HEAD wherever GET answers, and a 405's `Allow` naming every method of the resource.

FastAPI routes answer only the methods they declare, and each method of a path is its own route,
so a HEAD of a GET route is a 405 and a 405's `Allow` lists one route's methods, not the path's.
A HEAD that no route declares is answered as the GET of the same URL without its body (RFC 9110
§9.3.2: the same headers, `Content-Length` included); HEAD is not documented per operation, it
follows from GET. A 405 gets `Allow` from every route that matches the path.
"""

from __future__ import annotations

from typing import Final

from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# What a 405 may offer; OPTIONS is only a CORS preflight here (handled before routing).
_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


class MethodsMiddleware:
    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self.router = router

    def _answers(self, scope: Scope, method: str) -> bool:
        probe = {**scope, "method": method}
        return any(route.matches(probe)[0] is Match.FULL for route in self.router.routes)

    def allowed(self, scope: Scope) -> list[str]:
        """Every method some route of this path answers, HEAD wherever GET is."""
        methods = [method for method in _METHODS if self._answers(scope, method)]
        if "GET" in methods and "HEAD" not in methods:
            methods.insert(methods.index("GET") + 1, "HEAD")
        return methods

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if (
            scope["method"] == "HEAD"
            and not self._answers(scope, "HEAD")
            and self._answers(scope, "GET")
        ):
            await self.app({**scope, "method": "GET"}, receive, _without_body(send))
            return

        async def complete_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allow = ", ".join(self.allowed(scope)).encode("latin-1")
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"allow"
                ]
                headers.append((b"allow", allow))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, complete_allow)


def _without_body(send: Send) -> Send:
    async def headers_only(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return headers_only
