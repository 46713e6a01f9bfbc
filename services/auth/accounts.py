"""What the auth flows share about an account: finding it by address, proving its address, and
asking for a code to be mailed to it.

No call reveals whether an address has an account: every branch of register, login, resend and
password-reset answers alike and spends the same hashing work; mail about an address is limited
per address whether or not the account exists.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.account_events import AccountEvents
from services.auth.addresses import EmailAddress
from services.auth.limits import AuthLimits, mail_budget
from services.auth.login_addresses import KnownAddresses
from services.auth.models import CodeRequest, CodeRequestAction, User
from services.common.clock import Clock
from services.common.database import utcnow
from services.common.i18n import requested_language


async def find_user(session: AsyncSession, email: EmailAddress) -> User | None:
    return await session.scalar(select(User).where(User.email_canonical == email.canonical))


async def mark_verified(
    session: AsyncSession,
    user: User,
    *,
    clock: Clock,
    events: AccountEvents,
    known_addresses: KnownAddresses,
) -> None:
    """The mailbox answered: the address is the owner's from now on.

    Whatever was done with the account before then may have been someone else's doing
    (anyone can register any address), so every session opened before it ends, and the
    login addresses remembered before it stop being exempt from the account-wide limit.
    """
    user.email_verified_at = clock.now()
    events.end_sessions(session, user)
    await known_addresses.forget_all(session, user.id)
    events.account_changed(session, user)


async def request_code(
    session: AsyncSession,
    action: CodeRequestAction,
    email: EmailAddress,
    user: User | None,
    caller: str,
    *,
    limits: AuthLimits,
    known_addresses: KnownAddresses,
    events: AccountEvents,
    contested: bool = False,
    language: str | None = None,
) -> int:
    """Record that a code was asked for `email`; the sender answers it (`code_requests`).

    One identical row for every address, so the request does the same work whether or not
    the address has an account. Returns the seconds until another code can be asked for.
    """
    kind = "reset" if action is CodeRequestAction.RESET else "verify"
    mail_allowed, resend_after = await mail_budget(
        session, kind, email, user, caller, limits=limits, known_addresses=known_addresses
    )
    session.add(
        CodeRequest(
            address=email.canonical,
            action=action.value,
            mail_allowed=mail_allowed,
            contested=contested,
            language=language if language is not None else requested_language(),
            # Wall-clock time, as the outbox's: requests are answered in this order, which a
            # frozen or coarse business clock would leave to chance.
            created_at=utcnow(),
        )
    )
    events.code_requested(session)
    return resend_after
