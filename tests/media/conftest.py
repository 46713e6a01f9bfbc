"""The media app on each backend, with its storage under tmp_path, and catalogue helpers."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select

from services.common.clock import FrozenClock
from services.common.database import Database
from services.common.public_cache import PublicCache
from services.common.ratelimit import RateLimiter
from services.media.app import create_app
from services.media.commands import DEMO_DIR, migrate_database
from services.media.config import MediaSettings
from services.media.feed import take_position
from services.media.ingest import Ingested, VideoMetadata, ingest_file
from services.media.models import Base, Rendition, Video, VideoTag
from services.media.object_storage import S3Storage
from services.media.search import search_for
from services.media.storage import LocalStorage
from tests.conftest import DatabaseFarm, TokenFactory, unavailable
from tests.s3_support import S3Endpoint

PUBLIC_BASE_URL = "https://media.example.test"
DEMO_FILE = DEMO_DIR / "nato-russia-council-oslo.mp4"


@pytest.fixture
def ffprobe() -> None:
    """Skips a test that needs ffprobe/ffmpeg where they are missing (fails under
    NATOMEDIA_REQUIRE=ffprobe)."""
    if shutil.which("ffprobe") is None or shutil.which("ffmpeg") is None:
        unavailable("ffprobe", "ffprobe/ffmpeg not installed")


@pytest.fixture
async def database_url(backend: str, database_farm: DatabaseFarm, tmp_path: Path) -> str:
    if backend == "sqlite":
        return await database_farm.sqlite_url("media", migrate_database, tmp_path / "media.sqlite3")
    return await database_farm.postgres_url("media", migrate_database, Base.metadata)


@pytest.fixture
def settings_factory(database_url: str, tmp_path: Path) -> Callable[..., MediaSettings]:
    def build(**overrides: Any) -> MediaSettings:
        values: dict[str, Any] = {
            "NATOMEDIA_ENV": "test",
            "NATOMEDIA_DATA_DIR": tmp_path,
            "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "database_url": database_url,
            "signing_secret": SecretStr("test-signing-secret-0123456789abcdef"),
            **overrides,
        }
        return MediaSettings(**values)

    return build


@pytest.fixture
def settings(settings_factory: Callable[..., MediaSettings]) -> MediaSettings:
    return settings_factory()


@pytest.fixture
async def app(
    settings: MediaSettings, clock: FrozenClock, tokens: TokenFactory
) -> AsyncIterator[FastAPI]:
    app = create_app(
        settings, clock=clock, token_verifier=tokens.verifier(), rate_limiter=RateLimiter()
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


class Catalogue:
    """Puts videos into the app's database and storage the way ingest does, or faster."""

    def __init__(self, app: FastAPI, tmp_path: Path) -> None:
        self.app = app
        self.database: Database = app.state.database
        self.storage: LocalStorage = app.state.storage
        self.tmp_path = tmp_path

    def _changed(self) -> None:
        # These writes bypass the app, like `natomedia media ingest` in another process, which
        # readers see once the public cache's second is up; tests need not wait for it.
        cache: PublicCache | None = self.app.state.public_cache
        if cache is not None:
            cache.clear()

    async def ingest(
        self,
        source: Path = DEMO_FILE,
        *,
        title: str = "Foreign Ministers meet in Oslo",
        tags: Sequence[str] = ("oslo",),
        video_id: uuid.UUID | None = None,
        label: str | None = None,
        probe: bool = True,
        **metadata: Any,
    ) -> Ingested:
        async with self.database.sessionmaker() as session:
            result = await ingest_file(
                session,
                self.storage,
                source,
                VideoMetadata(title=title, tags=tags, **metadata),
                video_id=video_id,
                label=label,
                # ffprobe costs a few hundred ms; byte blobs have nothing for it to find.
                ffprobe="ffprobe" if probe else "no-ffprobe-for-this-test",
            )
            await session.commit()
        self._changed()
        return result

    async def ingest_bytes(self, content: bytes, name: str = "clip.mp4", **kwargs: Any) -> Ingested:
        path = self.tmp_path / f"{uuid.uuid4().hex}-{name}"
        path.write_bytes(content)
        return await self.ingest(path, probe=False, **kwargs)

    async def add_video(
        self,
        title: str = "A video",
        *,
        description: str = "",
        tags: Sequence[str] = (),
        published_at: datetime | None = None,
        updated_at: datetime | None = None,
    ) -> uuid.UUID:
        """A catalogue row without files: cheap enough for pagination tests."""
        now = datetime.now(UTC)
        video = Video(
            id=uuid.uuid4(),
            title=title,
            description=description,
            published_at=published_at or now,
            created_at=now,
            updated_at=updated_at or now,
            related_article_slugs=[],
            tags=[VideoTag(tag=tag) for tag in tags],
        )
        async with self.database.sessionmaker() as session:
            video.feed_position = await take_position(session)
            session.add(video)
            await session.flush()
            await search_for(session).index(session, video, list(tags))
            await session.commit()
        self._changed()
        return video.id

    async def touch(self, video_id: uuid.UUID, when: datetime, **changes: Any) -> None:
        async with self.database.sessionmaker() as session:
            video = await session.get(Video, video_id)
            assert video is not None
            # A change takes the next feed position, as every writer of the service does.
            position = await take_position(session)
            for name, value in {**changes, "updated_at": when}.items():
                setattr(video, name, value)
            video.version += 1
            video.feed_position = position
            await session.flush()
            tags = (
                await session.scalars(select(VideoTag.tag).where(VideoTag.video_id == video_id))
            ).all()
            await search_for(session).index(session, video, list(tags))
            await session.commit()
        self._changed()

    async def rendition(self, rendition_id: uuid.UUID) -> Rendition:
        async with self.database.sessionmaker() as session:
            found = await session.get(Rendition, rendition_id)
        assert found is not None
        return found


@pytest.fixture
def catalogue(app: FastAPI, tmp_path: Path) -> Catalogue:
    return Catalogue(app, tmp_path)


def at(days: float, base: datetime = datetime(2020, 1, 1, tzinfo=UTC)) -> datetime:
    return base + timedelta(days=days)


@pytest.fixture
def s3_env(s3_endpoint: S3Endpoint, monkeypatch: pytest.MonkeyPatch) -> S3Endpoint:
    # The standard AWS variables, as production passes them.
    for name, value in s3_endpoint.env().items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    return s3_endpoint


@pytest.fixture
def object_settings(
    settings_factory: Callable[..., MediaSettings], s3_storage: S3Storage, s3_env: S3Endpoint
) -> Callable[..., MediaSettings]:
    def build(**overrides: Any) -> MediaSettings:
        values: dict[str, Any] = {
            "storage_url": f"s3://{s3_storage.bucket}/{s3_storage.prefix}",
            "s3_endpoint_url": s3_env.url,
            **overrides,
        }
        return settings_factory(**values)

    return build
