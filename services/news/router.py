"""HTTP routes of the news service, all under `/v1/news`."""

from __future__ import annotations

import json
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from services.common.database import SessionDep
from services.common.http_cache import etag_matches, strong_etag
from services.common.instants import Instant
from services.common.pagination import Cursor, Limit
from services.common.problems import FieldError, ProblemError, problem_responses
from services.common.public_cache import allow_public_cache
from services.common.public_reads import public_reader
from services.common.security import TOKEN_OPTIONAL, TOKEN_REQUIRED
from services.news import service
from services.news.dependencies import (
    EditableArticle,
    Editor,
    Now,
    ReaderIsEditor,
    Settings,
    SlugPath,
)
from services.news.feeds import (
    ATOM_MEDIA_TYPE,
    JSON_FEED_MEDIA_TYPE,
    article_url,
    atom_feed,
    json_feed,
)
from services.news.models import Article as ArticleRow
from services.news.schemas import (
    ARTICLE_EXAMPLE,
    Article,
    ArticleCreate,
    ArticlePage,
    ArticleSummary,
    ArticleUpdate,
    QueryText,
)

router = APIRouter(prefix="/v1/news", tags=["news"])

NO_STORE = "private, no-store"
EDITOR_ONLY = problem_responses((401, "invalid_token"), (403, "insufficient_scope"))
JSON_FEED_EXAMPLE = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "NATO Multimedia: news",
    "home_page_url": "http://127.0.0.1:8000/v1/news/articles",
    "feed_url": "http://127.0.0.1:8000/v1/news/feed.json",
    "description": "The latest news articles.",
    "language": "en",
    "authors": [{"name": "NATO"}],
    "items": [
        {
            "id": f"urn:uuid:{ARTICLE_EXAMPLE['id']}",
            "url": ARTICLE_EXAMPLE["url"],
            "title": ARTICLE_EXAMPLE["title"],
            "content_html": ARTICLE_EXAMPLE["body"],
            "summary": ARTICLE_EXAMPLE["summary"],
            "date_published": ARTICLE_EXAMPLE["published_at"],
            "date_modified": ARTICLE_EXAMPLE["updated_at"],
            "tags": ARTICLE_EXAMPLE["tags"],
            "language": ARTICLE_EXAMPLE["language"],
        }
    ],
}


def _public(settings: Settings) -> str:
    return f"public, max-age={settings.cache_max_age_seconds}"


def _fields(settings: Settings, article: ArticleRow | service.ListedArticle) -> dict[str, Any]:
    return {
        "id": article.id,
        "slug": article.slug,
        "url": article_url(settings, article.slug),
        "title": article.title,
        "summary": article.summary,
        "status": article.status,
        "published_at": article.published_at,
        "updated_at": article.updated_at,
        "location": article.location,
        "language": article.language,
        "tags": article.tags,
        "related_video_ids": article.related_video_ids,
    }


def _summary(settings: Settings, article: ArticleRow | service.ListedArticle) -> ArticleSummary:
    return ArticleSummary(**_fields(settings, article))


def _full(settings: Settings, article: ArticleRow) -> Article:
    # Built in one validation, not a summary dumped and validated again.
    return Article(**_fields(settings, article), body=article.body, created_at=article.created_at)


def _conditional(
    request: Request,
    body: bytes,
    *,
    media_type: str,
    cache_control: str,
    last_modified: datetime | None = None,
    vary: str | None = None,
) -> Response:
    """200 with a strong ETag, or 304 when the client's copy is current (RFC 9110 §13)."""
    etag = strong_etag(body)
    headers = {"ETag": etag, "Cache-Control": cache_control}
    if vary:
        headers["Vary"] = vary
    if last_modified is not None:
        headers["Last-Modified"] = format_datetime(last_modified, usegmt=True)
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        fresh = etag_matches(if_none_match, etag)
    else:
        fresh = _not_modified_since(request.headers.get("if-modified-since"), last_modified)
    if fresh:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def _not_modified_since(header: str | None, last_modified: datetime | None) -> bool:
    if header is None or last_modified is None:
        return False
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return False  # an unreadable date is ignored, as RFC 9110 asks
    if since.tzinfo is None:
        return False
    # HTTP dates have whole seconds.
    return last_modified.replace(microsecond=0) <= since


def _json(model: BaseModel) -> bytes:
    return model.model_dump_json().encode()


@router.get(
    "/articles",
    response_model=ArticlePage,
    summary="List articles",
    responses=problem_responses((422, "validation_error")),
    openapi_extra=TOKEN_OPTIONAL,
)
async def list_articles(
    request: Request,
    session: SessionDep,
    settings: Settings,
    editor: ReaderIsEditor,
    limit: Limit = 20,
    cursor: Cursor = None,
    q: Annotated[
        QueryText | None,
        Query(
            max_length=200,
            description="Full-text search: every word must match; best matches first",
        ),
    ] = None,
    tag: Annotated[
        QueryText | None, Query(max_length=64, description="Only articles with this tag")
    ] = None,
    published_after: Annotated[
        Instant | None, Query(description="Published at or after this time (RFC 3339)")
    ] = None,
    published_before: Annotated[
        Instant | None, Query(description="Published before this time (RFC 3339)")
    ] = None,
) -> Response:
    """Article summaries (no body), newest first or, with `q`, best match first. Editors also
    see drafts."""
    after, before = published_after, published_before
    if after is not None and before is not None and after >= before:
        raise ProblemError(
            "The request is not valid.",
            status=422,
            code="validation_error",
            errors=[
                FieldError(
                    field="published_before",
                    code="invalid_range",
                    message="published_before must be later than published_after",
                )
            ],
        )
    query = service.ArticleQuery(
        include_drafts=editor,
        tag=tag,
        published_after=after,
        published_before=before,
        q=q,
        limit=limit,
        cursor=cursor,
    )
    articles, next_cursor = await service.list_articles(session, query)
    page = ArticlePage(
        items=[_summary(settings, article) for article in articles], next_cursor=next_cursor
    )
    if not editor:
        allow_public_cache(request)
    return _conditional(
        request,
        _json(page),
        media_type="application/json",
        cache_control=NO_STORE if editor else _public(settings),
        vary="Authorization",
    )


@router.get(
    "/articles/{slug}",
    response_model=Article,
    summary="Read an article",
    responses={
        304: {"description": "The client's copy (If-None-Match / If-Modified-Since) is current"},
        **problem_responses((404, "not_found")),
    },
    openapi_extra=TOKEN_OPTIONAL,
)
async def read_article(
    request: Request,
    session: SessionDep,
    settings: Settings,
    editor: ReaderIsEditor,
    slug: SlugPath,
) -> Response:
    """One article with its HTML body, a strong `ETag` and `Last-Modified`."""
    article = await service.get_article(session, slug, include_drafts=editor)
    if article.is_published and not editor:
        allow_public_cache(request)
    return _conditional(
        request,
        _json(_full(settings, article)),
        media_type="application/json",
        # Drafts must never sit in a shared cache.
        cache_control=_public(settings) if article.is_published else NO_STORE,
        last_modified=article.updated_at,
    )


@router.get(
    "/feed.json",
    summary="JSON Feed",
    # A plain Response: FastAPI would otherwise also claim an application/json answer.
    response_class=Response,
    responses={
        200: {
            "content": {JSON_FEED_MEDIA_TYPE: {"example": JSON_FEED_EXAMPLE}},
            "description": "JSON Feed 1.1",
        }
    },
    openapi_extra=TOKEN_OPTIONAL,
)
async def read_json_feed(request: Request, session: SessionDep, settings: Settings) -> Response:
    """The latest published articles as a JSON Feed 1.1 (https://jsonfeed.org/version/1.1)."""
    await public_reader(request)  # the feed is everyone's; a failing token is only noted
    articles = await service.latest_published(session, settings.feed_size)
    allow_public_cache(request)
    document: dict[str, Any] = json_feed(settings, articles)
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    return _conditional(
        request, body, media_type=JSON_FEED_MEDIA_TYPE, cache_control=_public(settings)
    )


@router.get(
    "/feed.atom",
    summary="Atom feed",
    response_class=Response,
    responses={200: {"content": {ATOM_MEDIA_TYPE: {}}, "description": "Atom 1.0 (RFC 4287)"}},
    openapi_extra=TOKEN_OPTIONAL,
)
async def read_atom_feed(request: Request, session: SessionDep, settings: Settings) -> Response:
    """The latest published articles as an Atom 1.0 feed, for feed readers."""
    await public_reader(request)  # the feed is everyone's; a failing token is only noted
    articles = await service.latest_published(session, settings.feed_size)
    allow_public_cache(request)
    return _conditional(
        request,
        atom_feed(settings, articles),
        media_type=ATOM_MEDIA_TYPE,
        cache_control=_public(settings),
    )


def _editor_response(settings: Settings, article: ArticleRow, status_code: int = 200) -> Response:
    return Response(
        _json(_full(settings, article)),
        status_code=status_code,
        media_type="application/json",
        headers={"Cache-Control": NO_STORE},
    )


@router.post(
    "/articles",
    status_code=201,
    response_model=Article,
    summary="Create an article",
    responses={**EDITOR_ONLY, **problem_responses((422, "validation_error"))},
    openapi_extra=TOKEN_REQUIRED,
)
async def create_article(
    session: SessionDep, settings: Settings, now: Now, _: Editor, data: ArticleCreate
) -> Response:
    """Editors only. The slug is made from the title (`-2`, `-3`… when taken); the body is
    sanitised."""
    article = await service.create_article(session, data, now=now)
    response = _editor_response(settings, article, 201)
    response.headers["Location"] = article_url(settings, article.slug)
    return response


@router.patch(
    "/articles/{slug}",
    response_model=Article,
    summary="Change an article",
    responses={**EDITOR_ONLY, **problem_responses((404, "not_found"), (422, "validation_error"))},
    openapi_extra=TOKEN_REQUIRED,
)
async def update_article(
    session: SessionDep, settings: Settings, now: Now, article: EditableArticle, data: ArticleUpdate
) -> Response:
    """Editors only. Fields left out keep their values; the slug never changes."""
    await service.update_article(session, article, data, now=now)
    return _editor_response(settings, article)


@router.post(
    "/articles/{slug}/publish",
    response_model=Article,
    summary="Publish an article",
    responses={**EDITOR_ONLY, **problem_responses((404, "not_found"))},
    openapi_extra=TOKEN_REQUIRED,
)
async def publish_article(
    session: SessionDep, settings: Settings, now: Now, article: EditableArticle
) -> Response:
    """Editors only. Makes a draft public; publishing again changes nothing."""
    await service.publish_article(session, article, now=now)
    return _editor_response(settings, article)


@router.delete(
    "/articles/{slug}",
    status_code=204,
    summary="Delete an article",
    responses={**EDITOR_ONLY, **problem_responses((404, "not_found"))},
    openapi_extra=TOKEN_REQUIRED,
)
async def delete_article(session: SessionDep, article: EditableArticle) -> Response:
    """Editors only. The article is gone for good."""
    await service.delete_article(session, article)
    return Response(status_code=204)
