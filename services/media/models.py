"""Tables of the media service: videos, their renditions and tags, and download grants."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.common.database import Timestamps, UTCDateTime, UUIDPrimaryKey, make_metadata, utcnow


class Base(DeclarativeBase):
    metadata = make_metadata()


class Video(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "videos"
    __table_args__ = (
        # Keyset pagination walks these two orders; each needs its tie-breaker in the index.
        Index("ix_videos_published_at_id", "published_at", "id"),
        Index("ix_videos_updated_at_id", "updated_at", "id"),
        # The change feed walks positions; unique, so two changes can never share one.
        Index("ix_videos_feed_position", "feed_position", unique=True),
    )

    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    language: Mapped[str | None] = mapped_column(String(35))
    credits: Mapped[str | None] = mapped_column(String(300))
    copyright: Mapped[str | None] = mapped_column(String(300))
    location: Mapped[str | None] = mapped_column(String(300))
    shot_list: Mapped[str | None] = mapped_column(Text)
    transcript: Mapped[str | None] = mapped_column(Text)
    thumbnail_key: Mapped[str | None] = mapped_column(String(500))
    related_article_slugs: Mapped[list[str]] = mapped_column(JSON, default=list)
    # `published` or `withdrawn`; a withdrawn video stays as a tombstone in the change feed.
    # The key of a video brought in by `natomedia media import`, which makes re-imports no-ops.
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="published", server_default="published")
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    feed_position: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawal_reason: Mapped[str | None] = mapped_column(String(20))
    withdrawal_note: Mapped[str | None] = mapped_column(Text)

    tags: Mapped[list[VideoTag]] = relationship(
        back_populates="video",
        cascade="all, delete-orphan",
        lazy="raise",
        order_by="VideoTag.tag",
    )
    renditions: Mapped[list[Rendition]] = relationship(
        back_populates="video",
        cascade="all, delete-orphan",
        lazy="raise",
        order_by="(Rendition.height.desc(), Rendition.created_at)",
    )


class VideoTag(Base):
    """One row per tag, lower-cased, so tag filters are an indexed equality on any database."""

    __tablename__ = "video_tags"

    video_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)

    video: Mapped[Video] = relationship(back_populates="tags", lazy="raise")


class Rendition(UUIDPrimaryKey, Base):
    __tablename__ = "renditions"

    video_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("videos.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(100))
    container: Mapped[str] = mapped_column(String(20))
    content_type: Mapped[str] = mapped_column(String(100))
    video_codec: Mapped[str | None] = mapped_column(String(30))
    audio_codec: Mapped[str | None] = mapped_column(String(30))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    frame_rate: Mapped[float | None] = mapped_column(Float)
    bitrate: Mapped[int | None] = mapped_column(BigInteger)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(500), unique=True)
    filename: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    video: Mapped[Video] = relationship(back_populates="renditions", lazy="raise")


class DownloadGrant(UUIDPrimaryKey, Base):
    """Audit trail: who obtained a download URL for what, and until when."""

    __tablename__ = "download_grants"

    # Kept when an editor deletes the rendition: who holds a copy still matters after a withdrawal.
    rendition_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("renditions.id", ondelete="SET NULL"), index=True
    )
    video_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(200), index=True)
    client_id: Mapped[str | None] = mapped_column(String(200))
    # As the partner's token named its client when the link was granted.
    client_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    token_id: Mapped[str] = mapped_column(String(100))
    client_address: Mapped[str | None] = mapped_column(String(64))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FeedCounter(Base):
    """One row: the last change-feed position handed out.

    Taking the next position is `UPDATE … RETURNING`; its row lock, held to the commit, makes
    positions become visible in the order they were taken on PostgreSQL (SQLite serialises
    writers anyway).
    """

    __tablename__ = "feed_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    position: Mapped[int] = mapped_column(BigInteger)


class VideoChange(UUIDPrimaryKey, Base):
    """Audit list: each change to a video, its new version and feed position, and who made it."""

    __tablename__ = "video_changes"

    video_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("videos.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    feed_position: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(30))
    # The editor's token subject; None for the operator's CLI.
    editor: Mapped[str | None] = mapped_column(String(200))
    fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
