"""Errors of the media service. They know nothing of HTTP: `error_handlers` maps each to its
problem+json status and stable `code`."""

from __future__ import annotations

from datetime import datetime


class MediaError(Exception):
    """Base of every media domain error a request can meet."""


class VideoNotFound(MediaError):
    pass


class RenditionNotFound(MediaError):
    pass


class VideoWithdrawn(MediaError):
    """The video was pulled: its detail, its links (old and new) and its files answer 410."""

    def __init__(self, withdrawn_at: datetime | None, reason_code: str | None) -> None:
        super().__init__("video_withdrawn")
        self.withdrawn_at = withdrawn_at
        self.reason_code = reason_code


class PreconditionFailed(MediaError):
    pass


class InvalidSignature(MediaError):
    pass


class LinkExpired(MediaError):
    pass


class LinkRevoked(MediaError):
    """Issued under a session that has ended (a password reset) or to a revoked API client."""


class RangeNotSatisfiable(MediaError):
    def __init__(self, size: int) -> None:
        super().__init__("range_not_satisfiable")
        self.size = size


class FileMissing(MediaError):
    """The catalogue names a file the storage no longer has: our fault, not the caller's."""


class IngestError(Exception):
    """An ingest that cannot go ahead; the message is for the operator."""
