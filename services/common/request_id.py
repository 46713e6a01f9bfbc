"""X-Request-ID on every response: the client's when it is sane, a fresh one otherwise."""

from __future__ import annotations

import os
import re
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# Echoing arbitrary client bytes into headers and logs invites header and log injection.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
HEADER = "x-request-id"


def pick_request_id(raw: str | None) -> str:
    if raw and _SAFE_ID.match(raw):
        return raw
    # 128 random bits as 32 hex digits, like uuid4().hex without building a UUID per request.
    return os.urandom(16).hex()


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                raw = value.decode("latin-1")
                break
        request_id = pick_request_id(raw)
        token = request_id_var.set(request_id)
        header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Appended, not set through MutableHeaders: nothing inside sets this header, so
                # there is no existing one to look for and replace.
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
