"""A 200 MB file through the app: memory stays flat and every byte arrives."""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from services.media.delivery import RenditionFiles
from services.media.models import Rendition, Video
from tests.conftest import TokenFactory

SIZE = 200 * 1024 * 1024
PEAK_LIMIT = 16 * 1024 * 1024


def sparse_file(path: Path) -> str:
    """200 MB made in milliseconds: a hole, with marks at a few offsets so order matters."""
    digest = hashlib.sha256()
    marks = {0: b"start", SIZE // 3: b"one third", SIZE - 3: b"end"}
    with path.open("wb") as handle:
        handle.truncate(SIZE)
        for offset, mark in marks.items():
            handle.seek(offset)
            handle.write(mark)
    with path.open("rb") as handle:
        while chunk := handle.read(4 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


async def asgi_get(app: FastAPI, path_and_query: str) -> tuple[int, dict[str, str], int, str]:
    """GET straight through the ASGI interface, hashing chunks as they come.

    httpx's ASGITransport collects the whole body before returning, which would measure the
    test client's memory, not the app's.
    """
    path, _, query = path_and_query.partition("?")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    finished = asyncio.Event()
    status = 0
    headers: dict[str, str] = {}
    received = 0
    digest = hashlib.sha256()

    async def receive() -> dict[str, Any]:
        if not scope.get("_sent_request"):
            scope["_sent_request"] = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, received
        if message["type"] == "http.response.start":
            status = message["status"]
            headers.update((k.decode(), v.decode()) for k, v in message["headers"])
        elif message["type"] == "http.response.body":
            body = message.get("body", b"")
            received += len(body)
            digest.update(body)
            if not message.get("more_body", False):
                finished.set()

    await app(scope, receive, send)
    return status, headers, received, digest.hexdigest()


# Delivery never touches the database after the first lookup, so one backend is enough here.
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_200_mb_download_keeps_memory_flat(
    app: FastAPI, client: httpx.AsyncClient, tokens: TokenFactory, tmp_path: Path
) -> None:
    video_id, rendition_id = uuid.uuid4(), uuid.uuid4()
    key = f"videos/{video_id}/{rendition_id}.mp4"
    target = app.state.storage.path(key)
    target.parent.mkdir(parents=True)
    sha256 = sparse_file(target)
    async with app.state.database.sessionmaker() as session:
        session.add(Video(id=video_id, title="Large", related_article_slugs=[]))
        session.add(
            Rendition(
                id=rendition_id,
                video_id=video_id,
                label="2160p25 H.264 MP4",
                container="mp4",
                content_type="video/mp4",
                size_bytes=SIZE,
                sha256=sha256,
                storage_key=key,
                filename="large.mp4",
            )
        )
        await session.commit()
    grant = await client.post(
        f"/v1/media/videos/{video_id}/renditions/{rendition_id}/download-url",
        headers={"Authorization": f"Bearer {tokens.account()}"},
    )
    url = urlsplit(grant.json()["url"])
    files: RenditionFiles = app.state.rendition_files
    await files.get(rendition_id)  # warm, so only the transfer is measured

    tracemalloc.start()
    try:
        status, headers, received, digest = await asgi_get(app, f"{url.path}?{url.query}")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert status == 200
    assert headers["content-length"] == str(SIZE)
    assert received == SIZE
    assert digest == sha256
    assert peak < PEAK_LIMIT, f"peak {peak / 1e6:.1f} MB"
