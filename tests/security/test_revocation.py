"""Revocation reaches every service: what auth ends, media and news refuse within 5 seconds.

The services run in-process against one Redis, media as two replicas (the second restarted while
the revocation happens, so it can only learn it from the durable keys), each on the backend under
test. A stolen access token and the download URLs obtained with it stop working when the owner
resets the password; a deleted API client's token and URLs stop working too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from services.gateway.mail_sink import MailSink
from tests.conftest import DatabaseFarm
from tests.security.apps import (
    STRONG_PASSWORD,
    assert_problem,
    auth_settings,
    create_app,
    database_url,
    prepare,
    serving,
    settings_for,
    verified_account,
)

pytestmark = pytest.mark.redis

NEW_PASSWORD = "Brand-New-Secret-99"
WITHIN_SECONDS = 5.0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Services:
    """Auth, and a way to start media and news replicas, sharing databases and one Redis."""

    def __init__(self, auth: httpx.AsyncClient, media: Any, news: Any) -> None:
        self.auth = auth
        self._media_settings = media
        self._news_settings = news

    @asynccontextmanager
    async def media(self) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app("media", self._media_settings, jwks_client=self.auth)
        async with serving(app) as client:
            yield client

    @asynccontextmanager
    async def news(self) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app("news", self._news_settings, jwks_client=self.auth)
        async with serving(app) as client:
            yield client


@pytest.fixture
async def services(
    backend: str,
    database_farm: DatabaseFarm,
    tmp_path: Path,
    mail_sink: MailSink,
    redis_url: str,
) -> AsyncIterator[Services]:
    auth = auth_settings(
        tmp_path / "auth",
        mail_sink,
        REDIS_URL=redis_url,
        database_url=await database_url("auth", backend, database_farm, tmp_path),
        mail_per_address_limits=["1000/minute"],
    )
    await prepare("auth", auth)
    media = settings_for(
        "media",
        tmp_path / "media",
        REDIS_URL=redis_url,
        database_url=await database_url("media", backend, database_farm, tmp_path),
    )
    await prepare("media", media, seed=True)
    news = settings_for(
        "news",
        tmp_path / "news",
        REDIS_URL=redis_url,
        database_url=await database_url("news", backend, database_farm, tmp_path),
    )
    await prepare("news", news)
    async with serving(create_app("auth", auth)) as client:
        yield Services(client, media, news)


async def reset_password(auth: httpx.AsyncClient, sink: MailSink, email: str) -> None:
    before = len(sink.to(email))
    assert (await auth.post("/v1/auth/password-reset", json={"email": email})).status_code == 202
    (*_, mail) = await sink.wait_for(email, before + 1)
    verified = await auth.post(
        "/v1/auth/password-reset/verify", json={"email": email, "code": mail.code}
    )
    assert verified.status_code == 200, verified.text
    done = await auth.post(
        "/v1/auth/password-reset/complete",
        json={"reset_token": verified.json()["reset_token"], "new_password": NEW_PASSWORD},
    )
    assert done.status_code == 204, done.text


async def a_rendition(media: httpx.AsyncClient) -> str:
    """The download-url path of some rendition of the demo catalogue."""
    video = (await media.get("/v1/media/videos")).json()["items"][0]["id"]
    rendition = (await media.get(f"/v1/media/videos/{video}")).json()["renditions"][0]["id"]
    return f"/v1/media/videos/{video}/renditions/{rendition}/download-url"


async def download_url(media: httpx.AsyncClient, token: str, path: str) -> str:
    response = await media.post(path, headers=bearer(token))
    assert response.status_code == 200, response.text
    url = urlsplit(response.json()["url"])
    return f"{url.path}?{url.query}"


async def within(seconds: float, check: Callable[[], Awaitable[bool]]) -> bool:
    """Whether `check` comes true within `seconds` (polled; never a fixed wait)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not await check():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def refuses(media: httpx.AsyncClient, token: str, path: str, url: str) -> None:
    """Within 5 s `media` refuses the token (401) and the URL (403 `link_revoked`)."""

    async def both_refused() -> bool:
        token_answer = await media.post(path, headers=bearer(token))
        url_answer = await media.head(url)
        return token_answer.status_code == 401 and url_answer.status_code == 403

    assert await within(WITHIN_SECONDS, both_refused), "media still honours what was revoked"
    assert_problem(await media.post(path, headers=bearer(token)), 401, "invalid_token")
    assert_problem(await media.get(url), 403, "link_revoked")


async def test_after_a_reset_media_refuses_the_old_token_and_urls_even_on_a_restarted_replica(
    services: Services, mail_sink: MailSink
) -> None:
    email = "victim@example.org"
    stolen = (await verified_account(services.auth, mail_sink, email))["access_token"]
    async with services.media() as one:
        path = await a_rendition(one)
        url = await download_url(one, stolen, path)
        async with services.media() as two:
            # Both replicas honour them before the reset.
            assert (await two.head(url)).status_code == 200
            assert (await two.post(path, headers=bearer(stolen))).status_code == 200

        # Replica two is down while the owner resets the password.
        await reset_password(services.auth, mail_sink, email)
        # Auth refuses the stolen token for anything that mints credentials, at once.
        minted = await services.auth.post(
            "/v1/auth/clients", json={"name": "x"}, headers=bearer(stolen)
        )
        assert_problem(minted, 401, "invalid_token")

        async with services.media() as two:
            await refuses(two, stolen, path, url)  # from the keys: it heard no wake-up
        await refuses(one, stolen, path, url)  # from the wake-up

        # The owner, logged in again, downloads as before.
        login = await services.auth.post(
            "/v1/auth/login", json={"email": email, "password": NEW_PASSWORD}
        )
        fresh = login.json()["access_token"]
        assert (await one.get(await download_url(one, fresh, path))).status_code == 200


async def test_a_deleted_api_client_token_and_urls_are_refused_by_media(
    services: Services, mail_sink: MailSink
) -> None:
    owner = (await verified_account(services.auth, mail_sink, "partner@example.org"))[
        "access_token"
    ]
    created = await services.auth.post(
        "/v1/auth/clients", json={"name": "Newsroom ingest"}, headers=bearer(owner)
    )
    credentials = created.json()
    issued = await services.auth.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": credentials["client_id"],
            "client_secret": credentials["client_secret"],
        },
    )
    client_token = issued.json()["access_token"]
    async with services.media() as media:
        path = await a_rendition(media)
        url = await download_url(media, client_token, path)
        assert (await media.head(url)).status_code == 200
        deleted = await services.auth.delete(
            f"/v1/auth/clients/{credentials['client_id']}", headers=bearer(owner)
        )
        assert deleted.status_code == 204
        await refuses(media, client_token, path, url)
        # The owner's own token and URLs are not the client's: they still work.
        assert (await media.head(await download_url(media, owner, path))).status_code == 200


async def test_after_a_reset_news_refuses_the_old_token(
    services: Services, mail_sink: MailSink
) -> None:
    email = "reader@example.org"
    stolen = (await verified_account(services.auth, mail_sink, email))["access_token"]
    article = {"title": "Nothing", "summary": "Nothing", "body": "<p>Nothing</p>"}
    async with services.news() as news:
        # Valid but no editor: 403. Once revoked the token is no longer valid at all: 401.
        before = await news.post("/v1/news/articles", json=article, headers=bearer(stolen))
        assert_problem(before, 403, "insufficient_scope")
        await reset_password(services.auth, mail_sink, email)

        async def refused() -> bool:
            answer = await news.post("/v1/news/articles", json=article, headers=bearer(stolen))
            return answer.status_code == 401

        assert await within(WITHIN_SECONDS, refused), "news still honours the revoked token"
        after = await news.post("/v1/news/articles", json=article, headers=bearer(stolen))
        assert_problem(after, 401, "invalid_token")


async def test_a_deleted_account_and_logout_all_are_refused_by_media(
    services: Services, mail_sink: MailSink
) -> None:
    leaving = (await verified_account(services.auth, mail_sink, "leaving@example.org"))[
        "access_token"
    ]
    staying = (await verified_account(services.auth, mail_sink, "staying@example.org"))[
        "access_token"
    ]
    async with services.media() as media:
        path = await a_rendition(media)
        leaving_url = await download_url(media, leaving, path)
        staying_url = await download_url(media, staying, path)
        listed = await media.get("/v1/media/me/downloads", headers=bearer(leaving))
        assert len(listed.json()["items"]) == 1

        deleted = await services.auth.request(
            "DELETE", "/v1/auth/me", json={"password": STRONG_PASSWORD}, headers=bearer(leaving)
        )
        assert deleted.status_code == 204, deleted.text
        await refuses(media, leaving, path, leaving_url)

        out = await services.auth.post("/v1/auth/logout-all", headers=bearer(staying))
        assert out.status_code == 204, out.text
        await refuses(media, staying, path, staying_url)
