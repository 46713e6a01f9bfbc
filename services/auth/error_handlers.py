"""The one place auth's domain errors become problem+json, each with its stable contract
`code`."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.auth.exceptions import (
    AccountLocked,
    AccountNotVerified,
    AccountRequired,
    AuthError,
    ClientNotFound,
    CodeExpired,
    EmailTaken,
    InvalidClient,
    InvalidCode,
    InvalidCredentials,
    InvalidGrantRequest,
    InvalidRefreshToken,
    InvalidResetToken,
    InvalidScope,
    PasswordRequired,
    SessionNotFound,
    TooManyAttempts,
    UnsupportedAddress,
    UnsupportedGrantType,
    WeakPassword,
    WrongPassword,
)
from services.auth.passwords import MAX_LENGTH, MIN_LENGTH, RULE_MESSAGES
from services.common.i18n import N_
from services.common.problems import FieldError, problem_response


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
    AccountLocked: _Problem(
        429,
        "account_locked",
        N_("Too many failed logins for this account; try again later, or reset the password."),
    ),
    # 403, not 401: clients read 401 as an expired session to refresh and retry. These three
    # texts are not in the catalogue and answer in English.
    WrongPassword: _Problem(403, "invalid_credentials", "The password is wrong."),
    EmailTaken: _Problem(409, "email_taken", "Another account uses this address now."),
    SessionNotFound: _Problem(404, "not_found", "No such session."),
}

# RFC 6749 §5.2 clients read `error`; our problem+json carries it beside `code`.
OAUTH_ERRORS = (InvalidClient, UnsupportedGrantType, InvalidGrantRequest, InvalidScope)


def error_response(exc: AuthError) -> JSONResponse:
    problem = PROBLEMS[type(exc)]
    headers: dict[str, str] = {}
    errors = None
    extra: dict[str, str] = {}
    values: dict[str, int] | None = None
    if isinstance(exc, AccountLocked):
        headers["Retry-After"] = str(max(1, exc.retry_after))
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
