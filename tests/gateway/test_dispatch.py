"""The dev gateway routes by prefix without rewriting paths, and runs every app's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request

from services.gateway.dispatch import PrefixDispatcher


def _app(name: str, events: list[str]) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        events.append(f"{name} up")
        yield
        events.append(f"{name} down")

    app = FastAPI(lifespan=lifespan)

    @app.get("/{path:path}")
    async def echo(path: str, request: Request) -> dict[str, str]:
        return {"app": name, "path": request.url.path}

    return app


async def test_routes_by_prefix_with_full_paths() -> None:
    events: list[str] = []
    auth, media = _app("auth", events), _app("media", events)
    gateway = PrefixDispatcher(
        [("/v1/auth/", auth), ("/v1/media/", media), ("/.well-known/", auth)]
    )
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        assert (await client.get("/v1/auth/login")).json() == {
            "app": "auth",
            "path": "/v1/auth/login",
        }
        assert (await client.get("/v1/media/videos")).json()["app"] == "media"
        assert (await client.get("/.well-known/jwks.json")).json()["app"] == "auth"
        missing = await client.get("/v1/other/thing")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.headers["x-request-id"]
        assert missing.json()["detail"] == "No such resource."
        french = await client.get("/v1/other/thing", headers={"Accept-Language": "fr"})
        assert (french.json()["title"], french.json()["detail"]) == (
            "Introuvable",
            "Cette ressource n’existe pas.",
        )
        assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_runs_each_lifespan_once() -> None:
    events: list[str] = []
    auth, media = _app("auth", events), _app("media", events)
    gateway = PrefixDispatcher(
        [("/v1/auth/", auth), ("/v1/media/", media), ("/.well-known/", auth)]
    )
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> dict[str, str]:
        return next(messages)

    async def send(message: dict[str, str]) -> None:
        sent.append(message["type"])

    await gateway({"type": "lifespan"}, receive, send)  # type: ignore[arg-type]
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == ["auth up", "media up", "media down", "auth down"]
