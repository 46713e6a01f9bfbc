"""Auth app on a migrated database (SQLite or PostgreSQL), a real SMTP sink, frozen time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.auth.app import create_app
from services.auth.commands import migrate_database
from services.auth.config import AuthSettings
from services.auth.models import Base
from services.common.clock import FrozenClock
from services.common.ratelimit import RateLimiter
from services.gateway.mail_sink import MailSink

SettingsFactory = Callable[..., Awaitable[AuthSettings]]


@pytest.fixture
async def database_url(backend: str, database_farm: Any, tmp_path: Path) -> str:
    if backend == "sqlite":
        url: str = await database_farm.sqlite_url("auth", migrate_database, tmp_path / "auth.db")
    else:
        url = await database_farm.postgres_url("auth", migrate_database, Base.metadata)
    return url


def make_settings(
    database_url: str, data_dir: Path, smtp_port: int, **overrides: Any
) -> AuthSettings:
    values: dict[str, Any] = {
        "NATOMEDIA_ENV": "test",
        "NATOMEDIA_DATA_DIR": data_dir,
        "REDIS_URL": None,
        # httpx's ASGI transport is the peer 127.0.0.1: the tests play the gateway.
        "NATOMEDIA_TRUSTED_PROXIES": ["127.0.0.1"],
        "database_url": database_url,
        "code_hash_key": "test-code-key",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": smtp_port,
        "SMTP_TLS": "none",
        "SMTP_USERNAME": None,
        "AUTH_MAIL_SENDER": True,
        "mail_poll_seconds": 0.05,
        "mail_retry_base_seconds": 0.05,
        "mail_retry_max_seconds": 0.2,
        # Cheap hashes keep the suite fast; the OWASP defaults have their own test.
        "argon2_memory_cost": 1024,
        "argon2_rounds": 1,
        # Most tests send several mails to one address; the real limits have their own tests.
        "mail_per_address_limits": ["1000/minute"],
    }
    values.update(overrides)
    return AuthSettings(**values)


@pytest.fixture
def settings(database_url: str, tmp_path: Path, mail_sink: MailSink) -> AuthSettings:
    return make_settings(database_url, tmp_path, mail_sink.port)


@pytest.fixture
def limiter() -> RateLimiter:
    return RateLimiter(None)


async def _running(
    app: FastAPI,
) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.fixture
async def app(settings: AuthSettings, clock: FrozenClock, limiter: RateLimiter) -> FastAPI:
    return create_app(settings, clock=clock, rate_limiter=limiter)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async for http in _running(app):
        yield http


@pytest.fixture
def start_app(
    database_url: str, tmp_path: Path, clock: FrozenClock, mail_sink: MailSink
) -> Callable[..., Any]:
    """An app with settings overridden, as an async context manager yielding its client."""
    import contextlib

    @contextlib.asynccontextmanager
    async def start(
        *, smtp_port: int | None = None, limiter: RateLimiter | None = None, **overrides: Any
    ) -> AsyncIterator[httpx.AsyncClient]:
        settings = make_settings(database_url, tmp_path, smtp_port or mail_sink.port, **overrides)
        app = create_app(settings, clock=clock, rate_limiter=limiter or RateLimiter(None))
        async for http in _running(app):
            yield http

    return start
