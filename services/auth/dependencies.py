"""Dependencies of the auth routes: the service, the caller's address, the current account."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from services.auth.exceptions import AccountRequired
from services.auth.models import User
from services.auth.service import AuthService
from services.common.client_address import client_address
from services.common.database import SessionDep
from services.common.security import CurrentPrincipal


def auth_service(request: Request) -> AuthService:
    service: AuthService = request.app.state.auth_service
    return service


def caller_address(request: Request) -> str:
    return client_address(request, request.app.state.settings.trusted_proxies)


async def current_account(principal: CurrentPrincipal, session: SessionDep) -> User:
    """The account the bearer token speaks for: one primary-key lookup."""
    if principal.is_client:
        raise AccountRequired
    try:
        user_id = uuid.UUID(principal.subject)
    except ValueError as exc:
        raise AccountRequired from exc
    user = await session.get(User, user_id)
    if user is None:
        raise AccountRequired
    return user


Service = Annotated[AuthService, Depends(auth_service)]
Caller = Annotated[str, Depends(caller_address)]
CurrentAccount = Annotated[User, Depends(current_account)]
