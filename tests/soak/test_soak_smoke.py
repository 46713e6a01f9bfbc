"""The soak run, shortened: the whole stack under mixed load for a few seconds, books balanced."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from services.gateway.stack import find_nginx
from tests.conftest import POSTGRES_URL, unavailable

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.nginx]
ROOT = Path(__file__).resolve().parents[2]


async def test_a_short_soak_balances_its_books(tmp_path: Path, redis_url: str) -> None:
    if find_nginx() is None and shutil.which("nginx") is None:
        unavailable("nginx", "no nginx binary")
    try:
        connection = await asyncpg.connect(POSTGRES_URL, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        unavailable("postgres", str(exc))
    await connection.close()
    results = tmp_path / "results.md"
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "soak" / "run.py"),
            "--duration",
            "10",
            "--workers",
            "4",
            "--results",
            str(results),
            "--postgres-url",
            POSTGRES_URL,
            "--redis-url",
            redis_url,
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    text = results.read_text()
    assert "- [x] no 5xx" in text
    assert "- [x] every registration's mail delivered" in text
    assert "- [ ]" not in text
