"""Minting a session's token pair: an access token and a refresh token of one family."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.models import SignInSession
from services.auth.refresh_tokens import RefreshTokens
from services.auth.tokens import AccessTokenIssuer, IssuedAccessToken
from services.common.clock import Clock


class AccountFacts(Protocol):
    """What an access token says of its account (a `User`, or the columns a login reads)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def email_verified(self) -> bool: ...
    @property
    def roles(self) -> list[str]: ...
    @property
    def session_epoch(self) -> int: ...


@dataclass(frozen=True)
class IssuedTokens:
    access: IssuedAccessToken
    refresh_token: str
    # The session (refresh family) the pair belongs to.
    session_id: uuid.UUID | None = None


@dataclass(frozen=True)
class SessionTokens:
    issuer: AccessTokenIssuer
    refresh_tokens: RefreshTokens
    clock: Clock

    def access(self, user: AccountFacts, session_id: uuid.UUID | None = None) -> IssuedAccessToken:
        return self.issuer.for_account(
            user.id,
            email_verified=user.email_verified,
            roles=user.roles,
            session_epoch=user.session_epoch,
            session_id=session_id,
        )

    def issue(self, user: AccountFacts) -> IssuedTokens:
        """A new session: an access token and the first refresh token of a new family."""
        token, claims = self.refresh_tokens.begin(user.id, user.session_epoch)
        return IssuedTokens(self.access(user, claims.family_id), token, claims.family_id)

    def session_row(
        self, issued: IssuedTokens, user: AccountFacts, *, caller: str, user_agent: str | None
    ) -> SignInSession:
        """The row the account page lists for a new session."""
        now = self.clock.now()
        return SignInSession(
            id=issued.session_id,
            user_id=user.id,
            session_epoch=user.session_epoch,
            created_at=now,
            last_used_at=now,
            expires_at=now + timedelta(seconds=self.refresh_tokens.family_ttl_seconds),
            client_address=caller[:64],
            user_agent=(user_agent or "")[:256] or None,
        )

    def sign_in(
        self, session: AsyncSession, user: AccountFacts, *, caller: str, user_agent: str | None
    ) -> IssuedTokens:
        """A new session, with the row the account page lists (the refresh family's own row
        still waits for its first refresh)."""
        issued = self.issue(user)
        session.add(self.session_row(issued, user, caller=caller, user_agent=user_agent))
        return issued
