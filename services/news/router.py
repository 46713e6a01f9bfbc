"""HTTP routes of the news service, all under `/v1/news`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, Security
from pydantic import BaseModel

from services.common.database import SessionDep
from services.common.http_cache import conditional_response
from services.common.i18n import N_
from services.common.instants import Instant
from services.common.pagination import Cursor, Limit
from services.common.problems import FieldError, ProblemError, problem_responses
from services.common.public_cache import allow_public_cache
from services.common.public_reads import public_reader
from services.common.query_params import strict_query
from services.news import service
from services.news.auth import Editor, ReaderIsEditor
from services.news.config import NewsSettings
from services.news.dependencies import EditableArticle, Now, SettingsDep, SlugPath
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
from services.news.search import EXACT_RANKING_LIMIT, RANKED_CANDIDATES

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


def _public(settings: NewsSettings) -> str:
    return f"public, max-age={settings.cache_max_age_seconds}"


def _fields(settings: NewsSettings, article: ArticleRow | service.ListedArticle) -> dict[str, Any]:
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


def _summary(settings: NewsSettings, article: ArticleRow | service.ListedArticle) -> ArticleSummary:
    return ArticleSummary(**_fields(settings, article))


def _full(settings: NewsSettings, article: ArticleRow) -> Article:
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
    headers = {"Cache-Control": cache_control, **({"Vary": vary} if vary else {})}
    return conditional_response(
        request, body, media_type=media_type, headers=headers, last_modified=last_modified
    )


def _json(model: BaseModel) -> bytes:
    return model.model_dump_json().encode()


@router.get(
    "/articles",
    operation_id="listArticles",
    dependencies=[
        Depends(
            strict_query(("limit", "cursor", "q", "tag", "published_after", "published_before"))
        )
    ],
    response_model=ArticlePage,
    summary="List articles",
    responses=problem_responses((422, "validation_error")),
)
async def list_articles(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    editor: ReaderIsEditor,
    limit: Limit = 20,
    cursor: Cursor = None,
    q: Annotated[
        QueryText | None,
        Query(
            max_length=200,
            description=(
                "Full-text search: every word must match; best matches first. A search "
                f"matching at most {EXACT_RANKING_LIMIT:,} articles (with the other filters) "
                f"ranks them all, exactly; one matching more ranks only its "
                f"{RANKED_CANDIDATES:,} newest matches (on PostgreSQL by publication time, on "
                f"SQLite the most recently added), so its list ends after {RANKED_CANDIDATES:,} "
                "results. PostgreSQL takes a search as above the bound without counting when its "
                "statistics expect twice as many matches."
            ),
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
            N_("The request is not valid."),
            status=422,
            code="validation_error",
            errors=[
                FieldError(
                    field="published_before",
                    code="invalid_range",
                    message=N_("published_before must be later than published_after"),
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
    operation_id="getArticle",
    response_model=Article,
    summary="Read an article",
    responses={
        304: {"description": "The client's copy (If-None-Match / If-Modified-Since) is current"},
        **problem_responses((404, "not_found")),
    },
)
async def read_article(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
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
    operation_id="getJsonFeed",
    summary="JSON Feed",
    # A plain Response: FastAPI would otherwise also claim an application/json answer.
    response_class=Response,
    responses={
        200: {
            "content": {JSON_FEED_MEDIA_TYPE: {"example": JSON_FEED_EXAMPLE}},
            "description": "JSON Feed 1.1",
        }
    },
    # Anyone may read: a token that fails is noted and ignored (`public_reads`).
    dependencies=[Security(public_reader)],
)
async def read_json_feed(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """The latest published articles as a JSON Feed 1.1 (https://jsonfeed.org/version/1.1)."""
    articles = await service.latest_published(session, settings.feed_size)
    allow_public_cache(request)
    document: dict[str, Any] = json_feed(settings, articles)
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    return _conditional(
        request, body, media_type=JSON_FEED_MEDIA_TYPE, cache_control=_public(settings)
    )


@router.get(
    "/feed.atom",
    operation_id="getAtomFeed",
    summary="Atom feed",
    response_class=Response,
    responses={200: {"content": {ATOM_MEDIA_TYPE: {}}, "description": "Atom 1.0 (RFC 4287)"}},
    # Anyone may read: a token that fails is noted and ignored (`public_reads`).
    dependencies=[Security(public_reader)],
)
async def read_atom_feed(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """The latest published articles as an Atom 1.0 feed, for feed readers."""
    articles = await service.latest_published(session, settings.feed_size)
    allow_public_cache(request)
    return _conditional(
        request,
        atom_feed(settings, articles),
        media_type=ATOM_MEDIA_TYPE,
        cache_control=_public(settings),
    )


def _editor_response(
    settings: NewsSettings, article: ArticleRow, status_code: int = 200
) -> Response:
    return Response(
        _json(_full(settings, article)),
        status_code=status_code,
        media_type="application/json",
        headers={"Cache-Control": NO_STORE},
    )


@router.post(
    "/articles",
    operation_id="createArticle",
    status_code=201,
    response_model=Article,
    summary="Create an article",
    responses={**EDITOR_ONLY, **problem_responses((422, "validation_error"))},
)
async def create_article(
    session: SessionDep, settings: SettingsDep, now: Now, _: Editor, data: ArticleCreate
) -> Response:
    """Editors only. The slug is made from the title (`-2`, `-3`… when taken); the body is
    sanitised."""
    article = await service.create_article(session, data, now=now)
    response = _editor_response(settings, article, 201)
    response.headers["Location"] = article_url(settings, article.slug)
    return response


@router.patch(
    "/articles/{slug}",
    operation_id="updateArticle",
    response_model=Article,
    summary="Change an article",
    responses={**EDITOR_ONLY, **problem_responses((404, "not_found"), (422, "validation_error"))},
)
async def update_article(
    session: SessionDep,
    settings: SettingsDep,
    now: Now,
    article: EditableArticle,
    data: ArticleUpdate,
) -> Response:
    """Editors only. Fields left out keep their values; the slug never changes."""
    await service.update_article(session, article, data, now=now)
    return _editor_response(settings, article)


@router.post(
    "/articles/{slug}/publish",
    operation_id="publishArticle",
    response_model=Article,
    summary="Publish an article",
    responses={**EDITOR_ONLY, **problem_responses((404, "not_found"))},
)
async def publish_article(
    session: SessionDep, settings: SettingsDep, now: Now, article: EditableArticle
) -> Response:
    """Editors only. Makes a draft public; publishing again changes nothing."""
    await service.publish_article(session, article, now=now)
    return _editor_response(settings, article)


@router.delete(
    "/articles/{slug}",
    operation_id="deleteArticle",
    status_code=204,
    summary="Delete an article",
    responses={**EDITOR_ONLY, **problem_responses((404, "not_found"))},
)
async def delete_article(session: SessionDep, article: EditableArticle) -> Response:
    """Editors only. The article is gone for good."""
    await service.delete_article(session, article)
    return Response(status_code=204)
