"""The service app factory: problem+json everywhere, request ids, body limits, CORS, health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError

from services.common.app import create_service_app
from services.common.database import Database
from services.common.problems import PROBLEM_JSON, NotFound
from services.common.settings import ServiceSettings
from tests.docs_support import assert_docs_work_offline

router = APIRouter(prefix="/v1/demo")


class Payload(BaseModel):
    name: str = Field(min_length=2)
    count: int


@router.post("/echo")
async def echo(payload: Payload) -> Payload:
    return payload


@router.get("/missing")
async def missing() -> None:
    raise NotFound("No such demo.")


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internals /etc/passwd")


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"driver error {sqlstate}")
        self.sqlstate = sqlstate


@router.get("/database/{sqlstate}")
async def database_error(sqlstate: str) -> None:
    raise DBAPIError("SELECT 1", None, _DriverError(sqlstate))


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = ServiceSettings(
        NATOMEDIA_DATA_DIR=tmp_path,
        CORS_ORIGINS="https://app.example",
        NATOMEDIA_MAX_BODY_BYTES=1000,
    )
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'demo.sqlite3'}")
    app = create_service_app(
        title="demo",
        description="demo",
        prefix="/v1/demo",
        settings=settings,
        database=database,
        routers=[router],
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_validation_errors_are_problems_naming_each_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/demo/echo", json={"name": "x", "count": "many"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["status"] == 422
    assert {error["field"] for error in body["errors"]} == {"name", "count"}


async def test_malformed_json_is_a_json_invalid_problem(client: httpx.AsyncClient) -> None:
    # Not a 422: no field is wrong, the body as a whole does not parse (json_invalid).
    response = await client.post(
        "/v1/demo/echo",
        content=b'{"name": "ab", "count": ',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "json_invalid"


async def test_invalid_utf8_is_a_validation_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/demo/echo",
        content=b'{"name": "\xff\xfe", "count": 1}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code in {400, 422}
    assert response.headers["content-type"] == PROBLEM_JSON


async def test_domain_errors_keep_their_code(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/demo/missing")
    assert response.status_code == 404
    assert response.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "No such demo.",
        "code": "not_found",
    }


async def test_unknown_route_and_method_are_problems(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/demo/nowhere")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    response = await client.delete("/v1/demo/echo")
    assert (response.status_code, response.json()["code"]) == (405, "method_not_allowed")


async def test_unexpected_errors_leak_nothing(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/demo/boom")
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "passwd" not in response.text
    assert "Traceback" not in response.text


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    made = await client.get("/healthz")
    assert len(made.headers["x-request-id"]) == 32
    injected = await client.get("/healthz", headers={"X-Request-ID": "a b\tc" * 10})
    assert injected.headers["x-request-id"] != "a b\tc" * 10


async def test_oversized_bodies_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/demo/echo", content=b"x" * 2000, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert "x-request-id" in response.headers


async def test_chunked_oversized_bodies_are_refused(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"y" * 500

    response = await client.post(
        "/v1/demo/echo", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    assert (await client.get("/v1/demo/readyz")).status_code == 200


async def test_cors_allows_listed_origins_only(client: httpx.AsyncClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST"}
    allowed = await client.options(
        "/v1/demo/echo", headers={"Origin": "https://app.example", **preflight}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    refused = await client.options(
        "/v1/demo/echo", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in refused.headers
    simple = await client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


async def test_openapi_declares_the_problem_schema(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/v1/demo/openapi.json")).json()
    assert "code" in schema["components"]["schemas"]["Problem"]["properties"]


@pytest.mark.parametrize(
    ("sqlstate", "status"),
    [
        ("57P03", 503),  # cannot connect now: the server is starting or shutting down
        ("57P01", 503),  # admin shutdown
        ("08006", 503),  # connection failure
        ("42P01", 500),  # a bad statement is our fault, not an outage
    ],
)
async def test_a_database_out_of_reach_is_a_503_not_a_500(
    client: httpx.AsyncClient, sqlstate: str, status: int
) -> None:
    response = await client.get(f"/v1/demo/database/{sqlstate}")
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    if status == 503:
        assert response.json()["code"] == "service_unavailable"
        assert int(response.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    ("headers", "fields"),
    [
        ({"Origin": "https://evil.example"}, ["Origin"]),
        (
            {"Origin": "https://app.example", "Access-Control-Request-Method": "TRACE"},
            ["Access-Control-Request-Method"],
        ),
        (
            {
                "Origin": "https://app.example",
                "Access-Control-Request-Headers": "content-type, x-custom",
            },
            ["Access-Control-Request-Headers"],
        ),
        (
            {"Origin": "https://evil.example", "Access-Control-Request-Method": "TRACE"},
            ["Origin", "Access-Control-Request-Method"],
        ),
    ],
)
async def test_a_refused_preflight_is_a_problem_naming_what_was_refused(
    client: httpx.AsyncClient, headers: dict[str, str], fields: list[str]
) -> None:
    response = await client.options(
        "/v1/demo/echo", headers={"Access-Control-Request-Method": "POST", **headers}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["code"] == "cors_rejected"
    assert [error["field"] for error in body["errors"]] == fields
    refused = {
        "Origin": "https://evil.example",
        "Access-Control-Request-Method": "TRACE",
        "Access-Control-Request-Headers": "x-custom",
    }
    for error in body["errors"]:
        assert refused[error["field"]] in error["message"]
    # An allowed origin may read why (the browser shows the body); a refused one may not.
    allowed_origin = "Origin" not in fields
    assert ("access-control-allow-origin" in response.headers) is allowed_origin


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'{"name": x}', "line 1, column 10 (character 9)"),
        (b'{"name": "x",\n "count": }', "line 2, column 11 (character 24)"),
        (b'{"name": "x"', "character 12"),
    ],
)
async def test_malformed_json_is_a_json_invalid_problem_saying_where(
    client: httpx.AsyncClient, body: bytes, where: str
) -> None:
    response = await client.post(
        "/v1/demo/echo", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["code"] == "json_invalid"
    [error] = problem["errors"]
    assert error["field"] == "body"
    assert error["code"] == "json_invalid"
    assert where in error["message"]


async def test_a_body_that_is_not_utf8_is_a_json_invalid_problem(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/demo/echo", content=b'{"name": "\xc3("}', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["code"] == "json_invalid"
    assert problem["errors"][0]["field"] == "body"
    assert "UTF-8" in problem["errors"][0]["message"]


async def test_the_service_docs_work_offline(client: httpx.AsyncClient) -> None:
    found = await assert_docs_work_offline(client, "/v1/demo/docs")
    assert "/v1/demo/openapi.json" in found
    missing = await client.get(found[0].rsplit("/", 1)[0] + "/index.html")
    assert missing.status_code == 404
