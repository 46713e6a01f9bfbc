"""`natomedia seed` and `natomedia news import`, against a real database per backend."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.news.commands import cli_import, seed
from services.news.config import NewsSettings
from services.news.demo_content import DEMO_ARTICLES, OSLO_SLUG

ARTICLES = "/v1/news/articles"


def rows() -> list[dict[str, Any]]:
    return [
        {
            "slug": "exercise-cold-response",
            "title": "Cold Response begins",
            "summary": "Allied troops train in Arctic conditions.",
            "body": "<p>Troops arrive.</p><script>alert(1)</script>",
            "published_at": "2022-03-14T08:00:00Z",
            "tags": ["Exercises", "arctic"],
            "location": "Evenes, Norway",
        },
        {
            "slug": "planned-summit-notes",
            "title": "Summit notes",
            "summary": "Draft notes.",
            "body": "<p>Notes.</p>",
            "status": "draft",
        },
    ]


async def run_import(settings: NewsSettings, path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await cli_import(settings, argparse.Namespace(file=str(path)), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "articles.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


async def test_import_is_idempotent(
    settings: NewsSettings, client: httpx.AsyncClient, tmp_path: Path, editor: Any
) -> None:
    path = write(tmp_path, rows())
    assert await run_import(settings, path) == (
        0,
        "imported 2 article(s): 2 created, 0 updated, 0 unchanged\n",
        "",
    )
    first = (await client.get(f"{ARTICLES}/exercise-cold-response")).json()
    assert first["tags"] == ["exercises", "arctic"]
    assert first["published_at"] == "2022-03-14T08:00:00Z"
    assert "<script" not in first["body"]
    assert (await client.get(f"{ARTICLES}/planned-summit-notes")).status_code == 404

    code, out, _ = await run_import(settings, path)
    assert (code, out) == (0, "imported 2 article(s): 0 created, 0 updated, 2 unchanged\n")
    again = (await client.get(f"{ARTICLES}/exercise-cold-response")).json()
    assert again == first

    changed = rows()
    changed[0]["title"] = "Cold Response is under way"
    code, out, _ = await run_import(settings, write(tmp_path, changed))
    assert (code, out) == (0, "imported 2 article(s): 0 created, 1 updated, 1 unchanged\n")
    # The import ran beside the app, like another process: a reader asking for a fresh copy
    # sees it at once, anyone else once the public cache's second is up.
    fresh = {"Cache-Control": "no-cache"}
    updated = (await client.get(f"{ARTICLES}/exercise-cold-response", headers=fresh)).json()
    assert updated["title"] == "Cold Response is under way"
    assert updated["id"] == first["id"]
    search = await client.get(ARTICLES, params={"q": "under way arctic"})
    assert [item["slug"] for item in search.json()["items"]] == ["exercise-cold-response"]
    listing = await client.get(ARTICLES, headers=editor.headers, params={"limit": 100})
    assert len(listing.json()["items"]) == 2


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"not": "a list"}, "expected a JSON list of articles"),
        (
            [{"slug": "Bad Slug", "title": "t", "summary": "s", "body": "b"}],
            "article 3 (Bad Slug): slug",
        ),
        ([{"slug": "ok", "summary": "s", "body": "b"}], "article 3 (ok): title: Field required"),
        (
            [
                {"slug": "same", "title": "t", "summary": "s", "body": "b"},
                {"slug": "same", "title": "t", "summary": "s", "body": "b"},
            ],
            "article 4 (same): slug also used by article 3",
        ),
    ],
)
async def test_a_bad_row_imports_nothing(
    settings: NewsSettings,
    client: httpx.AsyncClient,
    tmp_path: Path,
    document: Any,
    expected: str,
) -> None:
    if isinstance(document, list):
        document = [*rows(), *document]
    code, out, err = await run_import(settings, write(tmp_path, document))
    assert code == 1
    assert out == ""
    assert err.startswith("nothing imported")
    assert expected in err
    assert (await client.get(ARTICLES)).json()["items"] == []


async def test_unreadable_files_are_reported(settings: NewsSettings, tmp_path: Path) -> None:
    code, _, err = await run_import(settings, tmp_path / "missing.json")
    assert code == 1
    assert "cannot read" in err
    broken = tmp_path / "broken.json"
    broken.write_text("[{", encoding="utf-8")
    code, _, err = await run_import(settings, broken)
    assert code == 1
    assert "not valid JSON" in err


async def test_seed_loads_demo_content_once(
    settings: NewsSettings, client: httpx.AsyncClient
) -> None:
    await seed(settings)
    await seed(settings)
    items = (await client.get(ARTICLES, params={"limit": 100})).json()["items"]
    assert len(items) == len(DEMO_ARTICLES) >= 26
    oslo = (await client.get(f"{ARTICLES}/{OSLO_SLUG}")).json()
    assert oslo["published_at"] == "2007-04-26T17:00:00Z"
    years = {item["published_at"][:4] for item in items}
    assert len(years) >= 10
