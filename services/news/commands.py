"""What `natomedia` runs for the news service: migrate, seed, and `news import`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from pydantic import TypeAdapter
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from services.common.clock import SystemClock
from services.common.database import Database, is_sqlite
from services.common.migrations import upgrade_to_head
from services.news import bulk_import
from services.news.bulk_import import ImportFileError, ImportResult, one_line
from services.news.config import NewsSettings
from services.news.demo_content import DEMO_ARTICLES
from services.news.models import Article
from services.news.schemas import ArticleImport

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
            prepared = [bulk_import.prepare(row) for row in rows]
            await bulk_import.write_batch(
                session, prepared, now=SystemClock().now(), result=ImportResult()
            )
    finally:
        await database.dispose()


async def import_file(
    settings: NewsSettings, path: Path, *, progress: TextIO | None = None
) -> ImportResult:
    database = _database(settings)
    try:
        return await bulk_import.import_file(
            database, path, now=SystemClock().now(), progress_stream=progress
        )
    finally:
        await database.dispose()


async def cli_import(
    settings: NewsSettings,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    progress: TextIO | None = None,
) -> int:
    """`natomedia news import FILE.json`: insert or update articles by slug, all or nothing."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        result = await import_file(settings, Path(args.file), progress=progress)
    except ImportFileError as exc:
        if len(exc.problems) == 1:
            err.write(f"nothing imported: {exc.problems[0]}\n")
        else:
            err.write(f"nothing imported: {len(exc.problems)} problems\n")
            for problem in exc.problems:
                err.write(f"  {problem}\n")
        return 1
    except (OSError, SQLAlchemyError) as exc:
        # The database went away or refused a batch: the transaction is rolled back.
        err.write(f"nothing imported: the database failed: {one_line(str(exc.__cause__ or exc))}\n")
        return 1
    out.write(
        f"imported {result.total} article(s): "
        f"{result.created} created, {result.updated} updated, {result.unchanged} unchanged\n"
    )
    return 0
