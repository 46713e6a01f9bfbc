"""`natomedia news import FILE.json`: articles in bulk, keyed by slug, all or nothing.

The file is a JSON list of articles (or `{"articles": [...]}`), read twice and streamed (ijson),
so memory stays flat whatever its size. Pass one checks every row and lists every problem, one
line each; nothing is written if there is one. Pass two writes in batches inside one
transaction, so a failure anywhere leaves nothing behind: each batch looks up its own slugs
(never one parameter per row of the file, which PostgreSQL caps at 32,767), inserts new
articles and their tags with one multi-row statement each, and updates only the rows that
differ from what is stored. A second run of the same file changes nothing. The search index
follows by itself (a generated column on PostgreSQL, triggers on SQLite).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO, cast

import ijson  # type: ignore[import-untyped]
from pydantic import ValidationError
from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.database import Database
from services.common.progress import ProgressBar
from services.news.models import Article, ArticleTag
from services.news.sanitise import plain_text, sanitise_html
from services.news.schemas import ArticleImport
from services.news.search import search_index

# Rows per batch: each batch's slug lookup binds this many parameters.
BATCH_SIZE = 500
_LABEL_LENGTH = 60
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_articles = cast(Table, Article.__table__)
_tags = cast(Table, ArticleTag.__table__)
# Compared with what is stored to tell an update from a no-op (what an editor can change).
_COMPARED = (
    "title",
    "summary",
    "body",
    "location",
    "language",
    "status",
    "published_at",
    "related_video_ids",
)


class ImportFileError(Exception):
    """The file cannot be imported; nothing was written. Each problem is one line."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged


def one_line(text: str) -> str:
    """Control characters and line breaks of user data or parser messages made visible."""
    return " ".join(_CONTROL.sub(" ", text).split())


def _label(number: int, item: Any) -> str:
    label = f"article {number}"
    slug = item.get("slug") if isinstance(item, dict) else None
    if isinstance(slug, str):
        shown = one_line(slug)
        if len(shown) > _LABEL_LENGTH:
            shown = shown[:_LABEL_LENGTH] + "…"
        label += f" ({shown})"
    return label


def _items(path: Path) -> Iterator[tuple[int, Any]]:
    """(row number from 1, raw row) of the file, streamed; malformed input is one problem."""
    count = 0
    try:
        with path.open("rb") as handle:
            first = handle.read(4096).lstrip(b" \t\r\n")[:1]
            handle.seek(0)
            if first == b"[":
                prefix = "item"
            elif first == b"{" and _articles_is_a_list(handle):
                handle.seek(0)
                prefix = "articles.item"
            else:
                raise ImportFileError(
                    [f'{path}: expected a JSON list of articles (or {{"articles": [...]}})']
                )
            for item in ijson.items(handle, prefix, use_float=True):
                count += 1
                yield count, item
    except ijson.JSONError as exc:
        problem = f"not valid JSON near article {count + 1}: {_parser_message(exc)}"
        raise ImportFileError([f"{path}: {problem}"]) from exc
    except UnicodeDecodeError as exc:
        raise ImportFileError([f"{path}: not valid UTF-8 text: {one_line(str(exc))}"]) from exc
    except OSError as exc:
        raise ImportFileError(
            [f"{path}: cannot read: {one_line(exc.strerror or str(exc))}"]
        ) from exc


def _parser_message(exc: Exception) -> str:
    # yajl draws the offending spot on further lines; the first one says what is wrong.
    lines = str(exc).strip().splitlines()
    return one_line(lines[0]) if lines else type(exc).__name__


def _articles_is_a_list(handle: Any) -> bool:
    for prefix, event, _ in ijson.parse(handle):
        if prefix == "articles":
            return bool(event == "start_array")
    return False


def _validated(number: int, item: Any) -> tuple[ArticleImport | None, list[str]]:
    try:
        return ArticleImport.model_validate(item), []
    except ValidationError as exc:
        label = _label(number, item)
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "(row)"
            problems.append(f"{label}: {field}: {one_line(error['msg'])}")
        return None, problems


def check_file(path: Path) -> int:
    """Pass one: the number of rows, or `ImportFileError` listing every problem."""
    problems: list[str] = []
    seen: dict[str, int] = {}
    count = 0
    for number, item in _items(path):
        count = number
        row, row_problems = _validated(number, item)
        problems.extend(row_problems)
        if row is None:
            continue
        if row.slug in seen:
            problems.append(f"{_label(number, item)}: slug also used by article {seen[row.slug]}")
            continue
        seen[row.slug] = number
    if problems:
        raise ImportFileError(problems)
    return count


@dataclass(frozen=True, slots=True)
class PreparedRow:
    """A row as it will be stored: HTML sanitised, plain text extracted, tags in order."""

    slug: str
    values: dict[str, Any]
    tags: list[str]


def prepare(row: ArticleImport) -> PreparedRow:
    body = sanitise_html(row.body)
    values = {
        "title": row.title,
        "summary": row.summary,
        "body": body,
        "body_text": plain_text(body),
        "location": row.location,
        "language": row.language,
        "status": row.status,
        "published_at": row.published_at,
        "related_video_ids": [str(video_id) for video_id in row.related_video_ids],
    }
    return PreparedRow(row.slug, values, list(row.tags))


def _batches(path: Path, size: int) -> Iterator[list[PreparedRow]]:
    """Pass two: the same rows, checked again (the file may have changed since pass one)."""
    seen: set[str] = set()
    batch: list[PreparedRow] = []
    for number, item in _items(path):
        row, _ = _validated(number, item)
        if row is None or row.slug in seen:
            raise ImportFileError(
                [f"{path}: changed while it was imported (article {number}); run it again"]
            )
        seen.add(row.slug)
        batch.append(prepare(row))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def write_batch(
    session: AsyncSession, rows: Sequence[PreparedRow], *, now: datetime, result: ImportResult
) -> None:
    """Insert or update one batch by slug; rows matching what is stored are left alone."""
    slugs = [row.slug for row in rows]
    stored = {
        record.slug: dict(record._mapping)
        for record in await session.execute(
            select(
                _articles.c.id,
                _articles.c.slug,
                *(_articles.c[name] for name in _COMPARED),
            ).where(_articles.c.slug.in_(slugs))
        )
    }
    stored_tags: dict[uuid.UUID, list[str]] = {values["id"]: [] for values in stored.values()}
    if stored_tags:
        for article_id, tag in await session.execute(
            select(_tags.c.article_id, _tags.c.tag)
            .where(_tags.c.article_id.in_(list(stored_tags)))
            .order_by(_tags.c.article_id, _tags.c.position)
        ):
            stored_tags[article_id].append(tag)

    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    tag_rows: list[dict[str, Any]] = []
    retagged: list[uuid.UUID] = []
    for row in rows:
        values, tags = dict(row.values), row.tags
        before = stored.get(row.slug)
        if before is None:
            article_id = uuid.uuid4()
            if values["status"] == "published" and values["published_at"] is None:
                values["published_at"] = now
            inserts.append(
                {"id": article_id, "slug": row.slug, "created_at": now, "updated_at": now, **values}
            )
            tag_rows.extend(_tag_rows(article_id, tags))
            result.created += 1
            continue
        article_id = before["id"]
        if values["published_at"] is None:
            # A row without a time keeps the one it was first published with...
            values["published_at"] = before["published_at"]
        if values["status"] == "published" and values["published_at"] is None:
            # ...and a draft published by the import is published now.
            values["published_at"] = now
        old_tags = stored_tags[article_id]
        if all(before[name] == values[name] for name in _COMPARED) and old_tags == tags:
            result.unchanged += 1
            continue
        updates.append({"b_id": article_id, "updated_at": now, **values})
        if old_tags != tags:
            retagged.append(article_id)
            tag_rows.extend(_tag_rows(article_id, tags))
        result.updated += 1

    if inserts:
        await search_index(session.get_bind().dialect.name).insert_articles(session, inserts)
    if updates:
        await session.execute(
            update(_articles).where(_articles.c.id == bindparam("b_id")),
            updates,
        )
    if retagged:
        await session.execute(delete(_tags).where(_tags.c.article_id.in_(retagged)))
    if tag_rows:
        await session.execute(insert(_tags), tag_rows)


def _tag_rows(article_id: uuid.UUID, tags: Iterable[str]) -> list[dict[str, Any]]:
    return [
        {"article_id": article_id, "tag": tag, "position": position}
        for position, tag in enumerate(tags)
    ]


async def import_file(
    database: Database,
    path: Path,
    *,
    now: datetime,
    batch_size: int | None = None,
    progress_stream: TextIO | None = None,
) -> ImportResult:
    """Check everything, then write everything in one transaction, or nothing.

    While the database writes one batch, a worker thread reads and sanitises the next, so the
    two costs overlap instead of adding up.
    """
    total = check_file(path)
    result = ImportResult()
    batches = _batches(path, batch_size or BATCH_SIZE)

    def following() -> list[PreparedRow] | None:
        return next(batches, None)

    with ProgressBar(
        f"importing {path.name}", total, bytes=False, stream=progress_stream
    ) as progress:
        async with database.sessionmaker() as session, session.begin():
            batch = await asyncio.to_thread(following)
            while batch is not None:
                upcoming = asyncio.ensure_future(asyncio.to_thread(following))
                try:
                    await write_batch(session, batch, now=now, result=result)
                except BaseException:
                    # The thread cannot be stopped; let it finish before the file closes.
                    await asyncio.wait([upcoming])
                    if not upcoming.cancelled():
                        upcoming.exception()
                    raise
                progress.advance(len(batch))
                batch = await upcoming
    if result.created or result.updated:
        await database.analyze()
    return result
