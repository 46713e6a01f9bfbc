"""The one API document frontends build against: the three services' schemas, merged.

Each service describes itself (`app.openapi()`); the gateway merges those into one OpenAPI 3.1
document with one server, a tag per service, the security schemes, the public operation names
the routes give (`operation_id=`), and every error response spelled out as
`application/problem+json` with the `code` values it can carry, so a generated client can switch
on `code` with types. Nothing here starts a server: `natomedia openapi` and the committed
`openapi.json` come from the same function the dev gateway serves at `/openapi.json`."""

from __future__ import annotations

import copy
import json
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from services.common import scopes
from services.common.app import complete_openapi
from services.common.docs import GATEWAY_ASSETS_URL, swagger_ui_html
from services.common.http_cache import conditional_response
from services.common.problems import CODES_BY_STATUS, PROBLEM_JSON
from services.common.request_id import RequestIdMiddleware
from services.common.security import BEARER_AUTH, CLIENT_BASIC, CLIENT_CREDENTIALS, api_routes
from services.gateway.registry import SERVICE_NAMES, service

Document = dict[str, Any]

TITLE = "NATO Multimedia API"
VERSION = "1.0.0"
SCHEMA_REF = "#/components/schemas/"
HEALTH_PATHS = ("/healthz", "/readyz")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

DESCRIPTION = """\
Accounts, broadcast-quality video downloads and news, behind one origin.

**Errors.** Every error is `application/problem+json` (RFC 9457) with a stable machine-readable
`code`; each operation lists the codes it can answer with, per status. Validation errors add
`errors: [{field, code, message}]`. Any operation may also answer `500 internal_error` or
`503 service_unavailable` (with `Retry-After`).

**Authentication.** Send `Authorization: Bearer <access token>`. Accounts get tokens from
`login` / `verifyEmail` / `refreshToken`; partner broadcasters get them with the OAuth 2.0
client-credentials grant at `POST /v1/auth/token`. Access tokens live 15 minutes.

**Lists** use cursor pagination: `?limit=` (1-100, default 20) and `?cursor=`; responses are
`{"items": [...], "next_cursor": "..." | null}`.

Every response carries `X-Request-ID` (echoed when the client sends one).
"""

SECURITY_SCHEMES: Document = {
    BEARER_AUTH: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from `login`, `verifyEmail`, `refreshToken` or "
        "`issueClientToken`.",
    },
    CLIENT_BASIC: {
        "type": "http",
        "scheme": "basic",
        "description": "A partner's `client_id` and `client_secret` (RFC 6749 section 2.3.1); "
        "they may also be sent as form fields instead.",
    },
    CLIENT_CREDENTIALS: {
        "type": "oauth2",
        "description": "Partner broadcasters: OAuth 2.0 client credentials (RFC 6749 section "
        "4.4), client id and secret from `createClient`.",
        "flows": {
            CLIENT_CREDENTIALS: {
                "tokenUrl": "/v1/auth/token",
                "scopes": dict(scopes.CLIENT_SCOPES),
            }
        },
    },
}

# The code a bare error status is taken to carry when a route documents none.
_FALLBACK_CODES = {
    **CODES_BY_STATUS,
    401: "invalid_token",
    422: "validation_error",
    500: "internal_error",
    503: "service_unavailable",
}
_ERROR_HEADERS: dict[int, Document] = {
    401: {
        "WWW-Authenticate": {
            "description": "`Bearer` with the error, per RFC 6750",
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds to wait before trying again",
            "schema": {"type": "integer"},
        }
    },
    503: {
        "Retry-After": {
            "description": "Seconds to wait before trying again",
            "schema": {"type": "integer"},
        }
    },
}
REQUEST_ID_HEADER: Document = {
    "description": "The request's id: the client's `X-Request-ID` when sane, else a new one",
    "schema": {"type": "string"},
}


class SchemaConflict(Exception):
    """Two services publish different things under one name and renaming could not separate them."""


@dataclass
class Merge:
    document: Document
    # Per operation, what its service has yet to document (summary, examples, error codes).
    gaps: dict[str, list[str]] = field(default_factory=dict)

    def gap(self, operation: str, what: str) -> None:
        self.gaps.setdefault(operation, []).append(what)


def merged_app(apps: Mapping[str, FastAPI], *, server_url: str) -> FastAPI:
    """One app holding every service's routes, only to be asked for its document."""
    app = FastAPI(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        servers=[{"url": server_url.rstrip("/"), "description": "This deployment"}],
        openapi_tags=[
            *(
                {"name": name, "description": service_app.description or service_app.title}
                for name, service_app in apps.items()
            ),
            {"name": "health", "description": "Liveness and readiness probes"},
        ],
    )
    for service_app in apps.values():
        app.include_router(service_app.router)
    complete_openapi(app)
    return app


def merge_documents(apps: Mapping[str, FastAPI], *, server_url: str) -> Merge:
    """One OpenAPI 3.1 document: FastAPI's, for the services' routes mounted in one app."""
    owners: dict[tuple[str, str], str] = {}
    for name, service_app in apps.items():
        for route in api_routes(service_app):
            if not route.include_in_schema:
                continue
            for method in route.methods or ():
                key = (method.lower(), route.path_format)
                if key in owners:
                    raise SchemaConflict(f"{method} {route.path_format} is served by two services")
                owners[key] = name
    app = merged_app(apps, server_url=server_url)
    merged: Document = copy.deepcopy(app.openapi())
    merged.setdefault("components", {})["headers"] = {"X-Request-ID": REQUEST_ID_HEADER}
    result = Merge(merged)
    routes = _routes(app)
    schemas: Document = merged["components"].get("schemas", {})
    clashes = sorted(name for name in schemas if "__" in name)
    if clashes:
        raise SchemaConflict(f"two services publish different schemas named {clashes}")
    for path, method, operation in _operations(merged):
        route = routes.get((method, path))
        _complete_operation(
            owners.get((method, path), ""), path, method, operation, route, result, schemas
        )
    merged["components"]["securitySchemes"] = copy.deepcopy(SECURITY_SCHEMES)
    _name_generated_schemas(merged)
    _prune_unused_schemas(merged)
    _check_examples(merged, result)
    merged["components"]["schemas"] = dict(sorted(merged["components"]["schemas"].items()))
    return result


def _operations(schema: Document) -> Iterator[tuple[str, str, Document]]:
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _routes(app: FastAPI) -> dict[tuple[str, str], Any]:
    """The app's routes by (method, path), for their summary, description and operation id."""
    routes: dict[tuple[str, str], Any] = {}
    for route in api_routes(app):
        for method in route.methods or ():
            routes[(method.lower(), route.path_format)] = route
    return routes


# Schemas ---------------------------------------------------------------------------------------


def _rewrite_refs(node: Any, renames: Mapping[str, str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(SCHEMA_REF):
            target = ref.removeprefix(SCHEMA_REF)
            if target in renames:
                node["$ref"] = SCHEMA_REF + renames[target]
        for value in node.values():
            _rewrite_refs(value, renames)
    elif isinstance(node, list):
        for value in node:
            _rewrite_refs(value, renames)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(SCHEMA_REF):
            yield ref.removeprefix(SCHEMA_REF)
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _name_generated_schemas(merged: Document) -> None:
    """Readable names for the models FastAPI names itself, which become generated types.

    A form body is `Body_<handler>_<path>_<method>`: it becomes `<OperationId>Form`. A generic
    model is `Page_Item_`: it becomes `ItemPage`. Either keeps its name when the new one is taken.
    """
    schemas: Document = merged["components"]["schemas"]
    renames: dict[str, str] = {}
    for _, _, operation in _operations(merged):
        for media in operation.get("requestBody", {}).get("content", {}).values():
            ref = media.get("schema", {}).get("$ref", "")
            name = ref.removeprefix(SCHEMA_REF)
            if name.startswith("Body_") and "operationId" in operation:
                renames[name] = _upper_first(operation["operationId"]) + "Form"
    for name in schemas:
        generic = _GENERIC_NAME.fullmatch(name)
        if generic is not None and name not in renames:
            renames[name] = generic.group(2) + generic.group(1)
    renames = {old: new for old, new in renames.items() if new not in schemas and old in schemas}
    if len(set(renames.values())) != len(renames):
        return
    _rewrite_refs(merged, renames)
    merged["components"]["schemas"] = {
        renames.get(name, name): definition for name, definition in schemas.items()
    }


_GENERIC_NAME = re.compile(r"([A-Za-z0-9]+)_([A-Za-z0-9]+)_")


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _prune_unused_schemas(merged: Document) -> None:
    """Drop schemas nothing refers to (FastAPI's JSON validation error, once replaced)."""
    schemas: Document = merged["components"]["schemas"]
    outside = {key: value for key, value in merged.items() if key != "components"}
    pending = list(_refs(outside))
    used: set[str] = set()
    while pending:
        current = pending.pop()
        if current in used or current not in schemas:
            continue
        used.add(current)
        pending.extend(_refs(schemas[current]))
    merged["components"]["schemas"] = {key: schemas[key] for key in schemas if key in used}


# Operations ------------------------------------------------------------------------------------


def _complete_operation(
    service_name: str,
    path: str,
    method: str,
    operation: Document,
    route: Any,
    result: Merge,
    schemas: Document,
) -> None:
    label = f"{method.upper()} {path}"
    health = path.endswith(HEALTH_PATHS)
    operation["tags"] = ["health" if health else service_name]
    if route is not None and route.operation_id is None:
        result.gap(label, "no operation_id= on the route")
    if not health and route is not None:
        if route.summary is None:
            result.gap(label, "no summary")
        if not route.description:
            result.gap(label, "no description (docstring)")
    _complete_security(operation)
    field_name = _first_input(operation, schemas)
    _complete_responses(label, operation, result, field_name, health=health)


def _complete_security(operation: Document) -> None:
    # The services' own documents say which operations take which credentials (their routes'
    # security dependencies); a token they require can also be refused.
    requirements: list[Document] = operation.get("security", [])
    if not any(BEARER_AUTH in requirement for requirement in requirements):
        return
    required = {} not in requirements
    responses: Document = operation.setdefault("responses", {})
    if required and "401" not in responses:
        responses["401"] = {"description": "The access token is missing, expired or invalid"}


def _first_input(operation: Document, schemas: Document) -> str:
    """A field the operation takes, for its validation error example."""
    for media in operation.get("requestBody", {}).get("content", {}).values():
        body = media.get("schema", {})
        ref = body.get("$ref")
        if isinstance(ref, str):
            body = schemas.get(ref.removeprefix(SCHEMA_REF), {})
        names = body.get("required") or list(body.get("properties", {}))
        if names:
            return str(names[0])
    for parameter in operation.get("parameters", []):
        return str(parameter["name"])
    return "body"


def _complete_responses(
    label: str, operation: Document, result: Merge, field_name: str, *, health: bool
) -> None:
    responses: Document = operation.setdefault("responses", {})
    # What the common app factory answers for any route that takes input, whatever the route.
    generic: dict[int, tuple[str, ...]] = {}
    if operation.get("parameters") or operation.get("requestBody"):
        generic[422] = ("validation_error",)
    if operation.get("requestBody"):
        # A body that does not parse (not JSON, not UTF-8), or text the database cannot keep.
        generic[400] = ("json_invalid", "invalid_text")
        generic[413] = ("payload_too_large",)
    for status, generic_codes in generic.items():
        responses.setdefault(str(status), {"description": EXAMPLE_DETAILS[generic_codes[0]]})
    documented = False
    for status_text, response in list(responses.items()):
        response.setdefault("headers", {})["X-Request-ID"] = {
            "$ref": "#/components/headers/X-Request-ID"
        }
        content = response.get("content", {})
        json_schema = content.get("application/json", {}).get("schema")
        if len(content) > 1 and isinstance(json_schema, dict) and set(json_schema) <= _UNTYPED:
            # FastAPI's default JSON beside the media type a route declared (a feed, a file):
            # the route never sends it.
            del content["application/json"]
        if not status_text.isdigit() or int(status_text) < 400:
            continue
        status = int(status_text)
        codes = _documented_codes(response)
        if set(codes) - {code for group in generic.values() for code in group}:
            documented = True
        elif not codes and not health and status != 401 and status not in generic:
            result.gap(label, f"{status} lists no code values")
        if status in generic:
            codes = sorted({*codes, *generic[status]})
        codes = codes or [_FALLBACK_CODES.get(status, "error")]
        _problem_response(status, codes, response, field_name)
    responses_sorted = dict(sorted(responses.items(), key=lambda item: item[0]))
    operation["responses"] = responses_sorted
    exposed = (
        operation.get("security")
        or operation.get("requestBody")
        or any(parameter.get("in") == "path" for parameter in operation.get("parameters", []))
    )
    if not documented and exposed and not health:
        result.gap(label, "no error responses with codes (responses=problem_responses(...))")


_UNTYPED = {"title", "description"}


def _documented_codes(response: Document) -> list[str]:
    codes: set[str] = set()
    for media in response.get("content", {}).values():
        codes.update(_enum_codes(media.get("schema", {})))
    return sorted(codes)


def _enum_codes(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        code = (
            node.get("properties", {}).get("code")
            if isinstance(node.get("properties"), dict)
            else None
        )
        if isinstance(code, dict):
            yield from (str(value) for value in code.get("enum", []))
            if "const" in code:
                yield str(code["const"])
        for key in ("allOf", "anyOf", "oneOf"):
            for item in node.get(key, []):
                yield from _enum_codes(item)


def _problem_response(status: int, codes: list[str], response: Document, field_name: str) -> None:
    phrase = _phrase(status)
    existing = response.get("content", {}).get(PROBLEM_JSON, {})
    description = response.get("description") or phrase
    # The generic descriptions (FastAPI's, `problem_responses`') are replaced by the codes.
    generic = description.startswith(f"{phrase}: code one of ")
    if generic or description in {phrase, "Validation Error", "Successful Response"}:
        description = f"{phrase}: code {' or '.join(f'`{code}`' for code in codes)}"
    response["description"] = description
    examples = existing.get("examples") or {
        code: {"summary": code, "value": _problem_example(status, code, field_name)}
        for code in codes
    }
    response["content"] = {
        PROBLEM_JSON: {
            "schema": {
                "allOf": [
                    {"$ref": SCHEMA_REF + "Problem"},
                    {
                        "type": "object",
                        "properties": {"code": {"type": "string", "enum": codes}},
                        "required": ["code"],
                    },
                ]
            },
            "examples": examples,
        }
    }
    for header, definition in _ERROR_HEADERS.get(status, {}).items():
        response.setdefault("headers", {}).setdefault(header, definition)


def _problem_example(status: int, code: str, field_name: str) -> Document:
    example: Document = {
        "type": "about:blank",
        "title": _phrase(status),
        "status": status,
        "detail": EXAMPLE_DETAILS.get(code, code.replace("_", " ").capitalize() + "."),
        "code": code,
    }
    if code == "validation_error":
        example["errors"] = [{"field": field_name, "code": "missing", "message": "Field required"}]
    elif code == "weak_password":
        example["errors"] = [
            {"field": "password", "code": "too_short", "message": "At least 12 characters"}
        ]
    return example


# What the examples say for the contract's codes; the services' own words may differ.
EXAMPLE_DETAILS = {
    "validation_error": "The request is not valid.",
    "weak_password": "The password does not meet the rules.",
    "invalid_token": "The access token is missing, expired or invalid.",
    "invalid_credentials": "The email or password is wrong.",
    "invalid_code": "The code is wrong.",
    "code_expired": "The code has expired; ask for a new one.",
    "too_many_attempts": "Too many wrong codes; ask for a new one.",
    "rate_limited": "Too many requests; try again later.",
    "email_not_verified": "Verify the account's email address first.",
    "insufficient_scope": "The access token does not allow this.",
    "invalid_client": "Unknown client or wrong secret.",
    "not_found": "No such resource.",
    "invalid_signature": "The download link is not valid.",
    "link_expired": "The download link has expired; ask for a new one.",
    "payload_too_large": "The request body is too large.",
    "invalid_text": "The request contains text that is not valid Unicode.",
    "json_invalid": "The request body is not valid JSON.",
    "service_unavailable": "A backing service is unavailable; try again shortly.",
}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _check_examples(merged: Document, result: Merge) -> None:
    # Examples count where FastAPI puts them: on the media type (`openapi_examples`,
    # `responses=`) or on the model (`json_schema_extra={"examples": [...]}`).
    schemas: Document = merged["components"]["schemas"]
    for path, method, operation in _operations(merged):
        if operation.get("tags") == ["health"]:
            continue
        label = f"{method.upper()} {path}"
        body = operation.get("requestBody", {}).get("content", {})
        if body and not any(_has_example(media, schemas) for media in body.values()):
            result.gap(label, "no request example")
        for status_text, response in operation.get("responses", {}).items():
            # Files and XML feeds are bytes; only JSON answers are worth an example.
            content = {
                media_type: media
                for media_type, media in response.get("content", {}).items()
                if media_type.endswith("json")
            }
            if not status_text.startswith("2") or not content:
                continue
            if not any(_has_example(media, schemas) for media in content.values()):
                result.gap(label, f"no {status_text} response example")


def _has_example(media: Document, schemas: Document) -> bool:
    if media.get("example") is not None or media.get("examples"):
        return True
    schema = media.get("schema", {})
    ref = schema.get("$ref")
    if isinstance(ref, str):
        schema = schemas.get(ref.removeprefix(SCHEMA_REF), {})
    return bool(schema.get("examples")) or schema.get("example") is not None


# Building and serving --------------------------------------------------------------------------


def service_apps(data_dir: Path) -> dict[str, FastAPI]:
    """Every service's app, built as the gateway builds them, without starting anything."""
    apps: dict[str, FastAPI] = {}
    for name in SERVICE_NAMES:
        modules = service(name)
        settings_class = getattr(modules.module("config"), f"{name.capitalize()}Settings")
        # Development settings: the document must not depend on a deployment's secrets.
        settings = settings_class(NATOMEDIA_ENV="development", NATOMEDIA_DATA_DIR=data_dir)
        apps[name] = modules.module("app").create_app(settings)
    return apps


def build_merge(server_url: str) -> Merge:
    # Building an app may create development keys under the data dir: keep them out of ./var.
    with tempfile.TemporaryDirectory(prefix="natomedia-openapi-") as directory:
        return merge_documents(service_apps(Path(directory)), server_url=server_url)


def build_document(server_url: str) -> Document:
    return build_merge(server_url).document


def render(document: Document) -> str:
    """The document as committed: stable key order, two-space indent, final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def docs_html(openapi_url: str = "/openapi.json") -> str:
    return swagger_ui_html(openapi_url, f"{TITLE} - docs", GATEWAY_ASSETS_URL)


def document_app(document: Callable[[], Document]) -> FastAPI:
    """`GET /openapi.json` and `GET /docs` for the gateway; `document` is called once."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    cache: dict[str, bytes] = {}

    @app.get("/openapi.json")
    async def openapi_json(request: Request) -> Response:
        if "body" not in cache:
            cache["body"] = render(document()).encode()
        return conditional_response(request, cache["body"])

    @app.get("/docs")
    async def docs() -> HTMLResponse:
        return HTMLResponse(docs_html())

    app.add_middleware(RequestIdMiddleware)
    return app
