"""The one place media's domain errors become problem+json, each with its stable `code`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.common.i18n import N_
from services.common.problems import problem_response
from services.media.exceptions import (
    FileMissing,
    InvalidSignature,
    LinkExpired,
    LinkRevoked,
    MediaError,
    PreconditionFailed,
    RangeNotSatisfiable,
    RenditionNotFound,
    VideoNotFound,
    VideoWithdrawn,
)


@dataclass(frozen=True)
class _Problem:
    status: int
    code: str
    detail: str


PROBLEMS: dict[type[MediaError], _Problem] = {
    VideoNotFound: _Problem(404, "not_found", N_("No video with this id.")),
    RenditionNotFound: _Problem(404, "not_found", N_("No rendition with this id for this video.")),
    # Not in the catalogue: these two answer in English.
    VideoWithdrawn: _Problem(
        410, "video_withdrawn", "This video was withdrawn from the catalogue."
    ),
    PreconditionFailed: _Problem(
        412,
        "precondition_failed",
        "The video changed since you read it (If-Match); read it again.",
    ),
    InvalidSignature: _Problem(
        403, "invalid_signature", N_("This download link is not valid; request a new one.")
    ),
    LinkExpired: _Problem(
        410, "link_expired", N_("This download link has expired; request a new one.")
    ),
    LinkRevoked: _Problem(
        403,
        "link_revoked",
        N_("This download link was revoked: its session ended or its API client was revoked."),
    ),
    RangeNotSatisfiable: _Problem(
        416, "range_not_satisfiable", N_("The requested range lies outside the file.")
    ),
    FileMissing: _Problem(503, "file_unavailable", N_("The file is temporarily unavailable.")),
}


def _instant(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def error_response(exc: MediaError) -> JSONResponse:
    problem = PROBLEMS[type(exc)]
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if isinstance(exc, VideoWithdrawn):
        extra = {"withdrawn_at": _instant(exc.withdrawn_at), "reason_code": exc.reason_code}
    if isinstance(exc, RangeNotSatisfiable):
        headers["Content-Range"] = f"bytes */{exc.size}"
    if isinstance(exc, FileMissing):
        headers["Retry-After"] = "60"
    return problem_response(
        problem.status, problem.code, problem.detail, headers=headers, extra=extra
    )


def install_error_handlers(app: FastAPI) -> None:
    async def handle(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, MediaError)
        return error_response(exc)

    app.add_exception_handler(MediaError, handle)
