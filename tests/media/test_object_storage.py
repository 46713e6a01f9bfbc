"""Media on S3-compatible object storage (SeaweedFS): ingest, the three ways a signed URL is
answered (streamed here, handed to nginx, redirected), the store's faults, and gc."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from services.common.clock import FrozenClock
from services.common.ratelimit import RateLimiter
from services.media.app import create_app
from services.media.config import MediaSettings
from services.media.ingest import VideoMetadata, ingest_file
from services.media.models import Rendition, Video
from services.media.object_storage import S3Storage
from services.media.storage import StorageUnavailable
from services.media.storage_gc import collect_garbage
from tests.conftest import TokenFactory, free_port
from tests.media.conftest import Catalogue
from tests.media.test_downloads import assert_problem, signed_url, url_path

pytestmark = pytest.mark.s3

CONTENT = bytes(range(256)) * 40 + b"tail"


@pytest.fixture
def settings(object_settings: Callable[..., MediaSettings]) -> MediaSettings:
    return object_settings()


@pytest.fixture
def other_client(
    object_settings: Callable[..., MediaSettings], clock: FrozenClock, tokens: TokenFactory
) -> Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]:
    """Clients of another app on the same database and bucket, with other delivery settings."""

    @contextlib.asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(
            object_settings(**overrides),
            clock=clock,
            token_verifier=tokens.verifier(),
            rate_limiter=RateLimiter(),
        )
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
        ):
            yield c

    return make


async def test_ingest_writes_to_the_bucket_and_downloads_stream_from_it(
    client: httpx.AsyncClient, catalogue: Catalogue, tokens: TokenFactory, s3_storage: S3Storage
) -> None:
    clip = await catalogue.ingest_bytes(CONTENT, title="Oslo press point")
    rendition = await catalogue.rendition(clip.rendition_id)
    assert clip.sha256 == hashlib.sha256(CONTENT).hexdigest()
    assert await s3_storage.size(rendition.storage_key) == len(CONTENT)
    s3 = await s3_storage.client()
    head = await s3.head_object(
        Bucket=s3_storage.bucket, Key=s3_storage.object_key(rendition.storage_key)
    )
    # For clients a store or CDN serves directly.
    assert head["ContentType"] == "video/mp4"
    assert head["ContentDisposition"].startswith('attachment; filename="oslo-press-point')

    path = url_path(await signed_url(client, clip, tokens))
    whole = await client.get(path)
    assert whole.status_code == 200
    assert whole.content == CONTENT
    assert whole.headers["etag"] == f'"{clip.sha256}"'
    assert whole.headers["repr-digest"].startswith("sha-256=:")
    assert whole.headers["content-disposition"] == rendition_disposition(whole)
    part = await client.get(path, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == CONTENT[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(CONTENT)}"
    stale = await client.get(path, headers={"Range": "bytes=100-199", "If-Range": '"other"'})
    assert stale.status_code == 200
    assert stale.content == CONTENT
    head_answer = await client.head(path)
    assert head_answer.status_code == 200
    assert head_answer.headers["content-length"] == str(len(CONTENT))
    assert_problem(
        await client.get(path, headers={"Range": "bytes=99999-"}), 416, "range_not_satisfiable"
    )


def rendition_disposition(response: httpx.Response) -> str:
    value = response.headers["content-disposition"]
    assert value.startswith("attachment;")
    return value


async def test_behind_nginx_the_store_is_named_by_a_presigned_url(
    client: httpx.AsyncClient,
    catalogue: Catalogue,
    tokens: TokenFactory,
    other_client: Callable[..., httpx.AsyncClient],
    s3_storage: S3Storage,
) -> None:
    clip = await catalogue.ingest_bytes(CONTENT, title="Oslo press point")
    rendition = await catalogue.rendition(clip.rendition_id)
    path = url_path(await signed_url(client, clip, tokens))
    async with other_client(accel_redirect=True) as proxied:
        answer = await proxied.get(path, headers={"Range": "bytes=10-19"})
        assert answer.status_code == 200
        assert answer.content == b""
        target = answer.headers["x-accel-redirect"]
        assert target.startswith("/_object_store/http/127.0.0.1:")
        assert f"/{s3_storage.bucket}/{s3_storage.prefix}{rendition.storage_key}?" in target
        assert answer.headers["x-natomedia-range"] == "bytes=10-19"
        assert answer.headers["etag"] == f'"{clip.sha256}"'
        # What nginx will fetch: the path back into a URL, which the store honours.
        scheme, _, rest = target.removeprefix("/_object_store/").partition("/")
        async with httpx.AsyncClient(trust_env=False) as direct:
            fetched = await direct.get(f"{scheme}://{rest}", headers={"Range": "bytes=10-19"})
        assert fetched.status_code == 206
        assert fetched.content == CONTENT[10:20]
        # If-Range that does not match: the whole file, so no range for nginx to ask for.
        whole = await proxied.get(path, headers={"Range": "bytes=10-19", "If-Range": '"x"'})
        assert "x-natomedia-range" not in whole.headers
        # HEAD is answered here, without the store's help beyond a size check.
        head = await proxied.head(path)
        assert head.status_code == 200
        assert "x-accel-redirect" not in head.headers
        assert head.headers["content-length"] == str(len(CONTENT))


async def test_redirect_delivery(
    client: httpx.AsyncClient,
    catalogue: Catalogue,
    tokens: TokenFactory,
    other_client: Callable[..., httpx.AsyncClient],
) -> None:
    clip = await catalogue.ingest_bytes(CONTENT, title="Oslo press point")
    path = url_path(await signed_url(client, clip, tokens))
    async with (
        other_client(delivery="redirect", redirect_ttl_seconds=30) as redirecting,
        httpx.AsyncClient(trust_env=False) as outside,
    ):
        answer = await redirecting.get(path)
        assert answer.status_code == 302
        assert answer.headers["cache-control"] == "private, no-store"
        location = answer.headers["location"]
        query = dict(parse_qsl(urlsplit(location).query))
        assert query["X-Amz-Expires"] == "30"
        fetched = await outside.get(location)
        assert fetched.status_code == 200
        assert fetched.content == CONTENT
        assert fetched.headers["content-disposition"].startswith(
            'attachment; filename="oslo-press-point'
        )
        ranged = await redirecting.get(
            path, headers={"Range": "bytes=0-9", "If-Range": f'"{clip.sha256}"'}
        )
        assert ranged.status_code == 302
        part = await outside.get(ranged.headers["location"], headers={"Range": "bytes=0-9"})
        assert part.status_code == 206
        assert part.content == CONTENT[:10]
        # An If-Range for another version: the whole file from us, not a range from the store.
        stale = await redirecting.get(path, headers={"Range": "bytes=0-9", "If-Range": '"x"'})
        assert stale.status_code == 200
        assert stale.content == CONTENT
        head = await redirecting.head(path)
        assert head.status_code == 200
        assert head.headers["etag"] == f'"{clip.sha256}"'
        assert (
            await redirecting.get(path, headers={"If-None-Match": f'"{clip.sha256}"'})
        ).status_code == 304
        assert_problem(
            await redirecting.get(path, headers={"Range": "bytes=99999-"}),
            416,
            "range_not_satisfiable",
        )


async def test_an_object_missing_from_the_store_is_404_and_logged(
    client: httpx.AsyncClient,
    catalogue: Catalogue,
    tokens: TokenFactory,
    other_client: Callable[..., httpx.AsyncClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    clip = await catalogue.ingest_bytes(CONTENT)
    rendition = await catalogue.rendition(clip.rendition_id)
    await catalogue.storage.delete(rendition.storage_key)
    path = url_path(await signed_url(client, clip, tokens))
    async with (
        other_client(delivery="redirect") as redirecting,
        other_client(accel_redirect=True) as proxied,
    ):
        for each in (client, redirecting, proxied):
            assert_problem(await each.get(path), 404, "not_found")
            assert (await each.head(path)).status_code == 404
    assert any(str(clip.rendition_id) in record.getMessage() for record in caplog.records)


async def test_an_unreachable_store_is_503_with_retry_after(
    client: httpx.AsyncClient,
    catalogue: Catalogue,
    tokens: TokenFactory,
    other_client: Callable[..., httpx.AsyncClient],
) -> None:
    clip = await catalogue.ingest_bytes(CONTENT)
    path = url_path(await signed_url(client, clip, tokens))
    closed = f"http://127.0.0.1:{free_port()}"
    for options in ({}, {"delivery": "redirect"}, {"accel_redirect": True}):
        async with other_client(s3_endpoint_url=closed, **options) as cut_off:
            for method in ("GET", "HEAD"):
                answer = await cut_off.request(method, path)
                assert answer.status_code == 503, (options, method)
                assert answer.headers["retry-after"]
            assert_problem(await cut_off.get(path), 503, "file_unavailable")


async def test_ingest_into_an_unreachable_store_writes_nothing(
    app: FastAPI, object_settings: Callable[..., MediaSettings], tmp_path: Path
) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(CONTENT)
    storage = S3Storage(
        "bucket",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        access_key_id="key",
        secret_access_key="secret",
    )
    try:
        async with app.state.database.sessionmaker() as session:
            with pytest.raises(StorageUnavailable, match="object storage unavailable"):
                await ingest_file(
                    session, storage, source, VideoMetadata(title="Lost"), ffprobe="none"
                )
            assert await session.scalar(select(func.count()).select_from(Video)) == 0
            assert await session.scalar(select(func.count()).select_from(Rendition)) == 0
    finally:
        await storage.close()


async def test_a_failed_multipart_ingest_leaves_no_parts_and_no_row(
    app: FastAPI, catalogue: Catalogue, s3_storage: S3Storage, tmp_path: Path
) -> None:
    source = tmp_path / "big.mp4"
    source.write_bytes(b"\0" * (12 * 1024 * 1024))

    class Failing:
        advanced = 0

        def advance(self, size: int) -> None:
            self.advanced += size
            if self.advanced > 6 * 1024 * 1024:
                raise RuntimeError("disk read error")

    async with app.state.database.sessionmaker() as session:
        with pytest.raises(RuntimeError):
            await ingest_file(
                session,
                s3_storage,
                source,
                VideoMetadata(title="Half"),
                ffprobe="none",
                progress=Failing(),
            )
        assert await session.scalar(select(func.count()).select_from(Rendition)) == 0
    assert [item async for item in s3_storage.objects()] == []
    assert [upload async for upload in s3_storage.pending_uploads()] == []


async def test_gc_removes_orphans_and_stale_uploads_only(
    app: FastAPI, catalogue: Catalogue, s3_storage: S3Storage
) -> None:
    clip = await catalogue.ingest_bytes(CONTENT)
    rendition = await catalogue.rendition(clip.rendition_id)

    async def one(data: bytes) -> AsyncIterator[bytes]:
        yield data

    await s3_storage.write(f"videos/{uuid.uuid4()}/orphan.mp4", one(b"orphan"))
    s3 = await s3_storage.client()
    await s3.create_multipart_upload(
        Bucket=s3_storage.bucket, Key=s3_storage.object_key("videos/killed.mp4")
    )
    now = datetime.now(UTC)
    lines: list[str] = []
    # Within the grace period everything stays: an ingest may be in flight.
    young = await collect_garbage(app.state.database, s3_storage, now=now, report=lines.append)
    assert (young.removed, young.aborted_uploads) == (0, 0)
    later = now + timedelta(days=2)
    dry = await collect_garbage(
        app.state.database, s3_storage, now=later, dry_run=True, report=lines.append
    )
    assert (dry.removed, dry.aborted_uploads) == (1, 1)
    assert len([item async for item in s3_storage.objects()]) == 2
    done = await collect_garbage(app.state.database, s3_storage, now=later, report=lines.append)
    assert (done.removed, done.aborted_uploads, done.kept) == (1, 1, 1)
    assert [item.key async for item in s3_storage.objects()] == [rendition.storage_key]
    assert [upload async for upload in s3_storage.pending_uploads()] == []
    assert any(line.startswith("removing videos/") for line in lines)


async def test_thumbnails_come_from_the_store(
    app: FastAPI,
    client: httpx.AsyncClient,
    catalogue: Catalogue,
    s3_storage: S3Storage,
    other_client: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    clip = await catalogue.ingest_bytes(CONTENT)
    key = f"videos/{clip.video_id}/thumbnail.jpg"

    async def one(data: bytes) -> AsyncIterator[bytes]:
        yield data

    await s3_storage.write(key, one(b"\xff\xd8jpeg"), content_type="image/jpeg")
    async with app.state.database.sessionmaker() as session:
        video = await session.get(Video, clip.video_id)
        assert video is not None
        video.thumbnail_key = key
        await session.commit()
    path = f"/v1/media/videos/{clip.video_id}/thumbnail.jpg"
    answer = await client.get(path)
    assert (answer.status_code, answer.content) == (200, b"\xff\xd8jpeg")
    async with other_client(s3_endpoint_url=f"http://127.0.0.1:{free_port()}") as cut_off:
        assert_problem(await cut_off.get(path), 503, "file_unavailable")
    await s3_storage.delete(key)
    async with other_client() as fresh:
        assert_problem(await fresh.get(path), 404, "not_found")
