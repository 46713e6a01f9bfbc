"""Bearer tokens for routes, verified locally (see `jwt.TokenVerifier`).

Routes take `request: Request` and await `require_principal` or `bearer_principal` themselves
instead of declaring the token as a FastAPI dependency: FastAPI solves every dependency node on
every request, and one node costs more than verifying a cached token (bench/stack_cost.py:
about 10 us for the node against 1-2 us for the verification, on a 40 us request). Without the
dependency FastAPI cannot see the token, so a route says so in its OpenAPI operation with
`openapi_extra=TOKEN_REQUIRED` or `TOKEN_OPTIONAL`, and `document_bearer_auth` completes the
service's document.
"""

from __future__ import annotations

from typing import Any, Final

import httpx
from fastapi import Request

from services.common.jwt import Principal, TokenError, TokenVerifier, http_jwks_fetcher
from services.common.problems import InvalidToken
from services.common.revocation import Revocations
from services.common.settings import ServiceSettings

BEARER_AUTH = "bearerAuth"
# What FastAPI's `HTTPBearer(bearerFormat="JWT", scheme_name="bearerAuth")` documented.
BEARER_SCHEME: Final[dict[str, Any]] = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}

# FastAPI merges `openapi_extra` into a route's operation without changing it, and the
# document it returns is a fresh copy, so one dict serves every route.
TOKEN_REQUIRED: Final[dict[str, Any]] = {"security": [{BEARER_AUTH: []}]}
# `{}`: anonymous callers are served too; a token only adds to the answer. A token that fails
# is ignored, with `WWW-Authenticate` saying why (`public_reads`).
TOKEN_OPTIONAL: Final[dict[str, Any]] = {"security": [{}, {BEARER_AUTH: []}]}


async def bearer_principal(request: Request) -> Principal | None:
    """Who the bearer token speaks for; None without one. A token that fails is a 401."""
    # Straight from the ASGI headers (names arrive lower-cased): building starlette's Headers
    # and the app-state lookups cost more than a cached verification.
    authorization = None
    for name, value in request.scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
            break
    # The same parsing as FastAPI's HTTPBearer: a missing or non-bearer header means no token.
    scheme, _, credentials = (authorization or "").partition(" ")
    credentials = credentials.strip()
    if not (scheme and credentials) or scheme.lower() != "bearer":
        return None
    state = request.scope["app"].state
    verifier: TokenVerifier = state.token_verifier
    try:
        principal = await verifier.verify(credentials)
    except TokenError as exc:
        raise InvalidToken from exc
    # After the verifier's cache, so a token revoked after its first use is refused too.
    revocations: Revocations | None = getattr(state, "revocations", None)
    if revocations is not None and revocations.refuses_token(principal):
        raise InvalidToken
    return principal


async def require_principal(request: Request) -> Principal:
    """Who the bearer token speaks for; no token is a 401."""
    principal = await bearer_principal(request)
    if principal is None:
        raise InvalidToken("An access token is required.")
    return principal


def document_bearer_auth(schema: dict[str, Any]) -> None:
    """Define `bearerAuth` in a service's `app.openapi()` when a route declares a token."""
    referenced = any(
        BEARER_AUTH in requirement
        for item in schema.get("paths", {}).values()
        for operation in item.values()
        if isinstance(operation, dict)
        for requirement in operation.get("security", ())
    )
    if referenced:
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes.setdefault(BEARER_AUTH, dict(BEARER_SCHEME))


def build_token_verifier(
    settings: ServiceSettings, client: httpx.AsyncClient | None = None
) -> TokenVerifier:
    """The verifier media and news use: the auth JWKS over HTTP (or through `client`'s base URL)."""
    url = "/.well-known/jwks.json" if client is not None else settings.resolved_jwks_url
    return TokenVerifier(
        http_jwks_fetcher(url, client), issuer=settings.jwt_issuer, audience=settings.jwt_audience
    )
