"""`/healthz` (the process answers) and `/readyz` (its database answers)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.common.database import Database
from services.common.i18n import N_
from services.common.problems import problem_response


class Health(BaseModel):
    status: str


def health_router(prefix: str = "", *, service: str) -> APIRouter:
    """The probes; `service` names their operations (`getAuthHealth`) in the merged document."""
    router = APIRouter(prefix=prefix, tags=["health"])
    name = service.capitalize()

    @router.get(
        "/healthz", response_model=Health, summary="Liveness", operation_id=f"get{name}Health"
    )
    async def healthz() -> JSONResponse:
        """The process is alive."""
        return JSONResponse({"status": "ok"})

    @router.get(
        "/readyz",
        response_model=Health,
        summary="Readiness",
        operation_id=f"get{name}Readiness",
        responses={503: {"description": "The database does not answer"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        """The service's database answers."""
        database: Database = request.app.state.database
        try:
            await database.ping()
        except Exception:
            return problem_response(
                503,
                "service_unavailable",
                N_("The database does not answer."),
                headers={"Retry-After": "2"},
            )
        return JSONResponse({"status": "ready"})

    return router
