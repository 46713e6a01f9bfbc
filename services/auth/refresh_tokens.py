"""Refresh tokens: opaque, stored hashed, rotated on every use, grouped in families.

A login starts a family with an absolute deadline; each refresh spends one token and issues the
next in the same family. Presenting a spent token means two parties hold the chain (one of them
a thief), so the whole family is revoked.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.digests import keyed_digest, new_opaque_token
from services.auth.exceptions import InvalidRefreshToken
from services.auth.models import RefreshToken
from services.common.clock import Clock


@dataclass(frozen=True)
class RefreshTokens:
    key: bytes
    clock: Clock
    family_ttl_seconds: int

    def _digest(self, token: str) -> str:
        return keyed_digest(self.key, "refresh", token)

    async def _add(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        family_id: uuid.UUID,
        family_expires_at: datetime,
    ) -> str:
        token = new_opaque_token()
        # A Core INSERT on the table: nothing reads the row back, so the ORM's unit of work
        # (every login and refresh writes one) would be all cost.
        await session.execute(
            insert(cast(Table, RefreshToken.__table__)).values(
                user_id=user_id,
                family_id=family_id,
                token_hash=self._digest(token),
                family_expires_at=family_expires_at,
                created_at=self.clock.now(),
            )
        )
        return token

    async def start_family(self, session: AsyncSession, user_id: uuid.UUID) -> str:
        deadline = self.clock.now() + timedelta(seconds=self.family_ttl_seconds)
        return await self._add(session, user_id, uuid.uuid4(), deadline)

    async def rotate(self, session: AsyncSession, token: str) -> tuple[uuid.UUID, str]:
        """Spend `token`; return its account and the next token of the family."""
        row = await session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == self._digest(token))
        )
        now = self.clock.now()
        if row is None or row.revoked_at is not None or row.family_expires_at <= now:
            raise InvalidRefreshToken
        if row.used_at is not None:
            await self._revoke_family_for_reuse(session, row.family_id)
        spent = cast(
            CursorResult[Any],
            await session.execute(
                update(RefreshToken)
                .where(
                    RefreshToken.id == row.id,
                    RefreshToken.used_at.is_(None),
                    RefreshToken.revoked_at.is_(None),
                )
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            ),
        )
        if spent.rowcount != 1:
            # Someone spent it between our read and our write: the same reuse, just faster.
            await self._revoke_family_for_reuse(session, row.family_id)
        return row.user_id, await self._add(
            session, row.user_id, row.family_id, row.family_expires_at
        )

    async def _revoke_family_for_reuse(
        self, session: AsyncSession, family_id: uuid.UUID
    ) -> NoReturn:
        await self.revoke_family(session, family_id)
        # The revocation must stand although the request answers with an error (and rolls back).
        await session.commit()
        raise InvalidRefreshToken

    async def revoke_family(self, session: AsyncSession, family_id: uuid.UUID) -> None:
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=self.clock.now())
            .execution_options(synchronize_session=False)
        )

    async def revoke_family_of(self, session: AsyncSession, token: str) -> None:
        family_id = await session.scalar(
            select(RefreshToken.family_id).where(RefreshToken.token_hash == self._digest(token))
        )
        if family_id is not None:
            await self.revoke_family(session, family_id)

    async def revoke_all(self, session: AsyncSession, user_id: uuid.UUID) -> None:
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=self.clock.now())
            .execution_options(synchronize_session=False)
        )
