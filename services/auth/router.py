"""HTTP routes of the auth service (`/v1/auth`) and its JWKS (`/.well-known/jwks.json`)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated
from urllib.parse import unquote_plus

from fastapi import APIRouter, Depends, Form, Request, Response, status

from services.auth import clients, newsletter, password_reset, registration, sessions
from services.auth.account_cache import AccountCache
from services.auth.account_reads import account_json
from services.auth.auth import ClientBasicHeader, CurrentAccount
from services.auth.dependencies import (
    Caller,
    ClockDep,
    CodesDep,
    EventsDep,
    HasherDep,
    IssuerDep,
    KnownAddressesDep,
    LimitsDep,
    SessionDep,
    SettingsDep,
    TokensDep,
    account_id,
)
from services.auth.exceptions import (
    AccountRequired,
    InvalidClient,
    InvalidGrantRequest,
    UnsupportedGrantType,
)
from services.auth.models import ApiClient, User
from services.auth.schemas import (
    API_CLIENT_EXAMPLE,
    Account,
    ApiClientCreated,
    ApiClientOut,
    ClientCreateRequest,
    ClientCredentialsForm,
    ClientToken,
    CodeRequested,
    EmailCodeRequest,
    EmailRequest,
    LoginRequest,
    NewsletterRequest,
    RefreshRequest,
    RegisterRequest,
    RegisterResponse,
    ResetCompleteRequest,
    ResetTokenResponse,
    TokenPair,
    VerifyRequest,
)
from services.auth.session_tokens import IssuedTokens
from services.common.http_cache import conditional_response
from services.common.i18n import prefer_language
from services.common.pagination import (
    Cursor,
    Limit,
    Page,
    decode_position,
    encode_cursor,
)
from services.common.problems import problem_responses
from services.common.query_params import strict_query
from services.common.security import BEARER_AUTH, principal

router = APIRouter(prefix="/v1/auth", tags=["auth"])
well_known = APIRouter(tags=["auth"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
VALIDATION = (422, "validation_error")
RATE_LIMITED = (429, "rate_limited")
UNAUTHENTICATED = (401, "invalid_token")
CODE_ERRORS = ((400, "invalid_code"), (400, "code_expired"), (429, "too_many_attempts"))
JWK_EXAMPLE = {
    "crv": "P-256",
    "kty": "EC",
    "x": "RRom2yYMFQzx1LKo0u81wh55vED1OyviwPOZAntyfJo",
    "y": "7KqnYqk8LCi2wKSK--wJ5pHon59tq2wtftxpqQ2Acuw",
    "kid": "m8088BX6pfH8Yg0UN6IUa4Ej3jb7lVQHgBwhO-g1h4Y",
    "alg": "ES256",
    "use": "sig",
}


def _token_pair(issued: IssuedTokens, response: Response) -> TokenPair:
    response.headers.update(NO_STORE)
    return TokenPair(
        access_token=issued.access.token,
        expires_in=issued.access.expires_in,
        refresh_token=issued.refresh_token,
    )


def _account(user: User) -> Account:
    return Account(
        id=user.id,
        email=user.email,
        email_verified=user.email_verified,
        newsletter=user.newsletter,
        language=user.language,
        created_at=user.created_at,
    )


def _client(client: ApiClient) -> ApiClientOut:
    return ApiClientOut(client_id=client.client_id, name=client.name, created_at=client.created_at)


# Declared first: routes are matched in order, and /me is the hottest authenticated read. Its
# token check is called, not declared as `CurrentPrincipal`: FastAPI's solving of a declared
# dependency costs more than 5% of this row (bench/README.md, bends), so the document's
# security entry is written here instead (tests/gateway/test_openapi.py checks it).
@router.get(
    "/me",
    operation_id="getMe",
    response_model=Account,
    summary="Read your account",
    responses=problem_responses(UNAUTHENTICATED),
    openapi_extra={"security": [{BEARER_AUTH: []}]},
)
async def me(request: Request) -> Response:
    """The account the access token belongs to."""
    user_id = account_id(await principal(request))
    cache: AccountCache = request.app.state.account_cache
    body = cache.get(user_id)
    if body is None:
        ticket = cache.ticket()
        body = await account_json(request.app.state.database.engine, user_id)
        if body is None:
            raise AccountRequired
        cache.put(user_id, body, ticket)
    # Cached `Account` JSON (bench row "GET /v1/auth/me"): sent as it is, already serialised.
    return Response(body, media_type="application/json")


@router.post(
    "/register",
    operation_id="registerAccount",
    summary="Create an account",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RegisterResponse,
    responses=problem_responses(
        VALIDATION, (422, "weak_password"), (422, "unsupported_address"), RATE_LIMITED
    ),
)
async def register(
    body: RegisterRequest,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    limits: LimitsDep,
    hasher: HasherDep,
    known_addresses: KnownAddressesDep,
    events: EventsDep,
    caller: Caller,
) -> RegisterResponse:
    """Create an account and email it a 6-digit code. A taken address gets the same answer.

    `language` (`en`, `fr`) is the account's: its mail is written in it.

    An address with non-ASCII characters gets 422 `unsupported_address` when the deployment's
    mail relay is not known to take such addresses (`MAIL_SMTPUTF8` off).
    """
    # Problems about this request are in the language it registers in, unless it asked for
    # another with Accept-Language.
    prefer_language(body.language)
    resend_after = await registration.register(
        session,
        body.email,
        body.password,
        newsletter=body.newsletter,
        language=body.language,
        caller=caller,
        settings=settings,
        clock=clock,
        limits=limits,
        hasher=hasher,
        known_addresses=known_addresses,
        events=events,
    )
    return RegisterResponse(code_expires_in=settings.code_ttl_seconds, resend_after=resend_after)


@router.post(
    "/verify",
    operation_id="verifyEmail",
    summary="Verify your account",
    response_model=TokenPair,
    responses=problem_responses(
        VALIDATION, (422, "weak_password"), (422, "password_required"), *CODE_ERRORS, RATE_LIMITED
    ),
)
async def verify(
    body: VerifyRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    clock: ClockDep,
    limits: LimitsDep,
    hasher: HasherDep,
    codes: CodesDep,
    known_addresses: KnownAddressesDep,
    tokens: TokensDep,
    events: EventsDep,
    caller: Caller,
) -> TokenPair:
    """Prove the address with the emailed code; answers with a token pair.

    Send the password typed on the register screen with the code: it becomes the account's
    password. Every session opened before the verification ends.
    """
    issued = await registration.verify_email(
        session,
        body.email,
        body.code,
        password=body.password,
        caller=caller,
        user_agent=request.headers.get("user-agent"),
        clock=clock,
        limits=limits,
        hasher=hasher,
        codes=codes,
        known_addresses=known_addresses,
        tokens=tokens,
        events=events,
    )
    return _token_pair(issued, response)


@router.post(
    "/verify/resend",
    operation_id="resendVerification",
    summary="Send a new verification code",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CodeRequested,
    responses=problem_responses(VALIDATION, RATE_LIMITED),
)
async def resend_verification(
    body: EmailRequest,
    session: SessionDep,
    settings: SettingsDep,
    limits: LimitsDep,
    known_addresses: KnownAddressesDep,
    events: EventsDep,
    caller: Caller,
) -> CodeRequested:
    """Email a new code (at most once a minute and five times an hour per address).

    Earlier codes stop working. The answer is the same whether or not the address has an
    unverified account.
    """
    resend_after = await registration.resend_verification(
        session,
        body.email,
        caller=caller,
        limits=limits,
        known_addresses=known_addresses,
        events=events,
    )
    return CodeRequested(code_expires_in=settings.code_ttl_seconds, resend_after=resend_after)


@router.post(
    "/login",
    operation_id="login",
    summary="Log in",
    response_model=TokenPair,
    responses=problem_responses(
        VALIDATION, (401, "invalid_credentials"), RATE_LIMITED, (429, "account_locked")
    ),
)
async def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    limits: LimitsDep,
    hasher: HasherDep,
    known_addresses: KnownAddressesDep,
    tokens: TokensDep,
    caller: Caller,
) -> TokenPair:
    """Exchange email and password for a token pair (unverified accounts too)."""
    issued = await sessions.login(
        session,
        body.email,
        body.password,
        caller=caller,
        user_agent=request.headers.get("user-agent"),
        limits=limits,
        hasher=hasher,
        known_addresses=known_addresses,
        tokens=tokens,
    )
    return _token_pair(issued, response)


@router.post(
    "/token/refresh",
    operation_id="refreshToken",
    summary="Refresh a token pair",
    response_model=TokenPair,
    responses=problem_responses(VALIDATION, UNAUTHENTICATED),
)
async def refresh(
    body: RefreshRequest,
    response: Response,
    session: SessionDep,
    clock: ClockDep,
    tokens: TokensDep,
) -> TokenPair:
    """Spend a refresh token for a new pair. A spent token presented again ends its session."""
    issued = await sessions.refresh(session, body.refresh_token, clock=clock, tokens=tokens)
    return _token_pair(issued, response)


@router.post(
    "/logout",
    operation_id="logout",
    summary="Log out",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    # An unknown or spent token is not an error (logging out twice is fine); only a malformed
    # body or a database that cannot be reached is.
    responses=problem_responses(VALIDATION, (503, "service_unavailable")),
)
async def logout(body: RefreshRequest, session: SessionDep, tokens: TokensDep) -> Response:
    """End the session the refresh token belongs to."""
    await sessions.logout(session, body.refresh_token, tokens=tokens)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/password-reset",
    operation_id="requestPasswordReset",
    summary="Request a password reset code",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CodeRequested,
    responses=problem_responses(VALIDATION, RATE_LIMITED),
)
async def request_password_reset(
    body: EmailRequest,
    session: SessionDep,
    settings: SettingsDep,
    limits: LimitsDep,
    known_addresses: KnownAddressesDep,
    events: EventsDep,
    caller: Caller,
) -> CodeRequested:
    """Email a reset code if the address has an account; the answer is the same either way."""
    resend_after = await password_reset.request_password_reset(
        session,
        body.email,
        caller=caller,
        limits=limits,
        known_addresses=known_addresses,
        events=events,
    )
    return CodeRequested(code_expires_in=settings.code_ttl_seconds, resend_after=resend_after)


@router.post(
    "/password-reset/verify",
    operation_id="verifyPasswordReset",
    summary="Verify a password reset code",
    response_model=ResetTokenResponse,
    responses=problem_responses(VALIDATION, *CODE_ERRORS, RATE_LIMITED),
)
async def verify_password_reset(
    body: EmailCodeRequest,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    limits: LimitsDep,
    hasher: HasherDep,
    codes: CodesDep,
    known_addresses: KnownAddressesDep,
    events: EventsDep,
    caller: Caller,
) -> ResetTokenResponse:
    """Exchange the emailed reset code for a short-lived, single-use reset token."""
    token, expires_in = await password_reset.verify_password_reset(
        session,
        body.email,
        body.code,
        caller=caller,
        settings=settings,
        clock=clock,
        limits=limits,
        hasher=hasher,
        codes=codes,
        known_addresses=known_addresses,
        events=events,
    )
    response.headers.update(NO_STORE)
    return ResetTokenResponse(reset_token=token, expires_in=expires_in)


@router.post(
    "/password-reset/complete",
    operation_id="completePasswordReset",
    summary="Create a new password",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(VALIDATION, (400, "invalid_token"), (422, "weak_password")),
)
async def complete_password_reset(
    body: ResetCompleteRequest,
    session: SessionDep,
    clock: ClockDep,
    limits: LimitsDep,
    hasher: HasherDep,
    codes: CodesDep,
    known_addresses: KnownAddressesDep,
    events: EventsDep,
    caller: Caller,
) -> Response:
    """Set a new password; every session of the account ends and a notice is emailed."""
    await password_reset.complete_password_reset(
        session,
        body.reset_token,
        body.new_password,
        caller=caller,
        clock=clock,
        limits=limits,
        hasher=hasher,
        codes=codes,
        known_addresses=known_addresses,
        events=events,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    "/me/newsletter",
    operation_id="setNewsletter",
    summary="Subscribe to or unsubscribe from the newsletter",
    response_model=Account,
    responses=problem_responses(VALIDATION, UNAUTHENTICATED),
)
async def set_newsletter(
    body: NewsletterRequest,
    user: CurrentAccount,
    session: SessionDep,
    clock: ClockDep,
    events: EventsDep,
) -> Account:
    """Subscribe to or unsubscribe from the newsletter."""
    return _account(
        await newsletter.set_newsletter(session, user, body.subscribed, clock=clock, events=events)
    )


@router.post(
    "/clients",
    operation_id="createClient",
    summary="Create an API client",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiClientCreated,
    responses=problem_responses(VALIDATION, UNAUTHENTICATED, (403, "email_not_verified")),
)
async def create_client(
    body: ClientCreateRequest,
    response: Response,
    user: CurrentAccount,
    session: SessionDep,
    clock: ClockDep,
) -> ApiClientCreated:
    """Create partner credentials for the client-credentials grant. The secret is shown once."""
    created = await clients.create_client(session, user, body.name, clock=clock)
    response.headers.update(NO_STORE)
    return ApiClientCreated(**_client(created.client).model_dump(), client_secret=created.secret)


@router.get(
    "/clients",
    operation_id="listClients",
    dependencies=[Depends(strict_query(("limit", "cursor")))],
    summary="List your API clients",
    response_model=Page[ApiClientOut],
    responses={
        # `Page` is generic and shared: its example belongs to this use of it.
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "items": [API_CLIENT_EXAMPLE],
                        # Not null: FastAPI drops None values from the document it renders.
                        "next_cursor": (
                            "WyIyMDI2LTExLTI3VDE1OjMyOjAwKzAwOjAwIiwibm1jX2Q0MjE1ZDFlOTgyNzNmMzRhMWQ3Il0"
                        ),
                    }
                }
            }
        },
        **problem_responses(VALIDATION, UNAUTHENTICATED),
    },
)
async def list_clients(
    user: CurrentAccount,
    session: SessionDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[ApiClientOut]:
    """The account's active API clients, oldest first (secrets are never shown again)."""
    after = None
    if cursor is not None:
        _, created_at, client_id = decode_position(cursor, id_type="str")
        after = (created_at, client_id)
    rows, more = await clients.list_clients(session, user, limit=limit, after=after)
    next_cursor = (
        encode_cursor(rows[-1].created_at.isoformat(), rows[-1].client_id) if more else None
    )
    return Page[ApiClientOut](items=[_client(row) for row in rows], next_cursor=next_cursor)


@router.delete(
    "/clients/{client_id}",
    operation_id="deleteClient",
    summary="Revoke an API client",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(UNAUTHENTICATED, (404, "not_found")),
)
async def revoke_client(
    client_id: str, user: CurrentAccount, session: SessionDep, clock: ClockDep, events: EventsDep
) -> Response:
    """Revoke an API client; it can obtain no new tokens."""
    await clients.revoke_client(session, user, client_id, clock=clock, events=events)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _basic_credentials(authorization: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidClient(basic=True) from exc
    raw_id, separator, raw_secret = decoded.partition(":")
    if not separator:
        raise InvalidClient(basic=True)
    # RFC 6749 §2.3.1: both halves are form-urlencoded before base64.
    return unquote_plus(raw_id), unquote_plus(raw_secret)


@router.post(
    "/token",
    operation_id="issueClientToken",
    summary="Get a client-credentials token",
    response_model=ClientToken,
    responses=problem_responses(
        (400, "invalid_request"),
        (400, "unsupported_grant_type"),
        (400, "invalid_scope"),
        (401, "invalid_client"),
        RATE_LIMITED,
        VALIDATION,
    ),
)
async def client_credentials_token(
    form: Annotated[ClientCredentialsForm, Form()],
    response: Response,
    session: SessionDep,
    limits: LimitsDep,
    issuer: IssuerDep,
    authorization: ClientBasicHeader,
) -> ClientToken:
    """OAuth 2.0 client credentials (RFC 6749 §4.4): form fields or HTTP Basic.

    The token carries scope `media:download`; there is no refresh token, ask again instead.
    """
    grant_type, client_id, client_secret = form.grant_type, form.client_id, form.client_secret
    if not grant_type:
        raise InvalidGrantRequest
    if grant_type != "client_credentials":
        raise UnsupportedGrantType
    basic = authorization is not None and authorization[:6].lower() == "basic "
    if basic:
        assert authorization is not None
        if client_secret is not None:
            raise InvalidGrantRequest  # one authentication method per request (§2.3)
        client_id, client_secret = _basic_credentials(authorization)
    if not client_id or not client_secret:
        raise InvalidClient(basic=basic)
    issued = await clients.client_token(
        session,
        client_id,
        client_secret,
        scope=form.scope,
        basic=basic,
        limits=limits,
        issuer=issuer,
    )
    response.headers.update(NO_STORE)
    return ClientToken(access_token=issued.token, expires_in=issued.expires_in, scope=issued.scope)


@well_known.get(
    "/.well-known/jwks.json",
    operation_id="getJwks",
    summary="Get the token signing keys",
    responses={
        200: {
            "description": "JWK Set (RFC 7517)",
            "content": {"application/json": {"example": {"keys": [JWK_EXAMPLE]}}},
        }
    },
)
async def jwks(request: Request) -> Response:
    """The public keys that sign access tokens (several during a key rotation)."""
    body: bytes = request.app.state.jwks_bytes
    return conditional_response(
        request,
        body,
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )
