"""CPU per request of the ASGI stack, in process: no sockets, no server, no load generator.

    .venv/bin/python bench/stack_cost.py [--requests 3000] [--rounds 7]

Calls each app directly with a fixed GET and reports the best round's CPU time per request, so
a middleware or dependency change shows up even on a busy machine where wrk numbers are noise:
a bare ASGI callable, plain FastAPI returning the same bytes, the service factory
(`create_service_app`, every middleware) on an open route, and the same route calling
`Security(principal)` with a cached token, and with the same check called from the route's body
(so the difference between the last two is FastAPI's handling of the declaration).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

BODY = b'{"id":"00000000-0000-0000-0000-000000000000","title":"x"}' * 12
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


def plain_fastapi() -> App:
    from fastapi import FastAPI, Response

    app = FastAPI()

    @app.get("/v1/media/bench/open")
    async def open_read() -> Response:
        return Response(BODY, media_type="application/json")

    return app


async def measure(app: App, path: str, headers: list[tuple[bytes, bytes]], n: int) -> float:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    started = time.thread_time()
    for _ in range(n):
        await app({**scope, "state": {}}, receive, send)
    elapsed = time.thread_time() - started
    if set(statuses) != {200}:
        raise RuntimeError(f"{path} answered {sorted(set(statuses))}")
    return elapsed / n * 1e6


async def main(requests: int, rounds: int) -> None:
    from services.auth.tokens import AccessTokenIssuer
    from services.common.clock import SystemClock
    from services.common.jwt import SigningKey, TokenVerifier, generate_private_key_pem
    from services.common.security import BearerChecks

    work = Path(tempfile.mkdtemp(prefix="stack-cost-"))
    (work / "body.json").write_bytes(BODY)
    os.environ["BENCH_TOKEN_APP_BODY"] = str(work / "body.json")
    os.environ["NATOMEDIA_DATA_DIR"] = str(work)
    import token_app

    key = SigningKey(generate_private_key_pem())
    issuer = AccessTokenIssuer(
        key, issuer="natomedia-auth", audience="natomedia-api", ttl_seconds=900, clock=SystemClock()
    )
    token = issuer.for_account(uuid.uuid4(), email_verified=True, roles=(), session_epoch=0).token

    async def jwks() -> dict[str, object]:
        return {"keys": [key.public_jwk]}

    service = token_app.create_app("open")
    protected = token_app.create_app("protected")
    called = token_app.create_app("called")
    for checking in (protected, called):
        checking.state.bearer_checks = BearerChecks(
            TokenVerifier(jwks, issuer="natomedia-auth", audience="natomedia-api")
        )
    bearer = [(b"authorization", f"Bearer {token}".encode())]
    cases: list[tuple[str, App, str, list[tuple[bytes, bytes]]]] = [
        ("bare ASGI callable", bare, "/v1/media/bench/open", []),
        ("plain FastAPI route", plain_fastapi(), "/v1/media/bench/open", []),
        ("service factory, open route", service, token_app.READ_PATH, []),
        ("service factory, Security(principal)", protected, token_app.READ_PATH, bearer),
        ("service factory, principal called", called, token_app.READ_PATH, bearer),
    ]
    best = {name: float("inf") for name, *_ in cases}
    async with (
        service.router.lifespan_context(service),
        protected.router.lifespan_context(protected),
        called.router.lifespan_context(called),
    ):
        for _, app, path, headers in cases:
            await measure(app, path, headers, 200)
        # Rounds interleave the cases, so a burst of load elsewhere hits all of them alike.
        for _ in range(rounds):
            for name, app, path, headers in cases:
                best[name] = min(best[name], await measure(app, path, headers, requests))
    reference = best["plain FastAPI route"]
    for name, micros in best.items():
        print(
            f"{name:36s} {micros:8.1f} us CPU/request  ({micros / reference:5.2f}x plain FastAPI)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds))
