"""The auth service's FastAPI app."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import FastAPI

from services.auth.account_cache import AccountCache, AccountChangeFeed
from services.auth.account_router import router as account_router
from services.auth.config import AuthSettings
from services.auth.exceptions import install_error_handlers
from services.auth.keys import jwks_document, load_signing_key
from services.auth.lifecycle import purge_session_addresses
from services.auth.outbox import MailWakeup, OutboxSender
from services.auth.passwords import PasswordHasher
from services.auth.router import router, well_known
from services.auth.service import AuthService
from services.auth.tokens import AccessTokenIssuer
from services.common.app import create_service_app
from services.common.clock import Clock, SystemClock
from services.common.database import Database
from services.common.jwt import TokenVerifier
from services.common.ratelimit import RateLimiter
from services.common.revocation import RevocationPublisher
from services.common.settings import dev_secret
from services.common.tasks import cancel_and_wait

# How often the sessions' client addresses past their retention are cleared.
ADDRESS_PURGE_INTERVAL_SECONDS = 3600.0

logger = logging.getLogger("natomedia.auth")

DESCRIPTION = (
    "Accounts proven by an emailed 6-digit code, short-lived ES256 access tokens with rotating "
    "refresh tokens, password reset, and OAuth 2.0 client credentials for partner scripts."
)


def code_hash_key(settings: AuthSettings) -> bytes:
    secret = settings.code_hash_key or dev_secret(settings, "auth-code-hash-key")
    return secret.get_secret_value().encode()


def create_app(
    settings: AuthSettings | None = None,
    *,
    clock: Clock | None = None,
    token_verifier: TokenVerifier | None = None,
    rate_limiter: RateLimiter | None = None,
) -> FastAPI:
    settings = settings or AuthSettings()
    clock = clock or SystemClock()
    database = Database(settings.resolved_database_url)
    rate_limiter = rate_limiter or RateLimiter(settings.redis_url)
    key = load_signing_key(settings)
    document = jwks_document(settings, key)

    async def local_jwks() -> Mapping[str, Any]:
        return document

    if token_verifier is None:
        token_verifier = TokenVerifier(
            local_jwks,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            algorithm=key.algorithm,
        )
    wakeup = MailWakeup()
    account_changes = AccountChangeFeed(
        AccountCache(settings.account_cache_seconds), settings.redis_url
    )
    revocations = RevocationPublisher(settings.redis_url)
    service = AuthService(
        settings,
        clock=clock,
        limiter=rate_limiter,
        hasher=PasswordHasher(settings),
        issuer=AccessTokenIssuer(
            key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_seconds=settings.access_token_ttl_seconds,
            clock=clock,
        ),
        code_key=code_hash_key(settings),
        wakeup=wakeup,
        account_changes=account_changes,
        revocations=revocations,
    )

    async def purge_addresses() -> None:
        """Clear session client addresses older than the retention period, now and hourly."""
        while True:
            try:
                await purge_session_addresses(database, clock.now())
            except Exception:  # a database outage must not end the loop
                logger.exception("clearing old session addresses failed")
            await asyncio.sleep(ADDRESS_PURGE_INTERVAL_SECONDS)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.hasher.prepare()
        await account_changes.start()
        await revocations.start()
        sender = OutboxSender(
            database,
            settings,
            wakeup,
            before_round=service.code_requests.answer_due,
            housekeeping=service.code_requests.purge_stale_codes,
        )
        task = None
        if settings.mail_sender_enabled:
            task = asyncio.create_task(sender.run(), name="auth-outbox-sender")
        purger = asyncio.create_task(purge_addresses(), name="auth-address-retention")
        try:
            yield
        finally:
            await cancel_and_wait(purger)
            if task is not None:
                # Cancelling mid-round can strand a database connection; let the round end.
                sender.stop()
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(task, settings.smtp_timeout_seconds + 5)
            service.hasher.close()
            await account_changes.stop()
            await revocations.stop()

    app = create_service_app(
        title="NATO Multimedia auth",
        description=DESCRIPTION,
        prefix="/v1/auth",
        settings=settings,
        database=database,
        routers=[router, account_router, well_known],
        token_verifier=token_verifier,
        rate_limiter=rate_limiter,
        clock=clock,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.state.auth_service = service
    app.state.mail_wakeup = wakeup
    app.state.account_cache = account_changes.cache
    app.state.jwks_bytes = json.dumps(document, separators=(",", ":")).encode()
    return app
