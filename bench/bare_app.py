"""The Python limit: a bare ASGI callable answering fixed bytes, no framework, no middleware.

`BENCH_BARE_MANIFEST` names a JSON file mapping request paths to body files, so it returns the
very bytes the real services returned for the same paths.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

Scope = dict[str, Any]


def _load() -> dict[str, tuple[bytes, list[tuple[bytes, bytes]]]]:
    manifest = json.loads(Path(os.environ["BENCH_BARE_MANIFEST"]).read_text())
    routes = {}
    for path, file in manifest.items():
        body = Path(file).read_bytes()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        routes[path] = (body, headers)
    return routes


ROUTES = _load()
NOT_FOUND = (b"{}", [(b"content-type", b"application/json"), (b"content-length", b"2")])


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    route = ROUTES.get(scope["path"])
    body, headers = route or NOT_FOUND
    await send({"type": "http.response.start", "status": 200 if route else 404, "headers": headers})
    await send({"type": "http.response.body", "body": body})
