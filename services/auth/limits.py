"""The auth service's rate limits, parsed once from the settings, and the mail budget per address.

No call reveals whether an address has an account: the budget is spent alike either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from limits import RateLimitItem
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.addresses import EmailAddress
from services.auth.config import AuthSettings
from services.auth.login_addresses import NO_ACCOUNT, KnownAddresses
from services.auth.models import User
from services.common.ratelimit import RateLimiter, rule


@dataclass(frozen=True)
class AuthLimits:
    """The limiter and the rules it applies to each auth flow."""

    limiter: RateLimiter
    register: RateLimitItem
    verify: RateLimitItem
    resend: RateLimitItem
    reset: RateLimitItem
    login: RateLimitItem
    login_failures_pair: RateLimitItem
    login_failures_account: RateLimitItem
    token_client: RateLimitItem
    token_failures: RateLimitItem
    mail: Sequence[RateLimitItem]

    @classmethod
    def from_settings(cls, settings: AuthSettings, limiter: RateLimiter) -> AuthLimits:
        return cls(
            limiter=limiter,
            register=rule(settings.register_rate_limit),
            verify=rule(settings.verify_rate_limit),
            resend=rule(settings.resend_rate_limit),
            reset=rule(settings.password_reset_rate_limit),
            login=rule(settings.login_rate_limit),
            login_failures_pair=rule(settings.login_failures_per_account_and_address),
            login_failures_account=rule(settings.login_failures_per_account),
            token_client=rule(settings.token_rate_limit_per_client),
            token_failures=rule(settings.token_failures_per_client),
            mail=tuple(rule(text) for text in settings.mail_per_address_limits),
        )


async def mail_budget(
    session: AsyncSession,
    kind: str,
    email: EmailAddress,
    user: User | None,
    caller: str,
    *,
    limits: AuthLimits,
    known_addresses: KnownAddresses,
) -> tuple[bool, int]:
    """Count one mail about this address, and say when the next one could go.

    False (silently) past the per-address limits. Requests from an address the account
    logged in from lately have a budget of their own, so a stranger asking again and again
    cannot use up the owner's; at most twice the limits' mail goes to one address per kind.
    The same calls whether or not the account exists, so nothing shows which.
    """
    own = await known_addresses.is_known(session, user.id if user else NO_ACCOUNT, caller)
    key = ("mail", kind, "own" if own else "anyone", email.canonical)
    allowed = await limits.limiter.allow_all(limits.mail, *key)
    return allowed, await limits.limiter.wait_seconds(limits.mail, *key)
