"""Registration and address verification.

A taken address costs what a new one does: one Argon2 computation and the same statements for
every address, and the same answer.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.account_events import AccountEvents
from services.auth.accounts import find_user, mark_verified, request_code
from services.auth.addresses import EmailAddress
from services.auth.codes import CodeBook
from services.auth.config import AuthSettings
from services.auth.exceptions import InvalidCode, PasswordRequired, UnsupportedAddress, WeakPassword
from services.auth.limits import AuthLimits
from services.auth.login_addresses import KnownAddresses
from services.auth.models import CodePurpose, CodeRequestAction, User
from services.auth.passwords import PasswordHasher, failed_rules
from services.auth.session_tokens import IssuedTokens, SessionTokens
from services.common.clock import Clock
from services.common.database import conflict_insert
from services.common.i18n import DEFAULT_LANGUAGE


async def register(
    session: AsyncSession,
    email: EmailAddress,
    password: str,
    *,
    newsletter: bool,
    language: str = DEFAULT_LANGUAGE,
    caller: str,
    settings: AuthSettings,
    clock: Clock,
    limits: AuthLimits,
    hasher: PasswordHasher,
    known_addresses: KnownAddresses,
    events: AccountEvents,
) -> int:
    """Returns the seconds until another code can be asked for (for every address alike)."""
    await limits.limiter.hit(limits.register, "register", caller)
    if not settings.mail_smtputf8 and not email.normalized.isascii():
        # Without SMTPUTF8 the code could never be delivered: say so now, not never.
        raise UnsupportedAddress
    failed = failed_rules(password, email.local_part)
    if failed:
        raise WeakPassword(failed)
    user = await find_user(session, email)
    if user is not None and not user.email_verified:
        # The password on file stays: whoever typed the address again may not own it. If the
        # two differ, two people claim the address, and the code's redeemer settles which
        # password the account gets (`verify_email`).
        password_hash = user.password_hash
        contested = not await hasher.matches(password, password_hash)
    else:
        password_hash = await hasher.hash(password)
        contested = False
    now = clock.now()
    await session.execute(
        conflict_insert(session, User)
        .values(
            id=uuid.uuid4(),
            email=email.normalized,
            email_canonical=email.canonical,
            password_hash=password_hash,
            newsletter=newsletter,
            newsletter_since=now if newsletter else None,
            language=language,
            roles=[],
            session_epoch=0,
            registration_contested=False,
            created_at=now,
            updated_at=now,
        )
        # A taken address (or one registered by a parallel request a moment ago) is left
        # as it is.
        .on_conflict_do_nothing(index_elements=["email_canonical"])
    )
    return await request_code(
        session,
        CodeRequestAction.REGISTER,
        email,
        user,
        caller,
        limits=limits,
        known_addresses=known_addresses,
        events=events,
        contested=contested,
        language=language,
    )


async def verify_email(
    session: AsyncSession,
    email: EmailAddress,
    code: str,
    *,
    password: str | None = None,
    caller: str,
    user_agent: str | None = None,
    clock: Clock,
    limits: AuthLimits,
    hasher: PasswordHasher,
    codes: CodeBook,
    known_addresses: KnownAddresses,
    tokens: SessionTokens,
    events: AccountEvents,
) -> IssuedTokens:
    await limits.limiter.hit(limits.verify, "verify", caller)
    # Before the code, so a password the policy refuses spends no try.
    if password is not None:
        failed = failed_rules(password, email.local_part)
        if failed:
            raise WeakPassword(failed)
    user = await find_user(session, email)
    # A contested registration does not spend its code without a password: the owner
    # answering with the code alone must not hand the account to the other registrant.
    password_required = user is not None and user.registration_contested and password is None
    owner = await codes.redeem(
        session,
        CodePurpose.VERIFY_EMAIL,
        email.canonical,
        code,
        consume=not password_required,
    )
    if user is None or owner != user.id:
        raise InvalidCode  # the code outlived its account
    if password_required:
        raise PasswordRequired
    if password is not None:
        user.password_hash = await hasher.hash(password)
        user.registration_contested = False
    if user.email_verified_at is None:
        await mark_verified(
            session, user, clock=clock, events=events, known_addresses=known_addresses
        )
    # Signing in with the emailed code counts as a login from this address.
    await known_addresses.remember(session, user.id, caller)
    return tokens.sign_in(session, user, caller=caller, user_agent=user_agent)


async def resend_verification(
    session: AsyncSession,
    email: EmailAddress,
    *,
    caller: str,
    limits: AuthLimits,
    known_addresses: KnownAddresses,
    events: AccountEvents,
) -> int:
    """Returns the seconds until another code can be asked for (for every address alike)."""
    await limits.limiter.hit(limits.resend, "resend", caller)
    user = await find_user(session, email)
    return await request_code(
        session,
        CodeRequestAction.RESEND,
        email,
        user,
        caller,
        limits=limits,
        known_addresses=known_addresses,
        events=events,
    )
