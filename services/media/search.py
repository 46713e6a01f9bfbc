"""Full-text search over videos: title, tags, description, shot list and transcript.

PostgreSQL matches `videos.search_vector` (a weighted `tsvector` with a GIN index, written with
every change) against `websearch_to_tsquery('english', …)` and ranks with `ts_rank`; SQLite
matches the FTS5 table `video_search` (porter stemmer) and ranks with `bm25`, with the same
column weights. Words are handled as news handles them (`services.common.search`), and accents
are folded before text reaches either engine, so `conference` finds `Conférence`. Neither
index is mapped in the models; the migration creates them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
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
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.search import (
    fold_accents,
    postgres_matches,
    search_terms,
    sqlite_matches,
)

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


def index_fields(video: Searchable, tags: Sequence[str]) -> dict[str, str]:
    return {
        "title": fold_accents(video.title),
        "tags": fold_accents(" ".join(tags)),
        "description": fold_accents(video.description or ""),
        "shot_list": fold_accents(video.shot_list or ""),
        "transcript": fold_accents(video.transcript or ""),
    }


class VideoSearch(Protocol):
    async def index(self, session: AsyncSession, video: Searchable, tags: Sequence[str]) -> None:
        """Make the video findable by its current text."""

    def matches(self, terms: list[str]) -> Subquery:
        """(video_id, rank) of every video matching all terms; higher rank is better."""
        ...


# Weights A-D in the order of TITLE, DESCRIPTION, SHOT_LIST, TRANSCRIPT.
POSTGRES_VECTOR = (
    "setweight(to_tsvector('english', :title), 'A') || "
    "setweight(to_tsvector('english', :tags), 'A') || "
    "setweight(to_tsvector('english', :description), 'B') || "
    "setweight(to_tsvector('english', :shot_list), 'C') || "
    "setweight(to_tsvector('english', :transcript), 'D')"
)


class PostgresVideoSearch:
    _videos = table("videos", column("id", Uuid()), column("search_vector"))
    # ts_rank weights are {D, C, B, A}.
    _weights: ColumnElement[Any] = literal_column(
        f"'{{{TRANSCRIPT_WEIGHT / TITLE_WEIGHT}, {SHOT_LIST_WEIGHT / TITLE_WEIGHT}, "
        f"{DESCRIPTION_WEIGHT / TITLE_WEIGHT}, 1}}'::real[]"
    )
    _update = text(f"UPDATE videos SET search_vector = {POSTGRES_VECTOR} WHERE id = :id")

    async def index(self, session: AsyncSession, video: Searchable, tags: Sequence[str]) -> None:
        await session.execute(self._update, {"id": video.id, **index_fields(video, tags)})

    def matches(self, terms: list[str]) -> Subquery:
        return postgres_matches(
            self._videos.c.id, self._videos.c.search_vector, self._weights, terms, "video_id"
        )


class SqliteVideoSearch:
    _fts = table(
        "video_search",
        column("video_id", Uuid()),
        column("title"),
        column("tags"),
        column("description"),
        column("shot_list"),
        column("transcript"),
    )

    async def index(self, session: AsyncSession, video: Searchable, tags: Sequence[str]) -> None:
        await session.execute(delete(self._fts).where(self._fts.c.video_id == video.id))
        values = index_fields(video, tags)
        await session.execute(insert(self._fts).values(video_id=video.id, **values))

    def matches(self, terms: list[str]) -> Subquery:
        # Weights in the columns' order (video_id first).
        weights = (
            0.0,
            TITLE_WEIGHT,
            TITLE_WEIGHT,
            DESCRIPTION_WEIGHT,
            SHOT_LIST_WEIGHT,
            TRANSCRIPT_WEIGHT,
        )
        return sqlite_matches(self._fts, self._fts.c.video_id, weights, terms, "video_id")


def video_search(dialect: str) -> VideoSearch:
    if dialect == "postgresql":
        return PostgresVideoSearch()
    if dialect == "sqlite":
        return SqliteVideoSearch()
    raise NotImplementedError(f"video search is not implemented for {dialect}")


def search_for(session: AsyncSession) -> VideoSearch:
    return video_search(session.get_bind().dialect.name)
