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
from services.auth.account_events import AccountEvents
from services.auth.account_router import router as account_router
from services.auth.code_requests import CodeRequests
from services.auth.codes import CodeBook
from services.auth.config import AuthSettings
from services.auth.error_handlers import install_error_handlers
from services.auth.keys import jwks_document, load_signing_key
from services.auth.lifecycle import purge_session_addresses
from services.auth.limits import AuthLimits
from services.auth.login_addresses import KnownAddresses
from services.auth.outbox import MailWakeup, OutboxSender
from services.auth.passwords import PasswordHasher
from services.auth.refresh_tokens import RefreshTokens
from services.auth.router import router, well_known
from services.auth.session_tokens import SessionTokens
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
    database = Database(settings.resolved_database_url, pool_size=settings.database_pool_size)
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
    hasher = PasswordHasher(settings)
    issuer = AccessTokenIssuer(
        key,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.access_token_ttl_seconds,
        clock=clock,
    )
    code_key = code_hash_key(settings)
    codes = CodeBook(code_key, clock, settings.code_ttl_seconds, settings.code_max_attempts)
    code_requests = CodeRequests(
        codes, settings.code_ttl_seconds // 60, settings.mail_batch_size, wakeup
    )
    refresh_tokens = RefreshTokens(
        code_key,
        clock,
        settings.refresh_family_ttl_seconds,
        reuse_grace_seconds=settings.refresh_reuse_grace_seconds,
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
        await hasher.prepare()
        await account_changes.start()
        await revocations.start()
        sender = OutboxSender(
            database,
            settings,
            wakeup,
            before_round=code_requests.answer_due,
            housekeeping=code_requests.purge_stale_codes,
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
            hasher.close()
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
    # Built once, reached by routes through the aliases in `dependencies.py`.
    app.state.hasher = hasher
    app.state.issuer = issuer
    app.state.codes = codes
    app.state.code_requests = code_requests
    app.state.refresh_tokens = refresh_tokens
    app.state.known_addresses = KnownAddresses(code_key, clock, settings.known_login_address_days)
    app.state.limits = AuthLimits.from_settings(settings, rate_limiter)
    app.state.session_tokens = SessionTokens(issuer, refresh_tokens, clock)
    app.state.account_changes = account_changes
    app.state.revocation_publisher = revocations
    app.state.account_events = AccountEvents(wakeup, account_changes, revocations)
    app.state.mail_wakeup = wakeup
    app.state.account_cache = account_changes.cache
    app.state.jwks_bytes = json.dumps(document, separators=(",", ":")).encode()
    return app
