"""The merged API document: built from the services' schemas, committed, served by the gateway."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Form, Security
from openapi_spec_validator import OpenAPIV31SpecValidator
from pydantic import BaseModel

from services.common import scopes
from services.common.app import create_service_app
from services.common.database import Database
from services.common.jwt import Principal
from services.common.pagination import Page
from services.common.problems import PROBLEM_JSON, problem_responses
from services.common.security import client_credentials, optional_principal, principal
from services.common.settings import ServiceSettings
from services.gateway import openapi
from services.gateway.cli import main
from services.gateway.dispatch import PrefixDispatcher

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "openapi.json"
SERVER = "http://127.0.0.1:8000"


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def _codes(response: dict[str, Any]) -> list[str]:
    schema = response["content"][PROBLEM_JSON]["schema"]
    return list(schema["allOf"][1]["properties"]["code"]["enum"])


# A miniature of the real services, built with the same factory -----------------------------


class Registration(BaseModel):
    email: str
    password: str


class Pending(BaseModel):
    status: str

    model_config = {"json_schema_extra": {"examples": [{"status": "verification_pending"}]}}


class MediaItem(BaseModel):
    title: str


def _app(name: str, router: APIRouter, tmp_path: Path) -> FastAPI:
    settings = ServiceSettings(NATOMEDIA_DATA_DIR=tmp_path)
    return create_service_app(
        title=name,
        description=f"The {name} service",
        prefix=f"/v1/{name}",
        settings=settings,
        database=Database(f"sqlite+aiosqlite:///{tmp_path / name}.sqlite3"),
        routers=[router],
    )


def _auth(tmp_path: Path) -> FastAPI:
    router = APIRouter(prefix="/v1/auth")

    @router.post(
        "/register",
        status_code=202,
        response_model=Pending,
        summary="Create an account",
        responses=problem_responses((422, "weak_password"), (409, "conflict")),
        operation_id="registerAccount",
    )
    async def register(data: Registration) -> Pending:
        """Sends a code."""
        return Pending(status="verification_pending")

    # Media publishes another `Item`.
    class Item(BaseModel):
        email: str

    @router.get("/me", response_model=Item, operation_id="getMe")
    async def me(caller: Annotated[Principal, Security(principal)]) -> Any:
        return {"email": caller.subject}

    @router.get("/stray", response_model=Item, responses={404: {"description": "Gone"}})
    async def stray(item_id: int) -> Any:
        return {"email": "x"}

    @router.post("/token", response_model=Pending, operation_id="issueClientToken")
    async def token(grant_type: Annotated[str, Form()]) -> Any:
        return {"status": grant_type}

    @router.get("/clients", response_model=Page[Item], operation_id="listClients")
    async def clients(_: Annotated[Principal, Security(principal)]) -> Any:
        return {"items": [], "next_cursor": None}

    return _app("auth", router, tmp_path)


def _media(tmp_path: Path, *, own_media_item: bool = False) -> FastAPI:
    router = APIRouter(prefix="/v1/media")

    @router.get(
        "/videos", response_model=MediaItem, summary="List videos", operation_id="listVideos"
    )
    async def videos(
        _: Annotated[Principal | None, Depends(optional_principal)], q: str | None = None
    ) -> Any:
        return {"title": "x"}

    @router.get("/feed.atom", responses={200: {"content": {"application/atom+xml": {}}}})
    async def feed() -> Any:
        return None

    if own_media_item:
        # The same name as auth's `Item`, another shape.
        class Item(BaseModel):
            title: str

        @router.get("/other", response_model=Item)
        async def other() -> Any:
            return {"title": "x"}

    @router.post(
        "/videos/{video_id}/renditions/{rendition_id}/download-url",
        summary="Get a signed URL",
        operation_id="createDownloadUrl",
        responses=problem_responses((401, "invalid_token"), (403, "email_not_verified")),
    )
    async def download_url(
        video_id: str,
        rendition_id: str,
        _: Annotated[Principal, Depends(principal)],
        __: Annotated[str | None, Security(client_credentials, scopes=[scopes.MEDIA_DOWNLOAD])],
    ) -> dict[str, str]:
        """Signs."""
        return {"url": "x"}

    return _app("media", router, tmp_path)


@pytest.fixture
def merge(tmp_path: Path) -> openapi.Merge:
    return openapi.merge_documents(
        {"auth": _auth(tmp_path), "media": _media(tmp_path)}, server_url=SERVER + "/"
    )


def test_one_document_with_one_server_and_a_tag_per_service(merge: openapi.Merge) -> None:
    document = merge.document
    assert document["openapi"] == "3.1.0"
    assert not list(OpenAPIV31SpecValidator(document).iter_errors())
    assert document["servers"] == [{"url": SERVER, "description": "This deployment"}]
    assert [tag["name"] for tag in document["tags"]] == ["auth", "media", "health"]
    assert document["tags"][0]["description"] == "The auth service"
    register = document["paths"]["/v1/auth/register"]["post"]
    assert register["tags"] == ["auth"]
    assert document["paths"]["/v1/media/videos"]["get"]["tags"] == ["media"]


def test_operation_ids_come_from_the_routes_and_unnamed_routes_are_reported(
    merge: openapi.Merge,
) -> None:
    paths = merge.document["paths"]
    assert paths["/v1/auth/register"]["post"]["operationId"] == "registerAccount"
    assert paths["/v1/auth/me"]["get"]["operationId"] == "getMe"
    download = paths["/v1/media/videos/{video_id}/renditions/{rendition_id}/download-url"]
    assert download["post"]["operationId"] == "createDownloadUrl"
    assert "no operation_id= on the route" in merge.gaps["GET /v1/auth/stray"]
    assert "no operation_id= on the route" not in merge.gaps.get("GET /v1/auth/me", [])


def test_health_routes_appear_under_each_service_prefix(merge: openapi.Merge) -> None:
    paths = merge.document["paths"]
    assert "/healthz" not in paths
    assert paths["/v1/auth/healthz"]["get"]["operationId"] == "getAuthHealth"
    assert paths["/v1/media/readyz"]["get"]["operationId"] == "getMediaReadiness"
    assert paths["/v1/media/readyz"]["get"]["tags"] == ["health"]
    assert paths["/v1/media/readyz"]["get"]["responses"]["503"]["content"][PROBLEM_JSON]


def test_each_service_schema_keeps_its_name_and_shared_ones_appear_once(
    merge: openapi.Merge,
) -> None:
    schemas = merge.document["components"]["schemas"]
    assert set(schemas["Item"]["properties"]) == {"email"}
    assert set(schemas["MediaItem"]["properties"]) == {"title"}
    me = merge.document["paths"]["/v1/auth/me"]["get"]
    assert me["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Item")
    videos = merge.document["paths"]["/v1/media/videos"]["get"]
    ref = videos["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/MediaItem"
    # Identical schemas (the shared Problem) are kept once, under their own name.
    assert "Problem" in schemas
    assert "MediaProblem" not in schemas


def test_names_fastapi_made_up_become_readable(merge: openapi.Merge) -> None:
    schemas = merge.document["components"]["schemas"]
    token = merge.document["paths"]["/v1/auth/token"]["post"]["requestBody"]["content"]
    form = token["application/x-www-form-urlencoded"]["schema"]["$ref"]
    assert form == "#/components/schemas/IssueClientTokenForm"
    assert "grant_type" in schemas["IssueClientTokenForm"]["properties"]
    assert "ItemPage" in schemas
    assert not [name for name in schemas if name.startswith("Body_") or name.endswith("_")]


def test_a_route_declaring_its_media_type_does_not_also_claim_json(
    merge: openapi.Merge,
) -> None:
    feed = merge.document["paths"]["/v1/media/feed.atom"]["get"]["responses"]["200"]
    assert list(feed["content"]) == ["application/atom+xml"]


def test_a_path_served_by_two_services_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(openapi.SchemaConflict, match="/v1/auth/register"):
        openapi.merge_documents(
            {"auth": _auth(tmp_path), "copy": _auth(tmp_path)}, server_url=SERVER
        )


def test_one_schema_name_for_two_shapes_fails_loudly(tmp_path: Path) -> None:
    # Generated clients would get one `Item` type for two shapes: a service renames its model.
    media = _media(tmp_path, own_media_item=True)
    with pytest.raises(openapi.SchemaConflict, match="_Item"):
        openapi.merge_documents({"auth": _auth(tmp_path), "media": media}, server_url=SERVER)


def test_security_schemes_and_who_may_call(merge: openapi.Merge) -> None:
    components = merge.document["components"]
    bearer = components["securitySchemes"]["bearerAuth"]
    assert (bearer["type"], bearer["scheme"], bearer["bearerFormat"]) == ("http", "bearer", "JWT")
    flow = components["securitySchemes"]["clientCredentials"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/v1/auth/token"
    assert "media:download" in flow["scopes"]
    paths = merge.document["paths"]
    assert paths["/v1/auth/me"]["get"]["security"] == [{"bearerAuth": []}]
    # A token is optional here: the anonymous requirement comes first.
    assert paths["/v1/media/videos"]["get"]["security"] == [{}, {"bearerAuth": []}]
    download = paths["/v1/media/videos/{video_id}/renditions/{rendition_id}/download-url"]
    assert download["post"]["security"] == [
        {"bearerAuth": []},
        {"clientCredentials": ["media:download"]},
    ]


def test_every_error_is_problem_json_with_its_codes(merge: openapi.Merge) -> None:
    document = merge.document
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            assert response["headers"]["X-Request-ID"] == {
                "$ref": "#/components/headers/X-Request-ID"
            }
            if int(status) < 400:
                continue
            content = response["content"]
            assert list(content) == [PROBLEM_JSON], (method, path, status)
            codes = content[PROBLEM_JSON]["schema"]["allOf"][1]["properties"]["code"]["enum"]
            assert codes, (method, path, status)
            assert set(content[PROBLEM_JSON]["examples"]) == set(codes)
    register = document["paths"]["/v1/auth/register"]["post"]["responses"]
    codes = register["422"]["content"][PROBLEM_JSON]["schema"]["allOf"][1]["properties"]["code"]
    # The route's own code and FastAPI's request validation, both.
    assert codes["enum"] == ["validation_error", "weak_password"]
    examples = register["422"]["content"][PROBLEM_JSON]["examples"]
    assert examples["validation_error"]["value"]["errors"][0]["field"] == "email"
    assert examples["weak_password"]["value"]["errors"][0]["code"] == "too_short"
    # Any body may be too large, not parse (json_invalid) or carry text that is not Unicode.
    assert _codes(register["413"]) == ["payload_too_large"]
    assert _codes(register["400"]) == ["invalid_text", "json_invalid"]
    assert register["409"]["description"] == "Conflict: code `conflict`"
    # The route forgot the 401 its required token implies; the merge adds it, with the header.
    me = document["paths"]["/v1/auth/me"]["get"]["responses"]["401"]
    assert me["content"][PROBLEM_JSON]["examples"]["invalid_token"]["value"]["status"] == 401
    assert "WWW-Authenticate" in me["headers"]
    # FastAPI's JSON validation error schema is replaced everywhere, so it is gone.
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_gaps_name_what_each_route_has_yet_to_document(merge: openapi.Merge) -> None:
    gaps = merge.gaps
    assert (
        "POST /v1/auth/register" not in gaps or "no summary" not in gaps["POST /v1/auth/register"]
    )
    assert "no request example" in gaps["POST /v1/auth/register"]
    # Pending carries its own examples.
    assert "no 202 response example" not in gaps["POST /v1/auth/register"]
    assert {"no summary", "no description (docstring)"} <= set(gaps["GET /v1/auth/me"])
    assert "404 lists no code values" in gaps["GET /v1/auth/stray"]
    assert not any(label.endswith(("healthz", "readyz")) for label in gaps)


async def test_the_gateway_serves_the_document_and_the_docs_page(merge: openapi.Merge) -> None:
    calls: list[int] = []

    def document() -> dict[str, Any]:
        calls.append(1)
        return merge.document

    docs = openapi.document_app(document)
    gateway = PrefixDispatcher([], exact={"/openapi.json": docs, "/docs": docs})
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        served = await client.get("/openapi.json")
        assert served.status_code == 200
        assert served.json() == json.loads(openapi.render(merge.document))
        assert served.headers["x-request-id"]
        again = await client.get("/openapi.json", headers={"If-None-Match": served.headers["etag"]})
        assert again.status_code == 304
        page = await client.get("/docs")
        assert page.status_code == 200
        assert "swagger-ui" in page.text
        assert "'/openapi.json'" in page.text or '"/openapi.json"' in page.text
        assert (await client.get("/docs/other")).status_code == 404
    assert len(calls) == 1


# The real document ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_merge() -> openapi.Merge:
    return openapi.build_merge(SERVER)


def test_committed_document_matches_the_code(real_merge: openapi.Merge) -> None:
    """`natomedia openapi > openapi.json` after changing the API, and review the diff."""
    assert COMMITTED.read_text(encoding="utf-8") == openapi.render(real_merge.document), (
        "openapi.json is stale: run `natomedia openapi > openapi.json`"
    )


def test_the_document_is_valid_openapi_3_1(real_merge: openapi.Merge) -> None:
    errors = list(OpenAPIV31SpecValidator(real_merge.document).iter_errors())
    assert not errors, [error.message for error in errors[:5]]


def test_every_operation_has_a_public_name(real_merge: openapi.Merge) -> None:
    names = []
    for method, path, operation in _operations(real_merge.document):
        label = f"{method.upper()} {path}"
        assert "no operation_id= on the route" not in real_merge.gaps.get(label, []), label
        # Generated clients turn these into function names: camelCase, never FastAPI's own.
        assert re.fullmatch(r"[a-z][A-Za-z]+", operation["operationId"]), label
        names.append(operation["operationId"])
    assert len(names) == len(set(names))


def test_the_contract_operations_are_documented(real_merge: openapi.Merge) -> None:
    ids = {operation["operationId"] for _, _, operation in _operations(real_merge.document)}
    assert {
        "registerAccount",
        "verifyEmail",
        "login",
        "refreshToken",
        "getMe",
        "issueClientToken",
        "getJwks",
        "listVideos",
        "getVideo",
        "createDownloadUrl",
        "downloadFile",
        "listArticles",
        "getArticle",
    } <= ids


def test_cli_prints_the_document(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://api.example.org/")
    assert main(["openapi"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["servers"] == [
        {"url": "https://api.example.org", "description": "This deployment"}
    ]
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert printed["paths"] == committed["paths"]
    assert main(["openapi", "--docs"]) == 0
    assert "SwaggerUIBundle" in capsys.readouterr().out


def test_every_operation_with_a_body_documents_the_parse_error() -> None:
    """A body that is not JSON (or not UTF-8) is 400 json_invalid, for every operation."""
    document = json.loads(COMMITTED.read_text(encoding="utf-8"))
    with_body = [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "requestBody" in operation
    ]
    assert len(with_body) >= 8
    for path, method, operation in with_body:
        assert "json_invalid" in _codes(operation["responses"]["400"]), (method, path)
