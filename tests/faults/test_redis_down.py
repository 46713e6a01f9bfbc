"""Redis gone: rate limits fall back to in-process counters (with a warning); the API stays up."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from services.gateway.mail_sink import MailSink
from tests.faults.conftest import PrivateRedis
from tests.security.apps import assert_problem, auth_settings, create_app, prepare, serving

pytestmark = [pytest.mark.fault, pytest.mark.redis]


async def test_limits_degrade_to_in_process_when_redis_dies(
    tmp_path: Path,
    mail_sink: MailSink,
    private_redis: PrivateRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = auth_settings(
        tmp_path / "auth", mail_sink, REDIS_URL=private_redis.url, login_rate_limit="6/minute"
    )
    await prepare("auth", settings)
    bodies = (
        {"email": f"nobody{n}@example.org", "password": "Wrong-Password-42!"} for n in range(100)
    )
    headers = {"X-Forwarded-For": "198.51.100.20"}
    async with serving(create_app("auth", settings)) as client:
        app = client._transport.app  # type: ignore[attr-defined]
        assert app.state.rate_limiter.backend == "redis"
        for _ in range(3):
            assert (
                await client.post("/v1/auth/login", json=next(bodies), headers=headers)
            ).status_code == 401
        private_redis.stop()
        with caplog.at_level(logging.WARNING, logger="natomedia.ratelimit"):
            statuses = [
                (
                    await client.post("/v1/auth/login", json=next(bodies), headers=headers)
                ).status_code
                for _ in range(8)
            ]
        # Up, and still limiting: in-process counters take over (from zero) after the warning.
        assert 503 not in statuses
        assert 500 not in statuses
        assert statuses[:6] == [401] * 6
        assert statuses[6:] == [429, 429]
        assert any("in-process" in record.getMessage() for record in caplog.records)
        limited = await client.post("/v1/auth/login", json=next(bodies), headers=headers)
        assert_problem(limited, 429, "rate_limited")
        assert "retry-after" in limited.headers
        health = await client.get("/v1/auth/readyz")
        assert health.status_code == 200
