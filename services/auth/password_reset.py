"""Password reset: a code by mail, exchanged for a single-use reset token, which sets the
password and ends every session and API client of the account."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth import emails
from services.auth.account_events import AccountEvents
from services.auth.accounts import find_user, mark_verified, request_code
from services.auth.addresses import EmailAddress
from services.auth.clients import revoke_clients
from services.auth.codes import CodeBook
from services.auth.config import AuthSettings
from services.auth.digests import keyed_digest, new_opaque_token
from services.auth.exceptions import InvalidCode, InvalidResetToken, WeakPassword
from services.auth.limits import AuthLimits
from services.auth.login_addresses import KnownAddresses
from services.auth.models import CodePurpose, CodeRequestAction, PasswordResetToken, User
from services.auth.passwords import PasswordHasher, failed_rules
from services.common.clock import Clock


def _reset_digest(codes: CodeBook, token: str) -> str:
    return keyed_digest(codes.key, "reset", token)


async def request_password_reset(
    session: AsyncSession,
    email: EmailAddress,
    *,
    caller: str,
    limits: AuthLimits,
    known_addresses: KnownAddresses,
    events: AccountEvents,
) -> int:
    """Returns the seconds until another code can be asked for (for every address alike)."""
    await limits.limiter.hit(limits.reset, "password-reset", caller)
    user = await find_user(session, email)
    return await request_code(
        session,
        CodeRequestAction.RESET,
        email,
        user,
        caller,
        limits=limits,
        known_addresses=known_addresses,
        events=events,
    )


async def verify_password_reset(
    session: AsyncSession,
    email: EmailAddress,
    code: str,
    *,
    caller: str,
    settings: AuthSettings,
    clock: Clock,
    limits: AuthLimits,
    hasher: PasswordHasher,
    codes: CodeBook,
    known_addresses: KnownAddresses,
    events: AccountEvents,
) -> tuple[str, int]:
    await limits.limiter.hit(limits.verify, "verify", caller)
    user = await find_user(session, email)
    owner = await codes.redeem(session, CodePurpose.RESET_PASSWORD, email.canonical, code)
    if user is None or owner != user.id:
        raise InvalidCode  # the code outlived its account
    now = clock.now()
    if user.email_verified_at is None:
        # The code reached the inbox: that proves the address as well as verification does.
        await mark_verified(
            session, user, clock=clock, events=events, known_addresses=known_addresses
        )
        # The password on file was set before anyone proved the address, possibly by someone
        # else: it must not log in to the now verified account. The reset that follows sets
        # the owner's own.
        user.password_hash = await hasher.hash(secrets.token_urlsafe(32))
        user.registration_contested = False
    token = new_opaque_token()
    ttl = settings.reset_token_ttl_seconds
    session.add(
        PasswordResetToken(
            user_id=user.id,
            token_hash=_reset_digest(codes, token),
            expires_at=now + timedelta(seconds=ttl),
            created_at=now,
        )
    )
    return token, ttl


async def complete_password_reset(
    session: AsyncSession,
    reset_token: str,
    new_password: str,
    *,
    caller: str,
    clock: Clock,
    limits: AuthLimits,
    hasher: PasswordHasher,
    codes: CodeBook,
    known_addresses: KnownAddresses,
    events: AccountEvents,
) -> None:
    now = clock.now()
    row = await session.scalar(
        select(PasswordResetToken).where(
            PasswordResetToken.token_hash == _reset_digest(codes, reset_token)
        )
    )
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise InvalidResetToken
    user = await session.get(User, row.user_id)
    if user is None:
        raise InvalidResetToken
    failed = failed_rules(new_password, user.email_canonical.rsplit("@", 1)[0])
    if failed:
        raise WeakPassword(failed, field="new_password")
    password_hash = await hasher.hash(new_password)
    spent = cast(
        CursorResult[Any],
        await session.execute(
            update(PasswordResetToken)
            .where(PasswordResetToken.id == row.id, PasswordResetToken.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        ),
    )
    if spent.rowcount != 1:
        raise InvalidResetToken
    # Every other outstanding reset token of the account dies with this one.
    await session.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.user_id == user.id, PasswordResetToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    user.password_hash = password_hash
    user.registration_contested = False
    # Whoever knew the old password may have made sessions and API clients: all end.
    events.end_sessions(session, user)
    revoked_clients = await revoke_clients(session, user, clock=clock, events=events)
    # The mailbox answered, so this address is the owner's: addresses known before stay known
    # (they only pass the account-wide limit, and the owner's other devices keep working).
    await known_addresses.remember(session, user.id, caller)
    # Whoever held the account locked from elsewhere does not keep its owner out.
    await limits.limiter.clear(
        limits.login_failures_account, "login-failures", user.email_canonical
    )
    events.mail(
        session, emails.password_changed(user.email, revoked_clients, language=user.language)
    )
