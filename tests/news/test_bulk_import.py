"""`natomedia news import` at scale: streamed, batched, all or nothing, one line per problem."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import OperationalError

from services.common.database import Database
from services.news import bulk_import
from services.news.commands import cli_import
from services.news.config import NewsSettings
from services.news.models import Article, ArticleTag
from tests.statements import planner_rows

ARTICLES = "/v1/news/articles"
NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def article(number: int, **fields: Any) -> dict[str, Any]:
    return {
        "slug": f"article-{number}",
        "title": f"Exercise report {number}",
        "summary": f"Allied forces train together, report {number}.",
        "body": f"<p>Troops rehearse logistics.</p><p>Reference code{number}.</p>",
        "published_at": f"2020-01-01T00:{number // 60 % 60:02d}:{number % 60:02d}Z",
        "tags": ["exercises", f"group-{number % 3}"],
        **fields,
    }


def write(tmp_path: Path, document: Any, name: str = "articles.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


@pytest.fixture
async def database(settings: NewsSettings) -> AsyncIterator[Database]:
    database = Database(settings.resolved_database_url)
    yield database
    await database.dispose()


async def count(database: Database, table: Any = Article) -> int:
    async with database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def run_cli(settings: NewsSettings, path: Path) -> tuple[int, str, str]:
    out, err, progress = io.StringIO(), io.StringIO(), io.StringIO()
    code = await cli_import(
        settings, argparse.Namespace(file=str(path)), out=out, err=err, progress=progress
    )
    return code, out.getvalue(), err.getvalue()


async def test_batches_write_every_row_and_a_second_run_changes_nothing(
    database: Database, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    rows = [article(number) for number in range(1, 1235)]
    path = write(tmp_path, {"articles": rows})
    progress = io.StringIO()
    result = await bulk_import.import_file(
        database, path, now=NOW, batch_size=100, progress_stream=progress
    )
    assert (result.created, result.updated, result.unchanged) == (1234, 0, 0)
    assert await count(database) == 1234
    assert await count(database, ArticleTag) == 2468
    # Plain progress lines, ending at the total.
    assert progress.getvalue().splitlines()[-1] == "importing articles.json: 100% (1234/1234)"

    again = await bulk_import.import_file(database, path, now=NOW, batch_size=100)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1234)

    # Changes in rows on both sides of a batch boundary, and new rows at the end.
    rows[99]["title"] = "Exercise report ninety-nine, revised"
    rows[100]["tags"] = ["exercises"]
    rows[100]["body"] = "<p>Submarines surface near the harbour.</p>"
    rows.append(article(5000))
    changed = await bulk_import.import_file(
        database, write(tmp_path, rows), now=NOW, batch_size=100
    )
    assert (changed.created, changed.updated, changed.unchanged) == (1, 2, 1232)
    detail = (await client.get(f"{ARTICLES}/article-101")).json()
    assert detail["tags"] == ["exercises"]
    assert detail["published_at"] == "2020-01-01T00:01:41Z"
    search = await client.get(ARTICLES, params={"q": "submarines harbour"})
    assert [item["slug"] for item in search.json()["items"]] == ["article-101"]
    assert (await client.get(ARTICLES, params={"q": "code101"})).json()["items"] == []
    revised = await client.get(ARTICLES, params={"q": "ninety revised"})
    assert [item["slug"] for item in revised.json()["items"]] == ["article-100"]


async def test_a_failing_batch_in_the_second_pass_leaves_nothing(
    settings: NewsSettings,
    database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write(tmp_path, [article(number) for number in range(1, 301)])
    write_batch = bulk_import.write_batch
    calls = 0

    async def failing_third_batch(*args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OperationalError("INSERT INTO articles", {}, Exception("disk I/O error"))
        await write_batch(*args, **kwargs)

    monkeypatch.setattr(bulk_import, "write_batch", failing_third_batch)
    monkeypatch.setattr(bulk_import, "BATCH_SIZE", 100)
    code, out, err = await run_cli(settings, path)
    assert calls == 3
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith("nothing imported: the database failed:")
    assert "disk I/O error" in err
    assert await count(database) == 0
    assert await count(database, ArticleTag) == 0


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[{", "not valid JSON near article 1: parse error"),
        ('[{"slug": "a", "title": "t", "summary": "s", "body": "b"}] x', "near article 2"),
        ("", "expected a JSON list of articles"),
        ("42", "expected a JSON list of articles"),
        ('{"articles": 5}', "expected a JSON list of articles"),
        ('{"not": "a list"}', "expected a JSON list of articles"),
        (
            json.dumps([article(1), {**article(2), "slug": "Bad\nSlug"}]),
            "article 2 (Bad Slug): slug: Value error",
        ),
        (json.dumps([article(1), {**article(2), "title": None}]), "article 2 (article-2): title"),
        (
            json.dumps([article(1), article(2), {**article(3), "slug": "article-1"}]),
            "article 3 (article-1): slug also used by article 1",
        ),
    ],
)
async def test_each_bad_input_is_one_line(
    settings: NewsSettings, database: Database, tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "articles.json"
    path.write_text(content, encoding="utf-8")
    code, out, err = await run_cli(settings, path)
    assert (code, out) == (1, "")
    assert err.count("\n") == 1, err
    assert err.startswith("nothing imported: ")
    assert expected in err
    assert "Traceback" not in err
    assert await count(database) == 0


async def test_unreadable_and_undecodable_files_are_one_line(
    settings: NewsSettings, tmp_path: Path
) -> None:
    binary = tmp_path / "latin1.json"
    binary.write_bytes(b'[{"slug": "caf\xe9"}]')
    for path, expected in [
        (tmp_path / "missing.json", "cannot read: No such file or directory"),
        (tmp_path, "cannot read: Is a directory"),
        (binary, "not valid JSON"),
    ]:
        code, _, err = await run_cli(settings, path)
        assert code == 1
        assert err.count("\n") == 1, err
        assert expected in err, err


async def test_several_problems_are_listed_one_per_line(
    settings: NewsSettings, tmp_path: Path
) -> None:
    rows = [article(1), {"slug": "x"}, {**article(3), "tags": ["-bad-"]}]
    code, _, err = await run_cli(settings, write(tmp_path, rows))
    lines = err.splitlines()
    assert code == 1
    assert lines[0] == "nothing imported: 4 problems"
    assert lines[1:] == [
        "  article 2 (x): title: Field required",
        "  article 2 (x): summary: Field required",
        "  article 2 (x): body: Field required",
        lines[4],
    ]
    assert lines[4].startswith("  article 3 (article-3): tags: Value error")


class Statements:
    """The largest number of parameters any one statement bound."""

    def __init__(self) -> None:
        self.largest = 0

    def __call__(self, conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        many = (
            isinstance(parameters, list)
            and parameters
            and isinstance(parameters[0], tuple | dict | list)
        )
        rows = parameters if many else [parameters]
        for row in rows:
            self.largest = max(self.largest, len(row or ()))


@pytest.fixture
def statements(database: Database) -> Iterator[Statements]:
    watcher = Statements()
    event.listen(database.engine.sync_engine, "before_cursor_execute", watcher)
    yield watcher
    event.remove(database.engine.sync_engine, "before_cursor_execute", watcher)


async def test_no_statement_binds_a_parameter_per_row_of_the_file(
    database: Database, statements: Statements, tmp_path: Path
) -> None:
    """PostgreSQL refuses more than 32,767 parameters in one statement: every lookup is per
    batch, so the file's size never reaches a statement."""
    path = write(tmp_path, [article(number) for number in range(1, 1001)])
    await bulk_import.import_file(database, path, now=NOW, batch_size=50)
    assert statements.largest <= 50
    result = await bulk_import.import_file(database, path, now=NOW, batch_size=50)
    assert result.unchanged == 1000
    assert statements.largest <= 50


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_index_matches_its_articles_after_an_import(
    database: Database, tmp_path: Path
) -> None:
    rows = [article(number) for number in range(1, 301)]
    await bulk_import.import_file(database, write(tmp_path, rows), now=NOW, batch_size=70)
    rows[5]["title"] = "Renamed"
    await bulk_import.import_file(database, write(tmp_path, rows), now=NOW, batch_size=70)
    async with database.sessionmaker() as session, session.begin():
        # Compares every index entry with the articles' current text; raises when they differ.
        await session.execute(
            text("INSERT INTO article_search(article_search, rank) VALUES ('integrity-check', 1)")
        )


async def test_an_import_leaves_the_planner_statistics_of_what_it_wrote(
    database: Database, tmp_path: Path
) -> None:
    # Without them the planner plans the archive as the empty table it last saw.
    assert await planner_rows(database, "articles") == 0
    path = write(tmp_path, {"articles": [article(number) for number in range(1, 301)]})
    await bulk_import.import_file(database, path, now=NOW)
    assert await planner_rows(database, "articles") == 300
