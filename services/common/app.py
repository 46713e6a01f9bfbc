"""The FastAPI factory every service uses: errors, request ids, limits, CORS, health."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from services.common.body_limit import BodyLimitMiddleware
from services.common.clock import Clock, SystemClock
from services.common.cors import add_cors
from services.common.database import Database
from services.common.docs import docs_router
from services.common.health import health_router
from services.common.i18n import LanguageMiddleware
from services.common.jwt import TokenVerifier
from services.common.methods import MethodsMiddleware
from services.common.problems import (
    PROBLEM_JSON,
    CatchAllMiddleware,
    Problem,
    install_problem_handlers,
)
from services.common.public_cache import PublicCache, PublicCacheMiddleware
from services.common.public_reads import RefusedTokenMiddleware
from services.common.ratelimit import RateLimiter
from services.common.request_id import RequestIdMiddleware
from services.common.revocation import RevocationWatch
from services.common.security import BearerChecks, document_anonymous_access
from services.common.settings import ServiceSettings
from services.common.telemetry import telemetry_config

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_service_app(
    *,
    title: str,
    description: str,
    prefix: str,
    settings: ServiceSettings,
    database: Database,
    routers: Sequence[APIRouter],
    token_verifier: TokenVerifier | None = None,
    rate_limiter: RateLimiter | None = None,
    clock: Clock | None = None,
    lifespan: Lifespan | None = None,
    version: str = "1.0.0",
    public_cache_seconds: float = 0.0,
    hears_revocations: bool = False,
) -> FastAPI:
    """A service app whose routes carry their full public paths (`/v1/<service>/...`).

    With `public_cache_seconds` above zero, responses routes mark with `allow_public_cache` are
    replayed to anonymous callers for that long (`public_cache.py`); `app.state.public_cache`
    is that cache (None when off), for in-process writers to clear.

    With `hears_revocations`, bearer tokens are also checked against what auth revoked, kept
    current from Redis (`revocation.py`); `app.state.bearer_checks` holds the token verifier and
    that set (None when off).
    """
    watch = RevocationWatch(settings.redis_url) if hears_revocations else None

    @asynccontextmanager
    async def service_lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            if watch is not None:
                await watch.start()
            if lifespan is not None:
                async with lifespan(app):
                    yield
            else:
                yield
        finally:
            if watch is not None:
                await watch.stop()
            await app.state.rate_limiter.aclose()
            await database.dispose()

    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=service_lifespan,
        openapi_url=f"{prefix}/openapi.json",
        # Ours (`docs.py`): FastAPI's page loads Swagger UI from a CDN.
        docs_url=None,
        redoc_url=None,
        telemetry=telemetry_config(),
        # Starlette would answer `/path/` with a redirect to `/path` built from the request's Host
        # header, which anyone can set (cache poisoning, open redirect). Every path is documented
        # without the slash; another spelling is an unknown path: 404 problem+json.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.clock = clock or SystemClock()
    app.state.rate_limiter = rate_limiter or RateLimiter(settings.redis_url)
    bearer_checks = BearerChecks(token_verifier, watch.revocations if watch is not None else None)
    app.state.bearer_checks = bearer_checks
    app.state.revocation_watch = watch
    public_cache = PublicCache(public_cache_seconds) if public_cache_seconds > 0 else None
    app.state.public_cache = public_cache

    install_problem_handlers(app)
    for router in routers:
        app.include_router(router)
    app.include_router(docs_router(prefix, title))
    service_name = prefix.rstrip("/").rpartition("/")[2]
    # Documented at its public path, as the gateway serves it; `/healthz` is for the orchestrator.
    app.include_router(health_router(prefix, service=service_name))
    app.include_router(health_router(service=service_name), include_in_schema=False)
    complete_openapi(app)

    # Added innermost first: the request id wraps everything, so even a 413 carries one.
    app.add_middleware(CatchAllMiddleware)
    if public_cache is not None:
        # Inside CORS, so a replayed response gets the CORS headers of the request replayed to.
        app.add_middleware(PublicCacheMiddleware, cache=public_cache, bearer_checks=bearer_checks)
    # Outside the public cache: a read whose token failed is answered as an anonymous one, and
    # may fill the public copy with that answer; only this caller's copy is marked.
    app.add_middleware(RefusedTokenMiddleware)
    add_cors(app, settings)
    # Outside the public cache, so a HEAD is answered from the GET's cached copy.
    app.add_middleware(MethodsMiddleware, router=app.router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Outside the body limit and the catch-all, so their problems are in the caller's language.
    app.add_middleware(LanguageMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app


def complete_openapi(app: FastAPI) -> None:
    """The problem schema, 422s as problems and optional tokens in `app.openapi()`."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        document_anonymous_access(app, schema)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault(
            "Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        for name, definition in (
            Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            .get("$defs", {})
            .items()
        ):
            components.setdefault(name, definition)
        components["Problem"].pop("$defs", None)
        _document_validation_errors_as_problems(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_validation_errors_as_problems(schema: dict[str, Any]) -> None:
    """FastAPI documents its own 422 as application/json HTTPValidationError; ours is a problem."""
    framework_ref = "#/components/schemas/HTTPValidationError"
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            response = operation.get("responses", {}).get("422")
            if not isinstance(response, dict):
                continue
            content = response.get("content", {})
            framework = content.get("application/json", {}).get("schema", {})
            if framework.get("$ref") == framework_ref:
                content.pop("application/json")
                content.setdefault(
                    PROBLEM_JSON,
                    {"schema": {"$ref": "#/components/schemas/Problem"}},
                )
