"""Object storage behind real nginx: the signed URL answers 200/206 itself (nginx fetches the
object by the presigned URL media names), with our ETag, digest and name, never the store's;
`MEDIA_DELIVERY=redirect` passes the 302 through."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from services.common.clock import FrozenClock
from services.common.ratelimit import RateLimiter
from services.gateway.stack import free_port
from services.media.app import create_app
from services.media.config import MediaSettings
from services.media.ingest import Ingested
from tests.conftest import TokenFactory
from tests.gateway.conftest import Gateway, start_gateway
from tests.media.conftest import Catalogue
from tests.media.test_downloads import CONTENT

pytestmark = [pytest.mark.nginx, pytest.mark.s3]


async def serve(app: FastAPI) -> AsyncIterator[int]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if task.done():
        task.result()
    yield port
    server.should_exit = True
    await task


@pytest.fixture(params=["proxy", "redirect"])
async def served_app(
    request: pytest.FixtureRequest,
    object_settings: Callable[..., MediaSettings],
    clock: FrozenClock,
    tokens: TokenFactory,
) -> AsyncIterator[tuple[FastAPI, int]]:
    settings = object_settings(accel_redirect=True, delivery=request.param)
    app = create_app(
        settings, clock=clock, token_verifier=tokens.verifier(), rate_limiter=RateLimiter()
    )
    async for port in serve(app):
        yield app, port


@pytest.fixture
def nginx_gateway(served_app: tuple[FastAPI, int], tmp_path: Path) -> Iterator[Gateway]:
    _, port = served_app
    run_dir = tmp_path / "nginx"
    (run_dir / "docs").mkdir(parents=True)
    (run_dir / "docs" / "openapi.json").write_text("{}")
    (run_dir / "docs" / "docs.html").write_text("<!doctype html>")
    media_root = tmp_path / "no-local-media"
    media_root.mkdir()
    upstream = [f"127.0.0.1:{port}"]
    addresses = {"auth": upstream, "media": upstream, "news": upstream}
    yield from start_gateway(run_dir, addresses, media_root)


async def _link(gateway: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory) -> str:
    grant = await gateway.post(
        f"/v1/media/videos/{clip.video_id}/renditions/{clip.rendition_id}/download-url",
        headers={"Authorization": f"Bearer {tokens.account()}"},
    )
    assert grant.status_code == 200, grant.text
    parts = urlsplit(grant.json()["url"])
    return f"{parts.path}?{parts.query}"


def _assert_ours(response: httpx.Response, clip: Ingested) -> None:
    assert response.headers["etag"] == f'"{clip.sha256}"'
    assert response.headers.get_list("etag") == [f'"{clip.sha256}"']
    assert response.headers["repr-digest"].startswith("sha-256=:")
    (disposition,) = response.headers.get_list("content-disposition")
    assert disposition.startswith('attachment; filename="oslo-press-point')
    assert response.headers.get_list("cache-control") == ["private, max-age=3600"]
    assert len(response.headers.get_list("last-modified")) == 1
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["x-request-id"]
    assert not [name for name in response.headers if name.lower().startswith(("x-amz", "seaweed-"))]
    assert "x-accel-redirect" not in response.headers
    assert "x-natomedia-range" not in response.headers


async def test_downloads_through_nginx(
    served_app: tuple[FastAPI, int],
    nginx_gateway: Gateway,
    tmp_path: Path,
    tokens: TokenFactory,
) -> None:
    app, _ = served_app
    redirect = app.state.settings.delivery == "redirect"
    catalogue = Catalogue(app, tmp_path)
    clip = await catalogue.ingest_bytes(CONTENT, title="Oslo press point")
    big = os.urandom(7 * 1024 * 1024)
    large = await catalogue.ingest_bytes(big, title="Oslo press point")
    async with httpx.AsyncClient(base_url=nginx_gateway.url, trust_env=False, timeout=30) as gw:
        link = await _link(gw, clip, tokens)
        head = await gw.head(link)
        assert head.status_code == 200
        _assert_ours(head, clip)
        assert head.headers["content-length"] == str(len(CONTENT))

        whole = await gw.get(link)
        if redirect:
            assert whole.status_code == 302
            assert whole.headers["location"].startswith("http://127.0.0.1:")
            async with httpx.AsyncClient(trust_env=False) as outside:
                fetched = await outside.get(whole.headers["location"])
            assert fetched.content == CONTENT
            return
        assert whole.status_code == 200
        assert whole.content == CONTENT
        assert whole.headers["content-length"] == str(len(CONTENT))
        assert whole.headers["content-type"] == "video/mp4"
        _assert_ours(whole, clip)

        part = await gw.get(link, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.content == CONTENT[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(CONTENT)}"
        _assert_ours(part, clip)
        tail = await gw.get(link, headers={"Range": "bytes=-4"})
        assert (tail.status_code, tail.content) == (206, b"tail")
        resumed = await gw.get(link, headers={"Range": "bytes=10-", "If-Range": f'"{clip.sha256}"'})
        assert (resumed.status_code, resumed.content) == (206, CONTENT[10:])
        stale = await gw.get(link, headers={"Range": "bytes=10-19", "If-Range": '"old"'})
        assert (stale.status_code, stale.content) == (200, CONTENT)
        # The client's credentials and conditions never reach the store (it would refuse them).
        with_token = await gw.get(
            link, headers={"Authorization": "Bearer x", "If-None-Match": '"other"'}
        )
        assert (with_token.status_code, with_token.content) == (200, CONTENT)
        assert (await gw.get(link, headers={"If-None-Match": f'"{clip.sha256}"'})).status_code == (
            304
        )
        unsatisfiable = await gw.get(link, headers={"Range": "bytes=99999-"})
        assert unsatisfiable.status_code == 416
        assert unsatisfiable.json()["code"] == "range_not_satisfiable"

        digest = hashlib.sha256()
        async with gw.stream("GET", await _link(gw, large, tokens)) as streamed:
            assert streamed.status_code == 200
            async for chunk in streamed.aiter_bytes():
                digest.update(chunk)
        assert digest.hexdigest() == large.sha256


async def test_an_object_gone_from_the_store_is_404_through_nginx(
    served_app: tuple[FastAPI, int], nginx_gateway: Gateway, tmp_path: Path, tokens: TokenFactory
) -> None:
    app, _ = served_app
    catalogue = Catalogue(app, tmp_path)
    clip = await catalogue.ingest_bytes(CONTENT, title="Oslo press point")
    rendition = await catalogue.rendition(clip.rendition_id)
    await app.state.storage.delete(rendition.storage_key)
    async with httpx.AsyncClient(base_url=nginx_gateway.url, trust_env=False, timeout=30) as gw:
        answer = await gw.get(await _link(gw, clip, tokens))
        assert answer.status_code == 404
        assert answer.json()["code"] == "not_found"
