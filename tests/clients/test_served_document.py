"""`natomedia dev` serves the merged document and the docs page at the gateway's root."""

from __future__ import annotations

import json

import httpx

from tests.clients.conftest import ROOT, DevServer
from tests.docs_support import assert_docs_work_offline


async def test_dev_serves_the_committed_document_and_swagger_ui(dev_server: DevServer) -> None:
    async with httpx.AsyncClient(base_url=dev_server.url) as client:
        served = await client.get("/openapi.json")
        docs = await client.get("/docs")
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/json"
    assert served.headers["x-request-id"]
    document = served.json()
    # The same document as committed, announcing the server it was fetched from.
    assert document["servers"] == [{"url": dev_server.url, "description": "This deployment"}]
    committed = json.loads((ROOT / "openapi.json").read_text(encoding="utf-8"))
    assert {**document, "servers": committed["servers"]} == committed
    assert docs.status_code == 200
    assert "SwaggerUIBundle" in docs.text
    assert "/openapi.json" in docs.text


async def test_dev_docs_work_offline(dev_server: DevServer) -> None:
    async with httpx.AsyncClient(base_url=dev_server.url) as client:
        found = await assert_docs_work_offline(client, "/docs")
        assert "/openapi.json" in found
        for prefix in ("/v1/auth", "/v1/media", "/v1/news"):
            own = await assert_docs_work_offline(client, f"{prefix}/docs")
            assert f"{prefix}/openapi.json" in own
