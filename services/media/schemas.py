"""Request and response bodies of the media API (never ORM objects)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.common.pagination import Page

VideoStatus = Literal["published", "withdrawn"]
ReasonCode = Literal["rights", "error", "security", "other"]

EXAMPLE_VIDEO_ID = "4f6c2a1e-8d4b-4c1e-9a57-0b6f3c2d9e10"
EXAMPLE_RENDITION_ID = "9b2d7c3a-51e4-4f0a-8c6b-2e7d1f4a6b38"
EXAMPLE_SHA256 = "6f1ed002ab5595859014ebf0951522d9a6d3b0f5b8a0b1e3c0d2f4a1b7e9c3d5"


class RenditionOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": EXAMPLE_RENDITION_ID,
                    "label": "1080p25 H.264 MP4",
                    "container": "mp4",
                    "content_type": "video/mp4",
                    "video_codec": "h264",
                    "audio_codec": "aac",
                    "width": 1920,
                    "height": 1080,
                    "frame_rate": 25.0,
                    "bitrate": 8_000_000,
                    "duration_seconds": 94.0,
                    "size_bytes": 94_000_000,
                    "sha256": EXAMPLE_SHA256,
                    "filename": "foreign-ministers-meet-in-oslo-1080p25.mp4",
                }
            ]
        },
    )

    id: uuid.UUID
    label: str = Field(description="Human-readable summary, e.g. `1080p25 H.264 MP4`")
    container: str = Field(description="File format, e.g. `mp4`")
    content_type: str = Field(description="Media type the download is served with")
    video_codec: str | None = Field(description="ffprobe codec name, e.g. `h264`")
    audio_codec: str | None = Field(description="ffprobe codec name, e.g. `aac`")
    width: int | None
    height: int | None
    frame_rate: float | None = Field(description="Frames per second")
    bitrate: int | None = Field(description="Overall bit rate in bits per second")
    duration_seconds: float | None
    size_bytes: int
    sha256: str = Field(description="Hex SHA-256 of the file; also its `ETag` and `Repr-Digest`")
    filename: str = Field(description="The name the download is saved under")


class VideoSummary(BaseModel):
    """A video as listed; the detail adds shot list, transcript and renditions."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    description: str
    published_at: datetime
    updated_at: datetime
    duration_seconds: float | None
    language: str | None = Field(description="BCP 47 tag; `zxx` for no linguistic content")
    tags: list[str]
    credits: str | None
    copyright: str | None
    location: str | None
    thumbnail_url: str | None = Field(description="Absolute URL of a JPEG still, when one exists")
    related_article_slugs: list[str] = Field(description="Slugs of related news articles")
    status: Literal["published"] = Field(
        "published", description="A withdrawn video is never listed; the feed has its tombstone"
    )
    version: int = Field(1, description="Raised by every change to the video")


class VideoTombstone(BaseModel):
    """A withdrawn video in the change feed: remove your copy."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": EXAMPLE_VIDEO_ID,
                    "status": "withdrawn",
                    "version": 4,
                    "withdrawn_at": "2026-12-01T09:30:00Z",
                    "reason_code": "rights",
                    "updated_at": "2026-12-01T09:30:00Z",
                }
            ]
        }
    )

    id: uuid.UUID
    status: Literal["withdrawn"]
    version: int
    withdrawn_at: datetime | None
    reason_code: ReasonCode | None
    updated_at: datetime


class VideoDetail(VideoSummary):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": EXAMPLE_VIDEO_ID,
                    "title": "Foreign Ministers meet in Oslo",
                    "description": "NATO-Russia Council meeting of Foreign Ministers in Oslo.",
                    "published_at": "2007-04-26T14:00:00Z",
                    "updated_at": "2007-04-26T14:00:00Z",
                    "duration_seconds": 94.0,
                    "language": "en",
                    "tags": ["foreign ministers", "nato-russia council", "oslo"],
                    "credits": "NATO",
                    "copyright": "NATO",
                    "location": "Oslo, Norway",
                    "thumbnail_url": "https://media.example.org/v1/media/videos/"
                    f"{EXAMPLE_VIDEO_ID}/thumbnail.jpg",
                    "related_article_slugs": ["nato-russia-council-oslo-2007"],
                    "shot_list": "1. Wide shot, Foreign Ministers arrive",
                    "transcript": None,
                    "renditions": [RenditionOut.model_config["json_schema_extra"]["examples"][0]],  # type: ignore[index]
                }
            ]
        },
    )

    shot_list: str | None
    transcript: str | None
    renditions: list[RenditionOut]


FeedItem = Annotated[VideoSummary | VideoTombstone, Field(discriminator="status")]


class VideoPage(Page[FeedItem]):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [],
                    "next_cursor": "WyIyMDA3LTA0LTI2VDE0OjAwOjAwKzAwOjAwIiwiNGY2YyJd",
                }
            ]
        }
    )


class DownloadUrl(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://media.example.org/v1/media/downloads/"
                    f"{EXAMPLE_RENDITION_ID}/foreign-ministers-meet-in-oslo-1080p25.mp4"
                    "?sub=3f0c…&exp=1780000000&sig=Qm9n…",
                    "expires_at": "2026-06-01T12:00:00Z",
                    "size_bytes": 94_000_000,
                    "sha256": EXAMPLE_SHA256,
                }
            ]
        }
    )

    url: str = Field(description="Absolute signed URL; anyone holding it may download until expiry")
    expires_at: AwareDatetime
    size_bytes: int
    sha256: str


class EditorVideo(VideoDetail):
    """A video as editors see it: withdrawn or not, with the private note."""

    status: VideoStatus = "published"  # type: ignore[assignment]
    withdrawn_at: datetime | None = None
    reason_code: ReasonCode | None = None
    withdrawal_note: str | None = Field(None, description="Private to editors")


class VideoPatch(BaseModel):
    """Only the fields sent change; `null` clears an optional field."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, min_length=1, max_length=300)
    description: str | None = Field(None, max_length=20_000)
    tags: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        None, max_length=50
    )
    language: str | None = Field(None, min_length=1, max_length=35)
    credits: str | None = Field(None, max_length=300)
    copyright: str | None = Field(None, max_length=300)
    location: str | None = Field(None, max_length=300)
    shot_list: str | None = Field(None, max_length=100_000)
    transcript: str | None = Field(None, max_length=1_000_000)


class WithdrawRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason_code: ReasonCode = Field(description="Public: partners see it in the tombstone")
    note: str | None = Field(None, max_length=2000, description="Private to editors")


class VideoDownload(BaseModel):
    """One download URL handed out for the video."""

    rendition_id: uuid.UUID | None = Field(description="null once the rendition was deleted")
    subject: str = Field(description="The account id or `client:<id>` the URL was issued to")
    client_id: str | None = Field(description="The API client, for partner tokens")
    client_name: str | None = Field(
        description="The API client's name when the link was granted, for partner tokens"
    )
    granted_at: datetime
    expires_at: datetime


class VideoDownloadPage(Page[VideoDownload]):
    pass
