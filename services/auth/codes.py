"""Six-digit emailed codes: one live code per address and purpose, stored as a keyed hash.

Every try is counted before the comparison, atomically, so parallel guesses cannot get more
than `max_attempts` looks at one code. An address that was sent no code (no account, or its
code already used) gets a row too, holding a code nobody was sent: guessing at it writes, counts
and answers exactly as guessing at a real code does, so neither the answers nor the work done
tell the two apart. `code_expired` is said only to the right code.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import case, delete, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.digests import digests_match, keyed_digest, new_code
from services.auth.exceptions import CodeExpired, InvalidCode, TooManyAttempts
from services.auth.models import CodePurpose, OneTimeCode
from services.common.clock import Clock
from services.common.database import conflict_insert

# Rows whose code ran out this long ago are deleted: they decide nothing any more.
STALE_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class CodeBook:
    key: bytes
    clock: Clock
    ttl_seconds: int
    max_attempts: int

    def expiry(self) -> datetime:
        """When a code issued now stops working (what its mail tells the reader)."""
        return self.clock.now() + timedelta(seconds=self.ttl_seconds)

    def _digest(self, address: str, purpose: CodePurpose, code: str) -> str:
        return keyed_digest(self.key, f"code:{purpose.value}", address, code)

    async def _store(
        self,
        session: AsyncSession,
        purpose: CodePurpose,
        address: str,
        user_id: uuid.UUID | None,
        code_hash: str,
        *,
        attempts: int = 0,
        ttl_seconds: int | None = None,
    ) -> None:
        """The address's code for `purpose` is now this one, whatever it was before."""
        now = self.clock.now()
        values: dict[str, Any] = {
            "user_id": user_id,
            "code_hash": code_hash,
            "expires_at": now + timedelta(seconds=ttl_seconds or self.ttl_seconds),
            "attempts": attempts,
            "consumed_at": None,
            "created_at": now,
        }
        await session.execute(
            conflict_insert(session, OneTimeCode)
            .values(id=uuid.uuid4(), address=address, purpose=purpose.value, **values)
            .on_conflict_do_update(index_elements=["address", "purpose"], set_=values)
        )

    async def issue(
        self,
        session: AsyncSession,
        purpose: CodePurpose,
        address: str,
        user_id: uuid.UUID,
        *,
        ttl_seconds: int | None = None,
    ) -> str:
        """A fresh code to mail to `address`; whatever code it had for `purpose` stops working."""
        code = new_code()
        code_hash = self._digest(address, purpose, code)
        await self._store(session, purpose, address, user_id, code_hash, ttl_seconds=ttl_seconds)
        return code

    async def issue_unsent(
        self, session: AsyncSession, purpose: CodePurpose, address: str, user_id: uuid.UUID | None
    ) -> None:
        """Replace the address's code as `issue` does, with one that no guess can match."""
        await self._store(session, purpose, address, user_id, secrets.token_hex(32))

    async def _row(
        self, session: AsyncSession, purpose: CodePurpose, address: str
    ) -> OneTimeCode | None:
        return await session.scalar(
            select(OneTimeCode)
            .where(OneTimeCode.address == address, OneTimeCode.purpose == purpose.value)
            .execution_options(populate_existing=True)
        )

    async def redeem(
        self,
        session: AsyncSession,
        purpose: CodePurpose,
        address: str,
        code: str,
        *,
        consume: bool = True,
    ) -> uuid.UUID:
        """Consume the code and return its account, or raise InvalidCode / CodeExpired /
        TooManyAttempts. With `consume=False` the code is checked (the try counted) but stays live.
        """
        row = await self._row(session, purpose, address)
        live = row is not None and row.consumed_at is None
        if row is not None and live and row.attempts >= self.max_attempts:
            raise TooManyAttempts
        if not await self._count_try(session, purpose, address):
            raise TooManyAttempts
        # Services normally leave commits to the request; a counted try must outlive the
        # error response that rolls the request back.
        await session.commit()
        expected = row.code_hash if row is not None and live else None
        if expected is None or not digests_match(self._digest(address, purpose, code), expected):
            counted = await self._row(session, purpose, address)
            if counted is not None and counted.attempts >= self.max_attempts:
                raise TooManyAttempts
            raise InvalidCode
        assert row is not None
        if row.expires_at <= self.clock.now():
            raise CodeExpired
        if row.user_id is None:
            raise InvalidCode  # an unsent code cannot be matched; this is only a guard
        if not consume:
            return row.user_id
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
        return row.user_id

    async def _count_try(self, session: AsyncSession, purpose: CodePurpose, address: str) -> bool:
        """Count one try at the address's code; False when its tries are used up.

        One statement for every case: a live code counts the try; an address with no live code
        (none yet, or used) gets an unsent one with this try counted, exactly as much work.
        """
        now = self.clock.now()
        table = OneTimeCode.__table__
        unsent = secrets.token_hex(32)
        used = table.c.consumed_at.is_not(None)
        statement = conflict_insert(session, OneTimeCode).values(
            id=uuid.uuid4(),
            address=address,
            purpose=purpose.value,
            user_id=None,
            code_hash=unsent,
            expires_at=now + timedelta(seconds=self.ttl_seconds),
            attempts=1,
            consumed_at=None,
            created_at=now,
        )
        counted = cast(
            CursorResult[Any],
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=["address", "purpose"],
                    set_={
                        "attempts": case((used, 1), else_=table.c.attempts + 1),
                        "code_hash": case((used, unsent), else_=table.c.code_hash),
                        "expires_at": case(
                            (used, statement.excluded.expires_at), else_=table.c.expires_at
                        ),
                        "created_at": case(
                            (used, statement.excluded.created_at), else_=table.c.created_at
                        ),
                        "consumed_at": None,
                    },
                    where=used | (table.c.attempts < self.max_attempts),
                )
            ),
        )
        return counted.rowcount == 1

    async def purge_stale(self, session: AsyncSession) -> None:
        """Delete codes, sent or not, that ran out long ago."""
        await session.execute(
            delete(OneTimeCode)
            .where(OneTimeCode.expires_at < self.clock.now() - STALE_AFTER)
            .execution_options(synchronize_session=False)
        )
