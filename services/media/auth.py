"""Who may do what in media: the token aliases routes take."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security

from services.common import scopes
from services.common.jwt import Principal
from services.common.problems import EmailNotVerified, InsufficientScope
from services.common.ratelimit import RateLimiter, rule
from services.common.security import client_credentials, principal
from services.media.config import MediaSettings
from services.media.service import DownloadNotAllowed, check_may_download


async def downloader(
    request: Request,
    caller: Annotated[Principal, Depends(principal)],
    # Documents the partners' grant beside `bearerAuth`; the token itself is `caller`.
    _: Annotated[str | None, Security(client_credentials, scopes=[scopes.MEDIA_DOWNLOAD])],
) -> Principal:
    """A verified account or a partner client with `media:download`, within its rate limit."""
    try:
        check_may_download(caller)
    except DownloadNotAllowed as exc:
        if exc.code == "email_not_verified":
            raise EmailNotVerified("Verify your email address before downloading video.") from exc
        raise InsufficientScope("This token lacks the media:download scope.") from exc
    limiter: RateLimiter = request.app.state.rate_limiter
    settings: MediaSettings = request.app.state.settings
    await limiter.hit(rule(settings.download_url_rate_limit), "media-download-url", caller.subject)
    return caller


Downloader = Annotated[Principal, Depends(downloader)]
