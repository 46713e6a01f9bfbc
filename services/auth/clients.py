"""Partner API clients: created, listed and revoked by their owner, and exchanged for access
tokens with the client-credentials grant."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.account_events import AccountEvents
from services.auth.digests import digests_match, secret_digest
from services.auth.exceptions import (
    AccountNotVerified,
    ClientNotFound,
    InvalidClient,
    InvalidScope,
)
from services.auth.limits import AuthLimits
from services.auth.models import ApiClient, User
from services.auth.tokens import AccessTokenIssuer, IssuedAccessToken
from services.common.clock import Clock
from services.common.scopes import MEDIA_DOWNLOAD

CLIENT_ID_PREFIX = "nmc_"
CLIENT_SECRET_PREFIX = "nms_"
# Compared against when a client id is unknown, so both paths do the same work.
_NO_SECRET_DIGEST = secret_digest(secrets.token_urlsafe(32))


@dataclass(frozen=True)
class NewClient:
    client: ApiClient
    secret: str


async def create_client(session: AsyncSession, user: User, name: str, *, clock: Clock) -> NewClient:
    if not user.email_verified:
        raise AccountNotVerified
    secret = CLIENT_SECRET_PREFIX + secrets.token_urlsafe(32)
    client = ApiClient(
        client_id=CLIENT_ID_PREFIX + secrets.token_hex(10),
        secret_hash=secret_digest(secret),
        owner_id=user.id,
        name=name.strip(),
        created_at=clock.now(),
    )
    session.add(client)
    await session.flush()
    return NewClient(client, secret)


async def list_clients(
    session: AsyncSession, user: User, *, limit: int, after: tuple[datetime, str] | None
) -> tuple[Sequence[ApiClient], bool]:
    query = select(ApiClient).where(ApiClient.owner_id == user.id, ApiClient.revoked_at.is_(None))
    if after is not None:
        created_at, client_id = after
        query = query.where(
            or_(
                ApiClient.created_at > created_at,
                and_(ApiClient.created_at == created_at, ApiClient.client_id > client_id),
            )
        )
    rows = list(
        await session.scalars(
            query.order_by(ApiClient.created_at, ApiClient.client_id).limit(limit + 1)
        )
    )
    return rows[:limit], len(rows) > limit


async def revoke_client(
    session: AsyncSession, user: User, client_id: str, *, clock: Clock, events: AccountEvents
) -> None:
    client = await session.scalar(
        select(ApiClient).where(
            ApiClient.client_id == client_id,
            ApiClient.owner_id == user.id,
            ApiClient.revoked_at.is_(None),
        )
    )
    if client is None:
        raise ClientNotFound
    events.client_revoked(session, client, clock.now())
    await session.flush()


async def revoke_clients(
    session: AsyncSession, user: User, *, clock: Clock, events: AccountEvents
) -> list[str]:
    """Revoke every API client of `user`; their names, oldest first."""
    clients = list(
        await session.scalars(
            select(ApiClient)
            .where(ApiClient.owner_id == user.id, ApiClient.revoked_at.is_(None))
            .order_by(ApiClient.created_at, ApiClient.client_id)
        )
    )
    for client in clients:
        events.client_revoked(session, client, clock.now())
    return [client.name for client in clients]


async def client_token(
    session: AsyncSession,
    client_id: str,
    client_secret: str,
    *,
    scope: str | None,
    basic: bool,
    limits: AuthLimits,
    issuer: AccessTokenIssuer,
) -> IssuedAccessToken:
    client = await session.scalar(select(ApiClient).where(ApiClient.client_id == client_id))
    presented = secret_digest(client_secret)
    stored = client.secret_hash if client is not None else _NO_SECRET_DIGEST
    if not digests_match(presented, stored) or client is None or client.revoked_at:
        # Failures have their own budget and never touch a right secret's, so nobody can
        # lock a partner out by sending its client id with wrong secrets.
        failures_key = ("token-failures", client_id)
        if not await limits.limiter.allow(limits.token_failures, *failures_key):
            raise await limits.limiter.refusal(limits.token_failures, *failures_key)
        raise InvalidClient(basic=basic)
    if scope is not None and set(scope.split()) - {MEDIA_DOWNLOAD}:
        raise InvalidScope
    await limits.limiter.hit(limits.token_client, "token", client_id)
    return issuer.for_client(client.client_id, client.name)
