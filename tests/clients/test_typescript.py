"""A frontend's TypeScript client: types from the committed document, `tsc --strict`, run on Node.

The program (clients/typescript/src/main.ts) registers, verifies with the mailed code, logs in,
refreshes, lists videos, gets a signed download URL and lists articles against `natomedia dev`,
then walks the account page: download history, language, sessions, export, email change,
password change, log out everywhere, erasure.
A change to the document that breaks it fails here.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.clients.conftest import ROOT, DevServer
from tests.conftest import unavailable

PACKAGE = ROOT / "clients" / "typescript"


def _run(*command: str, cwd: Path = PACKAGE) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def compiled() -> Path:
    """`npm install`, generate src/api.d.ts from ../../openapi.json, compile with tsc --strict."""
    for tool in ("node", "npm", "npx"):
        if shutil.which(tool) is None:
            unavailable("node", f"{tool} is not installed")
    _run("npm", "install", "--no-audit", "--no-fund", "--loglevel=error")
    _run("npx", "openapi-typescript", "../../openapi.json", "-o", "src/api.d.ts")
    _run("npx", "tsc", "--strict", "-p", "tsconfig.json")
    return PACKAGE / "dist" / "main.js"


def test_generated_types_name_operations_and_error_codes(compiled: Path) -> None:
    types = (PACKAGE / "src" / "api.d.ts").read_text()
    for name in ("registerAccount", "verifyEmail", "createDownloadUrl", "listArticles"):
        assert f"{name}: {{" in types
    assert '"application/problem+json"' in types
    assert '"invalid_credentials"' in types


def test_a_misspelt_error_code_does_not_compile(compiled: Path, tmp_path: Path) -> None:
    api = (PACKAGE / "src" / "api.js").as_posix()
    for name, code in (("good", "invalid_credentials"), ("bad", "invalid_credential")):
        (tmp_path / f"{name}.ts").write_text(
            f'import type {{ operations }} from "{api}";\n'
            'type Login = operations["login"]["responses"][401]["content"];\n'
            f'export const code: Login["application/problem+json"]["code"] = "{code}";\n'
        )
    # One compiler run for both files: tsc is slow to start.
    result = subprocess.run(
        [
            *("npx", "tsc", "--noEmit", "--strict", "--skipLibCheck", "--target", "ES2022"),
            *("--module", "NodeNext", "--moduleResolution", "NodeNext"),
            *(str(tmp_path / "good.ts"), str(tmp_path / "bad.ts")),
        ],
        cwd=PACKAGE,
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = [line for line in result.stdout.splitlines() if "error TS" in line]
    assert result.returncode != 0
    assert len(errors) == 1, result.stdout
    assert "bad.ts" in errors[0]
    assert '"invalid_credential"' in errors[0]


async def test_program_runs_against_natomedia_dev(compiled: Path, dev_server: DevServer) -> None:
    email = f"ts-{uuid.uuid4().hex[:10]}@example.org"
    process = await asyncio.create_subprocess_exec(
        "node",
        str(compiled),
        cwd=PACKAGE,
        env={
            "PATH": str(Path(str(shutil.which("node"))).parent),
            "NATOMEDIA_API_URL": dev_server.url,
            "NATOMEDIA_EMAIL": email,
        },
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    first = json.loads(await asyncio.wait_for(process.stdout.readline(), timeout=60))
    assert first == {
        "step": "registered",
        "status": "verification_pending",
        "code_expires_in": 1800,
    }
    process.stdin.write((await dev_server.code_for(email)).encode() + b"\n")
    await process.stdin.drain()
    seen = []
    while True:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=120)
        assert line, "the program ended before asking to change its address"
        seen.append(json.loads(line))
        if seen[-1]["step"] == "email_change_requested":
            break
    new_email = seen[-1]["new_email"]
    process.stdin.write((await dev_server.code_for(new_email)).encode() + b"\n")
    await process.stdin.drain()
    rest, errors = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, errors.decode()
    lines = [*seen, *map(json.loads, rest.decode().splitlines())]
    steps = {line["step"]: line for line in lines}
    assert steps["verified"]["token_type"] == "Bearer"
    assert steps["wrong_password_refused"] == {
        "step": "wrong_password_refused",
        "status": 401,
        "code": "invalid_credentials",
    }
    assert steps["refreshed"]["rotated"] is True
    assert steps["me"] == {"step": "me", "email": email, "email_verified": True}
    assert steps["videos"]["count"] >= 1
    download = steps["download_url"]
    assert download["head_status"] == 200
    assert download["content_length"] == download["size_bytes"] > 0
    assert steps["articles"]["count"] >= 1
    assert steps["my_downloads"]["count"] == 1
    assert steps["my_downloads"]["rendition_label"]
    assert steps["account_updated"]["language"] == "fr"
    assert steps["session_ended"] == {
        "step": "session_ended",
        "listed": 3,  # the verification's session, this login and the other
        "current": 1,
        "refresh_status": 401,
    }
    assert steps["exported"] == {"step": "exported", "email": email, "sessions": 2}
    assert steps["email_changed"]["email"] == new_email
    assert steps["logged_out_everywhere"]["password_changed"] is True
    assert steps["account_deleted"] == {"step": "account_deleted", "ok": True}
    assert steps["done"] == {"step": "done", "ok": True}
