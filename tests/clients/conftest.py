"""A real `natomedia dev` for the generated clients to talk to, with mail caught in-process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from services.gateway.mail_sink import MailSink
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
# Settings the developer's shell may carry that would point the server elsewhere.
_FOREIGN = (
    "AUTH_",
    "MEDIA_",
    "NEWS_",
    "REDIS_URL",
    "PUBLIC_BASE_URL",
    "JWKS_URL",
    "SMTP_",
    "NATOMEDIA_",
)


@dataclass(frozen=True)
class DevServer:
    url: str
    mail: MailSink
    log: Path
    # What a `natomedia` command needs to act on this server's data.
    env: dict[str, str] = field(default_factory=dict)

    async def code_for(self, email: str, count: int = 1) -> str:
        mails = await self.mail.wait_for(email, count, timeout=30)
        code = mails[-1].code
        assert code is not None, mails[-1].text
        return code


@pytest.fixture(scope="package")
async def dev_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevServer]:
    """`natomedia dev` as users start it: migrated, demo content loaded, on a free port."""
    async with run_dev_server(tmp_path_factory.mktemp("natomedia-dev")) as server:
        yield server


def server_env(directory: Path, port: int, smtp_port: int) -> dict[str, str]:
    """The environment `natomedia` commands need to act on the server started in `directory`."""
    env = {key: value for key, value in os.environ.items() if not _foreign(key)}
    env.update(
        NATOMEDIA_ENV="development",
        NATOMEDIA_HOST="127.0.0.1",
        NATOMEDIA_PORT=str(port),
        NATOMEDIA_DATA_DIR=str(directory / "data"),
        NATOMEDIA_LOG_LEVEL="WARNING",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_port),
    )
    return env


@contextlib.asynccontextmanager
async def run_dev_server(
    directory: Path, extra_env: dict[str, str] | None = None
) -> AsyncIterator[DevServer]:
    sink = MailSink("127.0.0.1", free_port(), directory / "mail")
    sink.start()
    port = free_port()
    env = server_env(directory, port, sink.port)
    env.update(extra_env or {})
    log = directory / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.gateway.cli", "dev"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        await _wait_until_ready(url, process, log)
        yield DevServer(url, sink, log, env)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        sink.stop()


def _foreign(key: str) -> bool:
    return key.startswith(_FOREIGN)


async def _wait_until_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = asyncio.get_running_loop().time() + 120
    async with httpx.AsyncClient(base_url=url, timeout=2) as client:
        while asyncio.get_running_loop().time() < deadline:
            if process.poll() is not None:
                pytest.fail(f"natomedia dev exited with {process.returncode}:\n{_tail(log)}")
            try:
                answers = [
                    await client.get(f"/v1/{name}/readyz") for name in ("auth", "media", "news")
                ]
            except httpx.TransportError:
                answers = []
            if answers and all(answer.status_code == 200 for answer in answers):
                return
            await asyncio.sleep(0.25)
    pytest.fail(f"natomedia dev did not become ready:\n{_tail(log)}")


def _tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-40:])
