"""`make bench` in smoke mode: the harness starts everything, measures every row, stops cleanly.

It runs on the bench's default database, PostgreSQL, and skips when PostgreSQL is unreachable
(unless NATOMEDIA_REQUIRE names it).

It asserts that each row is present and produced a measurement without errors; never a time or
a rate, which depend on the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.bench.support import require_postgres
from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]

MEASURED_ROWS = (
    "news.nginx",
    "news.bare",
    "news.direct",
    "news.gateway",
    "news.direct-reader",
    "news.gateway-reader",
    "news.gateway-reader-shared",
    "news.direct-editor",
    "news.gateway-editor",
    "video.nginx",
    "video.bare",
    "video.direct",
    "video.gateway",
    "video.direct-reader",
    "video.gateway-reader",
    "video.gateway-reader-shared",
    "video.direct-editor",
    "video.gateway-editor",
    "token.open",
    "token.protected",
    "me.ours",
    "login.ours",
    "storm.ours",
    "file.nginx",
    "file.gateway",
    "file.app",
    "objects.direct",
    "objects.proxy",
    "objects.redirect",
)
PEER_ROWS = ("me.peer", "login.peer", "storm.peer")

pytestmark = [pytest.mark.nginx, pytest.mark.postgres, pytest.mark.e2e]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        unavailable("nginx", "nginx is not installed")
    # As root the bench installs wrk itself (Debian's package), as it does on a fresh CI machine.
    if shutil.which("wrk") is None and os.geteuid() != 0:
        unavailable("nginx", "wrk is not installed")
    postgres_url = require_postgres()
    work = tmp_path_factory.mktemp("bench")
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--smoke",
            "--workdir",
            str(work / "run"),
            "--output",
            str(work / "results.md"),
            "--json",
            str(work / "results.json"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "NATOMEDIA_BENCH_POSTGRES_URL": postgres_url},
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    results = json.loads((work / "results.json").read_text())
    return results, (work / "results.md").read_text()


def test_every_row_is_measured_without_errors(smoke_run: tuple[dict[str, Any], str]) -> None:
    results, _ = smoke_run
    rows = {row["key"]: row for row in results["rows"]}
    assert set(rows) == {*MEASURED_ROWS, *PEER_ROWS}
    for key in MEASURED_ROWS:
        row = rows[key]
        assert row["status"] == "ok", (key, row)
        assert row["requests"] > 0, (key, row)
        assert row["errors"] == 0, (key, row)
    for key in PEER_ROWS:
        assert rows[key]["status"] == "skipped (smoke)"


def test_rows_with_a_reference_have_a_ratio(smoke_run: tuple[dict[str, Any], str]) -> None:
    results, _ = smoke_run
    for row in results["rows"]:
        if row["key"] in MEASURED_ROWS and row["reference"] in MEASURED_ROWS:
            assert row["ratio"] is not None, row
            assert row["ratio"] > 0, row


def test_the_table_and_machine_are_written(smoke_run: tuple[dict[str, Any], str]) -> None:
    results, markdown = smoke_run
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    # Header, separator, one line per row.
    assert len(table) == 2 + len(MEASURED_ROWS) + len(PEER_ROWS)
    for row in results["rows"]:
        assert any(f"| {row['label']} |" in line for line in table), row["label"]
    for heading in ("CPU", "cores", "Python", "packages", "nginx", "wrk", "pinning"):
        assert f"- {heading}: " in markdown


def test_the_default_database_is_postgresql(smoke_run: tuple[dict[str, Any], str]) -> None:
    results, markdown = smoke_run
    assert markdown.startswith("# Bench results (PostgreSQL)")
    assert results["run"]["database"].startswith("postgresql")
