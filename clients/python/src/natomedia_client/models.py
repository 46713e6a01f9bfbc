"""Generated from openapi.json by clients/python/tools/generate_models.py: do not edit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class FieldError(_Model):
    field: str
    code: str
    message: str


class Problem(_Model):
    "The body of every error response."

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    code: str
    errors: list[FieldError] | None = None


class ClientToken(_Model):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    scope: str


class TokenPair(_Model):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    refresh_token: str


class RenditionOut(_Model):
    id: UUID
    label: str
    container: str
    content_type: str
    video_codec: str | None
    audio_codec: str | None
    width: int | None
    height: int | None
    frame_rate: float | None
    bitrate: int | None
    duration_seconds: float | None
    size_bytes: int
    sha256: str
    filename: str


class VideoSummary(_Model):
    "A video as listed; the detail adds shot list, transcript and renditions."

    id: UUID
    title: str
    description: str
    published_at: datetime
    updated_at: datetime
    duration_seconds: float | None
    language: str | None
    tags: list[str]
    credits: str | None
    copyright: str | None
    location: str | None
    thumbnail_url: str | None
    related_article_slugs: list[str]
    status: Literal["published"] = "published"
    version: int = 1


class VideoTombstone(_Model):
    "A withdrawn video in the change feed: remove your copy."

    id: UUID
    status: Literal["withdrawn"]
    version: int
    withdrawn_at: datetime | None
    reason_code: Literal["rights", "error", "security", "other"] | None
    updated_at: datetime


class VideoDetail(_Model):
    id: UUID
    title: str
    description: str
    published_at: datetime
    updated_at: datetime
    duration_seconds: float | None
    language: str | None
    tags: list[str]
    credits: str | None
    copyright: str | None
    location: str | None
    thumbnail_url: str | None
    related_article_slugs: list[str]
    status: Literal["published"] = "published"
    version: int = 1
    shot_list: str | None
    transcript: str | None
    renditions: list[RenditionOut]


class VideoPage(_Model):
    items: list[Annotated[VideoSummary | VideoTombstone, Field(discriminator="status")]]
    next_cursor: str | None


class DownloadUrl(_Model):
    url: str
    expires_at: datetime
    size_bytes: int
    sha256: str


class ArticleSummary(_Model):
    id: UUID
    slug: str
    url: str
    title: str
    summary: str
    status: Literal["draft", "published"]
    published_at: datetime | None
    updated_at: datetime
    location: str | None
    language: str
    tags: list[str]
    related_video_ids: list[UUID]


class Article(_Model):
    id: UUID
    slug: str
    url: str
    title: str
    summary: str
    status: Literal["draft", "published"]
    published_at: datetime | None
    updated_at: datetime
    location: str | None
    language: str
    tags: list[str]
    related_video_ids: list[UUID]
    body: str
    created_at: datetime


class ArticlePage(_Model):
    items: list[ArticleSummary]
    next_cursor: str | None
