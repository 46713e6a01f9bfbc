"""Bearer tokens as FastAPI security dependencies, verified locally (see `jwt.TokenVerifier`).

Each scheme below is a `SecurityBase`, so FastAPI documents it on every route that depends on it
(with the `scopes=` of the `Security(...)` above it); parsing and errors stay ours, so a bad or
missing token is a problem+json 401 with `WWW-Authenticate`, never FastAPI's own 403.

Services name what a route needs in their `auth.py` (`Annotated[Principal, Security(principal,
scopes=[...])]`) and routes just take the alias.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi import routing as fastapi_routing
from fastapi.openapi.models import (
    HTTPBase,
    HTTPBearer,
    OAuth2,
    OAuthFlowClientCredentials,
    OAuthFlows,
)
from fastapi.openapi.models import SecurityBase as SecuritySchemeModel
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase
from starlette.types import Scope

from services.common import scopes
from services.common.jwt import Principal, TokenError, TokenVerifier, http_jwks_fetcher
from services.common.problems import InvalidToken
from services.common.revocation import Revocations
from services.common.settings import ServiceSettings

BEARER_AUTH = "bearerAuth"
CLIENT_BASIC = "clientBasic"
CLIENT_CREDENTIALS = "clientCredentials"


class Scheme(SecurityBase):
    """A security scheme for the document; what the dependency yields is the subclass's.

    `anonymous`: the operation also works without these credentials, which FastAPI cannot say by
    itself; `document_anonymous_access` adds the `{}` alternative for it.
    """

    def __init__(
        self, model: SecuritySchemeModel, scheme_name: str, *, anonymous: bool = False
    ) -> None:
        self.model = model
        self.scheme_name = scheme_name
        self.anonymous = anonymous


class AuthorizationHeader(Scheme):
    """Yields the raw `Authorization` header; the route parses it."""

    async def __call__(self, request: Request) -> str | None:
        return request.headers.get("authorization")


# What reading a request's bearer token came to, kept in its ASGI scope: the public cache reads
# the token before replaying anything (an editor must bypass it, a failing token changes the
# answer's headers), and the route's dependency then reuses that outcome instead of redoing it.
_OUTCOME_KEY = "natomedia.bearer"
_REFUSED = object()


def _bearer_credentials(authorization: str | None) -> str | None:
    # The same parsing as FastAPI's HTTPBearer: a missing or non-bearer header means no token.
    scheme, _, credentials = (authorization or "").partition(" ")
    credentials = credentials.strip()
    if not (scheme and credentials) or scheme.lower() != "bearer":
        return None
    return credentials


@dataclass(slots=True)
class BearerChecks:
    """What a bearer token is checked against, kept together as `app.state.bearer_checks` so a
    request reads them in one step: the issuer's signature (`verifier`; None in an app that
    takes no tokens) and what auth has revoked since (`revocations`; None when not listened to,
    and also what signed download links are checked against)."""

    verifier: TokenVerifier | None
    revocations: Revocations | None = None

    async def principal(self, token: str) -> Principal | None:
        """The token's principal, or None when it fails."""
        if self.verifier is None:
            return None
        try:
            principal = await self.verifier.verify(token)
        except TokenError:
            return None
        # After the verifier's cache, so a token revoked after its first use is refused too.
        if self.revocations is not None and self.revocations.refuses_token(principal):
            return None
        return principal


async def scope_principal(scope: Scope, checks: BearerChecks | None = None) -> Principal | None:
    """Who the request's bearer token speaks for; None without one. A token that fails (forged,
    expired, revoked) raises `InvalidToken`. Verified once per request, whoever asks first;
    `checks` defaults to the app's."""
    outcome = scope.get(_OUTCOME_KEY)
    if outcome is None:
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        token = _bearer_credentials(authorization)
        if token is None:
            outcome = False
        else:
            checks = checks or scope["app"].state.bearer_checks
            outcome = await checks.principal(token) or _REFUSED
        scope[_OUTCOME_KEY] = outcome
    if outcome is _REFUSED:
        raise InvalidToken
    return outcome if isinstance(outcome, Principal) else None


async def _principal_from_header(request: Request) -> Principal | None:
    return await scope_principal(request.scope)


# The scheme is the dependency itself: one node in FastAPI's dependency graph per route, not a
# scheme node plus a verifying one (bench: "same read with Security(principal)").
class BearerPrincipal(Scheme):
    """Who the bearer token speaks for; no token is a 401."""

    async def __call__(self, request: Request) -> Principal:
        found = await _principal_from_header(request)
        if found is None:
            raise InvalidToken("An access token is required.")
        return found


class OptionalBearerPrincipal(Scheme):
    """Who the bearer token speaks for, None without one; a bad token is still a 401."""

    async def __call__(self, request: Request) -> Principal | None:
        return await _principal_from_header(request)


principal = BearerPrincipal(HTTPBearer(bearerFormat="JWT"), BEARER_AUTH)
optional_principal = OptionalBearerPrincipal(
    HTTPBearer(bearerFormat="JWT"), BEARER_AUTH, anonymous=True
)
# Partners' tokens come from the client-credentials grant; the scheme documents that grant and
# its scopes beside `bearerAuth` (both arrive as the same bearer header).
client_credentials = AuthorizationHeader(
    OAuth2(
        flows=OAuthFlows(
            clientCredentials=OAuthFlowClientCredentials(
                tokenUrl="/v1/auth/token", scopes=dict(scopes.CLIENT_SCOPES)
            )
        )
    ),
    CLIENT_CREDENTIALS,
)
# The client id and secret may come in the form body instead (RFC 6749 section 2.3.1).
client_basic = AuthorizationHeader(HTTPBase(scheme="basic"), CLIENT_BASIC, anonymous=True)


async def bearer_principal(request: Request) -> Principal | None:
    """Who the bearer token speaks for; None without one. A token that fails is a 401."""
    return await optional_principal(request)


async def require_principal(request: Request) -> Principal:
    """Who the bearer token speaks for; no token is a 401."""
    return await principal(request)


def _security_calls(dependant: Any) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _security_calls(dependency)


def api_routes(app: FastAPI) -> Iterator[Any]:
    """The app's API routes as the document sees them (prefixes of included routers applied)."""
    # Recent FastAPI nests included routers; `iter_route_contexts` flattens them where it exists.
    flatten = getattr(fastapi_routing, "iter_route_contexts", None)
    candidates: Iterable[Any] = flatten(app.routes) if flatten is not None else app.routes
    for route in candidates:
        if isinstance(getattr(route, "original_route", route), APIRoute):
            yield route


def document_anonymous_access(app: FastAPI, schema: dict[str, Any]) -> None:
    """`security: [{}, ...]` on operations whose credentials are optional (`anonymous=True`)."""
    for route in api_routes(app):
        if not route.include_in_schema:
            continue
        anonymous = any(
            isinstance(call, Scheme) and call.anonymous for call in _security_calls(route.dependant)
        )
        if not anonymous:
            continue
        item = schema.get("paths", {}).get(route.path_format, {})
        for method in route.methods or ():
            operation = item.get(method.lower())
            if operation is not None and {} not in operation.setdefault("security", []):
                operation["security"].insert(0, {})


def build_token_verifier(
    settings: ServiceSettings, client: httpx.AsyncClient | None = None
) -> TokenVerifier:
    """The verifier media and news use: the auth JWKS over HTTP (or through `client`'s base URL)."""
    url = "/.well-known/jwks.json" if client is not None else settings.resolved_jwks_url
    return TokenVerifier(
        http_jwks_fetcher(url, client), issuer=settings.jwt_issuer, audience=settings.jwt_audience
    )
