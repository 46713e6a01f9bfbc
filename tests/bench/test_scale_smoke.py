"""`make bench-scale` at 1,000 rows in smoke mode: both engines imported, every row reported.

Times nothing: it checks that the harness generates, imports, searches, pages, compares with
exact ranking and writes its report and picture. It runs on PostgreSQL and SQLite, and skips
when PostgreSQL is unreachable (unless NATOMEDIA_REQUIRE names it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.bench.support import require_postgres

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
ROWS = 1000
ENGINES = ("postgresql", "sqlite")

# Imports on both engines, on a machine that may be busy: more than the suite's 600 s default.
pytestmark = [pytest.mark.postgres, pytest.mark.e2e, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def scale_report() -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        import scale_report

        return scale_report
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def scale_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    postgres_url = require_postgres()
    work = tmp_path_factory.mktemp("scale")
    output = work / "results-scale.md"
    completed = subprocess.run(
        [
            sys.executable,
            str(BENCH / "scale.py"),
            "--rows",
            str(ROWS),
            "--smoke",
            "--workdir",
            str(work / "run"),
            "--output",
            str(output),
            "--json",
            str(work / "results-scale.json"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "NATOMEDIA_BENCH_POSTGRES_URL": postgres_url},
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    results = json.loads((work / "results-scale.json").read_text())
    return results, output.read_text(), output.with_suffix(".png")


def test_both_imports_count_every_row_on_both_engines(
    scale_run: tuple[dict[str, Any], str, Path],
) -> None:
    results, _, _ = scale_run
    assert sorted(results) == sorted(ENGINES)
    for engine in ENGINES:
        values = results[engine][str(ROWS)]
        for service in ("news", "media"):
            # What the command said it imported, and what the database then holds.
            assert values[f"import.{service}.counted"] == [ROWS, ROWS], (engine, service)
            assert values[f"import.{service}.seconds"] > 0
            assert values[f"import.{service}.rss"] > 0


def test_every_search_and_list_row_is_measured(
    scale_run: tuple[dict[str, Any], str, Path],
) -> None:
    results, _, _ = scale_run
    for engine in ENGINES:
        values = results[engine][str(ROWS)]
        for service in ("news", "video"):
            for kind in ("common", "rare", "three words"):
                assert values[f"search.{service}.{kind}.1"]["samples"] > 0, (engine, service)
                # The rare word is in one row per thousand: there is no fifth page at 1,000.
                fifth = values[f"search.{service}.{kind}.5"]
                if kind == "rare":
                    assert fifth.startswith("n/a"), fifth
                else:
                    assert fifth["samples"] > 0, (engine, service, kind)
                verdict, matches = values[f"exact.{service}.{kind}"]
                # Up to 10,000 matches the first page is exactly best-first.
                assert verdict == "same", (engine, service, kind, verdict)
                assert matches >= 1
            assert values[f"list.{service}.first"]["samples"] > 0
            assert values[f"list.{service}.deep"]["samples"] > 0
            assert values[f"list.{service}.deep_page"] == ROWS // 100
        for read in ("news-list", "video-detail"):
            for who in ("anonymous", "token"):
                assert values[f"token.{read}.{who}"] == "not timed (smoke)"


def test_the_report_has_every_row_and_the_picture(
    scale_run: tuple[dict[str, Any], str, Path], scale_report: ModuleType
) -> None:
    _, markdown, picture = scale_run
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    for engine in ("PostgreSQL", "SQLite"):
        assert f"## {engine}" in markdown
    labels = scale_report.labels(ENGINES)
    for label in labels:
        assert any(line.startswith(f"| {label} |") for line in table), label
    # Two tables, each a header, a separator and a line per measurement.
    assert len(table) == 2 * 2 + len(labels)
    assert "| 1,000 rows |" in table[0]
    assert picture.read_bytes().startswith(b"\x89PNG")
