"""CORS for browser apps on the origins in `CORS_ORIGINS`; a refused preflight is a problem.

Starlette answers a refused preflight with plain text (`Disallowed CORS origin`). A frontend
developer reading the network tab gets problem+json instead: code `cors_rejected`, and one
error per refused part (the origin, the method or the request headers) naming what was asked.
"""

from __future__ import annotations

from typing import Final

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from services.common.problems import FieldError, problem_response
from services.common.settings import ServiceSettings

ALLOW_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
ALLOW_HEADERS: Final = ("Authorization", "Content-Type", "X-Request-ID", "If-None-Match", "Range")
EXPOSE_HEADERS: Final = (
    "X-Request-ID",
    "ETag",
    "Retry-After",
    "Content-Disposition",
    "Content-Range",
    "Repr-Digest",
    "WWW-Authenticate",
)


class ProblemCORSMiddleware(CORSMiddleware):
    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        errors = self._refusals(request_headers)
        # The preflight's own headers (Vary, the allowed methods and headers) stay: they help.
        headers = {
            name: value
            for name, value in response.headers.items()
            if name.lower() not in {"content-type", "content-length"}
        }
        refused = ", ".join(error.field for error in errors) or "the request"
        return problem_response(
            400,
            "cors_rejected",
            f"The CORS preflight was refused: {refused} not allowed.",
            headers=headers,
            errors=errors,
        )

    def _refusals(self, request_headers: Headers) -> list[FieldError]:
        errors: list[FieldError] = []
        origin = request_headers["origin"]
        if not self.is_allowed_origin(origin=origin):
            errors.append(
                FieldError(
                    field="Origin",
                    code="origin_not_allowed",
                    message=f"The origin {origin} is not in CORS_ORIGINS.",
                )
            )
        method = request_headers["access-control-request-method"]
        if method not in self.allow_methods:
            errors.append(
                FieldError(
                    field="Access-Control-Request-Method",
                    code="method_not_allowed",
                    message=f"The method {method} is not allowed; allowed: "
                    + ", ".join(self.allow_methods)
                    + ".",
                )
            )
        requested = request_headers.get("access-control-request-headers")
        if requested is not None and not self.allow_all_headers:
            names = [name.strip().lower() for name in requested.split(",") if name.strip()]
            refused = [name for name in names if name not in self.allow_headers]
            if refused:
                errors.append(
                    FieldError(
                        field="Access-Control-Request-Headers",
                        code="headers_not_allowed",
                        message="Not allowed: "
                        + ", ".join(refused)
                        + "; allowed: "
                        + ", ".join(ALLOW_HEADERS)
                        + ".",
                    )
                )
        if request_headers.get("access-control-request-private-network") is not None:
            errors.append(
                FieldError(
                    field="Access-Control-Request-Private-Network",
                    code="private_network_not_allowed",
                    message="Requests from a public site to a private network are not allowed.",
                )
            )
        return errors


def add_cors(app: FastAPI, settings: ServiceSettings) -> None:
    """Let browser apps on `settings.cors_origins` call the service; none when it is empty."""
    if not settings.cors_origins:
        return
    app.add_middleware(
        ProblemCORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=list(ALLOW_METHODS),
        allow_headers=list(ALLOW_HEADERS),
        expose_headers=list(EXPOSE_HEADERS),
        max_age=600,
    )
