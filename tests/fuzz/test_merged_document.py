"""`schemathesis run --checks all` over the merged document, against a real `natomedia dev`.

Every check schemathesis has: no 5xx, status codes, content types, headers and bodies as
documented, schema-violating requests refused, schema-valid ones accepted, `Allow` on 405,
authentication not ignored, and the stateful links. What cannot be generated (an opaque cursor,
a code only the mail knows, a password the policy accepts) is configured in schemathesis.toml
beside this file, each with its reason.

Bounded by `MERGED_FUZZ_EXAMPLES` per operation (default 40, the issue's number): on two cores
the run takes well under the three minutes CI allows it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
import pytest

from tests.clients.conftest import ROOT, DevServer
from tests.security.apps import STRONG_PASSWORD

pytestmark = pytest.mark.fuzz
EXAMPLES = int(os.environ.get("MERGED_FUZZ_EXAMPLES", "40"))
CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
EDITOR = "fuzz-editor@example.org"


async def _editor_token(server: DevServer) -> str:
    """A verified account with the editor role, so the editor's calls are fuzzed too."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        registered = await client.post(
            "/v1/auth/register", json={"email": EDITOR, "password": STRONG_PASSWORD}
        )
        assert registered.status_code == 202, registered.text
        code = await server.code_for(EDITOR)
        verified = await client.post("/v1/auth/verify", json={"email": EDITOR, "code": code})
        assert verified.status_code == 200, verified.text
        env = {
            **os.environ,
            "NATOMEDIA_ENV": "development",
            "NATOMEDIA_DATA_DIR": str(server.log.parent / "data"),
        }
        granted = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.gateway.cli",
            "users",
            "grant-role",
            EDITOR,
            "editor",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(granted.communicate(), timeout=60)
        assert granted.returncode == 0, output.decode(errors="replace")
        login = await client.post(
            "/v1/auth/login", json={"email": EDITOR, "password": STRONG_PASSWORD}
        )
        assert login.status_code == 200, login.text
        token: str = login.json()["access_token"]
        return token


async def test_the_merged_document_matches_the_answers(dev_server: DevServer) -> None:
    token = await _editor_token(dev_server)
    process = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        "--no-color",
        "--config-file",
        str(CONFIG),
        "run",
        f"{dev_server.url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES),
        "--workers",
        "2",
        "--seed",
        "23",
        "--suppress-health-check",
        "all",
        "--header",
        f"Authorization: Bearer {token}",
        # Its cache (.schemathesis/) goes with the run, not into the worktree.
        cwd=dev_server.log.parent,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=540)
    report = output.decode(errors="replace")
    saved = dev_server.log.with_name("schemathesis.txt")
    saved.write_text(report)
    assert process.returncode == 0, f"{saved}:\n{report[-12_000:]}"
