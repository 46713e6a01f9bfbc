"""Typed access to what the app holds, and the checks routes share.

Every dependency is `async def`, even the getters: FastAPI runs a plain `def` dependency in its
thread pool, which costs a thread hop per request for one attribute read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.common.client_address import client_address
from services.common.clock import Clock
from services.common.jwt import Principal
from services.common.problems import EmailNotVerified, InsufficientScope
from services.common.ratelimit import RateLimiter, rule
from services.common.security import require_principal
from services.media.config import MediaSettings
from services.media.delivery import RenditionFiles
from services.media.service import DownloadNotAllowed, check_may_download
from services.media.signing import DownloadSigner
from services.media.storage import Storage


async def get_settings(request: Request) -> MediaSettings:
    settings: MediaSettings = request.app.state.settings
    return settings


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


async def get_signer(request: Request) -> DownloadSigner:
    signer: DownloadSigner = request.app.state.signer
    return signer


async def get_rendition_files(request: Request) -> RenditionFiles:
    files: RenditionFiles = request.app.state.rendition_files
    return files


async def get_client_address(request: Request) -> str | None:
    return client_address(request, (await get_settings(request)).trusted_proxies)


async def require_downloader(request: Request) -> Principal:
    """A verified account or a partner client with `media:download`, within its rate limit.

    A route using it declares `openapi_extra=TOKEN_REQUIRED`.
    """
    principal = await require_principal(request)
    try:
        check_may_download(principal)
    except DownloadNotAllowed as exc:
        if exc.code == "email_not_verified":
            raise EmailNotVerified("Verify your email address before downloading video.") from exc
        raise InsufficientScope("This token lacks the media:download scope.") from exc
    limiter: RateLimiter = request.app.state.rate_limiter
    settings = await get_settings(request)
    limit = rule(settings.download_url_rate_limit)
    # The route shows the caller where it stands (`RateLimit` headers on its answer).
    request.state.rate_limit_headers = await limiter.hit(
        limit, "media-download-url", principal.subject
    )
    return principal


SettingsDep = Annotated[MediaSettings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
StorageDep = Annotated[Storage, Depends(get_storage)]
SignerDep = Annotated[DownloadSigner, Depends(get_signer)]
RenditionFilesDep = Annotated[RenditionFiles, Depends(get_rendition_files)]
ClientAddressDep = Annotated[str | None, Depends(get_client_address)]
Downloader = Annotated[Principal, Depends(require_downloader)]
