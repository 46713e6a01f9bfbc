"""What `natomedia` runs for the news service: migrate, seed, and `news import`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, select

from services.common.clock import SystemClock
from services.common.database import Database, is_sqlite
from services.common.migrations import upgrade_to_head
from services.news.config import NewsSettings
from services.news.demo_content import DEMO_ARTICLES
from services.news.models import Article
from services.news.schemas import ArticleImport
from services.news.service import ImportResult, import_articles

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_rows = TypeAdapter(list[ArticleImport])


def _database(settings: NewsSettings) -> Database:
    url = settings.resolved_database_url
    if is_sqlite(url):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Database(url)


async def migrate(settings: NewsSettings) -> None:
    database = _database(settings)
    try:
        await upgrade_to_head(database, MIGRATIONS_DIR)
    finally:
        await database.dispose()


async def seed(settings: NewsSettings) -> None:
    """Load the demo articles, only into an empty database."""
    rows = _rows.validate_python(DEMO_ARTICLES)
    database = _database(settings)
    try:
        async with database.sessionmaker() as session, session.begin():
            if await session.scalar(select(func.count()).select_from(Article)):
                return
            await import_articles(session, rows, now=SystemClock().now())
    finally:
        await database.dispose()


class ImportFileError(Exception):
    """The file cannot be imported; nothing was written. Each line says what is wrong."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def parse_import_file(path: Path) -> list[ArticleImport]:
    """Every row checked before anything is written, so a bad row never half-imports a file."""
    try:
        document: Any = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ImportFileError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportFileError([f"{path}: not valid JSON: {exc}"]) from exc
    if isinstance(document, dict) and isinstance(document.get("articles"), list):
        document = document["articles"]
    if not isinstance(document, list):
        raise ImportFileError([f"{path}: expected a JSON list of articles"])
    problems: list[str] = []
    rows: list[ArticleImport] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(document):
        label = f"article {index + 1}"
        if isinstance(item, dict) and isinstance(item.get("slug"), str):
            label += f" ({item['slug']})"
        try:
            row = ArticleImport.model_validate(item)
        except ValidationError as exc:
            for error in exc.errors():
                field = ".".join(str(part) for part in error["loc"]) or "(row)"
                problems.append(f"{label}: {field}: {error['msg']}")
            continue
        if row.slug in seen:
            problems.append(f"{label}: slug also used by article {seen[row.slug] + 1}")
            continue
        seen[row.slug] = index
        rows.append(row)
    if problems:
        raise ImportFileError(problems)
    return rows


async def import_file(settings: NewsSettings, path: Path) -> ImportResult:
    rows = parse_import_file(path)
    database = _database(settings)
    try:
        async with database.sessionmaker() as session, session.begin():
            return await import_articles(session, rows, now=SystemClock().now())
    finally:
        await database.dispose()


async def cli_import(
    settings: NewsSettings,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """`natomedia news import FILE.json`: insert or update articles by slug, all or nothing."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        result = await import_file(settings, Path(args.file))
    except ImportFileError as exc:
        err.write(f"nothing imported: {len(exc.problems)} problem(s)\n")
        for problem in exc.problems:
            err.write(f"  {problem}\n")
        return 1
    out.write(
        f"imported {result.created + result.updated + result.unchanged} article(s): "
        f"{result.created} created, {result.updated} updated, {result.unchanged} unchanged\n"
    )
    return 0
