"""The three service apps built the way production builds them, for attack, fault and fuzz tests.

Each service's `create_app` and `commands.migrate`/`seed` are looked up by name; a service that
fails to import fails the tests that need it (a broken import must never read as a skip).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from services.gateway.mail_sink import MailSink

BASE_URL = "http://testserver"
STRONG_PASSWORD = "Correct-Horse-42-Battery"


def service_module(name: str, leaf: str) -> Any:
    return importlib.import_module(f"services.{name}.{leaf}")


def settings_for(name: str, data_dir: Path, **fields: Any) -> Any:
    config = service_module(name, "config")
    # httpx's ASGI transport is the peer 127.0.0.1: the tests play the gateway (`from_address`).
    fields.setdefault("NATOMEDIA_TRUSTED_PROXIES", ["127.0.0.1"])
    cls = getattr(config, f"{name.capitalize()}Settings")
    aliased = {
        key: fields.pop(key)
        for key in list(fields)
        if key.isupper()  # shared names the settings read under their contract spelling
    }
    return cls(NATOMEDIA_DATA_DIR=data_dir, **aliased, **fields)


def auth_settings(data_dir: Path, mail_sink: MailSink | None = None, **fields: Any) -> Any:
    if mail_sink is not None:
        fields.setdefault("SMTP_HOST", mail_sink.host)
        fields.setdefault("SMTP_PORT", mail_sink.port)
    else:
        fields.setdefault("AUTH_MAIL_SENDER", False)
    fields.setdefault("mail_poll_seconds", 0.05)
    fields.setdefault("mail_retry_base_seconds", 0.1)
    fields.setdefault("mail_retry_max_seconds", 0.5)
    return settings_for("auth", data_dir, **fields)


async def prepare(name: str, settings: Any, *, seed: bool = False) -> None:
    commands = service_module(name, "commands")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await commands.migrate(settings)
    if seed:
        await commands.seed(settings)


def create_app(name: str, settings: Any, **kwargs: Any) -> FastAPI:
    app: FastAPI = service_module(name, "app").create_app(settings, **kwargs)
    return app


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running (mail sender and all), behind an httpx client."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield client


def from_address(address: str) -> dict[str, str]:
    """Headers that make the app see `address` as the client (the test peer is a trusted proxy)."""
    return {"X-Forwarded-For": address}


async def register(client: httpx.AsyncClient, email: str, **headers: str) -> httpx.Response:
    return await client.post(
        "/v1/auth/register",
        json={"email": email, "password": STRONG_PASSWORD},
        headers=headers or None,
    )


async def verified_account(
    client: httpx.AsyncClient, mail_sink: MailSink, email: str
) -> dict[str, Any]:
    """Register, read the code from the real SMTP server, verify: the token pair."""
    response = await register(client, email)
    assert response.status_code == 202, response.text
    (mail,) = await mail_sink.wait_for(email, 1)
    verified = await client.post("/v1/auth/verify", json={"email": email, "code": mail.code})
    assert verified.status_code == 200, verified.text
    pair: dict[str, Any] = verified.json()
    return pair


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert isinstance(body.get("code"), str)
    if code is not None:
        assert body["code"] == code, body


async def database_url(name: str, backend: str, database_farm: Any, tmp_path: Path) -> str:
    """A migrated, empty database for `name` on `backend` (the shared test farm)."""
    from services.common.database import Database
    from services.common.migrations import upgrade_to_head

    migrations = Path(service_module(name, "app").__file__).parent / "migrations"

    async def migrate(database: Database) -> None:
        await upgrade_to_head(database, migrations)

    if backend == "sqlite":
        url: str = await database_farm.sqlite_url(name, migrate, tmp_path / f"{name}.sqlite3")
        return url
    metadata = service_module(name, "models").Base.metadata
    url = await database_farm.postgres_url(name, migrate, metadata)
    return url
