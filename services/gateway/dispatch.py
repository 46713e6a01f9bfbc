"""One ASGI app in front of the three services, routing by path prefix as nginx does.

Paths are passed through unchanged (each service owns its full `/v1/<service>` paths), and the
lifespans of all services run together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.i18n import N_, LanguageMiddleware
from services.common.problems import problem_response
from services.common.request_id import RequestIdMiddleware


class PrefixDispatcher:
    def __init__(
        self,
        routes: Sequence[tuple[str, FastAPI]],
        exact: Mapping[str, ASGIApp] | None = None,
    ) -> None:
        # Whole paths the gateway answers itself (`/openapi.json`, `/docs`); no lifespan.
        self.exact = dict(exact or {})
        # Longest prefix first so `/v1/auth/` never shadows a more specific mount.
        self.routes = sorted(routes, key=lambda route: len(route[0]), reverse=True)
        self.apps = list(dict.fromkeys(app for _, app in routes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if path in self.exact:
            await self.exact[path](scope, receive, send)
            return
        for prefix, app in self.routes:
            if path == prefix.rstrip("/") or path.startswith(prefix):
                await app(scope, receive, send)
                return
        if scope["type"] == "http":
            if path == "/healthz":
                await _ok(scope, receive, send)
                return
            await RequestIdMiddleware(LanguageMiddleware(_not_found))(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        async with AsyncExitStack() as stack:
            try:
                for app in self.apps:
                    await stack.enter_async_context(app.router.lifespan_context(app))
            except BaseException as exc:
                await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                raise
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            assert message["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    await problem_response(404, "not_found", N_("No such resource."))(scope, receive, send)


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    from starlette.responses import JSONResponse

    await JSONResponse({"status": "ok"})(scope, receive, send)
