"""Full-text search over articles, one interface for PostgreSQL and SQLite.

PostgreSQL matches a weighted `tsvector` (generated column, GIN index) against
`websearch_to_tsquery('english', …)` and ranks with `ts_rank`; SQLite matches the FTS5 table
`article_search` (porter stemmer) and ranks with `bm25`, with the same column weights. Both see
the same words: user text is cut into words here, English stop words dropped (PostgreSQL drops
them itself, FTS5 would not), and each word is quoted, so no FTS or SQL syntax ever reaches
either engine. Every word must match (AND), on both. The word handling is shared with media
(`services.common.search`); the index and its tables are the news service's own.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Subquery,
    Uuid,
    column,
    delete,
    insert,
    literal_column,
    table,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.search import (
    MAX_TERMS,
    STOP_WORDS,
    postgres_matches,
    quoted,
    search_terms,
    sqlite_matches,
)
from services.news.models import Article

# Title, summary, body: the same relative weights on both engines.
TITLE_WEIGHT, SUMMARY_WEIGHT, BODY_WEIGHT = 10.0, 4.0, 1.0


class SearchIndex(Protocol):
    async def index(self, session: AsyncSession, article: Article) -> None:
        """Make the article findable by its current title, summary and body."""

    async def remove(self, session: AsyncSession, article_id: uuid.UUID) -> None: ...

    def matches(self, terms: list[str]) -> Subquery:
        """(article_id, rank) of every article matching all terms; higher rank is better."""
        ...


class PostgresSearch:
    """The generated `search_vector` column follows every write by itself."""

    _articles = table("articles", column("id", Uuid()), column("search_vector"))
    # ts_rank weights are {D, C, B, A}: body in C, summary in B, title in A (see the migration).
    _weights: ColumnElement[Any] = literal_column(
        f"'{{0, {BODY_WEIGHT / TITLE_WEIGHT}, {SUMMARY_WEIGHT / TITLE_WEIGHT}, 1}}'::real[]"
    )

    async def index(self, session: AsyncSession, article: Article) -> None:
        return None

    async def remove(self, session: AsyncSession, article_id: uuid.UUID) -> None:
        return None

    def matches(self, terms: list[str]) -> Subquery:
        return postgres_matches(
            self._articles.c.id, self._articles.c.search_vector, self._weights, terms, "article_id"
        )


class SqliteSearch:
    """FTS5 has no generated columns; the service writes `article_search` with each article."""

    _fts = table(
        "article_search",
        column("article_id", Uuid()),
        column("title"),
        column("summary"),
        column("body"),
    )

    async def index(self, session: AsyncSession, article: Article) -> None:
        await self.remove(session, article.id)
        await session.execute(
            insert(self._fts).values(
                article_id=article.id,
                title=article.title,
                summary=article.summary,
                body=article.body_text,
            )
        )

    async def remove(self, session: AsyncSession, article_id: uuid.UUID) -> None:
        await session.execute(delete(self._fts).where(self._fts.c.article_id == article_id))

    def matches(self, terms: list[str]) -> Subquery:
        # Weights in the columns' order (article_id first).
        weights = (0.0, TITLE_WEIGHT, SUMMARY_WEIGHT, BODY_WEIGHT)
        return sqlite_matches(self._fts, self._fts.c.article_id, weights, terms, "article_id")


def search_index(dialect: str) -> SearchIndex:
    if dialect == "postgresql":
        return PostgresSearch()
    if dialect == "sqlite":
        return SqliteSearch()
    raise NotImplementedError(f"news search is not implemented for {dialect}")


__all__ = [
    "MAX_TERMS",
    "STOP_WORDS",
    "PostgresSearch",
    "SearchIndex",
    "SqliteSearch",
    "quoted",
    "search_index",
    "search_terms",
]
