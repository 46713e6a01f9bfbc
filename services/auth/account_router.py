"""HTTP routes of the account page: password, address, sessions, erasure, export, settings.

The rules live in `lifecycle`; these routes use the ordinary dependencies of the auth service.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response, status

from services.auth import lifecycle
from services.auth.account_schemas import (
    EXPORT_EXAMPLE,
    AccountExport,
    AccountUpdate,
    AccountWithTokens,
    EmailChangeCode,
    EmailChangeRequest,
    EmailChangeUndo,
    PasswordChangeRequest,
    PasswordConfirmation,
    SessionList,
    SessionOut,
)
from services.auth.auth import CurrentAccount, CurrentPrincipal
from services.auth.dependencies import (
    Caller,
    ClockDep,
    CodesDep,
    EventsDep,
    HasherDep,
    KnownAddressesDep,
    LimitsDep,
    SessionDep,
    SettingsDep,
    TokensDep,
)
from services.auth.router import NO_STORE, RATE_LIMITED, UNAUTHENTICATED, VALIDATION, _account
from services.auth.schemas import Account, CodeRequested, TokenPair
from services.auth.session_tokens import IssuedTokens
from services.common.i18n import N_
from services.common.problems import InvalidToken, problem_responses

router = APIRouter(prefix="/v1/auth", tags=["auth"])

WRONG_PASSWORD = (403, "invalid_credentials")
CODE_ERRORS = ((400, "invalid_code"), (400, "code_expired"), (429, "too_many_attempts"))


async def current_session_id(principal: CurrentPrincipal, session: SessionDep) -> uuid.UUID | None:
    """The session (`sid`) the access token was issued to; a session ended on its own from the
    account page is refused here at once (elsewhere its token expires within minutes)."""
    raw = principal.claims.get("sid")
    if not isinstance(raw, str):
        return None
    try:
        session_id = uuid.UUID(raw)
    except ValueError:
        return None
    if await lifecycle.session_ended(session, session_id):
        raise InvalidToken(N_("This session has ended; log in again."))
    return session_id


ThisSession = Annotated[uuid.UUID | None, Depends(current_session_id)]


def _pair(issued: IssuedTokens) -> TokenPair:
    return TokenPair(
        access_token=issued.access.token,
        expires_in=issued.access.expires_in,
        refresh_token=issued.refresh_token,
    )


def _user_agent(request: Request) -> str | None:
    return request.headers.get("user-agent")


@router.put(
    "/me/password",
    summary="Change your password",
    operation_id="changePassword",
    response_model=TokenPair,
    responses=problem_responses(
        VALIDATION, UNAUTHENTICATED, WRONG_PASSWORD, (422, "weak_password"), RATE_LIMITED
    ),
)
async def change_password(
    body: PasswordChangeRequest,
    request: Request,
    response: Response,
    user: CurrentAccount,
    this_session: ThisSession,
    session: SessionDep,
    clock: ClockDep,
    limits: LimitsDep,
    hasher: HasherDep,
    tokens: TokensDep,
    events: EventsDep,
    caller: Caller,
) -> TokenPair:
    """Set a new password. This session goes on with the new token pair; every other session
    ends and a notice is emailed. A wrong current password is 403 `invalid_credentials` and
    counts as a failed login."""
    issued = await lifecycle.change_password(
        session,
        user,
        body.current_password,
        body.new_password,
        session_id=this_session,
        caller=caller,
        user_agent=_user_agent(request),
        clock=clock,
        limits=limits,
        hasher=hasher,
        tokens=tokens,
        events=events,
    )
    response.headers.update(NO_STORE)
    return _pair(issued)


@router.post(
    "/logout-all",
    summary="Log out everywhere",
    operation_id="logoutAll",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(UNAUTHENTICATED),
)
async def logout_all(user: CurrentAccount, session: SessionDep, events: EventsDep) -> Response:
    """End every session of the account, this one included: refresh tokens at once, access
    tokens and download links everywhere (within seconds with Redis, else as they expire)."""
    await lifecycle.logout_all(session, user, events=events)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/sessions",
    summary="List your sessions",
    operation_id="listSessions",
    response_model=SessionList,
    responses=problem_responses(UNAUTHENTICATED),
)
async def list_sessions(
    user: CurrentAccount, this_session: ThisSession, session: SessionDep, clock: ClockDep
) -> SessionList:
    """The account's signed-in sessions, most recently used first; `current` marks this one.
    A session opened by a verification code shows once it has refreshed its tokens."""
    views = await lifecycle.list_sessions(session, user, this_session, clock=clock)
    return SessionList(
        items=[
            SessionOut(
                id=view.row.id,
                created_at=view.row.created_at,
                last_used_at=view.row.last_used_at,
                client_address=view.row.client_address,
                user_agent=view.row.user_agent,
                current=view.current,
            )
            for view in views
        ]
    )


@router.delete(
    "/sessions/{session_id}",
    summary="End one session",
    operation_id="deleteSession",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(UNAUTHENTICATED, (404, "not_found"), VALIDATION),
)
async def delete_session(
    session_id: uuid.UUID,
    user: CurrentAccount,
    this_session: ThisSession,
    session: SessionDep,
    tokens: TokensDep,
) -> Response:
    """End one session: its refresh token stops at once, its access token at this service at
    once and elsewhere when it expires (minutes). Another account's session id is 404."""
    await lifecycle.end_session(session, user, session_id, tokens=tokens)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/me/email",
    summary="Change your email address",
    operation_id="changeEmail",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CodeRequested,
    responses=problem_responses(
        VALIDATION, UNAUTHENTICATED, WRONG_PASSWORD, (422, "unsupported_address"), RATE_LIMITED
    ),
)
async def change_email(
    body: EmailChangeRequest,
    user: CurrentAccount,
    this_session: ThisSession,
    session: SessionDep,
    settings: SettingsDep,
    limits: LimitsDep,
    hasher: HasherDep,
    codes: CodesDep,
    known_addresses: KnownAddressesDep,
    events: EventsDep,
    caller: Caller,
) -> CodeRequested:
    """Email a 6-digit code to the new address; the change takes effect when it is verified.
    A taken address gets the same answer (its owner gets a notice)."""
    resend_after = await lifecycle.request_email_change(
        session,
        user,
        body.new_email,
        body.password,
        caller=caller,
        settings=settings,
        limits=limits,
        hasher=hasher,
        codes=codes,
        known_addresses=known_addresses,
        events=events,
    )
    return CodeRequested(code_expires_in=settings.code_ttl_seconds, resend_after=resend_after)


@router.post(
    "/me/email/verify",
    summary="Confirm your new email address",
    operation_id="verifyEmailChange",
    response_model=AccountWithTokens,
    responses=problem_responses(
        VALIDATION, UNAUTHENTICATED, *CODE_ERRORS, (409, "email_taken"), RATE_LIMITED
    ),
)
async def verify_email_change(
    body: EmailChangeCode,
    request: Request,
    response: Response,
    user: CurrentAccount,
    this_session: ThisSession,
    session: SessionDep,
    clock: ClockDep,
    limits: LimitsDep,
    codes: CodesDep,
    tokens: TokensDep,
    events: EventsDep,
    caller: Caller,
) -> AccountWithTokens:
    """Redeem the code sent to the new address: the account moves to it, every other session
    ends (this one goes on with `tokens`), and the old address gets a code that undoes the
    change within 7 days."""
    issued = await lifecycle.verify_email_change(
        session,
        user,
        body.code,
        session_id=this_session,
        caller=caller,
        user_agent=_user_agent(request),
        clock=clock,
        limits=limits,
        codes=codes,
        tokens=tokens,
        events=events,
    )
    response.headers.update(NO_STORE)
    return AccountWithTokens(**_account(user).model_dump(), tokens=_pair(issued))


@router.post(
    "/me/email/undo",
    summary="Undo an email change",
    operation_id="undoEmailChange",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(VALIDATION, *CODE_ERRORS, (409, "email_taken"), RATE_LIMITED),
)
async def undo_email_change(
    body: EmailChangeUndo,
    session: SessionDep,
    clock: ClockDep,
    limits: LimitsDep,
    hasher: HasherDep,
    codes: CodesDep,
    known_addresses: KnownAddressesDep,
    events: EventsDep,
    caller: Caller,
) -> Response:
    """For the previous address, within 7 days, with the code mailed there: the account comes
    back to it. No token is needed (whoever changed the address may hold the sessions): every
    session and API client ends and the password is replaced; choose a new one with a
    password reset."""
    await lifecycle.undo_email_change(
        session,
        body.email,
        body.code,
        caller=caller,
        clock=clock,
        limits=limits,
        hasher=hasher,
        codes=codes,
        known_addresses=known_addresses,
        events=events,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch(
    "/me",
    summary="Update your account settings",
    operation_id="updateAccount",
    response_model=Account,
    responses=problem_responses(VALIDATION, UNAUTHENTICATED),
)
async def update_account(
    body: AccountUpdate,
    user: CurrentAccount,
    session: SessionDep,
    clock: ClockDep,
    events: EventsDep,
) -> Account:
    """Change the account's language (`en`, `fr`) or newsletter subscription; fields left out
    stay as they are."""
    updated = await lifecycle.update_settings(
        session,
        user,
        language=body.language,
        newsletter=body.newsletter,
        clock=clock,
        events=events,
    )
    return _account(updated)


@router.delete(
    "/me",
    summary="Delete your account",
    operation_id="deleteAccount",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(VALIDATION, UNAUTHENTICATED, WRONG_PASSWORD, RATE_LIMITED),
)
async def delete_account(
    body: Annotated[PasswordConfirmation, Body()],
    user: CurrentAccount,
    session: SessionDep,
    clock: ClockDep,
    limits: LimitsDep,
    hasher: HasherDep,
    events: EventsDep,
    caller: Caller,
) -> Response:
    """Erase the account: its codes, sessions, login memo, API clients and queued mail go with
    it, every token ends, a goodbye notice is mailed, and the address may register again."""
    await lifecycle.delete_account(
        session,
        user,
        body.password,
        caller=caller,
        clock=clock,
        limits=limits,
        hasher=hasher,
        events=events,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/me/export",
    summary="Export your data",
    operation_id="exportAccount",
    response_model=AccountExport,
    responses={
        200: {"content": {"application/json": {"example": EXPORT_EXAMPLE}}},
        **problem_responses(UNAUTHENTICATED),
    },
)
async def export_account(
    response: Response, user: CurrentAccount, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """Everything the auth service holds about the account, as JSON (GDPR Art. 15 and 20).
    API client secrets are not included (only digests are kept); login addresses are kept as
    keyed digests and are counted, not shown. Download history: `GET /v1/media/me/downloads`."""
    response.headers.update(NO_STORE)
    return await lifecycle.export(session, user, settings=settings)
