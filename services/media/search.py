"""Full-text search over videos: title, tags, description, shot list and transcript.

PostgreSQL matches `videos.search_vector` (a weighted `tsvector` with a GIN index, written with
every change) against `websearch_to_tsquery('english', …)` and ranks with `ts_rank`; SQLite
matches the FTS5 table `video_search` (porter stemmer) and ranks with `bm25`, with the same
column weights; `video_search_rows` maps each video to its FTS5 rowid, so a change replaces the
video's row by rowid instead of scanning the FTS5 table for an unindexed `video_id`. Words are
handled as news handles them (`services.common.search`), and accents are folded before text
reaches either engine, so `conference` finds `Conférence`. Neither index is mapped in the
models; the migrations create them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Protocol, cast

from sqlalchemy import (
    CTE,
    Column,
    ColumnElement,
    Double,
    Integer,
    MetaData,
    Select,
    String,
    Subquery,
    Table,
    Uuid,
    bindparam,
    column,
    delete,
    func,
    insert,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.database import insert_many
from services.common.search import (
    SearchBounds,
    fold_accents,
    postgres_count_matches,
    postgres_matches,
    postgres_query,
    quoted,
    search_terms,
    sqlite_matches,
)
from services.media.models import Video

# Title and tags, description, shot list, transcript: the same relative weights on both engines.
TITLE_WEIGHT, DESCRIPTION_WEIGHT, SHOT_LIST_WEIGHT, TRANSCRIPT_WEIGHT = 10.0, 4.0, 2.0, 1.0


class Searchable(Protocol):
    @property
    def id(self) -> uuid.UUID: ...

    @property
    def title(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def shot_list(self) -> str | None: ...

    @property
    def transcript(self) -> str | None: ...


def video_terms(q: str) -> list[str]:
    return search_terms(fold_accents(q))


def _folded(text: str) -> str:
    # Most text is ASCII, which has no accents: folding it character by character would cost
    # a bulk import more than its inserts.
    return text if text.isascii() else fold_accents(text)


def index_fields(video: Searchable, tags: Sequence[str]) -> dict[str, str]:
    return {
        "title": _folded(video.title),
        "tags": _folded(" ".join(tags)),
        "description": _folded(video.description or ""),
        "shot_list": _folded(video.shot_list or ""),
        "transcript": _folded(video.transcript or ""),
    }


class VideoSearch(Protocol):
    async def index(self, session: AsyncSession, video: Searchable, tags: Sequence[str]) -> None:
        """Make the video findable by its current text."""

    async def insert_videos(
        self, session: AsyncSession, rows: Sequence[dict[str, Any]], texts: Sequence[dict[str, str]]
    ) -> None:
        """Insert new `videos` rows (column values) findable at once by `texts[i]`
        (`index_fields` of row i): a bulk import's batch, in as few statements as the driver
        allows."""

    def matches(self, terms: list[str]) -> Subquery:
        """(video_id, rank) of every video matching all terms; higher rank is better."""
        ...

    async def count_matches(
        self,
        session: AsyncSession,
        terms: list[str],
        conditions: Sequence[ColumnElement[bool]],
        bounds: SearchBounds,
    ) -> int:
        """How many videos meeting `conditions` match every term, counting to one past
        `bounds.exact_limit`."""
        ...

    def ranked(
        self, terms: list[str], conditions: Sequence[ColumnElement[bool]], newest: int | None
    ) -> Subquery | CTE:
        """(video_id, rank) of the matches meeting `conditions`: all of them, or the `newest`:
        on PostgreSQL the latest published, on SQLite the most recently indexed (FTS5 reads its
        rowids backwards at no cost, where the latest published would mean reading every
        match)."""
        ...


# Weights A-D in the order of TITLE, DESCRIPTION, SHOT_LIST, TRANSCRIPT.
POSTGRES_VECTOR_TEMPLATE = (
    "setweight(to_tsvector('english', :{p}title), 'A') || "
    "setweight(to_tsvector('english', :{p}tags), 'A') || "
    "setweight(to_tsvector('english', :{p}description), 'B') || "
    "setweight(to_tsvector('english', :{p}shot_list), 'C') || "
    "setweight(to_tsvector('english', :{p}transcript), 'D')"
)
POSTGRES_VECTOR = POSTGRES_VECTOR_TEMPLATE.format(p="")
INDEXED_FIELDS = ("title", "tags", "description", "shot_list", "transcript")
# In an INSERT of the whole row, the folded texts need names apart from the columns' own.
_TEXT_PREFIX = "search_"


_VIDEOS = cast(Table, Video.__table__)
# `videos` as an INSERT sees it on PostgreSQL: the mapped columns and `search_vector`.
_VIDEOS_WITH_VECTOR = Table(
    "videos",
    MetaData(),
    *(Column(col.name, col.type, primary_key=col.primary_key) for col in _VIDEOS.columns),
    Column("search_vector", TSVECTOR),
)


class PostgresVideoSearch:
    _videos = table("videos", column("id", Uuid()), column("search_vector"))
    # ts_rank weights are {D, C, B, A}.
    _weights: ColumnElement[Any] = literal_column(
        f"'{{{TRANSCRIPT_WEIGHT / TITLE_WEIGHT}, {SHOT_LIST_WEIGHT / TITLE_WEIGHT}, "
        f"{DESCRIPTION_WEIGHT / TITLE_WEIGHT}, 1}}'::real[]"
    )
    _update = text(f"UPDATE videos SET search_vector = {POSTGRES_VECTOR} WHERE id = :id")

    _vector = text(POSTGRES_VECTOR_TEMPLATE.format(p=_TEXT_PREFIX)).bindparams(
        *(bindparam(_TEXT_PREFIX + name, type_=String()) for name in INDEXED_FIELDS)
    )

    async def index(self, session: AsyncSession, video: Searchable, tags: Sequence[str]) -> None:
        await session.execute(self._update, {"id": video.id, **index_fields(video, tags)})

    async def insert_videos(
        self, session: AsyncSession, rows: Sequence[dict[str, Any]], texts: Sequence[dict[str, str]]
    ) -> None:
        # The vector is computed in the INSERT itself: a later UPDATE would write every row twice.
        statement = insert(_VIDEOS_WITH_VECTOR).values(search_vector=self._vector)
        parameters = [
            {**row, **{_TEXT_PREFIX + name: value for name, value in fields.items()}}
            for row, fields in zip(rows, texts, strict=True)
        ]
        await insert_many(session, statement, parameters)

    def matches(self, terms: list[str]) -> Subquery:
        return postgres_matches(
            self._videos.c.id, self._videos.c.search_vector, self._weights, terms, "video_id"
        )

    def _matching(self, terms: list[str]) -> ColumnElement[bool]:
        return literal_column("videos.search_vector").op("@@")(postgres_query(terms))

    async def count_matches(
        self,
        session: AsyncSession,
        terms: list[str],
        conditions: Sequence[ColumnElement[bool]],
        bounds: SearchBounds,
    ) -> int:
        return await postgres_count_matches(
            session, Video.__table__, self._matching(terms), conditions, bounds
        )

    def ranked(
        self, terms: list[str], conditions: Sequence[ColumnElement[bool]], newest: int | None
    ) -> Subquery | CTE:
        if newest is None:
            # The caller's statement applies the conditions; the planner starts from the GIN
            # index either way.
            return self.matches(terms)
        recent = (
            select(Video.id.label("video_id"))
            .where(self._matching(terms), *conditions)
            .order_by(Video.published_at.desc(), Video.id.desc())
            .limit(newest)
            .subquery("recent")
        )
        # ts_rank reads only these few vectors.
        vectors = self._videos.alias("ranked")
        rank = func.ts_rank(self._weights, vectors.c.search_vector, postgres_query(terms))
        return (
            select(recent.c.video_id, rank.cast(Double()).label("rank"))
            .join(vectors, vectors.c.id == recent.c.video_id)
            .subquery("matches")
        )


class SqliteVideoSearch:
    _fts = table(
        "video_search",
        column("rowid", Integer()),
        column("video_id", Uuid()),
        column("title"),
        column("tags"),
        column("description"),
        column("shot_list"),
        column("transcript"),
    )

    _rows = table("video_search_rows", column("id", Integer()), column("video_id", Uuid()))

    async def index(self, session: AsyncSession, video: Searchable, tags: Sequence[str]) -> None:
        rows = self._rows
        rowid = await session.scalar(select(rows.c.id).where(rows.c.video_id == video.id))
        if rowid is None:
            rowid = (await self._allocate(session, 1))[0]
            await session.execute(insert(rows).values(id=rowid, video_id=video.id))
        else:
            await session.execute(delete(self._fts).where(self._fts.c.rowid == rowid))
        values = index_fields(video, tags)
        await session.execute(insert(self._fts).values(rowid=rowid, video_id=video.id, **values))

    async def insert_videos(
        self, session: AsyncSession, rows: Sequence[dict[str, Any]], texts: Sequence[dict[str, str]]
    ) -> None:
        if not rows:
            return
        await session.execute(insert(_VIDEOS), list(rows))
        rowids = await self._allocate(session, len(rows))
        await session.execute(
            insert(self._rows),
            [{"id": rowid, "video_id": row["id"]} for rowid, row in zip(rowids, rows, strict=True)],
        )
        await session.execute(
            insert(self._fts),
            [
                {"rowid": rowid, "video_id": row["id"], **fields}
                for rowid, row, fields in zip(rowids, rows, texts, strict=True)
            ],
        )

    async def _allocate(self, session: AsyncSession, count: int) -> range:
        # Writers are serialised on SQLite, so the largest rowid cannot move under us.
        last = await session.scalar(select(func.coalesce(func.max(self._rows.c.id), 0)))
        return range(int(last or 0) + 1, int(last or 0) + 1 + count)

    # Weights in the columns' order (video_id first).
    _weights = (
        0.0,
        TITLE_WEIGHT,
        TITLE_WEIGHT,
        DESCRIPTION_WEIGHT,
        SHOT_LIST_WEIGHT,
        TRANSCRIPT_WEIGHT,
    )

    def matches(self, terms: list[str]) -> Subquery:
        return sqlite_matches(self._fts, self._fts.c.video_id, self._weights, terms, "video_id")

    def _hits(
        self, terms: list[str], conditions: Sequence[ColumnElement[bool]]
    ) -> Select[tuple[uuid.UUID]]:
        """The matching FTS5 rows joined to their videos."""
        fts, rows = self._fts, self._rows
        return (
            select(rows.c.video_id)
            .select_from(fts)
            .join(rows, rows.c.id == fts.c.rowid)
            .join(Video, Video.id == rows.c.video_id)
            .where(literal_column(fts.name).op("MATCH")(quoted(terms)), *conditions)
        )

    async def count_matches(
        self,
        session: AsyncSession,
        terms: list[str],
        conditions: Sequence[ColumnElement[bool]],
        bounds: SearchBounds,
    ) -> int:
        hits = self._hits(terms, conditions).limit(bounds.exact_limit + 1).subquery()
        return int(await session.scalar(select(func.count()).select_from(hits)) or 0)

    def ranked(
        self, terms: list[str], conditions: Sequence[ColumnElement[bool]], newest: int | None
    ) -> Subquery | CTE:
        rank = -func.bm25(literal_column(self._fts.name), *self._weights)
        statement = self._hits(terms, conditions).add_columns(rank.cast(Double()).label("rank"))
        if newest is not None:
            statement = statement.order_by(self._fts.c.rowid.desc()).limit(newest)
        # Materialised, so SQLite starts from the FTS5 match instead of walking `videos` and
        # asking FTS5 about each row.
        return statement.cte("matches").prefix_with("MATERIALIZED")


def video_search(dialect: str) -> VideoSearch:
    if dialect == "postgresql":
        return PostgresVideoSearch()
    if dialect == "sqlite":
        return SqliteVideoSearch()
    raise NotImplementedError(f"video search is not implemented for {dialect}")


def search_for(session: AsyncSession) -> VideoSearch:
    return video_search(session.get_bind().dialect.name)
