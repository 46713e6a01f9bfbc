"""One production-shaped stack for the end-to-end tests: every service its own process behind real
nginx, fresh PostgreSQL databases, Redis (db 14), a real SMTP server, NATOMEDIA_ENV=production
with explicit keys. Started once per session with `services.gateway.stack.Stack`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from services.common.jwt import generate_private_key_pem
from services.gateway.mail_sink import MailSink, ReceivedMail
from services.gateway.stack import Stack, StackError, find_nginx, free_port
from tests.conftest import POSTGRES_URL, REDIS_URL, unavailable

CORS_ORIGIN = "https://app.example.org"
PASSWORD = "Harbour-Lights-2024!"
# Variables of the developer's shell that would leak into the stack's services.
OWN_PREFIXES = (
    "AUTH_",
    "MEDIA_",
    "NEWS_",
    "NATOMEDIA_",
    "SMTP_",
    "MAIL_",
    "REDIS_URL",
    "JWKS_URL",
    "JWT_",
    "CORS_ORIGINS",
    "PUBLIC_BASE_URL",
)
RESEND_LIMIT = 6


@dataclass
class E2E:
    stack: Stack
    mail: MailSink
    database_urls: dict[str, str]
    redis_url: str

    @property
    def url(self) -> str:
        return self.stack.url

    def client(self) -> httpx.AsyncClient:
        """A client of the gateway that checks every response carries an X-Request-ID."""

        async def has_request_id(response: httpx.Response) -> None:
            assert response.headers.get("x-request-id"), (
                response.request.url,
                response.status_code,
            )

        return httpx.AsyncClient(
            base_url=self.url,
            trust_env=False,
            timeout=30,
            event_hooks={"response": [has_request_id]},
        )

    async def wait_for_mail(self, address: str, count: int = 1) -> list[ReceivedMail]:
        return await self.mail.wait_for(address, count, timeout=30)


async def _create_databases(run_id: str) -> dict[str, str]:
    try:
        admin = await asyncpg.connect(POSTGRES_URL, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        unavailable("postgres", str(exc) or type(exc).__name__)
    urls = {}
    base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        for name in ("auth", "media", "news"):
            database = f"natomedia_e2e_{name}_{run_id}"
            await admin.execute(f'CREATE DATABASE "{database}"')
            urls[name] = f"{base}/{database}"
    finally:
        await admin.close()
    return urls


async def _drop_databases(urls: dict[str, str]) -> None:
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        for url in urls.values():
            await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await admin.close()


async def _redis_db_14() -> str:
    import redis.asyncio as redis

    url = REDIS_URL.rsplit("/", 1)[0] + "/14"
    client = redis.from_url(url)
    try:
        await asyncio.wait_for(client.ping(), timeout=3)
        await client.flushdb()
    except (OSError, redis.RedisError, TimeoutError) as exc:
        unavailable("redis", str(exc))
    finally:
        await client.aclose()
    return url


def stack_environment(
    root: Path, database_urls: dict[str, str], redis_url: str, smtp_port: int
) -> dict[str, str]:
    key_file = root / "keys" / "auth-signing-key.pem"
    key_file.parent.mkdir(parents=True)
    key_file.write_bytes(generate_private_key_pem())
    env = {key: value for key, value in os.environ.items() if not key.startswith(OWN_PREFIXES)}
    env.update(
        {
            # Production settings: explicit keys and secrets, no development fallbacks.
            "NATOMEDIA_ENV": "production",
            "NATOMEDIA_DATA_DIR": str(root / "data"),
            "AUTH_DATABASE_URL": database_urls["auth"],
            "MEDIA_DATABASE_URL": database_urls["media"],
            "NEWS_DATABASE_URL": database_urls["news"],
            "REDIS_URL": redis_url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_port),
            "AUTH_SIGNING_KEY_FILE": str(key_file),
            "AUTH_CODE_HASH_KEY": secrets.token_urlsafe(32),
            "MEDIA_SIGNING_SECRET": secrets.token_urlsafe(32),
            "CORS_ORIGINS": CORS_ORIGIN,
            "AUTH_MAIL_POLL_SECONDS": "0.2",
            # Every test calls from 127.0.0.1: generous per-address limits, except the one
            # tests/e2e/test_replicas.py drives over its edge.
            "AUTH_REGISTER_RATE_LIMIT": "200/minute",
            "AUTH_VERIFY_RATE_LIMIT": "200/minute",
            "AUTH_LOGIN_RATE_LIMIT": "200/minute",
            "AUTH_PASSWORD_RESET_RATE_LIMIT": "200/minute",
            "AUTH_RESEND_RATE_LIMIT": f"{RESEND_LIMIT}/minute",
        }
    )
    return env


@pytest.fixture(scope="session")
async def e2e(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[E2E]:
    if find_nginx() is None:
        unavailable("nginx", "no nginx binary (apt-get install nginx-light)")
    redis_url = await _redis_db_14()
    database_urls = await _create_databases(uuid.uuid4().hex[:8])
    root = tmp_path_factory.mktemp("e2e")
    mail = MailSink("127.0.0.1", free_port(), root / "mail")
    mail.start()
    stack = Stack(
        port=free_port(),
        auth_replicas=2,
        run_dir=root / "run",
        env=stack_environment(root, database_urls, redis_url, mail.port),
        seed=True,
    )
    try:
        try:
            await asyncio.to_thread(stack.start)
        except StackError as exc:
            pytest.fail(f"the stack did not start: {exc}")
        yield E2E(stack, mail, database_urls, redis_url)
    finally:
        await asyncio.to_thread(stack.stop)
        mail.stop()
        await _drop_databases(database_urls)


@pytest.fixture
async def gateway(e2e: E2E) -> AsyncIterator[httpx.AsyncClient]:
    async with e2e.client() as client:
        yield client


def new_email() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}@example.org"


async def register_and_verify(
    client: httpx.AsyncClient, e2e: E2E, email: str | None = None
) -> tuple[str, dict[str, object]]:
    """A verified account made through the public API; returns its email and token pair."""
    email = email or new_email()
    response = await client.post("/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 202, response.text
    (mail,) = await e2e.wait_for_mail(email)
    assert mail.code is not None, mail.text
    verified = await client.post("/v1/auth/verify", json={"email": email, "code": mail.code})
    assert verified.status_code == 200, verified.text
    return email, verified.json()


def bearer(tokens: dict[str, object]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def iter_lines(path: Path) -> Iterator[str]:
    with path.open() as handle:
        yield from handle
