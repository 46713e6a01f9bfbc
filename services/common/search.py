"""The engine-neutral half of full-text search, shared by every service that searches.

User text is cut into words here, English stop words dropped (PostgreSQL drops them itself,
FTS5 would not), and each word is quoted, so no FTS or SQL syntax ever reaches either engine
and both see the same words. Every word must match (AND). Each service keeps its own index:
a `tsvector` with a GIN index on PostgreSQL, an FTS5 table on SQLite.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ClauseElement,
    ColumnElement,
    Double,
    Executable,
    FromClause,
    Select,
    Subquery,
    TableClause,
    func,
    literal_column,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.selectable import Join

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


def fold_accents(text: str) -> str:
    """`Conférence à Bruxelles` -> `Conference a Bruxelles`: what FTS5's `remove_diacritics`
    does, done before the text reaches either engine, so both match accents alike without the
    `unaccent` extension (which needs a superuser to install and is not immutable)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def postgres_query(terms: list[str]) -> ColumnElement[Any]:
    """The `tsquery` of every term (AND), in the `english` configuration."""
    return func.websearch_to_tsquery(literal_column("'english'::regconfig"), quoted(terms))


def postgres_matches(
    key: ColumnElement[Any], vector: ColumnElement[Any], weights: Any, terms: list[str], label: str
) -> Subquery:
    """(`label`, rank) of the rows whose tsvector holds every term, ranked by `ts_rank`."""
    query = func.websearch_to_tsquery(literal_column("'english'::regconfig"), quoted(terms))
    return (
        select(key.label(label), func.ts_rank(weights, vector, query).cast(Double()).label("rank"))
        .where(vector.op("@@")(query))
        .subquery("matches")
    )


def sqlite_matches(
    fts: TableClause,
    key: ColumnElement[Any],
    weights: Sequence[float],
    terms: list[str],
    label: str,
) -> Subquery:
    """(`label`, rank) of the FTS5 rows matching every term; `weights` per column, in order.

    FTS5 functions and MATCH take the table itself as their first operand; bm25 is
    lower-is-better, so its negation ranks best first.
    """
    table_ref: ColumnElement[Any] = literal_column(fts.name)
    rank = -func.bm25(table_ref, *weights)
    return (
        select(key.label(label), rank.cast(Double()).label("rank"))
        .select_from(fts)
        .where(table_ref.op("MATCH")(quoted(terms)))
        .subquery("matches")
    )


class FtsFirst(Join):
    """`fts JOIN rows ON …` in which SQLite always reads the FTS5 match first.

    Without `sqlite_stat1` (a freshly imported file has none) SQLite guesses that an equality on
    an indexed column, such as `status = 'published'`, picks a handful of rows, walks them and
    asks FTS5 about each: the whole archive for every search. `CROSS JOIN` is SQLite's way to
    fix the order of a join; other engines read it as the plain join it also is.
    """

    inherit_cache = True


@compiles(FtsFirst, "sqlite")
def _fts_first(join: FtsFirst, compiler: SQLCompiler, **kw: Any) -> str:
    # The left side is the FTS5 table itself, so the first JOIN keyword is this join's own.
    plain: str = compiler.visit_join(join, **kw)  # type: ignore[no-untyped-call]
    return plain.replace(" JOIN ", " CROSS JOIN ", 1)


# Ranking reads every candidate's index entry, so its cost grows with the number of matches.
# A search matching at most this many documents (after its filters) ranks them all: exactly best
# first, as the API promises. Above it, a service ranks only its `RANKED_CANDIDATES` newest
# matches: a word found in most of the archive answers with the best of its recent documents.
EXACT_RANKING_LIMIT = 10_000
# Ten pages of twenty.
RANKED_CANDIDATES = 200


# A search the planner's statistics put at this many times the bound is bounded without counting:
# counting reads the whole posting list of every word, which for a word in most of the archive
# costs more than the rest of the search together. The statistics give each word its measured
# share of the rows (within a few percent) and multiply the shares of several words; the margin
# covers that error and words that avoid each other by half. Without statistics (a table never
# analysed) the planner's guesses are small, so the search counts.
ESTIMATE_MARGIN = 2


@dataclass(frozen=True)
class SearchBounds:
    """Where exact ranking ends and how many candidates are ranked beyond it (tests shrink both
    to see the bounded behaviour with a few documents)."""

    exact_limit: int = EXACT_RANKING_LIMIT
    candidates: int = RANKED_CANDIDATES
    # PostgreSQL: a search its statistics put at this many matches or more goes uncounted.
    uncounted_from: int = ESTIMATE_MARGIN * EXACT_RANKING_LIMIT


class _Explain(Executable, ClauseElement):
    """`EXPLAIN (FORMAT JSON)` of a statement, its parameters bound as the statement's own."""

    inherit_cache = False

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement


@compiles(_Explain, "postgresql")
def _explain(element: _Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kw)


async def postgres_estimate(session: AsyncSession, statement: Select[Any]) -> float:
    """The rows the planner expects `statement` to return: its plan, not its execution."""
    plan = await session.scalar(_Explain(statement))
    document = json.loads(plan) if isinstance(plan, str) else plan
    return float(document[0]["Plan"]["Plan Rows"])


async def postgres_count_matches(
    session: AsyncSession,
    source: FromClause,
    matching: ColumnElement[bool],
    conditions: Sequence[ColumnElement[bool]],
    bounds: SearchBounds,
) -> int:
    """How many rows of `source` meet `matching` and `conditions`, counting to one past
    `bounds.exact_limit`; where the statistics expect `bounds.uncounted_from` or more, that
    without counting."""
    at_most = bounds.exact_limit + 1
    rows: Select[Any] = select(literal_column("1")).select_from(source).where(matching, *conditions)
    if await postgres_estimate(session, rows) >= bounds.uncounted_from:
        return at_most
    hits = rows.limit(at_most).subquery()
    # Counting through the GIN index reads no vector. For a common word the planner would rather
    # scan the table and stop early, unaware that testing a row means reading its out-of-line
    # vector; so for this one statement it may not.
    await session.execute(select(*_planner_settings("off")))
    try:
        return int(await session.scalar(select(func.count()).select_from(hits)) or 0)
    finally:
        await session.execute(select(*_planner_settings("on")))


def _planner_settings(value: str) -> list[ColumnElement[Any]]:
    # is_local: the setting lasts at most until the end of the transaction.
    return [func.set_config(name, value, True) for name in ("enable_seqscan", "enable_indexscan")]
