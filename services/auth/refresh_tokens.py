"""Refresh tokens: signed, rotated on every use, grouped in families; a login writes no family.

A token says which family it belongs to, its generation in that family's chain, the account and
the account's session epoch, and the family's deadline, under an HMAC of the server's key: it
cannot be forged or altered, so nothing about it needs storing when it is issued. A family's row
is written by the family's first refresh and keeps the generation whose token may be spent next.
A token older than that was spent already: presenting it means two parties hold the chain (one
of them a thief), so the whole family is revoked. A row that is missing means generation 0, the
login's own token, not yet spent.

One exception keeps two tabs of one browser from logging their user out: within a short grace
after generation n was spent, presenting n again returns the same successor n+1 (tokens are
signed, so it is derived again, not stored), provided the family lives and n+1 is unspent. A
thief inside that window gets the chain the owner holds, and whichever of them spends it second,
outside the window, revokes the family: detection is delayed by the grace, not escaped.

Ending every session of an account (a password reset) raises the account's session epoch, which
no outstanding token carries. What the account page lists of a login (when, from where) is its
`SignInSession` row, written by the login under the family's id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, cast

from sqlalchemy import update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from services.auth.exceptions import InvalidRefreshToken
from services.auth.models import RefreshFamily
from services.common.clock import Clock
from services.common.database import conflict_insert

_VERSION = 1
# version, family id, account id, generation, session epoch, deadline (Unix seconds).
_CLAIMS = struct.Struct(">B16s16sIIq")
_MAC_SIZE = hashlib.sha256().digest_size
# 81 bytes: 108 base64url characters, no padding.
_TOKEN_SIZE = _CLAIMS.size + _MAC_SIZE
_MAC_CONTEXT = b"natomedia refresh token\x1f"


@dataclass(frozen=True)
class RefreshClaims:
    family_id: uuid.UUID
    user_id: uuid.UUID
    generation: int
    session_epoch: int
    expires_at: datetime


@dataclass(frozen=True)
class RefreshTokens:
    key: bytes
    clock: Clock
    family_ttl_seconds: int
    reuse_grace_seconds: int = 0

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self.key, _MAC_CONTEXT + payload, hashlib.sha256).digest()

    def _sign(self, claims: RefreshClaims) -> str:
        payload = _CLAIMS.pack(
            _VERSION,
            claims.family_id.bytes,
            claims.user_id.bytes,
            claims.generation,
            claims.session_epoch,
            int(claims.expires_at.timestamp()),
        )
        return base64.urlsafe_b64encode(payload + self._mac(payload)).decode().rstrip("=")

    def read(self, token: str) -> RefreshClaims:
        """The claims of an authentic token (expired or spent ones included); else refused."""
        try:
            raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError) as error:
            raise InvalidRefreshToken from error
        if len(raw) != _TOKEN_SIZE:
            raise InvalidRefreshToken
        payload, mac = raw[: _CLAIMS.size], raw[_CLAIMS.size :]
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise InvalidRefreshToken
        version, family, user, generation, epoch, deadline = _CLAIMS.unpack(payload)
        if version != _VERSION:
            raise InvalidRefreshToken
        return RefreshClaims(
            uuid.UUID(bytes=family),
            uuid.UUID(bytes=user),
            generation,
            epoch,
            datetime.fromtimestamp(deadline, UTC),
        )

    def start_family(self, user_id: uuid.UUID, session_epoch: int) -> str:
        """The first token of a new family. Nothing is written: its row waits for a refresh."""
        return self.begin(user_id, session_epoch)[0]

    def begin(self, user_id: uuid.UUID, session_epoch: int) -> tuple[str, RefreshClaims]:
        """The first token of a new family, and its claims (the family id names the session)."""
        # Whole seconds, as the token carries it, so the row and the token agree.
        deadline = self.clock.now().replace(microsecond=0) + timedelta(
            seconds=self.family_ttl_seconds
        )
        claims = RefreshClaims(uuid.uuid4(), user_id, 0, session_epoch, deadline)
        return self._sign(claims), claims

    async def reissue(
        self, session: AsyncSession, claims: RefreshClaims, session_epoch: int
    ) -> str | None:
        """The token the family `claims` names may spend next, under a new session epoch.

        Raising the epoch ends every session; this one goes on under the new epoch, at the
        generation its chain had reached (the token it held carries the old epoch, so it is
        refused). None when the family has ended.
        """
        row = await session.get(RefreshFamily, claims.family_id)
        if row is not None and row.revoked_at is not None:
            return None
        generation = 0 if row is None else row.generation
        return self._sign(replace(claims, generation=generation, session_epoch=session_epoch))

    async def revoke(
        self, session: AsyncSession, family_id: uuid.UUID, user_id: uuid.UUID, expires_at: datetime
    ) -> None:
        """Revoke a family known by id only (the account page ends one of its sessions)."""
        claims = RefreshClaims(family_id, user_id, 0, 0, expires_at)
        await self.end_family(session, claims)

    async def rotate(self, session: AsyncSession, claims: RefreshClaims) -> str:
        """Spend the token `claims` came from and return the next one of its family.

        The caller has checked the account and its session epoch.
        """
        now = self.clock.now()
        if claims.expires_at <= now:
            raise InvalidRefreshToken
        statement: Executable
        if claims.generation == 0:
            # The login's token: the family's row does not exist unless it was spent already
            # (or its session ended), and then the INSERT does nothing.
            statement = (
                conflict_insert(session, RefreshFamily)
                .values(_family_row(claims, now, generation=1, rotated_at=now))
                .on_conflict_do_nothing(index_elements=["id"])
            )
        else:
            statement = (
                update(RefreshFamily)
                .where(
                    RefreshFamily.id == claims.family_id,
                    RefreshFamily.generation == claims.generation,
                    RefreshFamily.revoked_at.is_(None),
                )
                .values(generation=claims.generation + 1, rotated_at=now)
                .execution_options(synchronize_session=False)
            )
        spent = cast(CursorResult[Any], await session.execute(statement))
        if spent.rowcount != 1 and not await self._spent_within_grace(session, claims, now):
            # Spent before (and its successor too, or too long ago), or the session ended.
            await self._revoke_family_for_reuse(session, claims.family_id)
        return self._sign(replace(claims, generation=claims.generation + 1))

    async def _spent_within_grace(
        self, session: AsyncSession, claims: RefreshClaims, now: datetime
    ) -> bool:
        """Whether `claims`' token was spent a moment ago and its successor is still unspent."""
        if self.reuse_grace_seconds <= 0:
            return False
        successor = claims.generation + 1
        # An UPDATE that changes nothing rather than a SELECT: it waits for a refresh of the
        # successor that is under way, so the answer is about the committed chain.
        held = cast(
            CursorResult[Any],
            await session.execute(
                update(RefreshFamily)
                .where(
                    RefreshFamily.id == claims.family_id,
                    RefreshFamily.generation == successor,
                    RefreshFamily.revoked_at.is_(None),
                    RefreshFamily.rotated_at >= now - timedelta(seconds=self.reuse_grace_seconds),
                )
                .values(generation=successor)
                .execution_options(synchronize_session=False)
            ),
        )
        return held.rowcount == 1

    async def _revoke_family_for_reuse(
        self, session: AsyncSession, family_id: uuid.UUID
    ) -> NoReturn:
        await session.execute(
            update(RefreshFamily)
            .where(RefreshFamily.id == family_id, RefreshFamily.revoked_at.is_(None))
            .values(revoked_at=self.clock.now())
            .execution_options(synchronize_session=False)
        )
        # The revocation must stand although the request answers with an error (and rolls back).
        await session.commit()
        raise InvalidRefreshToken

    async def end_family(self, session: AsyncSession, claims: RefreshClaims) -> None:
        """Revoke the family `claims` belongs to, whether or not it has a row yet."""
        now = self.clock.now()
        await session.execute(
            conflict_insert(session, RefreshFamily)
            .values(_family_row(claims, now, generation=claims.generation, revoked_at=now))
            .on_conflict_do_update(
                index_elements=["id"],
                set_={"revoked_at": now},
                where=RefreshFamily.revoked_at.is_(None),
            )
        )


def _family_row(
    claims: RefreshClaims,
    now: datetime,
    *,
    generation: int,
    revoked_at: datetime | None = None,
    rotated_at: datetime | None = None,
) -> dict[str, Any]:
    """The row a family gets when its first refresh or its logout writes it."""
    return {
        "id": claims.family_id,
        "user_id": claims.user_id,
        "generation": generation,
        "expires_at": claims.expires_at,
        "created_at": now,
        "revoked_at": revoked_at,
        "rotated_at": rotated_at,
    }
