"""Each service's app served by uvicorn on a free port in a thread of its own.

Schemathesis drives Hypothesis, which wants plain functions: the server runs the app (lifespan and
all) on its own event loop, and the tests call it over real HTTP with a synchronous client.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.clients.conftest import dev_server  # noqa: F401  (the merged document's run)
from tests.conftest import TokenFactory, free_port
from tests.security.apps import STRONG_PASSWORD, create_app, prepare, settings_for


def _client(name: str, data_dir: Path, tokens: TokenFactory) -> Iterator[httpx.Client]:
    extra: dict[str, Any] = {"AUTH_MAIL_SENDER": False} if name == "auth" else {}
    settings = settings_for(name, data_dir, **extra)
    # Migrations run on a loop of their own; the file database outlives it.
    asyncio.run(prepare(name, settings, seed=name != "auth"))
    kwargs = {} if name == "auth" else {"token_verifier": tokens.verifier()}
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(name, settings, **kwargs),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
    )
    thread = threading.Thread(target=server.run, name=f"fuzz-{name}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), f"{name} did not start"
        assert time.monotonic() < deadline, f"{name} did not start in time"
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def fuzz_tokens() -> TokenFactory:
    return TokenFactory()


@pytest.fixture(scope="module", params=["auth", "media", "news"])
def fuzzed(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fuzz_tokens: TokenFactory,
) -> Iterator[tuple[str, httpx.Client, dict[str, str]]]:
    name = str(request.param)
    for client in _client(name, tmp_path_factory.mktemp(f"fuzz-{name}"), fuzz_tokens):
        if name == "auth":
            email = "fuzzer@example.org"
            client.post("/v1/auth/register", json={"email": email, "password": STRONG_PASSWORD})
            login = client.post(
                "/v1/auth/login", json={"email": email, "password": STRONG_PASSWORD}
            )
            assert login.status_code == 200, login.text
            token = login.json()["access_token"]
        else:
            token = fuzz_tokens.account(roles=("editor", "admin"))
        yield name, client, {"Authorization": f"Bearer {token}"}
