"""Redis gone while an account is revoked: the reset still succeeds, and media learns of it once
Redis is back (auth retries the write, media reloads every key when it resubscribes)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from services.common.revocation import RETRY_EVERY_SECONDS, RevocationPublisher
from services.gateway.mail_sink import MailSink
from tests.faults.conftest import PrivateRedis
from tests.security.apps import (
    assert_problem,
    auth_settings,
    create_app,
    prepare,
    serving,
    settings_for,
    verified_account,
)

pytestmark = [pytest.mark.fault, pytest.mark.redis]


async def test_a_reset_during_a_redis_outage_reaches_media_when_redis_returns(
    tmp_path: Path, mail_sink: MailSink, private_redis: PrivateRedis
) -> None:
    auth_config = auth_settings(
        tmp_path / "auth",
        mail_sink,
        REDIS_URL=private_redis.url,
        mail_per_address_limits=["1000/minute"],
    )
    await prepare("auth", auth_config)
    media_config = settings_for("media", tmp_path / "media", REDIS_URL=private_redis.url)
    await prepare("media", media_config, seed=True)
    email = "outage@example.org"
    auth_app = create_app("auth", auth_config)
    publisher: RevocationPublisher = auth_app.state.revocation_publisher
    async with serving(auth_app) as auth:
        token = (await verified_account(auth, mail_sink, email))["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        async with serving(create_app("media", media_config, jwks_client=auth)) as media:
            video = (await media.get("/v1/media/videos")).json()["items"][0]["id"]
            detail = (await media.get(f"/v1/media/videos/{video}")).json()
            path = f"/v1/media/videos/{video}/renditions/{detail['renditions'][0]['id']}"
            issued = await media.post(f"{path}/download-url", headers=headers)
            assert issued.status_code == 200
            url = urlsplit(issued.json()["url"])
            link = f"{url.path}?{url.query}"

            private_redis.stop()
            await auth.post("/v1/auth/password-reset", json={"email": email})
            (*_, mail) = await mail_sink.wait_for(email, 2)
            proven = await auth.post(
                "/v1/auth/password-reset/verify", json={"email": email, "code": mail.code}
            )
            done = await auth.post(
                "/v1/auth/password-reset/complete",
                json={
                    "reset_token": proven.json()["reset_token"],
                    "new_password": "Brand-New-Secret-99",
                },
            )
            assert done.status_code == 204  # Redis is not needed to end a session
            assert publisher.pending == 1
            # Media cannot know yet: it keeps what it knew and keeps serving.
            assert (await media.head(link)).status_code == 200

            private_redis.start()
            loop = asyncio.get_running_loop()
            # Auth's retry period, media's resubscription pause, and margin.
            deadline = loop.time() + RETRY_EVERY_SECONDS + 10
            while (await media.head(link)).status_code != 403:
                assert loop.time() < deadline, "media never heard of the revocation"
                await asyncio.sleep(0.1)
            assert_problem(await media.get(link), 403, "link_revoked")
            assert_problem(await media.post(f"{path}/download-url", headers=headers), 401)
            assert publisher.pending == 0
