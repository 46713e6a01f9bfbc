"""Bench-only app: one media-style read, with and without the common bearer-token dependency.

The media service has no token-protected read that skips the database, so the cost of token
verification is measured here: the same factory (`create_service_app`, every middleware), the
same verifier (`build_token_verifier`, JWKS fetched from the running auth service), the same
bytes as the video detail. The bench runs it twice, once per route
(`BENCH_TOKEN_APP_ROUTE=open|protected`), so both are the only route at the same path: with both
in one app, the one declared second paid an extra route match, charged to the token. A third
route, `called`, verifies the same token by calling the dependency from the route's body instead
of declaring it: `bench/stack_cost.py` sets it beside the other two to tell FastAPI's share of a
`Security(...)` declaration from the verification's own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Request, Response, Security

from services.common.app import create_service_app
from services.common.database import Database
from services.common.jwt import Principal
from services.common.security import build_token_verifier, principal
from services.common.settings import ServiceSettings

BODY = Path(os.environ["BENCH_TOKEN_APP_BODY"]).read_bytes()


READ_PATH = "/v1/media/bench/read"


def create_app(route: str | None = None) -> FastAPI:
    route = route or os.environ.get("BENCH_TOKEN_APP_ROUTE", "open")
    router = APIRouter(prefix="/v1/media")
    if route == "protected":

        @router.get("/bench/read")
        async def protected_read(_: Annotated[Principal, Security(principal)]) -> Response:
            return Response(BODY, media_type="application/json")
    elif route == "called":

        @router.get("/bench/read")
        async def called_read(request: Request) -> Response:
            await principal(request)
            return Response(BODY, media_type="application/json")
    else:

        @router.get("/bench/read")
        async def open_read() -> Response:
            return Response(BODY, media_type="application/json")

    settings = ServiceSettings()
    return create_service_app(
        title="bench token probe",
        description="bench only",
        prefix="/v1/media",
        settings=settings,
        # Never opened: neither route touches a database.
        database=Database(settings.sqlite_url("bench-token-app")),
        routers=[router],
        token_verifier=build_token_verifier(settings),
        # As media: every token is also checked against the revocations heard of.
        hears_revocations=True,
    )
