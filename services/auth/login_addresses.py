"""Addresses each account logged in from lately: they pass the account-wide failure limit.

The per-account limit stops guessing spread over many addresses, but alone it lets anyone lock
an owner out by failing on purpose, again every window. An address that recently proved the
password is the owner's (or shared with the owner): it is held only by the per-account-and-
address limit, which the attacker's failures elsewhere never touch. Addresses are stored as an
HMAC bound to the account, so the table reveals neither where people log in from nor which
accounts share an address.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.digests import keyed_digest
from services.auth.models import KnownLoginAddress
from services.common.clock import Clock

# Looked up for unknown emails too, so a locked unknown address costs the same either way.
NO_ACCOUNT = uuid.UUID(int=0)


class KnownAddresses:
    def __init__(self, key: bytes, clock: Clock, retention_days: int) -> None:
        self.key = key
        self.clock = clock
        self.retention = timedelta(days=retention_days)

    def digest(self, user_id: uuid.UUID, address: str) -> str:
        return keyed_digest(self.key, "login-address", str(user_id), address)

    async def is_known(self, session: AsyncSession, user_id: uuid.UUID, address: str) -> bool:
        since = self.clock.now() - self.retention
        found = await session.scalar(
            select(KnownLoginAddress.last_success_at).where(
                KnownLoginAddress.user_id == user_id,
                KnownLoginAddress.address_hash == self.digest(user_id, address),
                KnownLoginAddress.last_success_at >= since,
            )
        )
        return found is not None

    async def remember(self, session: AsyncSession, user_id: uuid.UUID, address: str) -> None:
        """Record a successful login from `address`, and forget the account's stale addresses."""
        now = self.clock.now()
        values = {
            "user_id": user_id,
            "address_hash": self.digest(user_id, address),
            "last_success_at": now,
        }
        dialect = session.get_bind().dialect.name
        insert = (
            postgresql.insert(KnownLoginAddress)
            if dialect == "postgresql"
            else sqlite.insert(KnownLoginAddress)
        )
        # An upsert: two logins from one address at once must not fail on the primary key.
        await session.execute(
            insert.values(values).on_conflict_do_update(
                index_elements=["user_id", "address_hash"], set_={"last_success_at": now}
            )
        )
        await session.execute(
            delete(KnownLoginAddress)
            .where(
                KnownLoginAddress.user_id == user_id,
                KnownLoginAddress.last_success_at < now - self.retention,
            )
            .execution_options(synchronize_session=False)
        )
