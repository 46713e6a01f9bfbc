"""Bench-only app: one media-style read, with and without the common bearer-token dependency.

The media service has no token-protected read that skips the database, so the cost of token
verification is measured here: the same factory (`create_service_app`, every middleware), the
same verifier (`build_token_verifier`, JWKS fetched from the running auth service), the same
bytes as the video detail. The bench runs it twice, once per route
(`BENCH_TOKEN_APP_ROUTE=open|protected`), so both are the only route at the same path: with both
in one app, the one declared second paid an extra route match, charged to the token.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Response, Security

from services.common.app import create_service_app
from services.common.database import Database
from services.common.jwt import Principal
from services.common.security import build_token_verifier, principal
from services.common.settings import ServiceSettings

BODY = Path(os.environ["BENCH_TOKEN_APP_BODY"]).read_bytes()


READ_PATH = "/v1/media/bench/read"


def create_app(protected: bool | None = None) -> FastAPI:
    if protected is None:
        protected = os.environ.get("BENCH_TOKEN_APP_ROUTE", "open") == "protected"
    router = APIRouter(prefix="/v1/media")
    if protected:

        @router.get("/bench/read")
        async def protected_read(_: Annotated[Principal, Security(principal)]) -> Response:
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
