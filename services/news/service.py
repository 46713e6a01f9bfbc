"""The rules of the news service: who sees what, how articles are written, listed and found.

Functions here flush and never commit; the request (or command) that calls them commits.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    func,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from services.common.pagination import InvalidCursor, decode_position, encode_cursor
from services.news.exceptions import ArticleNotFound, InvalidArticle, SlugTaken
from services.news.models import Article, ArticleTag
from services.news.sanitise import plain_text, sanitise_html
from services.news.schemas import ArticleCreate, ArticleUpdate, normalise_tag
from services.news.search import SearchBounds, SearchIndex, search_index, search_terms
from services.news.slugs import unique_slug


def search_for(session: AsyncSession) -> SearchIndex:
    return search_index(session.get_bind().dialect.name)


def _with_tags() -> Select[Article]:
    return select(Article).options(selectinload(Article.tag_rows))


@dataclass(frozen=True)
class ArticleQuery:
    include_drafts: bool = False
    tag: str | None = None
    published_after: datetime | None = None
    published_before: datetime | None = None
    q: str | None = None
    limit: int = 20
    cursor: str | None = None


# Listings read table columns, not mapped attributes: their rows are plain rows, with no pass
# through the ORM's entity loading.
_ARTICLES_TABLE = Article.__table__
_ARTICLES = _ARTICLES_TABLE.c
_TAGS = ArticleTag.__table__.c

# Drafts may have no publication time yet; editors see them placed by their creation.
_EDITOR_SORT_KEY: ColumnElement[Any] = func.coalesce(_ARTICLES.published_at, _ARTICLES.created_at)


def _sort_key(include_drafts: bool) -> ColumnElement[Any]:
    return _EDITOR_SORT_KEY if include_drafts else _ARTICLES.published_at


def _before(key: ColumnElement[Any], at: datetime, article_id: uuid.UUID) -> ColumnElement[bool]:
    """Strictly after (at, id) in newest-first order."""
    return or_(key < at, and_(key == at, _ARTICLES.id < article_id))


def _parse_cursor(cursor: str, *, ranked: bool) -> tuple[float | None, datetime, uuid.UUID]:
    leading, at, article_id = decode_position(cursor, leading=1 if ranked else 0)
    try:
        rank = float(leading[0]) if ranked else None
    except ValueError as exc:
        raise InvalidCursor from exc
    return rank, at, article_id


# What a listing shows: no body, no body text, so a page of long articles stays a small read.
SUMMARY_COLUMNS = (
    _ARTICLES.id,
    _ARTICLES.slug,
    _ARTICLES.title,
    _ARTICLES.summary,
    _ARTICLES.status,
    _ARTICLES.published_at,
    _ARTICLES.updated_at,
    _ARTICLES.location,
    _ARTICLES.language,
    _ARTICLES.related_video_ids,
)


@dataclass(frozen=True, slots=True)
class ListedArticle:
    """An article as a listing shows it: the summary columns and its tags in editor order."""

    id: uuid.UUID
    slug: str
    title: str
    summary: str
    status: str
    published_at: datetime | None
    updated_at: datetime
    location: str | None
    language: str
    related_video_ids: list[str]
    tags: list[str]


@functools.cache
def _tags_column(dialect: str) -> ColumnElement[Any]:
    """Each listed article's tags in editor order, read in the listing's own statement."""
    in_order = (
        select(_TAGS.tag)
        .where(_TAGS.article_id == _ARTICLES.id)
        .order_by(_TAGS.position)
        .correlate(_ARTICLES_TABLE)
    )
    if dialect == "postgresql":
        # Untyped: asyncpg already returns a list of strings, which an ARRAY type would copy.
        return func.array(in_order.scalar_subquery())
    # SQLite has no arrays: a JSON array, aggregated in the order of the inner select.
    ordered = in_order.subquery()
    return type_coerce(
        select(func.json_group_array(ordered.c.tag)).select_from(ordered).scalar_subquery(), JSON
    )


def _conditions(query: ArticleQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if not query.include_drafts:
        conditions.append(_ARTICLES.status == "published")
    if query.tag is not None:
        tagged = select(_TAGS.article_id).where(_TAGS.tag == normalise_tag(query.tag))
        conditions.append(_ARTICLES.id.in_(tagged))
    if query.published_after is not None:
        conditions.append(_ARTICLES.published_at >= query.published_after)
    if query.published_before is not None:
        conditions.append(_ARTICLES.published_at < query.published_before)
    return conditions


@functools.cache
def _listing(dialect: str, include_drafts: bool) -> Select[Any]:
    """A page in newest-first order before its conditions, built once."""
    key = _sort_key(include_drafts)
    return (
        select(*SUMMARY_COLUMNS, _tags_column(dialect).label("tags"), key.label("sort_key"))
        .order_by(key.desc(), _ARTICLES.id.desc())
        # A parameter, so a page without conditions executes this very statement, not a copy.
        .limit(bindparam("page_size", type_=Integer))
    )


async def list_articles(
    session: AsyncSession, query: ArticleQuery, *, bounds: SearchBounds | None = None
) -> tuple[list[ListedArticle], str | None]:
    """A page, newest first; with `q`, best match first. Keyset cursors, so inserts never
    shift a page under a reader."""
    if query.q is not None:
        return await _search_articles(session, query, query.q, bounds or SearchBounds())
    key = _sort_key(query.include_drafts)
    statement = _listing(session.get_bind().dialect.name, query.include_drafts)
    conditions = _conditions(query)
    if query.cursor is not None:
        _, at, article_id = _parse_cursor(query.cursor, ranked=False)
        conditions.append(_before(key, at, article_id))
    if conditions:
        statement = statement.where(*conditions)
    rows = (await session.execute(statement, {"page_size": query.limit + 1})).all()
    page = rows[: query.limit]
    articles = _listed(page)
    next_cursor = None
    if len(rows) > query.limit:
        last = rows[query.limit - 1]
        next_cursor = encode_cursor(last.sort_key.isoformat(), str(last.id))
    return articles, next_cursor


async def _search_articles(
    session: AsyncSession, query: ArticleQuery, text: str, bounds: SearchBounds
) -> tuple[list[ListedArticle], str | None]:
    """Best match first among the candidates (every match, or the newest beyond the bound:
    see `services.news.search`); a page is picked from the candidates by (rank, time, id), and
    only its rows are read in full."""
    cursor = _parse_cursor(query.cursor, ranked=True) if query.cursor is not None else None
    terms = search_terms(text)
    if not terms:
        # Nothing searchable (only stop words or punctuation): nothing can match.
        return [], None
    index = search_for(session)
    conditions = _conditions(query)
    key = _sort_key(query.include_drafts)
    matches = await index.count_matches(session, terms, conditions, bounds)
    newest = bounds.candidates if matches > bounds.exact_limit else None
    candidates = index.candidates(terms, conditions, key, newest)
    rank, at_key, candidate_id = (
        candidates.c.rank,
        candidates.c.sort_key,
        candidates.c.article_id,
    )
    statement = select(candidate_id, rank, at_key)
    if cursor is not None:
        after_rank, at, article_id = cursor
        statement = statement.where(
            or_(
                rank < after_rank,
                and_(
                    rank == after_rank,
                    or_(at_key < at, and_(at_key == at, candidate_id < article_id)),
                ),
            )
        )
    statement = statement.order_by(rank.desc(), at_key.desc(), candidate_id.desc())
    hits = (await session.execute(statement.limit(query.limit + 1))).all()
    page = hits[: query.limit]
    ids = [hit.article_id for hit in page]
    tags = _tags_column(session.get_bind().dialect.name).label("tags")
    rows = {
        row.id: row
        for row in await session.execute(
            select(*SUMMARY_COLUMNS, tags).where(_ARTICLES.id.in_(ids))
        )
    }
    # An article deleted between the two reads is left out rather than failing the page.
    articles = _listed([rows[article_id] for article_id in ids if article_id in rows])
    next_cursor = None
    if len(hits) > query.limit:
        last = hits[query.limit - 1]
        sort_at: datetime = last.sort_key
        next_cursor = encode_cursor(float(last.rank), sort_at.isoformat(), str(last.article_id))
    return articles, next_cursor


def _listed(page: Sequence[Any]) -> list[ListedArticle]:
    return [
        ListedArticle(
            id=row.id,
            slug=row.slug,
            title=row.title,
            summary=row.summary,
            status=row.status,
            published_at=row.published_at,
            updated_at=row.updated_at,
            location=row.location,
            language=row.language,
            related_video_ids=row.related_video_ids,
            tags=row.tags,
        )
        for row in page
    ]


async def get_article(session: AsyncSession, slug: str, *, include_drafts: bool) -> Article:
    article = await session.scalar(_with_tags().where(Article.slug == slug))
    if article is None or (not article.is_published and not include_drafts):
        # A draft's existence is nobody's business but the editors'.
        raise ArticleNotFound(slug)
    return article


async def latest_published(session: AsyncSession, count: int) -> Sequence[Article]:
    statement = (
        _with_tags()
        .where(Article.status == "published")
        .order_by(Article.published_at.desc(), Article.id.desc())
        .limit(count)
    )
    return (await session.scalars(statement)).all()


def _set_body(article: Article, raw_html: str) -> None:
    article.body = sanitise_html(raw_html)
    article.body_text = plain_text(article.body)


def _set_tags(article: Article, tags: list[str]) -> None:
    # Keep the rows of tags that stay, so no row is deleted and re-inserted under the same key.
    existing = {row.tag: row for row in article.tag_rows}
    rows = []
    for position, tag in enumerate(tags):
        row = existing.get(tag) or ArticleTag(tag=tag)
        row.position = position
        rows.append(row)
    article.tag_rows = rows


def _publication_time(status: str, published_at: datetime | None, now: datetime) -> datetime | None:
    if status == "published" and published_at is None:
        return now
    return published_at


async def _flush_new(session: AsyncSession, article: Article) -> None:
    session.add(article)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise SlugTaken from exc
    await search_for(session).index(session, article)


async def create_article(
    session: AsyncSession, data: ArticleCreate, *, now: datetime, slug: str | None = None
) -> Article:
    article = Article(
        id=uuid.uuid4(),
        slug=slug or await unique_slug(session, data.title),
        title=data.title,
        summary=data.summary,
        status=data.status,
        published_at=_publication_time(data.status, data.published_at, now),
        location=data.location,
        language=data.language,
        related_video_ids=[str(video_id) for video_id in data.related_video_ids],
        created_at=now,
        updated_at=now,
        tag_rows=[],
    )
    _set_body(article, data.body)
    _set_tags(article, data.tags)
    await _flush_new(session, article)
    return article


def _apply(article: Article, changes: dict[str, Any], now: datetime) -> bool:
    """Set the changed fields; True when anything differs from what was stored."""
    before = _snapshot(article)
    for name in ("title", "summary", "location", "language", "status"):
        if name in changes:
            setattr(article, name, changes[name])
    if "body" in changes:
        _set_body(article, changes["body"])
    if "tags" in changes:
        _set_tags(article, changes["tags"])
    if "related_video_ids" in changes:
        article.related_video_ids = [str(video_id) for video_id in changes["related_video_ids"]]
    if "published_at" in changes:
        article.published_at = changes["published_at"]
    if article.status == "published" and article.published_at is None:
        if "published_at" in changes and "status" not in changes:
            raise InvalidArticle(
                "published_at", "required", "A published article needs a publication time."
            )
        article.published_at = now
    changed = _snapshot(article) != before
    if changed:
        article.updated_at = now
    return changed


def _snapshot(article: Article) -> tuple[Any, ...]:
    return (
        article.title,
        article.summary,
        article.body,
        article.location,
        article.language,
        article.status,
        article.published_at,
        tuple(article.related_video_ids),
        tuple(article.tags),
    )


async def update_article(
    session: AsyncSession, article: Article, data: ArticleUpdate, *, now: datetime
) -> Article:
    changes = {name: getattr(data, name) for name in data.model_fields_set}
    if _apply(article, changes, now):
        await session.flush()
        await search_for(session).index(session, article)
    return article


async def publish_article(session: AsyncSession, article: Article, *, now: datetime) -> Article:
    """Publishing twice changes nothing; a planned `published_at` is kept."""
    if not article.is_published:
        article.status = "published"
        article.published_at = article.published_at or now
        article.updated_at = now
        await session.flush()
    return article


async def delete_article(session: AsyncSession, article: Article) -> None:
    await search_for(session).remove(session, article.id)
    await session.delete(article)
    await session.flush()
