"""Dependencies of the news routes: settings, the clock, and the article a path names.

All `async def`: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per
request (see media's dependencies).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path, Request

from services.common.clock import Clock
from services.common.database import SessionDep
from services.news.auth import Editor
from services.news.config import NewsSettings
from services.news.models import Article
from services.news.service import get_article


async def get_settings(request: Request) -> NewsSettings:
    settings: NewsSettings = request.app.state.settings
    return settings


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


SettingsDep = Annotated[NewsSettings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]


async def now(clock: ClockDep) -> datetime:
    return clock.now()


Now = Annotated[datetime, Depends(now)]
SlugPath = Annotated[str, Path(max_length=120, description="The article's slug")]


async def article_for_editor(session: SessionDep, slug: SlugPath, _: Editor) -> Article:
    return await get_article(session, slug, include_drafts=True)


EditableArticle = Annotated[Article, Depends(article_for_editor)]
