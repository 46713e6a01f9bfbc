"""The gateway's behaviour on real nginx: routing, client address, request ids, limits, errors,
security headers, compression, CORS pass-through and X-Accel-Redirect file delivery."""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.gateway.stack import free_port
from tests.access_log_support import logged, with_path
from tests.gateway.conftest import (
    CORS_ORIGIN,
    DOCS_PAGE,
    FILE_BYTES,
    FILE_NAME,
    OPENAPI_DOCUMENT,
    Gateway,
    Upstream,
    start_gateway,
)

pytestmark = pytest.mark.nginx

SECURITY_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}


def assert_gateway_headers(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get_list(name) == [value], name
    # Plain HTTP here: HSTS belongs only on responses sent over TLS.
    assert "strict-transport-security" not in response.headers
    assert len(response.headers.get_list("x-request-id")) == 1


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert_gateway_headers(response)


async def test_healthz_is_answered_by_nginx(client: httpx.AsyncClient, gateway: Gateway) -> None:
    response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert_gateway_headers(response)
    assert "upstream" not in response.text
    await logged(Path(gateway.nginx.config.access_log), with_path("/healthz"))


@pytest.mark.parametrize("service", ["auth", "media", "news"])
async def test_each_prefix_reaches_its_service_with_the_path_unchanged(
    client: httpx.AsyncClient, service: str
) -> None:
    response = await client.get(f"/v1/{service}/echo", params={"a": "1"})

    assert response.status_code == 200
    body = response.json()
    assert body["service"] == service
    assert body["path"] == f"/v1/{service}/echo"
    assert body["query"] == "a=1"
    assert_gateway_headers(response)


async def test_well_known_goes_to_auth(client: httpx.AsyncClient) -> None:
    # The fake auth has no JWKS route: its own problem+json 404 proves the request reached it.
    response = await client.get("/.well-known/jwks.json")

    assert_problem(response, 404, "not_found")


async def test_auth_replicas_share_the_load(
    client: httpx.AsyncClient, upstreams: dict[str, Upstream]
) -> None:
    for _ in range(6):
        response = await client.get("/v1/auth/echo")
        assert response.json()["service"] == "auth"

    served = {
        key: upstream.server.server_state.total_requests
        for key, upstream in upstreams.items()
        if key.startswith("auth")
    }
    assert all(count > 0 for count in served.values()), served


async def test_the_api_document_and_docs_page_are_served_from_the_docs_dir(
    client: httpx.AsyncClient,
) -> None:
    document = await client.get("/openapi.json")
    docs = await client.get("/docs")

    assert document.status_code == 200
    assert document.headers["content-type"] == "application/json"
    assert document.text == OPENAPI_DOCUMENT
    assert docs.headers["content-type"] == "text/html; charset=utf-8"
    assert docs.text == DOCS_PAGE
    assert_gateway_headers(docs)


async def test_unknown_paths_get_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/anything")

    assert_problem(response, 404, "not_found")


async def test_client_address_comes_from_the_gateway_not_the_client(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(
        "/v1/auth/echo", headers={"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"}
    )

    headers = response.json()["headers"]
    # nginx overwrites X-Real-IP and appends the peer it saw to the client's X-Forwarded-For.
    assert headers["x-real-ip"] == "127.0.0.1"
    assert headers["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert response.json()["client_address"] == "127.0.0.1"


async def test_behind_a_trusted_load_balancer_its_forwarded_client_is_used(
    tmp_path: Path, upstreams: dict[str, Upstream]
) -> None:
    addresses = {name: [f"127.0.0.1:{upstreams[name].port}"] for name in ("auth", "media", "news")}
    for gateway in start_gateway(
        tmp_path / "run", addresses, tmp_path, real_ip_from=("127.0.0.1",)
    ):
        async with httpx.AsyncClient(base_url=gateway.url, trust_env=False) as client:
            response = await client.get(
                "/v1/auth/echo", headers={"X-Forwarded-For": "198.51.100.4, 203.0.113.9"}
            )

        assert response.json()["headers"]["x-real-ip"] == "203.0.113.9"
        assert response.json()["client_address"] == "203.0.113.9"


async def test_request_id_is_generated_and_forwarded(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/news/echo")

    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert response.json()["headers"]["x-request-id"] == request_id


async def test_a_sane_client_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/news/echo", headers={"X-Request-ID": "app-42.retry:1"})

    assert response.headers.get_list("x-request-id") == ["app-42.retry:1"]
    assert response.json()["headers"]["x-request-id"] == "app-42.retry:1"


async def test_an_unsafe_client_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/news/echo", headers={"X-Request-ID": "x" * 200})

    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert response.json()["headers"]["x-request-id"] == request_id


async def test_nginx_answers_carry_a_request_id_too(client: httpx.AsyncClient) -> None:
    response = await client.get("/nowhere", headers={"X-Request-ID": "lost-1"})

    assert response.headers["x-request-id"] == "lost-1"


async def test_bodies_up_to_one_megabyte_pass(client: httpx.AsyncClient) -> None:
    text = "a" * (1_048_576 - 100)

    response = await client.post("/v1/auth/notes", json={"text": text})

    assert response.status_code == 201
    assert response.json() == {"length": len(text)}


async def test_bodies_over_one_megabyte_get_413_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/auth/notes", json={"text": "a" * 1_048_576})

    assert_problem(response, 413, "payload_too_large")


async def test_chunked_bodies_over_the_limit_get_413_too(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(17):
            yield b"x" * 65_536

    response = await client.post(
        "/v1/news/notes", content=chunks(), headers={"Content-Type": "application/json"}
    )

    assert_problem(response, 413, "payload_too_large")


async def test_service_errors_pass_through_unchanged(
    client: httpx.AsyncClient, upstreams: dict[str, Upstream]
) -> None:
    through_gateway = await client.get("/v1/news/missing")
    direct = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{upstreams['news'].port}", trust_env=False
    )
    async with direct:
        straight = await direct.get("/v1/news/missing")

    assert_problem(through_gateway, 404, "not_found")
    assert through_gateway.json() == straight.json()
    assert through_gateway.json()["detail"] == "No such note."


async def test_a_services_own_503_is_not_replaced_by_the_gateways(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/media/unavailable")

    assert_problem(response, 503, "service_unavailable")
    assert response.json()["detail"] == "The database is restarting."
    assert response.headers.get_list("retry-after") == ["7"]


async def test_json_is_compressed_for_clients_that_accept_gzip(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/news/listing", headers={"Accept-Encoding": "gzip"})

    assert response.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in response.headers["vary"].lower()
    assert len(response.json()["items"]) == 200
    plain = await client.get("/v1/news/listing", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert int(plain.headers["content-length"]) > 2 * len(gzip.compress(plain.content))


async def test_cors_preflight_is_the_services_answer(
    client: httpx.AsyncClient, upstreams: dict[str, Upstream]
) -> None:
    headers = {
        "Origin": CORS_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    through_gateway = await client.options("/v1/media/echo", headers=headers)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{upstreams['media'].port}", trust_env=False
    ) as direct:
        straight = await direct.options("/v1/media/echo", headers=headers)

    assert through_gateway.status_code == straight.status_code == 200
    assert cors_headers(through_gateway) == cors_headers(straight)
    assert through_gateway.headers["access-control-allow-origin"] == CORS_ORIGIN


async def test_cors_preflight_from_an_unlisted_origin_is_refused_as_by_the_service(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options(
        "/v1/media/echo",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )

    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {
        name: value
        for name, value in response.headers.items()
        if name.startswith("access-control-") or name == "vary"
    }


async def test_x_accel_redirect_sends_the_file_with_the_apps_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"/v1/media/files/{FILE_NAME}")

    digest = hashlib.sha256(FILE_BYTES).hexdigest()
    assert response.status_code == 200
    assert response.content == FILE_BYTES
    assert response.headers["content-length"] == str(len(FILE_BYTES))
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers.get_list("etag") == [f'"{digest}"']
    assert response.headers.get_list("repr-digest") == [f"sha-256=:{digest}:"]
    assert response.headers.get_list("content-disposition") == [
        f'attachment; filename="{FILE_NAME}"'
    ]
    assert response.headers.get_list("cache-control") == ["private, max-age=3600"]
    assert response.headers["accept-ranges"] == "bytes"
    assert "x-accel-redirect" not in response.headers
    assert_gateway_headers(response)


async def test_ranged_download_through_the_gateway(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v1/media/files/{FILE_NAME}", headers={"Range": "bytes=100-299"})

    assert response.status_code == 206
    assert response.content == FILE_BYTES[100:300]
    assert response.headers["content-range"] == f"bytes 100-299/{len(FILE_BYTES)}"
    assert response.headers["content-length"] == "200"
    assert response.headers.get_list("etag") == [f'"{hashlib.sha256(FILE_BYTES).hexdigest()}"']


async def test_resuming_from_an_offset(client: httpx.AsyncClient) -> None:
    offset = len(FILE_BYTES) - 1000
    response = await client.get(
        f"/v1/media/files/{FILE_NAME}", headers={"Range": f"bytes={offset}-"}
    )

    assert response.status_code == 206
    assert response.content == FILE_BYTES[offset:]


async def test_unsatisfiable_range_gets_416_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.get(
        f"/v1/media/files/{FILE_NAME}", headers={"Range": f"bytes={len(FILE_BYTES) + 10}-"}
    )

    assert_problem(response, 416, "range_not_satisfiable")
    assert response.headers["content-range"] == f"bytes */{len(FILE_BYTES)}"


async def test_head_of_a_download(client: httpx.AsyncClient) -> None:
    response = await client.head(f"/v1/media/files/{FILE_NAME}")

    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(FILE_BYTES))
    assert response.headers.get_list("etag") == [f'"{hashlib.sha256(FILE_BYTES).hexdigest()}"']


async def test_a_file_missing_from_storage_is_a_problem_json_404(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/media/files/gone.mp4")

    assert_problem(response, 404, "not_found")


async def test_the_internal_location_is_unreachable_from_outside(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"/_protected_media/{FILE_NAME}")

    assert_problem(response, 404, "not_found")
    assert response.content != FILE_BYTES


async def test_a_service_that_is_down_gets_503_problem_json(tmp_path: Path) -> None:
    dead = {name: [f"127.0.0.1:{free_port()}"] for name in ("auth", "media", "news")}
    for gateway in start_gateway(tmp_path / "run", dead, tmp_path):
        async with httpx.AsyncClient(base_url=gateway.url, trust_env=False) as client:
            response = await client.get("/v1/auth/echo")
            health = await client.get("/healthz")
            missing_document = await client.get("/openapi.json")

        assert_problem(response, 503, "service_unavailable")
        assert response.headers["retry-after"] == "2"
        assert health.status_code == 200
        # No `natomedia openapi` output in this run directory.
        assert_problem(missing_document, 404, "not_found")
