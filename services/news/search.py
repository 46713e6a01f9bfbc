"""Full-text search over articles, one interface for PostgreSQL and SQLite.

PostgreSQL matches a weighted `tsvector` (generated column, GIN index) against
`websearch_to_tsquery('english', …)` and ranks with `ts_rank`; SQLite matches the FTS5 table
`article_search` (porter stemmer) and ranks with `bm25`, with the same column weights. Both see
the same words: user text is cut into words here, English stop words dropped (PostgreSQL drops
them itself, FTS5 would not), and each word is quoted, so no FTS or SQL syntax ever reaches
either engine. Every word must match (AND), on both.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Double,
    Subquery,
    Uuid,
    column,
    delete,
    func,
    insert,
    literal_column,
    select,
    table,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.news.models import Article

MAX_TERMS = 16
MAX_TERM_LENGTH = 64

# PostgreSQL's `english` stop words (tsearch_data/english.stop).
STOP_WORDS = frozenset(
    """
    i me my myself we our ours ourselves you your yours yourself yourselves he him his himself
    she her hers herself it its itself they them their theirs themselves what which who whom
    this that these those am is are was were be been being have has had having do does did
    doing a an the and but if or because as until while of at by for with about against between
    into through during before after above below to from up down in out on off over under again
    further then once here there when where why how all any both each few more most other some
    such no nor not only own same so than too very s t can will just don should now
    """.split()
)

# Letters and digits only: hyphens, quotes, operators and punctuation all separate words.
_WORD = re.compile(r"[^\W_]+")

# Title, summary, body: the same relative weights on both engines.
TITLE_WEIGHT, SUMMARY_WEIGHT, BODY_WEIGHT = 10.0, 4.0, 1.0


def search_terms(text: str) -> list[str]:
    """The searchable words of `text`, lowercased, without stop words or repeats."""
    terms: list[str] = []
    for word in _WORD.findall(text.lower()):
        if word in STOP_WORDS or len(word) > MAX_TERM_LENGTH or word in terms:
            continue
        terms.append(word)
        if len(terms) == MAX_TERMS:
            break
    return terms


def quoted(terms: list[str]) -> str:
    # Words hold only letters and digits, but quoting makes that a property of the query too.
    return " ".join(f'"{term}"' for term in terms)


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
        query = func.websearch_to_tsquery(literal_column("'english'::regconfig"), quoted(terms))
        vector = self._articles.c.search_vector
        return (
            select(
                self._articles.c.id.label("article_id"),
                func.ts_rank(self._weights, vector, query).cast(Double()).label("rank"),
            )
            .where(vector.op("@@")(query))
            .subquery("matches")
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
    # FTS5 functions and MATCH take the table itself as their first operand.
    _table: ColumnElement[Any] = literal_column("article_search")

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
        # bm25 is lower-is-better and weighs columns in declaration order (article_id first).
        rank = -func.bm25(self._table, 0.0, TITLE_WEIGHT, SUMMARY_WEIGHT, BODY_WEIGHT)
        return (
            select(self._fts.c.article_id.label("article_id"), rank.cast(Double()).label("rank"))
            .select_from(self._fts)
            .where(self._table.op("MATCH")(quoted(terms)))
            .subquery("matches")
        )


def search_index(dialect: str) -> SearchIndex:
    if dialect == "postgresql":
        return PostgresSearch()
    if dialect == "sqlite":
        return SqliteSearch()
    raise NotImplementedError(f"news search is not implemented for {dialect}")
