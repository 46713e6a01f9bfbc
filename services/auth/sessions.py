"""Sessions: login, refresh and logout."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.auth.addresses import EmailAddress
from services.auth.exceptions import AccountLocked, InvalidCredentials, InvalidRefreshToken
from services.auth.limits import AuthLimits
from services.auth.login_addresses import NO_ACCOUNT, KnownAddresses
from services.auth.models import SignInSession, User
from services.auth.passwords import PasswordHasher
from services.auth.refresh_tokens import RefreshClaims
from services.auth.session_tokens import IssuedTokens, SessionTokens
from services.common.clock import Clock
from services.common.database import conflict_insert

_USERS = cast(Table, User.__table__)
# Built once: a Core statement on the table skips the ORM's execution path, and its cache key
# is computed on first use and kept (a statement built per call computes it every time).
_CREDENTIALS = select(
    _USERS.c.id,
    _USERS.c.password_hash,
    _USERS.c.email_verified_at,
    _USERS.c.roles,
    _USERS.c.session_epoch,
).where(_USERS.c.email_canonical == bindparam("email"))


@dataclass(frozen=True)
class Credentials:
    """What a login reads of an account."""

    id: uuid.UUID
    password_hash: str
    email_verified_at: datetime | None
    roles: list[str]
    session_epoch: int

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None


async def _credentials(session: AsyncSession, email: EmailAddress) -> Credentials | None:
    # On a connection of its own, returned to the pool before the hash: logins waiting for
    # the hashing thread must not hold every pooled connection the other requests need.
    engine = session.bind
    assert isinstance(engine, AsyncEngine)
    async with engine.connect() as connection:
        row = (await connection.execute(_CREDENTIALS, {"email": email.canonical})).first()
    return None if row is None else Credentials(*row)


async def login(
    session: AsyncSession,
    email: EmailAddress,
    password: str,
    *,
    caller: str,
    user_agent: str | None = None,
    limits: AuthLimits,
    hasher: PasswordHasher,
    known_addresses: KnownAddresses,
    tokens: SessionTokens,
) -> IssuedTokens:
    limiter = limits.limiter
    await limiter.hit(limits.login, "login", caller)
    # Only failures count against an account, in windows that run out. One address gets a
    # few guesses per account; everyone together gets more per hour, except that an address
    # which logged in to the account lately is not held by that account-wide limit: failing
    # on purpose from elsewhere cannot lock the owner out, for a window or for good.
    pair_limit = limits.login_failures_pair
    account_limit = limits.login_failures_account
    pair_key = ("login-failures", email.canonical, caller)
    account_key = ("login-failures", email.canonical)
    await limiter.check(pair_limit, *pair_key)
    account_locked = not await limiter.would_allow(account_limit, *account_key)
    user = await _credentials(session, email)
    if account_locked and not await known_addresses.is_known(
        session, user.id if user else NO_ACCOUNT, caller
    ):
        raise AccountLocked(await limiter.retry_after(account_limit, *account_key))
    new_hash: str | None = None
    if user is None:
        await hasher.verify_nothing(password)
        ok = False
    else:
        ok, new_hash = await hasher.verify(password, user.password_hash)
    if not ok or user is None:
        await limiter.allow(pair_limit, *pair_key)
        await limiter.allow(account_limit, *account_key)
        raise InvalidCredentials
    if new_hash is not None:
        await session.execute(update(User).where(User.id == user.id).values(password_hash=new_hash))
    await known_addresses.remember(session, user.id, caller)
    return tokens.sign_in(session, user, caller=caller, user_agent=user_agent)


async def refresh(
    session: AsyncSession, refresh_token: str, *, clock: Clock, tokens: SessionTokens
) -> IssuedTokens:
    claims = tokens.refresh_tokens.read(refresh_token)
    user = await session.get(User, claims.user_id)
    if user is None or user.session_epoch != claims.session_epoch:
        # Every session of the account ended (a password reset) after this one began.
        raise InvalidRefreshToken
    next_token = await tokens.refresh_tokens.rotate(session, claims)
    await _session_used(session, claims, clock)
    return IssuedTokens(tokens.access(user, claims.family_id), next_token, claims.family_id)


async def _session_used(session: AsyncSession, claims: RefreshClaims, clock: Clock) -> None:
    """Note the refresh on the session's row; a login made by a code (verify) gets its
    row here, without the address and user agent it came from."""
    now = clock.now()
    await session.execute(
        conflict_insert(session, SignInSession)
        .values(
            id=claims.family_id,
            user_id=claims.user_id,
            session_epoch=claims.session_epoch,
            created_at=now,
            last_used_at=now,
            expires_at=claims.expires_at,
        )
        .on_conflict_do_update(index_elements=["id"], set_={"last_used_at": now})
    )


async def logout(session: AsyncSession, refresh_token: str, *, tokens: SessionTokens) -> None:
    try:
        claims = tokens.refresh_tokens.read(refresh_token)
    except InvalidRefreshToken:
        return  # not one of ours: there is no session to end
    # The family's row refers to its account; a database restored from before the account
    # has no session of it to end.
    if await session.get(User, claims.user_id) is not None:
        await tokens.refresh_tokens.end_family(session, claims)
