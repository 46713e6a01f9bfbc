"""Real nginx with the repository's gateway config, in front of small services built on the
common app factory (request ids, CORS, body limit, problem+json): the gateway's behaviour is
tested here without depending on the real services, which tests/e2e covers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel

from services.common.app import create_service_app
from services.common.client_address import client_address
from services.common.database import Database
from services.common.problems import NotFound, ServiceUnavailable
from services.common.settings import ServiceSettings
from services.gateway.nginx.config import local_config
from services.gateway.stack import Nginx, StackError, find_nginx, free_port
from tests.conftest import unavailable

CORS_ORIGIN = "https://app.example.org"
FILE_NAME = "line-up.mp4"
FILE_BYTES = bytes(range(256)) * 4096  # 1 MiB with every byte value
OPENAPI_DOCUMENT = '{"openapi":"3.1.0","info":{"title":"NATO Multimedia API","version":"1"}}'
DOCS_PAGE = "<!DOCTYPE html><title>NATO Multimedia API \u2013 docs</title>"


class Note(BaseModel):
    text: str


def upstream_app(name: str, data_dir: Path) -> FastAPI:
    """A service with the common factory's middleware and routes that show what nginx sent."""
    router = APIRouter(prefix=f"/v1/{name}")
    settings = ServiceSettings(
        NATOMEDIA_DATA_DIR=data_dir,
        CORS_ORIGINS=CORS_ORIGIN,
        NATOMEDIA_TRUSTED_PROXIES="127.0.0.1",
    )

    @router.get("/echo")
    async def echo(request: Request) -> dict[str, object]:
        return {
            "service": name,
            "path": request.url.path,
            "query": request.url.query,
            "headers": dict(request.headers.items()),
            "client_address": client_address(request, settings.trusted_proxies),
        }

    @router.get("/listing")
    async def listing() -> dict[str, object]:
        return {"items": [{"id": index, "title": f"Item {index}"} for index in range(200)]}

    @router.post("/notes", status_code=201)
    async def create_note(note: Note) -> dict[str, int]:
        return {"length": len(note.text)}

    @router.get("/slow")
    async def slow(seconds: float) -> dict[str, float]:
        await asyncio.sleep(seconds)
        return {"slept": seconds}

    @router.get("/missing")
    async def missing() -> None:
        raise NotFound("No such note.")

    @router.get("/unavailable")
    async def unavailable_now() -> None:
        raise ServiceUnavailable("The database is restarting.", headers={"Retry-After": "7"})

    @router.api_route("/files/{file_name}", methods=["GET", "HEAD"])
    async def download(file_name: str) -> Response:
        digest = hashlib.sha256(FILE_BYTES).hexdigest()
        return Response(
            media_type="video/mp4",
            headers={
                "X-Accel-Redirect": f"/_protected_media/{file_name}",
                "ETag": f'"{digest}"',
                "Repr-Digest": f"sha-256=:{digest}:",
                "Content-Disposition": f'attachment; filename="{file_name}"',
                "Cache-Control": "private, max-age=3600",
            },
        )

    return create_service_app(
        title=name,
        description=name,
        prefix=f"/v1/{name}",
        settings=settings,
        database=Database(f"sqlite+aiosqlite:///{data_dir / name}.sqlite3"),
        routers=[router],
    )


@dataclass
class Upstream:
    name: str
    port: int
    app: FastAPI
    server: uvicorn.Server
    task: asyncio.Task[None]


async def _serve(name: str, data_dir: Path) -> Upstream:
    app = upstream_app(name, data_dir)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, proxy_headers=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return Upstream(name, port, app, server, task)


@pytest.fixture(scope="module")
async def upstreams(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Upstream]]:
    data_dir = tmp_path_factory.mktemp("upstreams")
    # Two auth replicas: the gateway balances across an upstream's servers.
    servers = {
        key: await _serve(name, data_dir)
        for key, name in (
            ("auth", "auth"),
            ("auth-2", "auth"),
            ("media", "media"),
            ("news", "news"),
        )
    }
    yield servers
    for upstream in servers.values():
        upstream.server.should_exit = True
    await asyncio.gather(*(upstream.task for upstream in servers.values()))


@dataclass
class Gateway:
    url: str
    nginx: Nginx
    media_root: Path


def start_gateway(
    run_dir: Path, upstreams: dict[str, list[str]], media_root: Path, **changes: Any
) -> Iterator[Gateway]:
    binary = find_nginx()
    if binary is None:
        unavailable("nginx", "no nginx binary (apt-get install nginx-light)")
    port = free_port()
    config = local_config(port=port, upstreams=upstreams, media_root=media_root, run_dir=run_dir)
    config = dataclasses.replace(config, **changes)
    nginx = Nginx(config, run_dir, binary)
    try:
        nginx.start({})
    except StackError as exc:
        unavailable("nginx", str(exc))
    try:
        yield Gateway(f"http://127.0.0.1:{port}", nginx, media_root)
    finally:
        nginx.stop()


@pytest.fixture(scope="module")
def gateway(
    upstreams: dict[str, Upstream], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    media_root = tmp_path_factory.mktemp("media")
    (media_root / FILE_NAME).write_bytes(FILE_BYTES)
    run_dir = tmp_path_factory.mktemp("nginx")
    (run_dir / "docs").mkdir()
    (run_dir / "docs" / "openapi.json").write_text(OPENAPI_DOCUMENT)
    (run_dir / "docs" / "docs.html").write_text(DOCS_PAGE)
    addresses = {
        "auth": [
            f"127.0.0.1:{upstreams['auth'].port}",
            f"127.0.0.1:{upstreams['auth-2'].port}",
        ],
        "media": [f"127.0.0.1:{upstreams['media'].port}"],
        "news": [f"127.0.0.1:{upstreams['news'].port}"],
    }
    yield from start_gateway(run_dir, addresses, media_root)


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, trust_env=False, timeout=10) as client:
        yield client
