"""Request and response bodies of the news API (never ORM objects)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

Status = Literal["draft", "published"]

MAX_TAGS = 20
MAX_RELATED_VIDEOS = 20
_TAG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,118}[a-z0-9])?$")


def normalise_tag(raw: str) -> str:
    """`" Missile Defence "` -> `"missile-defence"`."""
    return "-".join(raw.strip().lower().split())


def _tags(value: list[str]) -> list[str]:
    tags: list[str] = []
    for raw in value:
        tag = normalise_tag(raw)
        if not _TAG.match(tag):
            raise ValueError(
                f"tag {raw!r} must be 1-64 letters, digits or hyphens, not starting or ending "
                "with a hyphen"
            )
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags")
    return tags


def _slug(value: str) -> str:
    if not _SLUG.match(value):
        raise ValueError("a slug is 1-120 lowercase letters, digits or hyphens")
    return value


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL: refuse it as bad input, the same on every database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


QueryText = Annotated[str, AfterValidator(_no_nul)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Summary = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Body = Annotated[str, StringConstraints(max_length=200_000)]
Location = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Language = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, pattern=r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$", max_length=35
    ),
]
Tags = Annotated[list[str], AfterValidator(_tags)]
RelatedVideos = Annotated[list[uuid.UUID], Field(max_length=MAX_RELATED_VIDEOS)]
Slug = Annotated[str, AfterValidator(_slug)]


class ArticleCreate(BaseModel):
    """A new article; its slug is made from the title. Drafts unless `status` says otherwise."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    summary: Summary
    body: Body = Field(description="HTML; scripts, styles and unsafe attributes are removed")
    tags: Tags = Field(default_factory=list, description="Lowercased; spaces become hyphens")
    location: Location | None = None
    language: Language = "en"
    related_video_ids: RelatedVideos = Field(default_factory=list)
    status: Status = "draft"
    published_at: AwareDatetime | None = Field(
        None, description="Defaults to the moment of publication"
    )


class ArticleUpdate(BaseModel):
    """Only the fields sent change. `status: draft` withdraws a published article."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    summary: Summary | None = None
    body: Body | None = None
    tags: Tags | None = None
    location: Location | None = None
    language: Language | None = None
    related_video_ids: RelatedVideos | None = None
    status: Status | None = None
    published_at: AwareDatetime | None = None

    @field_validator("title", "summary", "body", "tags", "language", "related_video_ids", "status")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Sent as null means "erase", which these fields cannot be; leaving them out keeps them.
        if value is None:
            raise ValueError("may be left out but not null")
        return value


class ArticleImport(ArticleCreate):
    """One row of `natomedia news import`: like a new article, keyed by its slug."""

    slug: Slug
    status: Status = "published"


class ArticleSummary(BaseModel):
    id: uuid.UUID
    slug: str
    url: str = Field(description="Absolute URL of the article")
    title: str
    summary: str
    status: Status
    published_at: datetime | None
    updated_at: datetime
    location: str | None
    language: str
    tags: list[str]
    related_video_ids: list[uuid.UUID]


class Article(ArticleSummary):
    body: str = Field(description="Sanitised HTML")
    created_at: datetime


class ArticlePage(BaseModel):
    items: list[ArticleSummary]
    next_cursor: str | None


def as_utc_datetime(value: datetime) -> datetime:
    """Query strings may omit the offset; this API's times are UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
