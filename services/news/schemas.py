"""Request and response bodies of the news API (never ORM objects)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from services.common.instants import AwareInstant
from services.common.text import NulFreeText

Status = Literal["draft", "published"]

MAX_TAGS = 20
MAX_RELATED_VIDEOS = 20
_TAG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,118}[a-z0-9])?$")


def normalise_tag(raw: str) -> str:
    """`" Missile Defence "` -> `"missile-defence"`."""
    return "-".join(raw.strip().lower().split())


# A tag as it may be sent: ASCII letters, digits, hyphens and inner spaces (which become
# hyphens), spaces or tabs around it. The document states this pattern, so what it allows is
# exactly what is accepted.
TAG_INPUT_PATTERN = r"^[ \t]*[A-Za-z0-9](?:[A-Za-z0-9 \t-]{0,62}[A-Za-z0-9])?[ \t]*$"
_TAG_INPUT = re.compile(TAG_INPUT_PATTERN)


def _tags(value: list[str]) -> list[str]:
    tags: list[str] = []
    for raw in value:
        tag = normalise_tag(raw)
        if not _TAG_INPUT.fullmatch(raw) or not _TAG.match(tag):
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


# Search and tag filters: text every database can store.
QueryText = NulFreeText
# Text that must say something: the document's pattern asks for one character that is not a
# space, tab or line break, and exactly those are trimmed (str.strip() would also take
# characters a JSON Schema `\s` does not, so a value the document allows could end up empty).
_SAYS_SOMETHING = r"[^ \t\n\r]"


def _trim(value: str) -> str:
    return value.strip(" \t\n\r")


Title = Annotated[str, Field(max_length=300, pattern=_SAYS_SOMETHING), AfterValidator(_trim)]
Summary = Annotated[str, Field(max_length=2000, pattern=_SAYS_SOMETHING), AfterValidator(_trim)]
Body = Annotated[str, StringConstraints(max_length=200_000)]
Location = Annotated[str, Field(max_length=120, pattern=_SAYS_SOMETHING), AfterValidator(_trim)]
Language = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, pattern=r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$", max_length=35
    ),
]
Tags = Annotated[
    list[Annotated[str, WithJsonSchema({"type": "string", "pattern": TAG_INPUT_PATTERN})]],
    Field(max_length=MAX_TAGS),
    AfterValidator(_tags),
]
RelatedVideos = Annotated[list[uuid.UUID], Field(max_length=MAX_RELATED_VIDEOS)]
Slug = Annotated[str, AfterValidator(_slug)]

# The demo article of the product brief, so the documented calls show real copy.
_TITLE = "NATO-Russia Council discusses missile defence and the CFE Treaty in Oslo"
_SUMMARY = (
    "Practical NATO-Russia cooperation, missile defence, and the CFE treaty were the three main "
    "issues discussed by Foreign Ministers at a meeting of the NATO-Russia Council in Oslo, "
    "26 April."
)
_BODY = (
    "<p>Practical NATO-Russia cooperation, missile defence, and the CFE treaty were the three "
    "main issues discussed by Foreign Ministers at a meeting of the NATO-Russia Council in "
    "Oslo, 26 April.</p>"
    "<h2>Profound concerns</h2>"
    "<p>Again, this issue will be further discussed in the NATO-Russia Council.</p>"
)
_TAGS = ["nato-russia-council", "missile-defence", "cfe-treaty"]
_SLUG_EXAMPLE = "nato-russia-council-oslo-2007"
_RELATED_VIDEO = "2a9c9f5c-3401-4238-bff0-62124674477b"
_NEW_ARTICLE: dict[str, Any] = {
    "title": _TITLE,
    "summary": _SUMMARY,
    "body": _BODY,
    "tags": _TAGS,
    "location": "Oslo, Norway",
    "language": "en",
    "related_video_ids": [_RELATED_VIDEO],
    "status": "published",
    "published_at": "2007-04-26T17:00:00Z",
}
ARTICLE_SUMMARY_EXAMPLE: dict[str, Any] = {
    "id": "b92b3164-fd58-4939-a31a-8c26168abcea",
    "slug": _SLUG_EXAMPLE,
    "url": f"http://127.0.0.1:8000/v1/news/articles/{_SLUG_EXAMPLE}",
    "title": _TITLE,
    "summary": _SUMMARY,
    "status": "published",
    "published_at": "2007-04-26T17:00:00Z",
    "updated_at": "2007-04-26T17:00:00Z",
    "location": "Oslo, Norway",
    "language": "en",
    "tags": _TAGS,
    "related_video_ids": [_RELATED_VIDEO],
}
ARTICLE_EXAMPLE: dict[str, Any] = {
    **ARTICLE_SUMMARY_EXAMPLE,
    "body": _BODY,
    "created_at": "2007-04-26T16:45:00Z",
}


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class ArticleCreate(BaseModel):
    """A new article; its slug is made from the title. Drafts unless `status` says otherwise."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_NEW_ARTICLE]})

    title: Title
    summary: Summary
    body: Body = Field(description="HTML; scripts, styles and unsafe attributes are removed")
    tags: Tags = Field(default_factory=list, description="Lowercased; spaces become hyphens")
    location: Location | None = None
    language: Language = "en"
    related_video_ids: RelatedVideos = Field(default_factory=list)
    status: Status = "draft"
    published_at: AwareInstant | None = Field(
        None, description="Defaults to the moment of publication"
    )


# Fields an update may leave out but not send as null (`_not_null` below).
_NOT_NULLABLE = ("title", "summary", "body", "tags", "language", "related_video_ids", "status")


def _update_schema(schema: dict[str, Any]) -> None:
    """The document says what `_not_null` does: these fields are optional, never null."""
    schema["examples"] = [
        {"summary": _SUMMARY, "tags": [*_TAGS, "foreign-ministers"]},
        {"status": "draft"},
    ]
    for name in _NOT_NULLABLE:
        field = schema.get("properties", {}).get(name, {})
        choices = [choice for choice in field.pop("anyOf", []) if choice != {"type": "null"}]
        if len(choices) == 1:
            field.update(choices[0])
        elif choices:
            field["anyOf"] = choices
        field.pop("default", None)


class ArticleUpdate(BaseModel):
    """Only the fields sent change. `status: draft` withdraws a published article."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_update_schema)

    title: Title | None = None
    summary: Summary | None = None
    body: Body | None = None
    tags: Tags | None = None
    location: Location | None = None
    language: Language | None = None
    related_video_ids: RelatedVideos | None = None
    status: Status | None = None
    published_at: AwareInstant | None = None

    @field_validator(*_NOT_NULLABLE)
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Sent as null means "erase", which these fields cannot be; leaving them out keeps them.
        if value is None:
            raise ValueError("may be left out but not null")
        return value


class ArticleImport(ArticleCreate):
    """One row of `natomedia news import`: like a new article, keyed by its slug."""

    model_config = _examples({"slug": _SLUG_EXAMPLE, **_NEW_ARTICLE})

    slug: Slug
    status: Status = "published"


class ArticleSummary(BaseModel):
    model_config = _examples(ARTICLE_SUMMARY_EXAMPLE)

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
    model_config = _examples(ARTICLE_EXAMPLE)

    body: str = Field(description="Sanitised HTML")
    created_at: datetime


class ArticlePage(BaseModel):
    model_config = _examples(
        {
            "items": [ARTICLE_SUMMARY_EXAMPLE],
            "next_cursor": (
                "WyIyMDA3LTA0LTI2VDE3OjAwOjAwKzAwOjAwIiwiYjkyYjMxNjQtZmQ1OC00OTM5LWEzMWEt"
                "OGMyNjE2OGFiY2VhIl0"
            ),
        }
    )

    items: list[ArticleSummary]
    next_cursor: str | None
