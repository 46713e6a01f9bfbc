"""`natomedia stack` as an operator runs it: starts everything, stops everything it started."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from services.gateway.stack import Stack, StackError, find_nginx, free_port
from tests.conftest import unavailable
from tests.e2e.conftest import OWN_PREFIXES

pytestmark = [pytest.mark.e2e, pytest.mark.nginx]


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    if find_nginx() is None:
        unavailable("nginx", "no nginx binary (apt-get install nginx-light)")
    env = {key: value for key, value in os.environ.items() if not key.startswith(OWN_PREFIXES)}
    env["NATOMEDIA_DATA_DIR"] = str(tmp_path / "data")
    return env


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_command_serves_until_sigterm_then_stops_every_child(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "stack.out"
    with log.open("wb") as output:
        stack = subprocess.Popen(
            [sys.executable, "-m", "services.gateway.cli", "stack", "--port", str(port)],
            env=clean_env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        pids: list[int] = []
        for _ in range(1200):
            pids = [int(pid) for pid in re.findall(r"pid (\d+)", log.read_text())]
            if len(pids) == 4 or stack.poll() is not None:
                break
            time.sleep(0.1)
        assert stack.poll() is None, log.read_text()
        assert len(pids) == 4, log.read_text()  # nginx, auth, media, news

        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            assert client.get("/v1/news/readyz").status_code == 200
            # SQLite under the data dir, the stack's nginx config under DATA_DIR/stack.
            assert client.get("/v1/media/videos").status_code == 200
        assert (Path(clean_env["NATOMEDIA_DATA_DIR"]) / "stack" / "nginx.conf").exists()

        stack.send_signal(signal.SIGTERM)
        assert stack.wait(timeout=60) == 0
        assert [pid for pid in pids if alive(pid)] == []
        # Each service was stopped gracefully: its app's shutdown ran.
        logs = Path(clean_env["NATOMEDIA_DATA_DIR"]) / "stack" / "logs"
        for name in ("auth-1", "media-1", "news-1"):
            assert "Application shutdown complete" in (logs / f"{name}.log").read_text(), name
    finally:
        if stack.poll() is None:
            stack.kill()
            stack.wait()


def test_a_service_that_cannot_start_stops_the_others(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    # Production settings without the auth service's secrets: auth exits at start.
    env = {**clean_env, "NATOMEDIA_ENV": "production", "MEDIA_SIGNING_SECRET": "x" * 32}
    stack = Stack(port=free_port(), run_dir=tmp_path / "run", env=env, migrate=False)

    with pytest.raises(StackError, match="auth-1 exited while starting"):
        stack.start()

    for managed in stack.processes():
        assert managed.pid is not None
        assert not managed.running, managed.name
    assert not stack.nginx.managed.running
