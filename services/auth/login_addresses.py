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
from collections import OrderedDict
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.digests import keyed_digest
from services.auth.models import KnownLoginAddress
from services.common.bounded import keep_newest
from services.common.clock import Clock
from services.common.database import after_commit, conflict_insert

# Looked up for unknown emails too, so a locked unknown address costs the same either way.
NO_ACCOUNT = uuid.UUID(int=0)

# The exemption lasts the retention period (days), so a row rewritten more than hourly buys
# nothing: within the hour a repeat login from the same address skips the upsert and the prune
# (two writes out of a login's four statements).
REWRITE_AFTER = timedelta(hours=1)
# Account-and-address pairs this process wrote lately; the oldest are forgotten first.
WRITTEN_MEMO_SIZE = 10_000


class KnownAddresses:
    def __init__(self, key: bytes, clock: Clock, retention_days: int) -> None:
        self.key = key
        self.clock = clock
        self.retention = timedelta(days=retention_days)
        # Keyed by account and address, so a repeat login finds its entry without computing the
        # HMAC; the addresses are this process's own traffic, as in the rate limiter's keys.
        self._written: OrderedDict[tuple[uuid.UUID, str], datetime] = OrderedDict()

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

    async def forget_all(self, session: AsyncSession, user_id: uuid.UUID) -> None:
        """No address counts as the account's own any more (its owner just proved the mailbox)."""
        await session.execute(
            delete(KnownLoginAddress)
            .where(KnownLoginAddress.user_id == user_id)
            .execution_options(synchronize_session=False)
        )
        # Else a repeat login within the hour would skip writing its row back.
        for key in [key for key in self._written if key[0] == user_id]:
            del self._written[key]

    async def remember(self, session: AsyncSession, user_id: uuid.UUID, address: str) -> None:
        """Record a successful login from `address`, and forget the account's stale addresses."""
        now = self.clock.now()
        written = self._written.get((user_id, address))
        if written is not None and timedelta(0) <= now - written < REWRITE_AFTER:
            return
        address_hash = self.digest(user_id, address)
        values = {"user_id": user_id, "address_hash": address_hash, "last_success_at": now}
        # An upsert: two logins from one address at once must not fail on the primary key.
        await session.execute(
            conflict_insert(session, KnownLoginAddress)
            .values(values)
            .on_conflict_do_update(
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

        # Only a committed row counts: after a rollback the next login writes it again.
        async def committed() -> None:
            keep_newest(self._written, (user_id, address), now, WRITTEN_MEMO_SIZE)

        after_commit(session, committed)
