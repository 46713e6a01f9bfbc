"""Six-digit emailed codes: one live code per account and purpose, stored as a keyed hash.

Every try is counted before the comparison, atomically, so parallel guesses cannot get more
than `max_attempts` looks at one code. Tries against an address with no live code (no account,
or already used) are counted too, in the rate limiter, so the answers never tell the two apart;
and `code_expired` is said only to the right code, so an old registration does not show either.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from limits import RateLimitItem
from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.digests import digests_match, keyed_digest, new_code
from services.auth.exceptions import CodeExpired, InvalidCode, TooManyAttempts
from services.auth.models import CodePurpose, OneTimeCode
from services.common.clock import Clock
from services.common.ratelimit import RateLimiter, rule


@dataclass(frozen=True)
class CodeBook:
    key: bytes
    clock: Clock
    ttl_seconds: int
    max_attempts: int
    limiter: RateLimiter

    @property
    def _phantom_limit(self) -> RateLimitItem:
        return rule(f"{max(1, self.max_attempts - 1)} per {self.ttl_seconds} seconds")

    async def _phantom_try(self, purpose: CodePurpose, address: str) -> None:
        if not await self.limiter.allow(self._phantom_limit, "code-tries", purpose.value, address):
            raise TooManyAttempts

    async def forget_unmatched_tries(self, purpose: CodePurpose, address: str) -> None:
        """A new code was asked for `address`: tries on it start again, as for a real code.

        Called whether or not a code was really issued, so an address without an account
        answers its next guesses exactly as one with an account would.
        """
        await self.limiter.clear(self._phantom_limit, "code-tries", purpose.value, address)

    def _digest(self, user_id: uuid.UUID, purpose: CodePurpose, code: str) -> str:
        return keyed_digest(self.key, f"code:{purpose.value}", str(user_id), code)

    async def issue(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        purpose: CodePurpose,
        *,
        ttl_seconds: int | None = None,
    ) -> str:
        """A fresh code; whatever code this account had for `purpose` stops working."""
        code = new_code()
        values: dict[str, Any] = {
            "code_hash": self._digest(user_id, purpose, code),
            "expires_at": self.clock.now() + timedelta(seconds=ttl_seconds or self.ttl_seconds),
            "attempts": 0,
            "consumed_at": None,
            "created_at": self.clock.now(),
        }
        existing = await self._row(session, user_id, purpose)
        if existing is None:
            try:
                async with session.begin_nested():
                    session.add(OneTimeCode(user_id=user_id, purpose=purpose.value, **values))
                return code
            except IntegrityError:
                # Another request inserted the row first; overwrite it below.
                existing = await self._row(session, user_id, purpose)
                assert existing is not None
        for name, value in values.items():
            setattr(existing, name, value)
        await session.flush()
        return code

    async def _row(
        self, session: AsyncSession, user_id: uuid.UUID, purpose: CodePurpose
    ) -> OneTimeCode | None:
        return await session.scalar(
            select(OneTimeCode).where(
                OneTimeCode.user_id == user_id, OneTimeCode.purpose == purpose.value
            )
        )

    async def redeem(
        self,
        session: AsyncSession,
        user_id: uuid.UUID | None,
        purpose: CodePurpose,
        code: str,
        *,
        address: str,
        consume: bool = True,
    ) -> None:
        """Consume the code or raise InvalidCode / CodeExpired / TooManyAttempts.

        With `consume=False` the code is checked (and the try counted) but stays live.
        """
        row = await self._row(session, user_id, purpose) if user_id is not None else None
        if row is None or row.consumed_at is not None:
            await self._phantom_try(purpose, address)
            raise InvalidCode
        if row.attempts >= self.max_attempts:
            raise TooManyAttempts
        counted = cast(
            CursorResult[Any],
            await session.execute(
                update(OneTimeCode)
                .where(
                    OneTimeCode.id == row.id,
                    OneTimeCode.attempts < self.max_attempts,
                    OneTimeCode.consumed_at.is_(None),
                )
                .values(attempts=OneTimeCode.attempts + 1)
                .execution_options(synchronize_session=False)
            ),
        )
        if counted.rowcount != 1:
            raise TooManyAttempts
        # Services normally leave commits to the request; a counted try must outlive the
        # error response that rolls the request back.
        await session.commit()
        expected = row.code_hash
        if not digests_match(self._digest(row.user_id, purpose, code), expected):
            await session.refresh(row)
            if row.attempts >= self.max_attempts:
                raise TooManyAttempts
            raise InvalidCode
        if row.expires_at <= self.clock.now():
            raise CodeExpired
        if not consume:
            return
        consumed = cast(
            CursorResult[Any],
            await session.execute(
                update(OneTimeCode)
                .where(
                    OneTimeCode.id == row.id,
                    OneTimeCode.code_hash == expected,
                    OneTimeCode.consumed_at.is_(None),
                )
                .values(consumed_at=self.clock.now())
                .execution_options(synchronize_session=False)
            ),
        )
        if consumed.rowcount != 1:
            raise InvalidCode
