"""Dependencies of the auth routes: what the app built at start, the caller's address, the
current account (named for routes in `auth.py`).

Every dependency is `async def`, even the getters: FastAPI runs a plain `def` dependency in its
thread pool, a thread hop per request for one attribute read.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from services.auth.account_events import AccountEvents
from services.auth.codes import CodeBook
from services.auth.config import AuthSettings
from services.auth.exceptions import AccountRequired
from services.auth.limits import AuthLimits
from services.auth.login_addresses import KnownAddresses
from services.auth.models import User
from services.auth.passwords import PasswordHasher
from services.auth.session_tokens import SessionTokens
from services.auth.tokens import AccessTokenIssuer
from services.common import security
from services.common.client_address import client_address
from services.common.clock import Clock
from services.common.database import SessionDep
from services.common.i18n import N_
from services.common.jwt import Principal
from services.common.problems import InvalidToken
from services.common.revocation import token_epoch

__all__ = [
    "Caller",
    "ClockDep",
    "CodesDep",
    "EventsDep",
    "HasherDep",
    "IssuerDep",
    "KnownAddressesDep",
    "LimitsDep",
    "SessionDep",
    "SettingsDep",
    "TokensDep",
]


async def get_settings(request: Request) -> AuthSettings:
    settings: AuthSettings = request.app.state.settings
    return settings


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_limits(request: Request) -> AuthLimits:
    limits: AuthLimits = request.app.state.limits
    return limits


async def get_hasher(request: Request) -> PasswordHasher:
    hasher: PasswordHasher = request.app.state.hasher
    return hasher


async def get_codes(request: Request) -> CodeBook:
    codes: CodeBook = request.app.state.codes
    return codes


async def get_known_addresses(request: Request) -> KnownAddresses:
    known: KnownAddresses = request.app.state.known_addresses
    return known


async def get_tokens(request: Request) -> SessionTokens:
    tokens: SessionTokens = request.app.state.session_tokens
    return tokens


async def get_issuer(request: Request) -> AccessTokenIssuer:
    issuer: AccessTokenIssuer = request.app.state.issuer
    return issuer


async def get_events(request: Request) -> AccountEvents:
    events: AccountEvents = request.app.state.account_events
    return events


async def caller_address(request: Request) -> str:
    return client_address(request, (await get_settings(request)).trusted_proxies)


SettingsDep = Annotated[AuthSettings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
LimitsDep = Annotated[AuthLimits, Depends(get_limits)]
HasherDep = Annotated[PasswordHasher, Depends(get_hasher)]
CodesDep = Annotated[CodeBook, Depends(get_codes)]
KnownAddressesDep = Annotated[KnownAddresses, Depends(get_known_addresses)]
TokensDep = Annotated[SessionTokens, Depends(get_tokens)]
IssuerDep = Annotated[AccessTokenIssuer, Depends(get_issuer)]
EventsDep = Annotated[AccountEvents, Depends(get_events)]
Caller = Annotated[str, Depends(caller_address)]


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
