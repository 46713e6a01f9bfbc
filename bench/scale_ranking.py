"""Exact best-first ranking of every match, to check the first page a service answers.

Above 10,000 matches a service may rank a bounded candidate set instead of every match (issue
20). This ranks every match and says whether the service's first page agrees: with the
service's own search and its bound lifted where the service has one (news' `SearchBounds`),
otherwise with the service's match query and the order its list uses (rank, then newest, then
id), straight from the database. When the services' search modules offer neither, it answers
None and the report says "n/a".
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Ranked:
    ids: list[str]  # the first page, best first
    matches: int | None  # every row that matches (None: not counted)


EVERY_MATCH = 10**12  # an exact-ranking bound no archive reaches


async def _news_by_service(url: str, q: str, limit: int) -> Ranked | None:
    """The news service's own search with its exact-ranking bound lifted, when it has one."""
    import inspect

    from services.common.database import Database
    from services.news import search, service

    bounds = getattr(search, "SearchBounds", None)
    if bounds is None or "bounds" not in inspect.signature(service.list_articles).parameters:
        return None
    # Every match ranked, and counted: no bound, and no estimate standing in for the count.
    lifted = bounds(exact_limit=EVERY_MATCH, uncounted_from=EVERY_MATCH)
    database = Database(url)
    try:
        async with database.sessionmaker() as session:
            query = service.ArticleQuery(q=q, limit=limit)
            articles, _ = await service.list_articles(session, query, bounds=lifted)
            matches = None
            finder = getattr(service, "search_for", None) or getattr(search, "search_for", None)
            index = finder(session) if finder is not None else None
            if index is not None and hasattr(index, "count_matches"):
                from services.news.models import Article

                published = [Article.status == "published"]
                terms = search.search_terms(q)
                matches = await index.count_matches(session, terms, published, lifted)
        return Ranked([str(article.id) for article in articles], matches)
    finally:
        await database.dispose()


async def _exact(url: str, service: str, q: str, limit: int) -> Ranked:
    if service == "news":
        ranked = await _news_by_service(url, q, limit)
        if ranked is not None:
            return ranked
    from sqlalchemy import func, select

    from services.common.database import Database

    database = Database(url)
    try:
        dialect = database.engine.dialect.name
        table: Any
        if service == "news":
            from services.news.models import Article
            from services.news.search import search_index, search_terms

            matches = search_index(dialect).matches(search_terms(q))
            table, key = Article, matches.c.article_id
            published = Article.status == "published"
        else:
            from services.media.models import Video
            from services.media.search import video_search, video_terms

            matches = video_search(dialect).matches(video_terms(q))
            table, key = Video, matches.c.video_id
            published = Video.status == "published"
        joined = select(table.id).join(matches, key == table.id).where(published)
        order = (matches.c.rank.desc(), table.published_at.desc(), table.id.desc())
        async with database.engine.connect() as connection:
            ids = (await connection.scalars(joined.order_by(*order).limit(limit))).all()
            count = await connection.scalar(
                select(func.count()).select_from(joined.subquery("matching"))
            )
        return Ranked([str(uuid.UUID(str(value))) for value in ids], int(count or 0))
    finally:
        await database.dispose()


def exact_first_page(url: str, service: str, q: str, limit: int) -> Ranked | None:
    """The first page by exact ranking, or None when it cannot be computed with this code."""
    try:
        return asyncio.run(_exact(url, service, q, limit))
    except Exception as exc:  # whatever the services' code has become: the row says n/a
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"[scale] exact ranking for {service} {q!r} not available: {first}", flush=True)
        return None


def compare(api_ids: list[str], exact: Ranked | None) -> str:
    if exact is None:
        return "n/a"
    if api_ids == exact.ids:
        return "same"
    moved = sum(1 for mine, theirs in zip(api_ids, exact.ids, strict=False) if mine != theirs)
    moved += abs(len(api_ids) - len(exact.ids))
    return f"differs ({moved} of {max(len(api_ids), len(exact.ids))} places)"
