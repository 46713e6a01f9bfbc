"""The account after registration: password and address changes, sessions, erasure, export.

Every call that ends sessions does it through the session epoch (`AccountEvents.end_sessions`),
so access tokens, refresh tokens and download URLs stop everywhere as DESIGN's revocation rule
says; the session the caller is using goes on with a pair issued under the new epoch.

Erasure: deleting an account deletes its row, and with it (foreign keys) its codes, refresh
families, sessions, remembered login addresses, reset tokens and API clients; queued mail to the
address is deleted too. The goodbye notice is queued afterwards and names only the address.
Media keeps download grants under the account's opaque id, and clears their client addresses
after 30 days like auth clears the sessions' (`purge_session_addresses`), so nothing has to be
asked of another service.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth import emails
from services.auth.account_events import AccountEvents
from services.auth.accounts import find_user
from services.auth.addresses import EmailAddress
from services.auth.clients import revoke_clients
from services.auth.codes import CodeBook
from services.auth.config import AuthSettings
from services.auth.exceptions import (
    EmailTaken,
    InvalidCode,
    SessionNotFound,
    UnsupportedAddress,
    WeakPassword,
    WrongPassword,
)
from services.auth.limits import AuthLimits, mail_budget
from services.auth.login_addresses import KnownAddresses
from services.auth.models import (
    ApiClient,
    CodePurpose,
    KnownLoginAddress,
    OutboxMessage,
    RefreshFamily,
    SignInSession,
    User,
)
from services.auth.passwords import PasswordHasher, failed_rules
from services.auth.refresh_tokens import RefreshClaims
from services.auth.session_tokens import IssuedTokens, SessionTokens
from services.common.clock import Clock
from services.common.database import Database
from services.common.i18n import N_
from services.common.problems import InvalidToken

# How long the previous address may undo an email change (someone holding the session may have
# made it to take the account over).
UNDO_EMAIL_CHANGE_DAYS = 7
# No client address is kept longer than this, in any service.
ADDRESS_RETENTION_DAYS = 30


@dataclass(frozen=True)
class SessionView:
    row: SignInSession
    current: bool


async def _confirm_password(
    session: AsyncSession,
    user: User,
    password: str,
    caller: str,
    *,
    limits: AuthLimits,
    hasher: PasswordHasher,
) -> None:
    """Check the password of a signed-in change; a wrong one counts as a failed login."""
    limiter = limits.limiter
    pair_limit = limits.login_failures_pair
    account_limit = limits.login_failures_account
    pair_key = ("login-failures", user.email_canonical, caller)
    account_key = ("login-failures", user.email_canonical)
    # A stolen access token must not be a way round the login's guessing limits.
    await limiter.check(pair_limit, *pair_key)
    ok, new_hash = await hasher.verify(password, user.password_hash)
    if not ok:
        await limiter.allow(pair_limit, *pair_key)
        await limiter.allow(account_limit, *account_key)
        raise WrongPassword
    if new_hash is not None:
        user.password_hash = new_hash


async def _end_other_sessions(
    session: AsyncSession,
    user: User,
    session_id: uuid.UUID | None,
    *,
    caller: str,
    user_agent: str | None,
    clock: Clock,
    tokens: SessionTokens,
    events: AccountEvents,
) -> IssuedTokens:
    """Raise the epoch (every session ends) and go on with this one under the new epoch."""
    events.end_sessions(session, user)
    row = None
    if session_id is not None:
        row = await session.scalar(
            select(SignInSession).where(
                SignInSession.id == session_id, SignInSession.user_id == user.id
            )
        )
    await session.execute(
        delete(SignInSession).where(
            SignInSession.user_id == user.id,
            *([SignInSession.id != row.id] if row is not None else []),
        )
    )
    if row is None:
        # The token's session has no row to carry on: this session starts afresh.
        return tokens.sign_in(session, user, caller=caller, user_agent=user_agent)
    claims = RefreshClaims(row.id, user.id, 0, row.session_epoch, row.expires_at)
    token = await tokens.refresh_tokens.reissue(session, claims, user.session_epoch)
    if token is None:
        raise InvalidToken(N_("This session has ended; log in again."))
    row.session_epoch = user.session_epoch
    row.last_used_at = clock.now()
    return IssuedTokens(tokens.access(user, row.id), token, row.id)


async def session_ended(session: AsyncSession, session_id: uuid.UUID) -> bool:
    """Whether the session an access token names was ended on its own (account page)."""
    revoked = await session.scalar(
        select(RefreshFamily.revoked_at).where(RefreshFamily.id == session_id)
    )
    return revoked is not None


# -- password and sessions ---------------------------------------------------------------------


async def change_password(
    session: AsyncSession,
    user: User,
    current_password: str,
    new_password: str,
    *,
    session_id: uuid.UUID | None,
    caller: str,
    user_agent: str | None,
    clock: Clock,
    limits: AuthLimits,
    hasher: PasswordHasher,
    tokens: SessionTokens,
    events: AccountEvents,
) -> IssuedTokens:
    # The policy first: a refused new password spends no guess of the current one.
    failed = failed_rules(new_password, user.email_canonical.rsplit("@", 1)[0])
    if failed:
        raise WeakPassword(failed, field="new_password")
    await _confirm_password(session, user, current_password, caller, limits=limits, hasher=hasher)
    user.password_hash = await hasher.hash(new_password)
    user.registration_contested = False
    issued = await _end_other_sessions(
        session,
        user,
        session_id,
        caller=caller,
        user_agent=user_agent,
        clock=clock,
        tokens=tokens,
        events=events,
    )
    events.mail(session, emails.password_changed(user.email, language=user.language))
    return issued


async def logout_all(session: AsyncSession, user: User, *, events: AccountEvents) -> None:
    events.end_sessions(session, user)
    await session.execute(delete(SignInSession).where(SignInSession.user_id == user.id))


async def list_sessions(
    session: AsyncSession, user: User, current: uuid.UUID | None, *, clock: Clock
) -> list[SessionView]:
    ended = exists().where(
        RefreshFamily.id == SignInSession.id, RefreshFamily.revoked_at.is_not(None)
    )
    rows = await session.scalars(
        select(SignInSession)
        .where(
            SignInSession.user_id == user.id,
            SignInSession.session_epoch == user.session_epoch,
            SignInSession.expires_at > clock.now(),
            ~ended,
        )
        .order_by(SignInSession.last_used_at.desc(), SignInSession.id)
    )
    return [SessionView(row, row.id == current) for row in rows]


async def end_session(
    session: AsyncSession, user: User, session_id: uuid.UUID, *, tokens: SessionTokens
) -> None:
    row = await session.scalar(
        select(SignInSession).where(
            SignInSession.id == session_id, SignInSession.user_id == user.id
        )
    )
    if row is None:
        raise SessionNotFound
    await tokens.refresh_tokens.revoke(session, row.id, user.id, row.expires_at)
    await session.delete(row)


# -- the address -------------------------------------------------------------------------------


async def request_email_change(
    session: AsyncSession,
    user: User,
    new_email: EmailAddress,
    password: str,
    *,
    caller: str,
    settings: AuthSettings,
    limits: AuthLimits,
    hasher: PasswordHasher,
    codes: CodeBook,
    known_addresses: KnownAddresses,
    events: AccountEvents,
) -> int:
    """Mail a code to the new address; returns the seconds until another may be asked for.

    A taken address is answered alike (its owner gets a notice instead), so the call is no
    way to learn which addresses have accounts.
    """
    if not settings.mail_smtputf8 and not new_email.normalized.isascii():
        raise UnsupportedAddress
    await _confirm_password(session, user, password, caller, limits=limits, hasher=hasher)
    owner = await find_user(session, new_email)
    allowed, resend_after = await mail_budget(
        session,
        "change-email",
        new_email,
        owner,
        caller,
        limits=limits,
        known_addresses=known_addresses,
    )
    if not allowed:
        return resend_after
    if owner is not None:
        if owner.id != user.id:
            events.mail(session, emails.email_change_taken(owner.email, language=owner.language))
        return resend_after
    user.pending_email = new_email.normalized
    code = await codes.issue(session, CodePurpose.CHANGE_EMAIL, new_email.canonical, user.id)
    events.mail(
        session,
        emails.email_change_code(
            new_email.normalized,
            code,
            settings.code_ttl_seconds // 60,
            codes.expiry(),
            language=user.language,
        ),
    )
    return resend_after


async def verify_email_change(
    session: AsyncSession,
    user: User,
    code: str,
    *,
    session_id: uuid.UUID | None,
    caller: str,
    user_agent: str | None,
    clock: Clock,
    limits: AuthLimits,
    codes: CodeBook,
    tokens: SessionTokens,
    events: AccountEvents,
) -> IssuedTokens:
    await limits.limiter.hit(limits.verify, "verify", caller)
    # The code was mailed to the pending address; with none pending the try still counts.
    pending = user.pending_email.lower() if user.pending_email else user.email_canonical
    owner = await codes.redeem(session, CodePurpose.CHANGE_EMAIL, pending, code)
    # The redeem committed the counted try: read the account again.
    await session.refresh(user)
    if owner != user.id or user.pending_email is None:
        raise InvalidCode
    new_address = user.pending_email
    new_canonical = new_address.lower()
    taken = await session.scalar(
        select(User.id).where(User.email_canonical == new_canonical, User.id != user.id)
    )
    if taken is not None:
        user.pending_email = None
        raise EmailTaken
    old_address = user.email
    now = clock.now()
    user.previous_email = old_address
    user.previous_email_canonical = user.email_canonical
    user.previous_email_until = now + timedelta(days=UNDO_EMAIL_CHANGE_DAYS)
    user.email = new_address
    user.email_canonical = new_canonical
    user.pending_email = None
    # The code reached the new inbox: the new address is proven.
    user.email_verified_at = now
    undo = await codes.issue(
        session,
        CodePurpose.UNDO_EMAIL_CHANGE,
        user.previous_email_canonical,
        user.id,
        ttl_seconds=UNDO_EMAIL_CHANGE_DAYS * 86400,
    )
    events.mail(
        session,
        emails.email_changed(
            old_address, new_address, undo, UNDO_EMAIL_CHANGE_DAYS, language=user.language
        ),
    )
    events.account_changed(session, user)
    return await _end_other_sessions(
        session,
        user,
        session_id,
        caller=caller,
        user_agent=user_agent,
        clock=clock,
        tokens=tokens,
        events=events,
    )


async def undo_email_change(
    session: AsyncSession,
    previous: EmailAddress,
    code: str,
    *,
    caller: str,
    clock: Clock,
    limits: AuthLimits,
    hasher: PasswordHasher,
    codes: CodeBook,
    known_addresses: KnownAddresses,
    events: AccountEvents,
) -> None:
    """Give the account back to the address it had before the last change.

    Whoever changed it may hold the password and the sessions: every session and API client
    ends and the password is replaced by a random one; the owner sets theirs with a reset.
    """
    await limits.limiter.hit(limits.verify, "verify", caller)
    user = await session.scalar(
        select(User).where(
            User.previous_email_canonical == previous.canonical,
            User.previous_email_until > clock.now(),
        )
    )
    owner = await codes.redeem(session, CodePurpose.UNDO_EMAIL_CHANGE, previous.canonical, code)
    if user is None or owner != user.id:
        raise InvalidCode  # the change was undone, or the account is gone, since
    await session.refresh(user)
    taken = await session.scalar(
        select(User.id).where(User.email_canonical == previous.canonical, User.id != user.id)
    )
    if taken is not None:
        raise EmailTaken
    assert user.previous_email is not None
    user.email = user.previous_email
    user.email_canonical = previous.canonical
    user.previous_email = user.previous_email_canonical = user.previous_email_until = None
    user.pending_email = None
    user.password_hash = await hasher.hash(secrets.token_urlsafe(32))
    events.end_sessions(session, user)
    revoked = await revoke_clients(session, user, clock=clock, events=events)
    await known_addresses.forget_all(session, user.id)
    await session.execute(delete(SignInSession).where(SignInSession.user_id == user.id))
    events.account_changed(session, user)
    events.mail(session, emails.email_change_undone(user.email, revoked, language=user.language))


# -- the account -------------------------------------------------------------------------------


async def update_settings(
    session: AsyncSession,
    user: User,
    *,
    language: str | None,
    newsletter: bool | None,
    clock: Clock,
    events: AccountEvents,
) -> User:
    changed = False
    if language is not None and user.language != language:
        user.language, changed = language, True
    if newsletter is not None and user.newsletter != newsletter:
        user.newsletter, changed = newsletter, True
        user.newsletter_since = clock.now() if newsletter else None
    if changed:
        events.account_changed(session, user)
    await session.flush()
    return user


async def delete_account(
    session: AsyncSession,
    user: User,
    password: str,
    *,
    caller: str,
    clock: Clock,
    limits: AuthLimits,
    hasher: PasswordHasher,
    events: AccountEvents,
) -> None:
    await _confirm_password(session, user, password, caller, limits=limits, hasher=hasher)
    address, language = user.email, user.language
    # Told to media and news after the commit: the account's tokens and URLs stop there too.
    events.end_sessions(session, user)
    await revoke_clients(session, user, clock=clock, events=events)
    recipients = [address, *([user.pending_email] if user.pending_email else [])]
    await session.execute(delete(OutboxMessage).where(OutboxMessage.recipient.in_(recipients)))
    events.account_changed(session, user)
    # Codes, refresh families, sessions, login addresses, reset tokens and API clients go
    # with the row (ON DELETE CASCADE).
    await session.delete(user)
    await session.flush()
    events.mail(session, emails.account_deleted(address, language=language))


async def export(session: AsyncSession, user: User, *, settings: AuthSettings) -> dict[str, Any]:
    sessions = await session.scalars(
        select(SignInSession)
        .where(SignInSession.user_id == user.id)
        .order_by(SignInSession.created_at)
    )
    clients = await session.scalars(
        select(ApiClient).where(ApiClient.owner_id == user.id).order_by(ApiClient.created_at)
    )
    known = await service_known_count(session, user.id)
    return {
        "account": {
            "id": user.id,
            "email": user.email,
            "email_verified": user.email_verified,
            "email_verified_at": user.email_verified_at,
            "newsletter": user.newsletter,
            "newsletter_since": user.newsletter_since,
            "language": user.language,
            "roles": list(user.roles),
            "created_at": user.created_at,
            "updated_at": user.updated_at,
            "pending_email": user.pending_email,
            "previous_email": user.previous_email,
            "previous_email_until": user.previous_email_until,
        },
        "sessions": [_session_json(row) for row in sessions],
        "api_clients": [
            {
                "client_id": client.client_id,
                "name": client.name,
                "created_at": client.created_at,
                "revoked_at": client.revoked_at,
            }
            for client in clients
        ],
        "login_addresses": {
            "count": known,
            "note": (
                "Addresses this account logged in from lately are kept only as keyed "
                "digests (HMACs) bound to the account, so they cannot be read back; they "
                f"are forgotten {settings.known_login_address_days} days after "
                "the last login from them."
            ),
        },
    }


async def service_known_count(session: AsyncSession, user_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(KnownLoginAddress)
        .where(KnownLoginAddress.user_id == user_id)
    )
    return int(count or 0)


def _session_json(row: SignInSession) -> dict[str, Any]:
    return {
        "id": row.id,
        "created_at": row.created_at,
        "last_used_at": row.last_used_at,
        "expires_at": row.expires_at,
        "client_address": row.client_address,
        "user_agent": row.user_agent,
    }


async def purge_session_addresses(database: Database, now: datetime) -> int:
    """Clear client addresses of sessions created more than the retention period ago, and drop
    sessions whose refresh tokens have expired; returns how many addresses were cleared."""
    cutoff = now - timedelta(days=ADDRESS_RETENTION_DAYS)
    async with database.sessionmaker() as session, session.begin():
        await session.execute(delete(SignInSession).where(SignInSession.expires_at <= now))
        result = await session.execute(
            update(SignInSession)
            .where(SignInSession.created_at < cutoff, SignInSession.client_address.is_not(None))
            .values(client_address=None)
            .execution_options(synchronize_session=False)
        )
    return int(getattr(result, "rowcount", 0) or 0)
