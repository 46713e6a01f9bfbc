"""The signing-key rotation of deploy/README.md, configured through the environment as documented.

Each phase restarts `natomedia dev`'s gateway (auth, media and news in one process, media and news
fetching the JWKS from auth) on the same data dir with the next key: tokens signed by any key still
listed in `AUTH_PREVIOUS_PUBLIC_KEY_FILES` keep working at every service, new tokens carry the new
key's `kid`, and a key dropped from the list stops being accepted.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from services.common.jwt import generate_private_key_pem, public_jwk_from_pem
from services.gateway.dev import build_gateway, prepare
from services.gateway.mail_sink import MailSink

EMAIL = "rotation@example.org"
PASSWORD = "Correct-Horse-42-Battery"
MISSING = "00000000-0000-0000-0000-000000000000"
DOWNLOAD_URL = f"/v1/media/videos/{MISSING}/renditions/{MISSING}/download-url"


def _key_files(directory: Path, name: str) -> tuple[Path, Path, str]:
    """A private PEM, its public PEM (what a rotation lists), and its `kid`."""
    private_pem = generate_private_key_pem()
    public_pem = (
        serialization.load_pem_private_key(private_pem, password=None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    private, public = directory / f"{name}.pem", directory / f"{name}.pub.pem"
    private.write_bytes(private_pem)
    public.write_bytes(public_pem)
    return private, public, public_jwk_from_pem(public_pem)["kid"]


def _kid(token: str) -> str:
    header = token.split(".")[0]
    kid: str = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    return kid


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mail_sink: MailSink) -> None:
    for name in ("REDIS_URL", "JWKS_URL", "AUTH_SIGNING_KEY", "AUTH_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MEDIA_DATABASE_URL", raising=False)
    monkeypatch.delenv("NEWS_DATABASE_URL", raising=False)
    monkeypatch.setenv("NATOMEDIA_ENV", "development")
    monkeypatch.setenv("NATOMEDIA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PUBLIC_BASE_URL", "http://testserver")
    monkeypatch.setenv("SMTP_HOST", mail_sink.host)
    monkeypatch.setenv("SMTP_PORT", str(mail_sink.port))
    monkeypatch.setenv("SMTP_TLS", "none")
    monkeypatch.setenv("AUTH_ARGON2_MEMORY_COST", "1024")
    monkeypatch.setenv("AUTH_ARGON2_ROUNDS", "1")
    monkeypatch.setenv("AUTH_MAIL_POLL_SECONDS", "0.05")


@asynccontextmanager
async def dev_gateway(
    monkeypatch: pytest.MonkeyPatch, signing_key: Path, previous: str | None
) -> AsyncIterator[httpx.AsyncClient]:
    """`natomedia dev` as it starts from the environment (settings parsed from it, migrations)."""
    monkeypatch.setenv("AUTH_SIGNING_KEY_FILE", str(signing_key))
    if previous is None:
        monkeypatch.delenv("AUTH_PREVIOUS_PUBLIC_KEY_FILES", raising=False)
    else:
        monkeypatch.setenv("AUTH_PREVIOUS_PUBLIC_KEY_FILES", previous)
    gateway = build_gateway(await prepare(seed=False))
    async with AsyncExitStack() as stack:
        for app in gateway.apps:
            await stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def _accepted_everywhere(client: httpx.AsyncClient, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    me = await client.get("/v1/auth/me", headers=headers)
    assert me.status_code == 200, me.text
    # Past authentication: the token was good, the video is not there.
    media = await client.post(DOWNLOAD_URL, headers=headers)
    assert media.status_code == 404, media.text
    # Past authentication: the token was good, it lacks the editor role.
    news = await client.post("/v1/news/articles", headers=headers, json={})
    assert news.status_code == 403, news.text
    assert news.json()["code"] == "insufficient_scope"


async def _refused_everywhere(client: httpx.AsyncClient, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    for response in (
        await client.get("/v1/auth/me", headers=headers),
        await client.post(DOWNLOAD_URL, headers=headers),
        await client.post("/v1/news/articles", headers=headers, json={}),
    ):
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "invalid_token"


async def _login(client: httpx.AsyncClient) -> str:
    response = await client.post("/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def _kids(client: httpx.AsyncClient) -> list[str]:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return [key["kid"] for key in response.json()["keys"]]


@pytest.mark.usefixtures("environment")
async def test_the_documented_rotation_keeps_every_listed_key_working(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mail_sink: MailSink
) -> None:
    older, older_public, older_kid = _key_files(tmp_path, "older")
    old, old_public, old_kid = _key_files(tmp_path, "old")
    new, new_public, new_kid = _key_files(tmp_path, "new")

    async with dev_gateway(monkeypatch, older, None) as client:
        registered = await client.post(
            "/v1/auth/register", json={"email": EMAIL, "password": PASSWORD}
        )
        assert registered.status_code == 202, registered.text
        (mail,) = await mail_sink.wait_for(EMAIL, 1)
        verified = await client.post("/v1/auth/verify", json={"email": EMAIL, "code": mail.code})
        assert verified.status_code == 200, verified.text
        by_older = verified.json()["access_token"]
        assert _kid(by_older) == older_kid

    # One previous key: a single path, as the first rotation has it.
    async with dev_gateway(monkeypatch, old, str(older_public)) as client:
        assert await _kids(client) == [old_kid, older_kid]
        await _accepted_everywhere(client, by_older)
        by_old = await _login(client)
        assert _kid(by_old) == old_kid

    # The next key published ahead of signing with it (deploy/README.md, step 1).
    async with dev_gateway(monkeypatch, old, f"{older_public},{new_public}") as client:
        assert await _kids(client) == [old_kid, older_kid, new_kid]
        assert _kid(await _login(client)) == old_kid
        await _accepted_everywhere(client, by_old)

    # Two previous keys, comma-separated (with the spaces people type); the new key, left in
    # the list from step 1, is published once.
    async with dev_gateway(
        monkeypatch, new, f"{old_public}, {older_public}, {new_public}"
    ) as client:
        assert await _kids(client) == [new_kid, old_kid, older_kid]
        await _accepted_everywhere(client, by_older)
        await _accepted_everywhere(client, by_old)
        by_new = await _login(client)
        assert _kid(by_new) == new_kid
        await _accepted_everywhere(client, by_new)

    # The older key retired: what it signed is refused everywhere, the rest still works.
    async with dev_gateway(monkeypatch, new, str(old_public)) as client:
        assert await _kids(client) == [new_kid, old_kid]
        await _refused_everywhere(client, by_older)
        await _accepted_everywhere(client, by_old)
