"""Dependencies of the news routes: who is asking, and the article a path names.

All `async def`: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per
request (see media's dependencies).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path, Request

from services.common.clock import Clock
from services.common.database import SessionDep
from services.common.jwt import Principal
from services.common.public_reads import public_reader
from services.common.security import require_principal
from services.news.config import NewsSettings
from services.news.exceptions import EditorRequired
from services.news.models import Article
from services.news.service import get_article

EDITOR_SCOPE = "editor"


def is_editor(principal: Principal | None) -> bool:
    return principal is not None and EDITOR_SCOPE in principal.scopes


async def require_editor(request: Request) -> Principal:
    """An editor's token. A route using it declares `openapi_extra=TOKEN_REQUIRED`."""
    principal = await require_principal(request)
    if not is_editor(principal):
        raise EditorRequired
    return principal


async def reader_is_editor(request: Request) -> bool:
    """Anyone may read; an editor's token also shows drafts. A token that fails is ignored
    (`public_reads`).

    A route using it declares `openapi_extra=TOKEN_OPTIONAL`.
    """
    return is_editor(await public_reader(request))


async def news_settings(request: Request) -> NewsSettings:
    settings: NewsSettings = request.app.state.settings
    return settings


async def now(request: Request) -> datetime:
    clock: Clock = request.app.state.clock
    return clock.now()


Editor = Annotated[Principal, Depends(require_editor)]
ReaderIsEditor = Annotated[bool, Depends(reader_is_editor)]
Settings = Annotated[NewsSettings, Depends(news_settings)]
Now = Annotated[datetime, Depends(now)]
SlugPath = Annotated[str, Path(max_length=120, description="The article's slug")]


async def article_for_editor(session: SessionDep, slug: SlugPath, _: Editor) -> Article:
    return await get_article(session, slug, include_drafts=True)


EditableArticle = Annotated[Article, Depends(article_for_editor)]
