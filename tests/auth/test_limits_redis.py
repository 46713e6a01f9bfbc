"""Limits kept in Redis hold across replicas: what one app instance counts, another enforces."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.common.ratelimit import RateLimiter


@pytest.mark.redis
async def test_login_failures_are_shared_through_redis(start_app: Any, redis_url: str) -> None:
    namespace = f"auth-test-{uuid.uuid4().hex}"
    first_limiter = RateLimiter(redis_url, namespace=namespace)
    second_limiter = RateLimiter(redis_url, namespace=namespace)
    assert first_limiter.backend == "redis"
    login = {"email": "shared@example.com", "password": "Wrong-Password-1!"}
    async with (
        start_app(limiter=first_limiter, login_failures_per_account_and_address="3/minute") as one,
        start_app(limiter=second_limiter, login_failures_per_account_and_address="3/minute") as two,
    ):
        for _ in range(3):
            assert (await one.post("/v1/auth/login", json=login)).status_code == 401
        refused = await two.post("/v1/auth/login", json=login)
        assert refused.status_code == 429
        assert refused.json()["code"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1
        # The IETF headers name the refusing policy (never the caller) and where it stands.
        assert refused.headers["ratelimit-policy"].endswith(";q=3;w=60")
        assert refused.headers["ratelimit"].split(";")[1] == "r=0"
        assert "shared@example.com" not in refused.headers["ratelimit"]
