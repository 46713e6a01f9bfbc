"""Every error leaves the process as application/problem+json (RFC 9457) with a stable `code`.

Services raise domain exceptions, which each maps to a problem in one place (its
`error_handlers`); routes and the shared code raise `ProblemError` subclasses (not found, bad token,
rate limited...). `install_problem_handlers` renders those, validation failures, unknown routes
and anything unexpected, the last without a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.i18n import N_, reply_language, translator

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger("natomedia.errors")


class FieldError(BaseModel):
    field: str
    code: str
    message: str


class Problem(BaseModel):
    """The body of every error response."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    code: str = Field(description="Stable machine-readable error code")
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    status: int = 400
    code: str = "bad_request"
    title: str | None = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[FieldError] | None = None,
        extra: Mapping[str, Any] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or code or self.code)
        self.detail = detail
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.headers = dict(headers or {})
        self.errors = list(errors) if errors is not None else None
        self.extra = dict(extra or {})
        # Filled into the `{placeholders}` of detail and field messages once translated.
        self.values = dict(values) if values is not None else None


class NotFound(ProblemError):
    status = 404
    code = "not_found"


class InvalidToken(ProblemError):
    status = 401
    code = "invalid_token"

    def __init__(
        self, detail: str = N_("The access token is missing, expired or invalid.")
    ) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class InsufficientScope(ProblemError):
    status = 403
    code = "insufficient_scope"


class EmailNotVerified(ProblemError):
    status = 403
    code = "email_not_verified"


class RateLimited(ProblemError):
    status = 429
    code = "rate_limited"

    def __init__(
        self,
        retry_after: int,
        detail: str = N_("Too many requests; try again later."),
        *,
        rate_limit: Mapping[str, str] | None = None,
    ) -> None:
        # `rate_limit`: the IETF `RateLimit` and `RateLimit-Policy` headers of the refusing limit.
        super().__init__(
            detail, headers={"Retry-After": str(max(1, retry_after)), **(rate_limit or {})}
        )


class ServiceUnavailable(ProblemError):
    status = 503
    code = "service_unavailable"


def problem_response(
    status: int,
    code: str,
    detail: str | None = None,
    *,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    errors: Sequence[FieldError] | None = None,
    extra: Mapping[str, Any] | None = None,
    values: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """The problem, its title, detail and field messages in the reply's language (`i18n`).

    Texts are looked up by their English wording, so a text the catalogue lacks stays English
    rather than failing. A text with `{placeholders}` is translated as written and then filled
    from `values`.
    """
    language = reply_language()
    translate = translator(language)

    def _(text: str) -> str:
        translated = translate(text)
        return translated.format_map(values) if values is not None else translated

    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _(title or _title(status)),
        "status": status,
        "detail": _(detail) if detail is not None else None,
        "code": code,
    }
    if errors is not None:
        body["errors"] = [{**error.model_dump(), "message": _(error.message)} for error in errors]
    if extra:
        body.update(extra)
    response_headers = dict(headers or {})
    response_headers.setdefault("Content-Language", language)
    return JSONResponse(body, status_code=status, headers=response_headers, media_type=PROBLEM_JSON)


# The titles problems carry (HTTP reason phrases), for the catalogue.
_TITLES = (
    N_("Bad Request"),
    N_("Unauthorized"),
    N_("Forbidden"),
    N_("Not Found"),
    N_("Method Not Allowed"),
    N_("Not Acceptable"),
    N_("Conflict"),
    N_("Gone"),
    N_("Content Too Large"),
    N_("Request Entity Too Large"),
    N_("Unsupported Media Type"),
    N_("Range Not Satisfiable"),
    N_("Requested Range Not Satisfiable"),
    N_("Unprocessable Content"),
    N_("Unprocessable Entity"),
    N_("Too Many Requests"),
    N_("Internal Server Error"),
    N_("Bad Gateway"),
    N_("Service Unavailable"),
    N_("Gateway Timeout"),
    N_("Error"),
)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _field_name(loc: Sequence[Any]) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie", "form"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_errors(raw: Sequence[Any]) -> list[FieldError]:
    errors = []
    for item in raw:
        message = str(item.get("msg", "Invalid value"))
        context = item.get("ctx") or {}
        # A validator that raises ProblemError-coded ValueErrors names its own code.
        code = context.get("code") if isinstance(context.get("code"), str) else item.get("type")
        errors.append(
            FieldError(field=_field_name(item.get("loc", ())), code=str(code), message=message)
        )
    return errors


CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


# PostgreSQL cannot store NUL or untranslatable characters in text: the client's input, not a bug.
TEXT_THE_DATABASE_REFUSES = frozenset({"22021", "22P05"})
# SQLSTATE classes of a database that is out of reach, not of a bad statement: 08 connection
# exceptions, 57P shutdowns and "cannot connect now" (a server starting or stopping).
DATABASE_UNREACHABLE = ("08", "57P")


def install_problem_handlers(app: FastAPI) -> None:
    # Here, not at the top: json_body builds its responses with this module's problem_response.
    from services.common.json_body import malformed_json, undecodable_body

    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            exc.status,
            exc.code,
            exc.detail,
            title=exc.title,
            headers=exc.headers,
            errors=exc.errors,
            extra=exc.extra,
            values=exc.values,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        malformed = malformed_json(exc.errors(), exc.body)
        if malformed is not None:
            return malformed
        errors = validation_errors(exc.errors())
        return problem_response(
            422, "validation_error", N_("The request is not valid."), errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        undecodable = undecodable_body(exc.__cause__)
        if undecodable is not None:
            return undecodable
        code = CODES_BY_STATUS.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem_response(exc.status_code, code, detail, headers=exc.headers)

    @app.exception_handler(UnicodeError)
    async def _bad_text(_: Request, exc: UnicodeError) -> JSONResponse:
        # JSON may carry lone surrogates (\ud800) that no encoder accepts further down.
        logger.info("undecodable text in a request: %s", type(exc).__name__)
        return problem_response(
            400, "invalid_text", N_("The request contains text that is not valid Unicode.")
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeoutError)
    @app.exception_handler(OSError)
    async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
        logger.warning("dependency unavailable: %s", type(exc).__name__)
        return problem_response(
            503,
            "service_unavailable",
            N_("A backing service is unavailable; try again shortly."),
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(StaleDataError)
    async def _removed_meanwhile(_: Request, exc: StaleDataError) -> JSONResponse:
        # No table has a version column, so a change that matched no row means another request
        # deleted it after this one read it: the answer it would have got a moment later.
        logger.info("row deleted by a concurrent request: %s", exc)
        return problem_response(
            404, "not_found", N_("What this request changes was deleted in the meantime.")
        )

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> JSONResponse:
        sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
        if exc.connection_invalidated or sqlstate.startswith(DATABASE_UNREACHABLE):
            return await _unavailable(request, exc)
        if getattr(exc.orig, "sqlstate", None) in TEXT_THE_DATABASE_REFUSES:
            return await _bad_text(request, UnicodeError(str(exc.orig)))
        logger.error("database error", exc_info=exc)
        return internal_error_response()


def internal_error_response() -> JSONResponse:
    return problem_response(500, "internal_error", N_("Something went wrong on our side."))


class CatchAllMiddleware:
    """Turns any exception that escaped the handlers into a bare 500 problem, logged, no trace.

    Starlette's own last-resort handler re-raises after answering; this one does not, so a test
    client and a server see the same thing.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            logger.error("unhandled error", exc_info=exc)
            if started:
                raise
            await internal_error_response()(scope, receive, send)


RATE_LIMIT_HEADERS: dict[str, Any] = {
    "RateLimit": {
        "schema": {"type": "string"},
        "description": 'IETF RateLimit: `"<policy>";r=<remaining>;t=<seconds until one frees>`',
    },
    "RateLimit-Policy": {
        "schema": {"type": "string"},
        "description": 'IETF RateLimit-Policy: `"<policy>";q=<quota>;w=<window seconds>`',
    },
}


def problem_responses(*codes: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route: each status documented as problem+json with its codes."""
    by_status: dict[int, list[str]] = {}
    for status, code in codes:
        by_status.setdefault(status, []).append(code)
    return {
        status: {
            **(
                {"headers": {"Retry-After": {"schema": {"type": "integer"}}, **RATE_LIMIT_HEADERS}}
                if status == 429
                else {}
            ),
            "description": f"{_title(status)}: code one of {', '.join(sorted(set(names)))}",
            "content": {
                PROBLEM_JSON: {
                    "schema": {
                        "allOf": [
                            {"$ref": "#/components/schemas/Problem"},
                            {"properties": {"code": {"enum": sorted(set(names))}}},
                        ]
                    }
                }
            },
        }
        for status, names in by_status.items()
    }
