"""Errors of the media service, each with its stable problem `code`."""

from __future__ import annotations

from datetime import datetime

from services.common.i18n import N_
from services.common.problems import NotFound, ProblemError


class VideoNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__(N_("No video with this id."))


class RenditionNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__(N_("No rendition with this id for this video."))


class VideoWithdrawn(ProblemError):
    """The video was pulled: its detail, its links (old and new) and its files answer 410."""

    status = 410
    code = "video_withdrawn"

    def __init__(self, withdrawn_at: datetime | None, reason_code: str | None) -> None:
        super().__init__(
            "This video was withdrawn from the catalogue.",
            extra={
                "withdrawn_at": withdrawn_at.isoformat().replace("+00:00", "Z")
                if withdrawn_at is not None
                else None,
                "reason_code": reason_code,
            },
        )


class PreconditionFailed(ProblemError):
    status = 412
    code = "precondition_failed"

    def __init__(self) -> None:
        super().__init__("The video changed since you read it (If-Match); read it again.")


class InvalidSignature(ProblemError):
    status = 403
    code = "invalid_signature"

    def __init__(self) -> None:
        super().__init__(N_("This download link is not valid; request a new one."))


class LinkExpired(ProblemError):
    status = 410
    code = "link_expired"

    def __init__(self) -> None:
        super().__init__(N_("This download link has expired; request a new one."))


class LinkRevoked(ProblemError):
    """Issued under a session that has ended (a password reset) or to a revoked API client."""

    status = 403
    code = "link_revoked"

    def __init__(self) -> None:
        super().__init__(
            N_("This download link was revoked: its session ended or its API client was revoked.")
        )


class RangeNotSatisfiable(ProblemError):
    status = 416
    code = "range_not_satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(
            N_("The requested range lies outside the file."),
            headers={"Content-Range": f"bytes */{size}"},
        )


class FileMissing(ProblemError):
    """The catalogue names a file the storage no longer has: our fault, not the caller's."""

    status = 503
    code = "file_unavailable"

    def __init__(self) -> None:
        super().__init__(N_("The file is temporarily unavailable."), headers={"Retry-After": "60"})


class IngestError(Exception):
    """An ingest that cannot go ahead; the message is for the operator."""
