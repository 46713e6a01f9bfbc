"""Domain errors of the auth service, and the one place that maps them to problem+json.

The service raises these without knowing HTTP; `install_error_handlers` renders each with its
stable contract `code`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.auth.passwords import MAX_LENGTH, MIN_LENGTH, RULE_MESSAGES
from services.common.i18n import N_
from services.common.problems import FieldError, RateLimited, problem_response


class AuthError(Exception):
    """Base of every auth domain error."""


class InvalidCredentials(AuthError):
    pass


class InvalidCode(AuthError):
    pass


class CodeExpired(AuthError):
    pass


class TooManyAttempts(AuthError):
    pass


class InvalidRefreshToken(AuthError):
    pass


class InvalidResetToken(AuthError):
    pass


class AccountRequired(AuthError):
    """The bearer is valid but speaks for no (longer existing) account."""


class AccountNotVerified(AuthError):
    pass


class ClientNotFound(AuthError):
    pass


class InvalidClient(AuthError):
    def __init__(self, *, basic: bool = False) -> None:
        super().__init__("invalid_client")
        self.basic = basic


class UnsupportedGrantType(AuthError):
    pass


class InvalidGrantRequest(AuthError):
    pass


class InvalidScope(AuthError):
    pass


class AccountLocked(RateLimited):
    """Too many failed logins for the account from everywhere (unknown addresses alike)."""

    code = "account_locked"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            retry_after,
            N_("Too many failed logins for this account; try again later, or reset the password."),
        )


class PasswordRequired(AuthError):
    """A contested registration: the code is right, but which password wins is not said."""


class WeakPassword(AuthError):
    def __init__(self, failed: Sequence[str], *, field: str = "password") -> None:
        super().__init__(", ".join(failed))
        self.failed = list(failed)
        self.field = field


class UnsupportedAddress(AuthError):
    """An address with non-ASCII characters while mail goes out without SMTPUTF8."""


@dataclass(frozen=True)
class _Problem:
    status: int
    code: str
    detail: str


PROBLEMS: dict[type[AuthError], _Problem] = {
    InvalidCredentials: _Problem(401, "invalid_credentials", N_("The email or password is wrong.")),
    InvalidCode: _Problem(400, "invalid_code", N_("The code is wrong or no longer valid.")),
    CodeExpired: _Problem(400, "code_expired", N_("The code has expired; ask for a new one.")),
    TooManyAttempts: _Problem(
        429, "too_many_attempts", N_("Too many wrong codes; this code is dead, ask for a new one.")
    ),
    InvalidRefreshToken: _Problem(401, "invalid_token", N_("The refresh token is not valid.")),
    InvalidResetToken: _Problem(400, "invalid_token", N_("The reset token is not valid.")),
    AccountRequired: _Problem(401, "invalid_token", N_("This call needs an account's token.")),
    AccountNotVerified: _Problem(
        403, "email_not_verified", N_("Verify your email address before doing this.")
    ),
    ClientNotFound: _Problem(404, "not_found", N_("No such API client.")),
    InvalidClient: _Problem(401, "invalid_client", N_("Client authentication failed.")),
    UnsupportedGrantType: _Problem(
        400, "unsupported_grant_type", N_("Only the client_credentials grant is supported.")
    ),
    InvalidGrantRequest: _Problem(
        400, "invalid_request", N_("The token request is missing a parameter or malformed.")
    ),
    InvalidScope: _Problem(400, "invalid_scope", N_("Only the media:download scope is available.")),
    WeakPassword: _Problem(422, "weak_password", N_("The password does not meet the rules.")),
    PasswordRequired: _Problem(
        422,
        "password_required",
        N_(
            "This address was registered more than once: send the password you chose with the code."
        ),
    ),
    UnsupportedAddress: _Problem(
        422, "unsupported_address", N_("We cannot send mail to this address; use another one.")
    ),
}

# RFC 6749 §5.2 clients read `error`; our problem+json carries it beside `code`.
OAUTH_ERRORS = (InvalidClient, UnsupportedGrantType, InvalidGrantRequest, InvalidScope)


def error_response(exc: AuthError) -> JSONResponse:
    problem = PROBLEMS[type(exc)]
    headers: dict[str, str] = {}
    errors = None
    extra: dict[str, str] = {}
    values: dict[str, int] | None = None
    if isinstance(exc, InvalidRefreshToken | AccountRequired):
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    if isinstance(exc, InvalidClient):
        headers["WWW-Authenticate"] = 'Basic realm="natomedia", charset="UTF-8"'
    if isinstance(exc, OAUTH_ERRORS):
        extra["error"] = problem.code
        headers["Cache-Control"] = "no-store"
    if isinstance(exc, PasswordRequired):
        errors = [
            FieldError(
                field="password",
                code="password_required",
                message=N_("Send the password typed when registering."),
            )
        ]
    if isinstance(exc, WeakPassword):
        errors = [
            FieldError(field=exc.field, code=rule, message=RULE_MESSAGES[rule])
            for rule in exc.failed
        ]
        values = {"min_length": MIN_LENGTH, "max_length": MAX_LENGTH}
    if isinstance(exc, UnsupportedAddress):
        errors = [
            FieldError(
                field="email",
                code="unsupported_address",
                message=N_("Addresses with non-ASCII characters are not supported."),
            )
        ]
    return problem_response(
        problem.status,
        problem.code,
        problem.detail,
        headers=headers,
        errors=errors,
        extra=extra,
        values=values,
    )


def install_error_handlers(app: FastAPI) -> None:
    async def handle(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AuthError)
        return error_response(exc)

    app.add_exception_handler(AuthError, handle)
