"""Dependencies of the auth routes: the service, the caller's address, the current account
(named for routes in `auth.py`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from services.auth.exceptions import AccountRequired
from services.auth.models import User
from services.auth.service import AuthService
from services.common import security
from services.common.client_address import client_address
from services.common.database import SessionDep
from services.common.i18n import N_
from services.common.jwt import Principal
from services.common.problems import InvalidToken
from services.common.revocation import token_epoch


# Async on purpose: FastAPI runs a plain `def` dependency in a worker thread, one hop per call.
async def auth_service(request: Request) -> AuthService:
    service: AuthService = request.app.state.auth_service
    return service


async def caller_address(request: Request) -> str:
    return client_address(request, request.app.state.settings.trusted_proxies)


def account_id(principal: Principal) -> uuid.UUID:
    """The account id a bearer token speaks for (client tokens speak for none)."""
    if principal.is_client:
        raise AccountRequired
    try:
        return uuid.UUID(principal.subject)
    except ValueError as exc:
        raise AccountRequired from exc


async def current_account(
    principal: Annotated[Principal, Depends(security.principal)], session: SessionDep
) -> User:
    """The account the bearer token speaks for, loaded to be changed: one primary-key lookup,
    which also refuses a token of an ended session (401 `invalid_token`)."""
    user = await session.get(User, account_id(principal))
    if user is None:
        raise AccountRequired
    # Every route that loads the account does so to change it or to mint credentials: the
    # database decides whether the token's session has ended, not only the token's expiry.
    if token_epoch(principal) != user.session_epoch:
        raise InvalidToken(N_("This session has ended; log in again."))
    return user


Service = Annotated[AuthService, Depends(auth_service)]
Caller = Annotated[str, Depends(caller_address)]
