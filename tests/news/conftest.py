"""News fixtures: a migrated database per backend, the app over HTTP, editor tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.common.clock import FrozenClock
from services.common.database import Database
from services.common.migrations import upgrade_to_head
from services.news.app import create_app
from services.news.commands import MIGRATIONS_DIR
from services.news.config import NewsSettings
from services.news.models import Base
from tests.conftest import DatabaseFarm, TokenFactory

BASE_URL = "https://news.example.test"


async def migrate_news(database: Database) -> None:
    await upgrade_to_head(database, MIGRATIONS_DIR)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 5, 4, 9, 0, tzinfo=UTC))


@pytest.fixture
async def settings(backend: str, database_farm: DatabaseFarm, tmp_path: Path) -> NewsSettings:
    if backend == "sqlite":
        url = await database_farm.sqlite_url("news", migrate_news, tmp_path / "news.sqlite3")
    else:
        url = await database_farm.postgres_url("news", migrate_news, Base.metadata)
    return NewsSettings(
        database_url=url,
        NATOMEDIA_DATA_DIR=tmp_path,
        PUBLIC_BASE_URL=BASE_URL,
        NATOMEDIA_ENV="test",
    )


@pytest.fixture
async def app(
    settings: NewsSettings, clock: FrozenClock, tokens: TokenFactory
) -> AsyncIterator[FastAPI]:
    app = create_app(settings, clock=clock, token_verifier=tokens.verifier())
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@dataclass
class Editor:
    """Writes articles through the editor API."""

    http: httpx.AsyncClient
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def create(self, **fields: Any) -> dict[str, Any]:
        body = {
            "title": "Allies meet in Brussels",
            "summary": "Ministers met to discuss the Alliance's agenda.",
            "body": "<p>Ministers met.</p>",
            **fields,
        }
        for name, value in body.items():
            if isinstance(value, datetime):
                body[name] = value.isoformat()
        response = await self.http.post("/v1/news/articles", json=body, headers=self.headers)
        assert response.status_code == 201, response.text
        article: dict[str, Any] = response.json()
        return article


@pytest.fixture
def editor(client: httpx.AsyncClient, tokens: TokenFactory) -> Editor:
    return Editor(client, tokens.account(roles=("editor",)))
