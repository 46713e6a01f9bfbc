"""Bearer-token dependencies for routes, verified locally (see `jwt.TokenVerifier`)."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.common.jwt import Principal, TokenError, TokenVerifier, http_jwks_fetcher
from services.common.problems import InvalidToken
from services.common.settings import ServiceSettings

bearer_scheme = HTTPBearer(auto_error=False, bearerFormat="JWT", scheme_name="bearerAuth")


def token_verifier(request: Request) -> TokenVerifier:
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier


async def optional_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal | None:
    if credentials is None:
        return None
    try:
        return await token_verifier(request).verify(credentials.credentials)
    except TokenError as exc:
        raise InvalidToken from exc


async def require_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if principal is None:
        raise InvalidToken("An access token is required.")
    return principal


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
