"""Tables of the news service.

Full-text search lives beside these tables and differs per database (see `search.py`): on
PostgreSQL a generated `search_vector` column of `articles`, on SQLite the FTS5 table
`article_search`. Neither is mapped here; the migration creates them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.common.database import UTCDateTime, UUIDPrimaryKey, make_metadata

STATUSES = ("draft", "published")


class Base(DeclarativeBase):
    metadata = make_metadata()


class Article(UUIDPrimaryKey, Base):
    __tablename__ = "articles"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'published')", name="status"),
        # Published articles always have a publication time; the public listing relies on it.
        CheckConstraint("status = 'draft' OR published_at IS NOT NULL", name="published_at"),
        Index("ix_articles_status_published_at", "status", "published_at", "id"),
        # The editors' listing order (`service.list_articles`): drafts placed by creation.
        Index(
            "ix_articles_editor_order",
            text("coalesce(published_at, created_at) DESC"),
            text("id DESC"),
        ),
    )

    slug: Mapped[str] = mapped_column(String(120), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text)
    # Sanitised HTML; `body_text` is its plain text, kept for search and feed summaries.
    body: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    location: Mapped[str | None] = mapped_column(String(120))
    language: Mapped[str] = mapped_column(String(35), default="en")
    related_video_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    tag_rows: Mapped[list[ArticleTag]] = relationship(
        back_populates="article",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="raise",
        order_by="ArticleTag.position",
    )

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]

    @property
    def is_published(self) -> bool:
        return self.status == "published"

    def __repr__(self) -> str:
        return f"Article(slug={self.slug!r}, status={self.status!r})"


class ArticleTag(Base):
    __tablename__ = "article_tags"
    __table_args__ = (Index("ix_article_tags_tag", "tag", "article_id"),)

    article_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Editors order their tags; the first one is the main subject.
    position: Mapped[int] = mapped_column(default=0)

    article: Mapped[Article] = relationship(back_populates="tag_rows", lazy="raise")
