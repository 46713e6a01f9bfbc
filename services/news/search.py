"""Full-text search over articles, one interface for PostgreSQL and SQLite.

PostgreSQL matches a weighted `tsvector` (generated column, GIN index) against
`websearch_to_tsquery('english', …)` and ranks with `ts_rank`; SQLite matches the FTS5 table
`article_search` (porter stemmer) and ranks with `bm25`, with the same column weights. Both see
the same words: user text is cut into words here, English stop words dropped (PostgreSQL drops
them itself, FTS5 would not), and each word is quoted, so no FTS or SQL syntax ever reaches
either engine. Every word must match (AND), on both. The word handling is shared with media
(`services.common.search`); the index and its tables are the news service's own.

Ranking reads every candidate's index entry, so its cost grows with the number of matches. A
search matching at most `EXACT_RANKING_LIMIT` articles (after its filters) ranks them all:
exactly best first. Above that, it ranks the `RANKED_CANDIDATES` newest matches only: on
PostgreSQL the latest published (read backwards through the publication-time index), on SQLite
the most recently indexed (FTS5 reads its rowids backwards at no cost). A word found in most
of the archive then answers with the best of its recent articles.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Protocol, cast

from sqlalchemy import (
    Column,
    ColumnElement,
    Double,
    Integer,
    MetaData,
    Subquery,
    Table,
    Uuid,
    column,
    func,
    insert,
    literal,
    literal_column,
    select,
    table,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.search import (
    EXACT_RANKING_LIMIT,
    MAX_TERMS,
    RANKED_CANDIDATES,
    STOP_WORDS,
    FtsFirst,
    SearchBounds,
    postgres_count_matches,
    quoted,
    search_terms,
)
from services.news.models import Article

# Title, summary, body: the same relative weights on both engines.
TITLE_WEIGHT, SUMMARY_WEIGHT, BODY_WEIGHT = 10.0, 4.0, 1.0
_articles = cast(Table, Article.__table__)


class SearchIndex(Protocol):
    async def index(self, session: AsyncSession, article: Article) -> None:
        """Make a newly inserted article findable (edits and deletes follow by themselves)."""

    async def remove(self, session: AsyncSession, article_id: uuid.UUID) -> None: ...

    async def insert_articles(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        """Insert many `articles` rows (Core values) and make them findable."""

    async def count_matches(
        self,
        session: AsyncSession,
        terms: list[str],
        conditions: Sequence[ColumnElement[bool]],
        bounds: SearchBounds,
    ) -> int:
        """How many articles meeting `conditions` match every term, counting to one past
        `bounds.exact_limit`."""
        ...

    def candidates(
        self,
        terms: list[str],
        conditions: Sequence[ColumnElement[bool]],
        sort_key: ColumnElement[Any],
        newest: int | None,
    ) -> Subquery:
        """(article_id, rank, sort_key) of the matches meeting `conditions`: all of them, or
        the `newest` ones; higher rank is better."""
        ...


def _tsquery(terms: list[str]) -> ColumnElement[Any]:
    return func.websearch_to_tsquery(literal_column("'english'::regconfig"), quoted(terms))


class PostgresSearch:
    """The generated `search_vector` column follows every write by itself."""

    _vector: ColumnElement[Any] = literal_column("articles.search_vector")
    # ts_rank weights are {D, C, B, A}: body in C, summary in B, title in A (see the migration).
    _weights: ColumnElement[Any] = literal_column(
        f"'{{0, {BODY_WEIGHT / TITLE_WEIGHT}, {SUMMARY_WEIGHT / TITLE_WEIGHT}, 1}}'::real[]"
    )

    async def index(self, session: AsyncSession, article: Article) -> None:
        return None

    async def remove(self, session: AsyncSession, article_id: uuid.UUID) -> None:
        return None

    async def insert_articles(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        await session.execute(insert(_articles), rows)

    async def count_matches(
        self,
        session: AsyncSession,
        terms: list[str],
        conditions: Sequence[ColumnElement[bool]],
        bounds: SearchBounds,
    ) -> int:
        return await postgres_count_matches(
            session, _articles, self._vector.op("@@")(_tsquery(terms)), conditions, bounds
        )

    def candidates(
        self,
        terms: list[str],
        conditions: Sequence[ColumnElement[bool]],
        sort_key: ColumnElement[Any],
        newest: int | None,
    ) -> Subquery:
        query = _tsquery(terms)
        matching = (self._vector.op("@@")(query), *conditions)
        if newest is None:
            rank: ColumnElement[float] = func.ts_rank(self._weights, self._vector, query).cast(
                Double()
            )
            return (
                select(
                    Article.id.label("article_id"), rank.label("rank"), sort_key.label("sort_key")
                )
                .where(*matching)
                .subquery("candidates")
            )
        # The newest first, then ranked: ts_rank reads only these few vectors.
        recent = (
            select(Article.id.label("article_id"), sort_key.label("sort_key"))
            .where(*matching)
            .order_by(sort_key.desc(), Article.id.desc())
            .limit(newest)
            .subquery("recent")
        )
        vectors = table("articles", column("id", Uuid()), column("search_vector")).alias("ranked")
        rank = func.ts_rank(self._weights, vectors.c.search_vector, query).cast(Double())
        return (
            select(recent.c.article_id, rank.label("rank"), recent.c.sort_key)
            .join(vectors, vectors.c.id == recent.c.article_id)
            .subquery("candidates")
        )


class SqliteSearch:
    """The FTS5 table `article_search` indexes `articles` by `articles.search_rowid` (migration
    0002): triggers follow edits and deletes; new articles are indexed here."""

    _fts = table(
        "article_search",
        column("rowid", Integer()),
        column("title"),
        column("summary"),
        column("body_text"),
    )
    _search_rowid: ColumnElement[Any] = literal_column("articles.search_rowid")
    # `articles` with the column only SQLite has.
    _rowids = Table(
        "articles",
        MetaData(),
        *(column_._copy() for column_ in _articles.columns),
        Column("search_rowid", Integer()),
    )

    async def index(self, session: AsyncSession, article: Article) -> None:
        # The transaction has just written the article, so it holds SQLite's write lock and
        # nobody else can take the same number meanwhile.
        articles = self._rowids
        following = select(func.coalesce(func.max(articles.c.search_rowid), 0) + 1)
        stamped = await session.execute(
            update(articles)
            .where(articles.c.id == article.id, articles.c.search_rowid.is_(None))
            .values(search_rowid=following.scalar_subquery())
        )
        if getattr(stamped, "rowcount", 0):
            await session.execute(
                insert(self._fts).from_select(
                    ["rowid", "title", "summary", "body_text"],
                    select(
                        articles.c.search_rowid,
                        articles.c.title,
                        articles.c.summary,
                        articles.c.body_text,
                    ).where(articles.c.id == article.id),
                )
            )

    async def remove(self, session: AsyncSession, article_id: uuid.UUID) -> None:
        return None

    async def insert_articles(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        # One statement per table: FTS5 indexes a batch several times faster than row by row.
        base = await session.scalar(select(func.coalesce(func.max(self._rowids.c.search_rowid), 0)))
        stamped = [{**row, "search_rowid": (base or 0) + n} for n, row in enumerate(rows, 1)]
        await session.execute(insert(self._rowids), stamped)
        await session.execute(
            insert(self._fts),
            [
                {
                    "rowid": row["search_rowid"],
                    "title": row["title"],
                    "summary": row["summary"],
                    "body_text": row["body_text"],
                }
                for row in stamped
            ],
        )

    def _matching(self, terms: list[str], conditions: Sequence[ColumnElement[bool]]) -> Any:
        # FTS5 functions and MATCH take the table itself as their first operand. The FTS table
        # drives the join whatever the statistics say (see `FtsFirst`); each hit reads its
        # article through the covering search_rowid index.
        fts: ColumnElement[Any] = literal_column(self._fts.name)
        return (
            select()
            .select_from(FtsFirst(self._fts, _articles, self._search_rowid == self._fts.c.rowid))
            .where(fts.op("MATCH")(quoted(terms)), *conditions)
        )

    async def count_matches(
        self,
        session: AsyncSession,
        terms: list[str],
        conditions: Sequence[ColumnElement[bool]],
        bounds: SearchBounds,
    ) -> int:
        matching = self._matching(terms, conditions).add_columns(literal(1))
        hits = matching.limit(bounds.exact_limit + 1).subquery()
        return int(await session.scalar(select(func.count()).select_from(hits)) or 0)

    def candidates(
        self,
        terms: list[str],
        conditions: Sequence[ColumnElement[bool]],
        sort_key: ColumnElement[Any],
        newest: int | None,
    ) -> Subquery:
        # bm25 is lower-is-better, so its negation ranks best first; weights in column order.
        bm25 = func.bm25(literal_column(self._fts.name), TITLE_WEIGHT, SUMMARY_WEIGHT, BODY_WEIGHT)
        statement = self._matching(terms, conditions).add_columns(
            Article.id.label("article_id"),
            (-bm25).cast(Double()).label("rank"),
            sort_key.label("sort_key"),
        )
        if newest is not None:
            # Rowids grow as articles are added: the newest matches come first, read backwards.
            statement = statement.order_by(self._fts.c.rowid.desc()).limit(newest)
        candidates: Subquery = statement.subquery("candidates")
        return candidates


def search_index(dialect: str) -> SearchIndex:
    if dialect == "postgresql":
        return PostgresSearch()
    if dialect == "sqlite":
        return SqliteSearch()
    raise NotImplementedError(f"news search is not implemented for {dialect}")


__all__ = [
    "EXACT_RANKING_LIMIT",
    "MAX_TERMS",
    "RANKED_CANDIDATES",
    "STOP_WORDS",
    "PostgresSearch",
    "SearchBounds",
    "SearchIndex",
    "SqliteSearch",
    "quoted",
    "search_index",
    "search_terms",
]
