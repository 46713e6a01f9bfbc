"""A Python client generated from the committed document by `openapi-python-client`, exercised
against `natomedia dev`: register, verify with the mailed code, log in, list videos and articles,
then the account page: download history, language, sessions, export, email and password change,
log out everywhere, erasure.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.clients.conftest import ROOT, DevServer

PACKAGE = "natomedia_client"
PASSWORD = "Quiet-Harbour-2025!"
CONFIG = """\
post_hooks: []
content_type_overrides:
  video/mp4: application/octet-stream
  image/jpeg: application/octet-stream
"""


@pytest.fixture(scope="module")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    directory = tmp_path_factory.mktemp("python-client")
    (directory / "config.yaml").write_text(CONFIG)
    generator = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))
    assert generator is not None, "pip install -e '.[dev]' installs openapi-python-client"
    result = subprocess.run(
        [
            generator,
            "generate",
            *("--path", str(ROOT / "openapi.json")),
            *("--config", str(directory / "config.yaml")),
            *("--meta", "none"),
            *("--output-path", str(directory / PACKAGE)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Every operation made it into the client: the generator skips what it cannot type.
    assert "WARNING" not in result.stdout, result.stdout
    sys.path.insert(0, str(directory))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(directory))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _load(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_operations_are_named_functions(client_package: ModuleType) -> None:
    for module in (
        "api.auth.register_account",
        "api.auth.verify_email",
        "api.auth.refresh_token",
        "api.media.create_download_url",
        "api.news.list_articles",
        "api.health.get_news_readiness",
    ):
        assert callable(_load(module).asyncio_detailed)
    codes = _load("models").LoginResponse401Code
    assert [code.value for code in codes] == ["invalid_credentials"]


async def test_generated_client_against_natomedia_dev(
    client_package: ModuleType, dev_server: DevServer
) -> None:
    email = f"py-{uuid.uuid4().hex[:10]}@example.org"
    anonymous = client_package.Client(base_url=dev_server.url, raise_on_unexpected_status=True)
    async with anonymous:
        token = await _sign_up(anonymous, dev_server, email)
        signed_in = client_package.AuthenticatedClient(
            base_url=dev_server.url, token=token, raise_on_unexpected_status=True
        )
        async with signed_in:
            await _browse(anonymous, signed_in, dev_server, email)
            await _look_after(anonymous, signed_in, dev_server, email)


async def _sign_up(anonymous: Any, dev_server: DevServer, email: str) -> str:
    models = _load("models")
    password = PASSWORD
    registered = await _load("api.auth.register_account").asyncio_detailed(
        client=anonymous, body=models.RegisterRequest(email=email, password=password)
    )
    assert registered.status_code == 202
    assert isinstance(registered.parsed, models.RegisterResponse)
    assert registered.parsed.code_expires_in == 1800

    code = await dev_server.code_for(email)
    verified = await _load("api.auth.verify_email").asyncio(
        client=anonymous, body=models.EmailCodeRequest(email=email, code=code)
    )
    assert isinstance(verified, models.TokenPair)

    login = _load("api.auth.login")
    refused = await login.asyncio(
        client=anonymous, body=models.LoginRequest(email=email, password=password + "x")
    )
    assert isinstance(refused, models.LoginResponse401)
    assert refused.code is models.LoginResponse401Code.INVALID_CREDENTIALS

    tokens = await login.asyncio(
        client=anonymous, body=models.LoginRequest(email=email, password=password)
    )
    assert isinstance(tokens, models.TokenPair)
    refreshed = await _load("api.auth.refresh_token").asyncio(
        client=anonymous, body=models.RefreshRequest(refresh_token=tokens.refresh_token)
    )
    assert isinstance(refreshed, models.TokenPair)
    assert refreshed.refresh_token != tokens.refresh_token
    return str(refreshed.access_token)


async def _browse(anonymous: Any, signed_in: Any, dev_server: DevServer, email: str) -> None:
    models = _load("models")
    me = await _load("api.auth.get_me").asyncio(client=signed_in)
    assert (me.email, me.email_verified) == (email, True)

    videos = await _load("api.media.list_videos").asyncio(client=anonymous, limit=5)
    assert isinstance(videos, models.VideoPage)
    assert videos.items
    video = await _load("api.media.get_video").asyncio(
        client=anonymous, video_id=videos.items[0].id
    )
    grant = await _load("api.media.create_download_url").asyncio(
        client=signed_in, video_id=video.id, rendition_id=video.renditions[0].id
    )
    assert isinstance(grant, models.DownloadUrl)
    assert grant.url.startswith(dev_server.url + "/v1/media/")

    articles = await _load("api.news.list_articles").asyncio(client=signed_in, limit=3)
    assert isinstance(articles, models.ArticlePage)
    assert articles.items
    missing = await _load("api.news.get_article").asyncio(client=signed_in, slug="no-such-article")
    assert isinstance(missing, models.GetArticleResponse404)
    assert missing.code.value == "not_found"


async def _look_after(anonymous: Any, signed_in: Any, dev_server: DevServer, email: str) -> None:
    models = _load("models")
    downloads = await _load("api.media.list_my_downloads").asyncio(client=signed_in, limit=5)
    assert isinstance(downloads, models.DownloadGrantPage)
    assert len(downloads.items) == 1
    assert downloads.items[0].rendition_label

    updated = await _load("api.auth.update_account").asyncio(
        client=signed_in, body=models.AccountUpdate(language=models.AccountUpdateLanguageType0.FR)
    )
    assert isinstance(updated, models.Account)
    assert updated.language.value == "fr"

    login = _load("api.auth.login")
    other = await login.asyncio(
        client=anonymous, body=models.LoginRequest(email=email, password=PASSWORD)
    )
    sessions = await _load("api.auth.list_sessions").asyncio(client=signed_in)
    assert isinstance(sessions, models.SessionList)
    # The verification's session, and the login just made (the newest).
    elsewhere = sorted(
        (item for item in sessions.items if not item.current), key=lambda item: item.created_at
    )
    assert len(elsewhere) == 2
    ended = await _load("api.auth.delete_session").asyncio_detailed(
        client=signed_in, session_id=elsewhere[-1].id
    )
    assert ended.status_code == 204
    refused = await _load("api.auth.refresh_token").asyncio(
        client=anonymous, body=models.RefreshRequest(refresh_token=other.refresh_token)
    )
    assert refused.code.value == "invalid_token"

    exported = await _load("api.auth.export_account").asyncio(client=signed_in)
    assert isinstance(exported, models.AccountExport)
    assert exported.account["email"] == email

    new_email = f"new-{email}"
    asked = await _load("api.auth.change_email").asyncio(
        client=signed_in, body=models.EmailChangeRequest(new_email=new_email, password=PASSWORD)
    )
    assert isinstance(asked, models.CodeRequested)
    moved = await _load("api.auth.verify_email_change").asyncio(
        client=signed_in,
        body=models.EmailChangeCode(code=await dev_server.code_for(new_email)),
    )
    assert isinstance(moved, models.AccountWithTokens)
    assert moved.email == new_email

    new_password = "Lantern-Quay-2031?"
    changing = models.PasswordChangeRequest(current_password=PASSWORD, new_password=new_password)
    async with _as(moved.tokens.access_token, dev_server) as session:
        changed = await _load("api.auth.change_password").asyncio(client=session, body=changing)
    assert isinstance(changed, models.TokenPair)
    async with _as(changed.access_token, dev_server) as session:
        out = await _load("api.auth.logout_all").asyncio_detailed(client=session)
    assert out.status_code == 204

    last = await login.asyncio(
        client=anonymous, body=models.LoginRequest(email=new_email, password=new_password)
    )
    async with _as(last.access_token, dev_server) as session:
        deleted = await _load("api.auth.delete_account").asyncio_detailed(
            client=session, body=models.PasswordConfirmation(password=new_password)
        )
    assert deleted.status_code == 204
    gone = await login.asyncio(
        client=anonymous, body=models.LoginRequest(email=new_email, password=new_password)
    )
    assert gone.code is models.LoginResponse401Code.INVALID_CREDENTIALS


def _as(token: str, dev_server: DevServer) -> Any:
    client_package = importlib.import_module(PACKAGE)
    return client_package.AuthenticatedClient(
        base_url=dev_server.url, token=token, raise_on_unexpected_status=True
    )
