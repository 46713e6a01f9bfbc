"""Bearer-token dependencies for routes, verified locally (see `jwt.TokenVerifier`)."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from services.common.jwt import Principal, TokenError, TokenVerifier, http_jwks_fetcher
from services.common.problems import InvalidToken
from services.common.settings import ServiceSettings


def token_verifier(request: Request) -> TokenVerifier:
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier


class BearerPrincipal(HTTPBearer):
    """The bearer-token dependency in one step: header, verification, and (if required) presence.

    One dependency instead of a chain of three (scheme -> optional -> required): FastAPI solves
    each nested dependency on every request, and the chain cost more than verifying a cached
    token (bench/stack_cost.py). Being an HTTPBearer, it still documents `bearerAuth`.
    """

    def __init__(self, *, required: bool) -> None:
        super().__init__(auto_error=False, bearerFormat="JWT", scheme_name="bearerAuth")
        self.required = required

    async def __call__(self, request: Request) -> Principal | None:  # type: ignore[override]
        # Straight from the ASGI headers (names arrive lower-cased): building starlette's
        # Headers and the app-state lookups cost more than a cached verification.
        authorization = None
        for name, value in request.scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        # The same parsing as HTTPBearer: a missing or non-bearer header means no token.
        scheme, _, credentials = (authorization or "").partition(" ")
        credentials = credentials.strip()
        if not (scheme and credentials) or scheme.lower() != "bearer":
            if self.required:
                raise InvalidToken("An access token is required.")
            return None
        verifier: TokenVerifier = request.scope["app"].state.token_verifier
        try:
            return await verifier.verify(credentials)
        except TokenError as exc:
            raise InvalidToken from exc


# Module-level instances: the gateway's OpenAPI pass finds required routes by `require_principal`.
optional_principal = BearerPrincipal(required=False)
require_principal = BearerPrincipal(required=True)

CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]


def build_token_verifier(
    settings: ServiceSettings, client: httpx.AsyncClient | None = None
) -> TokenVerifier:
    """The verifier media and news use: the auth JWKS over HTTP (or through `client`'s base URL)."""
    url = "/.well-known/jwks.json" if client is not None else settings.resolved_jwks_url
    return TokenVerifier(
        http_jwks_fetcher(url, client), issuer=settings.jwt_issuer, audience=settings.jwt_audience
    )
