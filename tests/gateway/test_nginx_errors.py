"""Errors nginx answers itself, before or instead of a service, are problem+json like the rest."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import Gateway, Upstream, start_gateway
from tests.gateway.test_nginx_gateway import assert_problem

pytestmark = pytest.mark.nginx


async def _raw(gateway: Gateway, request: bytes) -> httpx.Response:
    """Send bytes httpx would refuse to send; parse the answer's status, headers and body."""
    host, port = gateway.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(line.split(": ", 1)) for line in header_lines]
    return httpx.Response(int(status_line.split()[1]), headers=headers, content=body)


async def test_an_over_long_request_line_gets_414(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/news/echo", params={"q": "x" * 9000})
    assert_problem(response, 414, "uri_too_long")


async def test_an_over_large_header_gets_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/news/echo", headers={"X-Padding": "x" * 9000})
    assert_problem(response, 400, "header_too_large")


async def test_over_large_cookies_get_400(client: httpx.AsyncClient) -> None:
    cookies = "; ".join(f"c{n}={'x' * 4000}" for n in range(9))
    response = await client.get("/v1/news/echo", headers={"Cookie": cookies})
    assert_problem(response, 400, "header_too_large")


async def test_a_malformed_request_gets_400(gateway: Gateway) -> None:
    response = await _raw(gateway, b"GET /v1/news/echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert_problem(response, 400, "bad_request")


async def test_an_unknown_transfer_coding_gets_501(gateway: Gateway) -> None:
    request = b"GET /v1/news/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"
    assert_problem(await _raw(gateway, request), 501, "not_implemented")


async def test_an_unsupported_http_version_gets_505(gateway: Gateway) -> None:
    response = await _raw(gateway, b"GET /v1/news/echo HTTP/3.0\r\nHost: a\r\n\r\n")
    assert_problem(response, 505, "http_version_not_supported")


async def test_a_method_a_static_location_refuses_gets_405(client: httpx.AsyncClient) -> None:
    response = await client.post("/openapi.json", content=b"{}")
    assert_problem(response, 405, "method_not_allowed")


async def test_the_error_locations_are_not_reachable_from_outside(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/_natomedia_errors/uri_too_long")
    assert_problem(response, 404, "not_found")


async def test_a_service_too_slow_to_answer_gets_503_problem_json(
    tmp_path: Path, upstreams: dict[str, Upstream]
) -> None:
    addresses = {name: [f"127.0.0.1:{upstreams[name].port}"] for name in ("auth", "media", "news")}
    for gateway in start_gateway(tmp_path / "run", addresses, tmp_path, proxy_read_timeout="1s"):
        async with httpx.AsyncClient(base_url=gateway.url, trust_env=False, timeout=30) as client:
            response = await client.get("/v1/news/slow", params={"seconds": 5})
        assert_problem(response, 503, "service_unavailable")
        assert response.headers["retry-after"] == "2"
