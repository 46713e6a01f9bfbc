from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.gateway.mail_sink import MailSink
from tests.conftest import TokenFactory
from tests.security.apps import auth_settings, create_app, prepare, serving, settings_for


@pytest.fixture
async def auth(tmp_path: Path, mail_sink: MailSink) -> AsyncIterator[httpx.AsyncClient]:
    settings = auth_settings(tmp_path / "auth", mail_sink)
    await prepare("auth", settings)
    async with serving(create_app("auth", settings)) as client:
        yield client


async def _seeded(name: str, tmp_path: Path, tokens: TokenFactory, **fields: Any) -> Any:
    settings = settings_for(name, tmp_path / name, **fields)
    await prepare(name, settings, seed=True)
    return create_app(name, settings, token_verifier=tokens.verifier())


@pytest.fixture
async def media(tmp_path: Path, tokens: TokenFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(await _seeded("media", tmp_path, tokens)) as client:
        yield client


@pytest.fixture
async def news(tmp_path: Path, tokens: TokenFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(await _seeded("news", tmp_path, tokens)) as client:
        yield client
