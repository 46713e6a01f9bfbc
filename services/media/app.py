"""The media service's FastAPI app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from services.common.app import create_service_app
from services.common.clock import Clock, SystemClock
from services.common.database import Database
from services.common.jwt import TokenVerifier
from services.common.ratelimit import RateLimiter
from services.common.security import build_token_verifier
from services.common.tasks import cancel_and_wait
from services.media.config import MediaSettings
from services.media.delivery import RenditionFiles
from services.media.editor_router import router as editor_router
from services.media.error_handlers import install_error_handlers
from services.media.my_downloads import purge_grant_addresses
from services.media.my_downloads import router as my_downloads_router
from services.media.router import router
from services.media.signing import DownloadSigner
from services.media.storage_choice import open_storage

logger = logging.getLogger("natomedia.media")
# How often grant client addresses past their retention are cleared.
ADDRESS_PURGE_INTERVAL_SECONDS = 3600.0

DESCRIPTION = """\
The public catalogue of broadcast-quality video, and signed download URLs for verified
accounts and partner clients (`media:download`). Lists use keyset cursors; `updated_since`
turns a listing into an incremental sync feed. Downloads support `Range`, so `curl -C -`
resumes them, and carry the file's SHA-256 as `ETag` and `Repr-Digest`.
"""


def create_app(
    settings: MediaSettings | None = None,
    *,
    clock: Clock | None = None,
    jwks_client: httpx.AsyncClient | None = None,
    token_verifier: TokenVerifier | None = None,
    rate_limiter: RateLimiter | None = None,
) -> FastAPI:
    settings = settings or MediaSettings()
    database = Database(settings.resolved_database_url, pool_size=settings.database_pool_size)
    purge_clock = clock or SystemClock()

    async def purge_addresses() -> None:
        """Clear download-grant client addresses past their retention, now and hourly."""
        while True:
            try:
                await purge_grant_addresses(database, purge_clock.now())
            except Exception:  # a database outage must not end the loop
                logger.exception("clearing old download-grant addresses failed")
            await asyncio.sleep(ADDRESS_PURGE_INTERVAL_SECONDS)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(purge_addresses(), name="media-address-retention")
        try:
            yield
        finally:
            await cancel_and_wait(task)
            await app.state.storage.close()

    app = create_service_app(
        title="NATO Multimedia: media",
        description=DESCRIPTION,
        prefix="/v1/media",
        settings=settings,
        database=database,
        routers=[router, my_downloads_router, editor_router],
        token_verifier=token_verifier or build_token_verifier(settings, jwks_client),
        rate_limiter=rate_limiter,
        clock=clock,
        public_cache_seconds=settings.public_cache_seconds,
        hears_revocations=True,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.state.storage = open_storage(settings)
    app.state.signer = DownloadSigner(settings.resolved_signing_secret)
    app.state.rendition_files = RenditionFiles(database)
    return app
