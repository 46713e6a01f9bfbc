"""The public micro-cache: what is replayed, to whom, for how long, and what clears it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request, Response

from services.common.app import create_service_app
from services.common.database import Database
from services.common.http_cache import conditional_response
from services.common.public_cache import PublicCache, allow_public_cache, canonical_query
from services.common.settings import ServiceSettings
from services.common.telemetry import OFF, telemetry_config

PAGE = "/v1/demo/page"


@dataclass
class Backend:
    """What the routes serve, and how often they were actually run."""

    version: int = 1
    calls: list[str] = field(default_factory=list)


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def demo_router(backend: Backend) -> APIRouter:
    router = APIRouter(prefix="/v1/demo")

    @router.get("/page")
    async def page(request: Request) -> Response:
        backend.calls.append("page")
        allow_public_cache(request)
        body = f'{{"version":{backend.version},"q":"{request.url.query}"}}'.encode()
        response = conditional_response(
            request, body, headers={"Cache-Control": "public, max-age=60"}
        )
        response.headers["Last-Modified"] = "Mon, 04 May 2026 09:00:00 GMT"
        return response

    @router.get("/unmarked")
    async def unmarked() -> Response:
        backend.calls.append("unmarked")
        return Response(b"{}", media_type="application/json")

    @router.get("/private")
    async def private(request: Request) -> Response:
        backend.calls.append("private")
        allow_public_cache(request)
        return Response(b"{}", media_type="application/json", headers={"Cache-Control": "private"})

    @router.get("/varies")
    async def varies(request: Request) -> Response:
        backend.calls.append("varies")
        allow_public_cache(request)
        return Response(b"{}", media_type="application/json", headers={"Vary": "Accept-Language"})

    @router.get("/missing")
    async def missing(request: Request) -> Response:
        backend.calls.append("missing")
        allow_public_cache(request)
        return Response(b"{}", status_code=404, media_type="application/json")

    @router.get("/big")
    async def big(request: Request) -> Response:
        backend.calls.append("big")
        allow_public_cache(request)
        return Response(b"x" * 2048, media_type="application/octet-stream")

    @router.post("/page")
    async def change(request: Request) -> Response:
        if request.headers.get("x-fail"):
            return Response(status_code=403)
        backend.version += 1
        return Response(status_code=204)

    return router


def build_app(tmp_path: Path, backend: Backend, seconds: float) -> FastAPI:
    settings = ServiceSettings(NATOMEDIA_DATA_DIR=tmp_path, CORS_ORIGINS="https://app.example")
    return create_service_app(
        title="demo",
        description="demo",
        prefix="/v1/demo",
        settings=settings,
        database=Database(f"sqlite+aiosqlite:///{tmp_path / 'demo.sqlite3'}"),
        routers=[demo_router(backend)],
        public_cache_seconds=seconds,
    )


@pytest.fixture
def backend() -> Backend:
    return Backend()


@pytest.fixture
def monotonic() -> Monotonic:
    return Monotonic()


@pytest.fixture
async def app(tmp_path: Path, backend: Backend, monotonic: Monotonic) -> AsyncIterator[FastAPI]:
    app = build_app(tmp_path, backend, seconds=1.0)
    app.state.public_cache.monotonic = monotonic
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_a_repeated_anonymous_get_is_replayed(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    first = await client.get(PAGE, params={"a": "1", "b": "2"})
    backend.version = 2  # a change the route would show, were it run again
    again = await client.get(PAGE, params={"a": "1", "b": "2"})
    reordered = await client.get(PAGE, params={"b": "2", "a": "1"})
    assert backend.calls == ["page"]
    for response in (again, reordered):
        assert response.status_code == 200
        assert response.content == first.content
        assert response.headers["etag"] == first.headers["etag"]
        assert response.headers["content-type"] == "application/json"
        assert response.headers["cache-control"] == "public, max-age=60"
    # Every response still gets its own request id.
    ids = {response.headers["x-request-id"] for response in (first, again, reordered)}
    assert len(ids) == 3

    other = await client.get(PAGE, params={"a": "1"})
    assert backend.calls == ["page", "page"]
    assert b'"version":2' in other.content


async def test_entries_expire(
    client: httpx.AsyncClient, backend: Backend, monotonic: Monotonic
) -> None:
    await client.get(PAGE)
    backend.version = 2
    monotonic.now += 0.99
    assert b'"version":1' in (await client.get(PAGE)).content
    monotonic.now += 0.01
    assert b'"version":2' in (await client.get(PAGE)).content
    assert backend.calls == ["page", "page"]


async def test_requests_with_authorization_neither_read_nor_fill_it(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    # This app verifies no tokens, so it cannot tell a reader from an editor. The services do:
    # tests/news/test_public_cache.py and tests/media/test_public_cache.py.
    bearer = {"Authorization": "Bearer whatever"}
    await client.get(PAGE, headers=bearer)
    await client.get(PAGE)  # not filled by the authenticated request: runs the route
    backend.version = 2
    authenticated = await client.get(PAGE, headers=bearer)
    assert b'"version":2' in authenticated.content
    assert backend.calls == ["page", "page", "page"]


@pytest.mark.parametrize("path", ["/v1/demo/unmarked", "/v1/demo/private", "/v1/demo/varies"])
async def test_only_marked_shareable_responses_are_kept(
    client: httpx.AsyncClient, backend: Backend, path: str
) -> None:
    await client.get(path)
    await client.get(path)
    assert len(backend.calls) == 2


async def test_errors_and_oversized_bodies_are_not_kept(
    client: httpx.AsyncClient, backend: Backend, app: FastAPI
) -> None:
    app.state.public_cache.max_entry_bytes = 1024
    for path in ("/v1/demo/missing", "/v1/demo/big"):
        await client.get(path)
        assert (await client.get(path)).status_code in (200, 404)
    assert backend.calls == ["missing", "missing", "big", "big"]
    assert len(app.state.public_cache) == 0


async def test_a_successful_write_clears_it_and_a_refused_one_does_not(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    await client.get(PAGE)
    assert (await client.post(PAGE, headers={"x-fail": "1"})).status_code == 403
    assert b'"version":1' in (await client.get(PAGE)).content
    assert backend.calls == ["page"]

    assert (await client.post(PAGE)).status_code == 204
    assert b'"version":2' in (await client.get(PAGE)).content
    assert backend.calls == ["page", "page"]


async def test_conditional_requests_are_answered_from_the_entry(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    first = await client.get(PAGE)
    etag = first.headers["etag"]
    current = await client.get(PAGE, headers={"If-None-Match": etag})
    assert current.status_code == 304
    assert current.content == b""
    assert current.headers["etag"] == etag
    assert "content-type" not in current.headers
    stale = await client.get(PAGE, headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200
    assert stale.content == first.content

    since = await client.get(PAGE, headers={"If-Modified-Since": "Mon, 04 May 2026 09:00:00 GMT"})
    assert since.status_code == 304
    before = await client.get(PAGE, headers={"If-Modified-Since": "Sun, 03 May 2026 09:00:00 GMT"})
    assert before.status_code == 200
    garbage = await client.get(PAGE, headers={"If-Modified-Since": "yesterday"})
    assert garbage.status_code == 200
    assert backend.calls == ["page"]


async def test_a_client_asking_for_a_fresh_copy_gets_one(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    await client.get(PAGE)
    backend.version = 2
    fresh = await client.get(PAGE, headers={"Cache-Control": "no-cache"})
    assert b'"version":2' in fresh.content
    # ...and refills the entry for everyone else.
    assert b'"version":2' in (await client.get(PAGE)).content
    assert backend.calls == ["page", "page"]


async def test_cors_headers_fit_the_request_replayed_to(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    filled = await client.get(PAGE, headers={"Origin": "https://app.example"})
    assert filled.headers["access-control-allow-origin"] == "https://app.example"
    replayed = await client.get(PAGE, headers={"Origin": "https://app.example"})
    assert replayed.headers["access-control-allow-origin"] == "https://app.example"
    plain = await client.get(PAGE)
    assert "access-control-allow-origin" not in plain.headers
    assert backend.calls == ["page"]


async def test_the_gateway_is_told_to_keep_exactly_what_is_kept_here(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get(PAGE)).headers["x-accel-expires"] == "1"
    assert (await client.get(PAGE)).headers["x-accel-expires"] == "1"
    for path in ("/v1/demo/unmarked", "/v1/demo/private", "/v1/demo/varies", "/v1/demo/missing"):
        assert "x-accel-expires" not in (await client.get(path)).headers, path
    bearer = {"Authorization": "Bearer whatever"}
    assert "x-accel-expires" not in (await client.get(PAGE, headers=bearer)).headers


async def test_zero_seconds_turns_it_off(tmp_path: Path, backend: Backend) -> None:
    app = build_app(tmp_path, backend, seconds=0)
    assert app.state.public_cache is None
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http,
    ):
        await http.get(PAGE)
        await http.get(PAGE)
    assert backend.calls == ["page", "page"]


def test_a_read_overtaken_by_a_write_is_not_stored() -> None:
    cache = PublicCache(1.0)
    began_at = cache.generation
    cache.clear()  # a write committed while the read was running
    headers = [(b"content-type", b"application/json")]
    assert not cache.put(("/p", b""), headers, b"{}", began_at)
    assert cache.get(("/p", b"")) is None
    assert cache.put(("/p", b""), headers, b"{}", cache.generation)


def test_while_one_request_refreshes_an_expired_entry_the_others_get_the_old_one() -> None:
    monotonic = Monotonic()
    cache = PublicCache(1.0, monotonic=monotonic)
    key = ("/p", b"")
    cache.put(key, [], b"old", cache.generation)
    monotonic.now += 1.0
    assert cache.get(key) is None  # this caller refreshes
    stale = cache.get(key)
    assert stale is not None
    assert stale.body == b"old"
    cache.put(key, [], b"new", cache.generation)
    cache.refreshed(key)
    fresh = cache.get(key)
    assert fresh is not None
    assert fresh.body == b"new"

    # A refresh that stored nothing (the page is gone now) lets the next caller try again...
    monotonic.now += 1.0
    assert cache.get(key) is None
    cache.refreshed(key)
    assert cache.get(key) is None
    # ...and the old copy is never handed out once it is two lifetimes old.
    monotonic.now += 1.0
    assert cache.get(key) is None
    assert len(cache) == 0


def test_query_order_matters_only_within_a_repeated_parameter() -> None:
    assert canonical_query(b"b=2&a=1") == canonical_query(b"a=1&b=2") == b"a=1&b=2"
    assert canonical_query(b"tag=x&tag=y") != canonical_query(b"tag=y&tag=x")
    assert canonical_query(b"tag=y&a=1&tag=x") == b"a=1&tag=y&tag=x"


def test_it_is_bounded_in_entries_and_bytes() -> None:
    cache = PublicCache(1.0, max_entries=3, max_bytes=10, max_entry_bytes=10)
    for number in range(5):
        cache.put((f"/{number}", b""), [], b"ab", cache.generation)
    assert len(cache) == 3
    assert cache.get(("/0", b"")) is None
    assert cache.get(("/4", b"")) is not None
    cache.put(("/big", b""), [], b"x" * 9, cache.generation)
    assert cache.get(("/big", b"")) is not None
    assert cache.get(("/4", b"")) is None  # evicted to stay within 10 bytes
    assert not cache.put(("/huge", b""), [], b"x" * 11, cache.generation)


def test_telemetry_is_off_unless_opentelemetry_is_configured() -> None:
    assert telemetry_config({}) == OFF
    assert telemetry_config({"FASTAPI_OTEL_AUTO_CONFIGURE": "true"}) is None
    assert telemetry_config({"OTEL_PYTHON_TRACER_PROVIDER": "sdk_tracer_provider"}) is None
    disabled = {"OTEL_SDK_DISABLED": "true", "FASTAPI_OTEL_AUTO_CONFIGURE": "true"}
    assert telemetry_config(disabled) == OFF
