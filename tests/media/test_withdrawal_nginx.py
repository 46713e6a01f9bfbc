"""Withdrawal through real nginx: a link signed before the withdrawal stops at once on the
X-Accel-Redirect path too (media checks the video's status before handing the file over)."""

from __future__ import annotations

import asyncio
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
from tests.conftest import TokenFactory
from tests.gateway.conftest import Gateway, start_gateway
from tests.media.conftest import Catalogue
from tests.media.test_downloads import CONTENT
from tests.media.test_withdrawal import editor

pytestmark = pytest.mark.nginx


@pytest.fixture
async def served_app(
    settings_factory: Callable[..., MediaSettings], clock: FrozenClock, tokens: TokenFactory
) -> AsyncIterator[tuple[FastAPI, int]]:
    settings = settings_factory(accel_redirect=True)
    app = create_app(
        settings, clock=clock, token_verifier=tokens.verifier(), rate_limiter=RateLimiter()
    )
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
    yield app, port
    server.should_exit = True
    await task


@pytest.fixture
def nginx_gateway(served_app: tuple[FastAPI, int], tmp_path: Path) -> Iterator[Gateway]:
    app, port = served_app
    run_dir = tmp_path / "nginx"
    (run_dir / "docs").mkdir(parents=True)
    (run_dir / "docs" / "openapi.json").write_text("{}")
    (run_dir / "docs" / "docs.html").write_text("<!doctype html>")
    media_root: Path = app.state.storage.root
    media_root.mkdir(parents=True, exist_ok=True)
    upstream = [f"127.0.0.1:{port}"]
    addresses = {"auth": upstream, "media": upstream, "news": upstream}
    yield from start_gateway(run_dir, addresses, media_root)


async def test_a_link_signed_before_withdrawal_stops_through_nginx(
    served_app: tuple[FastAPI, int], nginx_gateway: Gateway, tmp_path: Path, tokens: TokenFactory
) -> None:
    app, _ = served_app
    clip = await Catalogue(app, tmp_path).ingest_bytes(CONTENT, title="Oslo press point")
    async with httpx.AsyncClient(base_url=nginx_gateway.url, trust_env=False, timeout=10) as gw:
        grant = await gw.post(
            f"/v1/media/videos/{clip.video_id}/renditions/{clip.rendition_id}/download-url",
            headers={"Authorization": f"Bearer {tokens.account()}"},
        )
        assert grant.status_code == 200, grant.text
        parts = urlsplit(grant.json()["url"])
        link = f"{parts.path}?{parts.query}"

        before = await gw.get(link)
        assert before.status_code == 200
        assert before.content == CONTENT  # sent by nginx from the X-Accel location

        withdrawn = await gw.post(
            f"/v1/media/videos/{clip.video_id}/withdraw",
            json={"reason_code": "security"},
            headers=editor(tokens),
        )
        assert withdrawn.status_code == 200, withdrawn.text

        after = await gw.get(link)
        assert after.status_code == 410
        assert after.headers["content-type"] == "application/problem+json"
        assert after.json()["code"] == "video_withdrawn"
        assert after.json()["reason_code"] == "security"
        assert CONTENT[:64] not in after.content
        ranged = await gw.get(link, headers={"Range": "bytes=0-9"})
        assert ranged.status_code == 410

        restored = await gw.post(
            f"/v1/media/videos/{clip.video_id}/restore", headers=editor(tokens)
        )
        assert restored.status_code == 200
        again = await gw.get(link)
        assert again.status_code == 200
        assert again.content == CONTENT
