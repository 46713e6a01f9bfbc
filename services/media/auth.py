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
    # The route shows the caller where it stands (`RateLimit` headers on its answer).
    request.state.rate_limit_headers = await limiter.hit(
        rule(settings.download_url_rate_limit), "media-download-url", caller.subject
    )
    return caller


class EditorRequired(InsufficientScope):
    def __init__(self) -> None:
        super().__init__(
            "This call needs an access token with the editor role.",
            headers={"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="editor"'},
        )


async def editor(caller: Annotated[Principal, Depends(principal)]) -> Principal:
    if scopes.EDITOR not in caller.scopes:
        raise EditorRequired
    return caller


Downloader = Annotated[Principal, Depends(downloader)]
# An editor's token: catalogue changes, withdrawals, the download audit.
Editor = Annotated[Principal, Security(editor, scopes=[scopes.EDITOR])]
