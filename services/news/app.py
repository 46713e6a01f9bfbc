"""The news service's FastAPI app."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.common.app import create_service_app
from services.common.clock import Clock
from services.common.database import Database
from services.common.jwt import TokenVerifier
from services.common.ratelimit import RateLimiter
from services.common.security import build_token_verifier
from services.news.config import NewsSettings
from services.news.error_handlers import install_error_handlers
from services.news.router import router


def create_app(
    settings: NewsSettings | None = None,
    *,
    clock: Clock | None = None,
    jwks_client: httpx.AsyncClient | None = None,
    token_verifier: TokenVerifier | None = None,
    rate_limiter: RateLimiter | None = None,
) -> FastAPI:
    settings = settings or NewsSettings()
    app = create_service_app(
        title="NATO Multimedia: news",
        description=(
            "Articles as JSON with full-text search, a JSON Feed and an Atom feed for readers and "
            "partners, and the editor API (access tokens with the `editor` role)."
        ),
        prefix="/v1/news",
        settings=settings,
        database=Database(settings.resolved_database_url, pool_size=settings.database_pool_size),
        routers=[router],
        token_verifier=token_verifier or build_token_verifier(settings, jwks_client),
        rate_limiter=rate_limiter,
        clock=clock,
        public_cache_seconds=settings.public_cache_seconds,
        hears_revocations=True,
    )
    install_error_handlers(app)
    return app
