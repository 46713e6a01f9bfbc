"""Adding files to the catalogue: streamed into storage, hashed on the way, probed with ffprobe."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import mimetypes
import shutil
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from services.common.database import utcnow
from services.media.disposition import attachment, slugify
from services.media.exceptions import IngestError
from services.media.feed import record_change
from services.media.models import Rendition, Video, VideoTag
from services.media.service import normalize_tag
from services.media.storage import CHUNK_SIZE, Storage, StorageUnavailable

logger = logging.getLogger("natomedia.media.ingest")

PROBE_TIMEOUT_SECONDS = 60.0
CODEC_NAMES = {"h264": "H.264", "hevc": "H.265", "prores": "ProRes", "mpeg2video": "MPEG-2"}


@dataclass(frozen=True)
class Probe:
    """What ffprobe tells about a file; every field None when ffprobe is absent or fails."""

    duration_seconds: float | None = None
    bitrate: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    width: int | None = None
    height: int | None = None
    frame_rate: float | None = None


@dataclass
class VideoMetadata:
    """Catalogue fields given by the operator (CLI flags or the demo manifest)."""

    title: str
    description: str = ""
    tags: Sequence[str] = ()
    published_at: datetime | None = None
    language: str | None = None
    credits: str | None = None
    copyright: str | None = None
    location: str | None = None
    shot_list: str | None = None
    transcript: str | None = None
    related_article_slugs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Ingested:
    video_id: uuid.UUID
    rendition_id: uuid.UUID
    created_video: bool
    size_bytes: int
    sha256: str


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def parse_probe(document: dict[str, Any]) -> Probe:
    streams = document.get("streams") or []
    fmt = document.get("format") or {}
    video: dict[str, Any] = next((s for s in streams if s.get("codec_type") == "video"), {})
    audio: dict[str, Any] = next((s for s in streams if s.get("codec_type") == "audio"), {})
    frame_rate = None
    rate = video.get("avg_frame_rate") or video.get("r_frame_rate")
    if isinstance(rate, str) and "/" in rate:
        try:
            fraction = Fraction(rate)
            frame_rate = round(float(fraction), 3) if fraction > 0 else None
        except (ValueError, ZeroDivisionError):
            frame_rate = None
    duration = _number(fmt.get("duration")) or _number(video.get("duration"))
    bitrate = _number(fmt.get("bit_rate"))
    return Probe(
        duration_seconds=round(duration, 3) if duration else None,
        bitrate=int(bitrate) if bitrate else None,
        video_codec=video.get("codec_name"),
        audio_codec=audio.get("codec_name"),
        width=video.get("width"),
        height=video.get("height"),
        frame_rate=frame_rate,
    )


async def _run(*command: str) -> bytes | None:
    """Output of a helper program, None when it is missing, fails or hangs."""
    if shutil.which(command[0]) is None:
        return None
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), PROBE_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        logger.warning("%s timed out", command[0])
        return None
    if process.returncode != 0:
        logger.warning("%s failed: %s", command[0], stderr.decode(errors="replace")[-500:])
        return None
    return stdout


async def probe(path: Path, ffprobe: str = "ffprobe") -> Probe:
    output = await _run(
        ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)
    )
    if output is None:
        return Probe()
    try:
        return parse_probe(json.loads(output))
    except (ValueError, AttributeError):
        return Probe()


async def thumbnail(path: Path, at_seconds: float, ffmpeg: str = "ffmpeg") -> bytes | None:
    """A JPEG still from the file, or None when ffmpeg is missing or the file has no picture."""
    output = await _run(
        ffmpeg, "-v", "error", "-ss", f"{at_seconds:.3f}", "-i", str(path), "-frames:v", "1",
        "-vf", "scale=480:-2", "-f", "image2", "-c:v", "mjpeg", "pipe:1",
    )  # fmt: skip
    return output or None


def download_filename(
    title: str, label: str, container: str, rendition_id: uuid.UUID | None = None
) -> str:
    """`foreign-ministers-meet-in-oslo-1080p25-h-264-9b2d7c3a.mp4`: says what it is in a
    downloads folder, and the rendition id prefix keeps two files of one name apart."""
    variant = slugify(label).removesuffix(container).strip("-")
    parts = [slugify(title) or "video"]
    if variant:
        parts.append(variant)
    if rendition_id is not None:
        parts.append(rendition_id.hex[:8])
    return f"{'-'.join(parts)}.{container}"


def rendition_label(probe: Probe, container: str) -> str:
    parts = []
    if probe.height:
        rate = f"{round(probe.frame_rate)}" if probe.frame_rate else ""
        parts.append(f"{probe.height}p{rate}")
    if probe.video_codec:
        parts.append(CODEC_NAMES.get(probe.video_codec, probe.video_codec.upper()))
    parts.append(container.upper())
    return " ".join(parts)


class Progress(Protocol):
    def advance(self, size: int) -> None:
        """`size` more bytes were copied and hashed."""


async def _hashed_chunks(
    source: BinaryIO, digest: Any, progress: Progress | None = None
) -> AsyncIterator[bytes]:
    while chunk := await anyio.to_thread.run_sync(source.read, CHUNK_SIZE):
        digest.update(chunk)
        if progress is not None:
            progress.advance(len(chunk))
        yield chunk


async def ingest_file(
    session: AsyncSession,
    storage: Storage,
    source: Path,
    metadata: VideoMetadata,
    *,
    label: str | None = None,
    video_id: uuid.UUID | None = None,
    ffprobe: str = "ffprobe",
    ffmpeg: str = "ffmpeg",
    editor: str | None = None,
    progress: Progress | None = None,
) -> Ingested:
    """Copy `source` into storage and record it as a rendition of a new or existing video.

    Probing, copying and hashing happen outside any transaction; then one short transaction
    records the rendition and takes the video's next feed position, and is committed here. A
    change that took long to copy is therefore stamped when it becomes visible, not when it
    began, so a partner polling the feed cannot have moved past it.
    """
    if not source.is_file():
        raise IngestError(f"not a file: {source}")
    known_thumbnail: str | None = None
    if video_id is not None:
        found = (
            await session.execute(select(Video.id, Video.thumbnail_key).where(Video.id == video_id))
        ).one_or_none()
        # Ends the read before the copy: no transaction stays open while bytes move.
        await session.commit()
        if found is None:
            raise IngestError(f"no video with id {video_id}")
        known_thumbnail = found.thumbnail_key
    target_id = video_id or uuid.uuid4()

    container = source.suffix.lstrip(".").lower() or "bin"
    content_type = mimetypes.guess_type(source.name)[0] or "application/octet-stream"
    facts = await probe(source, ffprobe)
    rendition_id = uuid.uuid4()
    storage_key = f"videos/{target_id}/{rendition_id}.{container}"
    rendition_label_ = label or rendition_label(facts, container)
    digest = hashlib.sha256()
    # Kept with the object, for clients a store or CDN serves directly; the catalogue's own
    # name (which follows title edits) is given again whenever a link is presigned.
    disposition = attachment(
        download_filename(metadata.title, rendition_label_, container, rendition_id),
        metadata.title,
    )
    with source.open("rb") as handle:
        size = await storage.write(
            storage_key,
            _hashed_chunks(handle, digest, progress),
            content_type=content_type,
            content_disposition=disposition,
        )
    written = [storage_key]
    thumbnail_key = None
    try:
        if known_thumbnail is None and facts.video_codec is not None:
            still = await thumbnail(source, min(1.0, (facts.duration_seconds or 0) / 2), ffmpeg)
            if still is not None:
                thumbnail_key = f"videos/{target_id}/thumbnail.jpg"
                written.append(thumbnail_key)
                await storage.write(thumbnail_key, _single(still), content_type="image/jpeg")
        created = await _record_rendition(
            session,
            target_id,
            is_new=video_id is None,
            metadata=metadata,
            facts=facts,
            rendition={
                "id": rendition_id,
                "label": rendition_label_,
                "container": container,
                "content_type": content_type,
                "size_bytes": size,
                "sha256": digest.hexdigest(),
                "storage_key": storage_key,
            },
            thumbnail_key=thumbnail_key,
            editor=editor,
        )
    except BaseException:
        await session.rollback()
        await delete_quietly(storage, written)
        raise
    return Ingested(target_id, rendition_id, created, size, digest.hexdigest())


async def _record_rendition(
    session: AsyncSession,
    video_id: uuid.UUID,
    *,
    is_new: bool,
    metadata: VideoMetadata,
    facts: Probe,
    rendition: dict[str, Any],
    thumbnail_key: str | None,
    editor: str | None,
) -> bool:
    """The short transaction of an ingest, committed; True when it created the video."""
    now = utcnow()
    tags = sorted({normalize_tag(t) for t in metadata.tags})
    if is_new:
        video = Video(
            id=video_id,
            title=metadata.title,
            description=metadata.description,
            published_at=metadata.published_at or now,
            duration_seconds=facts.duration_seconds,
            language=metadata.language,
            credits=metadata.credits,
            copyright=metadata.copyright,
            location=metadata.location,
            shot_list=metadata.shot_list,
            transcript=metadata.transcript,
            related_article_slugs=list(metadata.related_article_slugs),
            thumbnail_key=thumbnail_key,
            status="published",
            version=1,
            created_at=now,
            updated_at=now,
            tags=[VideoTag(tag=tag) for tag in tags],
        )
        session.add(video)
    else:
        existing = await session.get(Video, video_id, options=[selectinload(Video.tags)])
        if existing is None:
            raise IngestError(f"no video with id {video_id}")
        video = existing
        known = {tag.tag for tag in video.tags}
        for tag in sorted(set(tags) - known):
            video.tags.append(VideoTag(tag=tag))
        if video.duration_seconds is None:
            video.duration_seconds = facts.duration_seconds
        if video.thumbnail_key is None and thumbnail_key is not None:
            video.thumbnail_key = thumbnail_key
    session.add(
        Rendition(
            video_id=video_id,
            video_codec=facts.video_codec,
            audio_codec=facts.audio_codec,
            width=facts.width,
            height=facts.height,
            frame_rate=facts.frame_rate,
            bitrate=facts.bitrate,
            duration_seconds=facts.duration_seconds,
            filename=download_filename(
                video.title, rendition["label"], rendition["container"], rendition["id"]
            ),
            created_at=now,
            **rendition,
        )
    )
    await record_change(
        session,
        video,
        action="create" if is_new else "add_rendition",
        editor=editor,
        fields=["renditions"],
        now=now,
        created=is_new,
    )
    await session.commit()
    return is_new


async def delete_quietly(storage: Storage, keys: Sequence[str]) -> None:
    """Undo the writes of a failed ingest as far as the store lets us; `natomedia media gc`
    removes what an unreachable store kept."""
    for key in keys:
        try:
            await storage.delete(key)
        except StorageUnavailable:
            logger.warning("could not delete %s after a failed ingest: store unavailable", key)


async def _single(data: bytes) -> AsyncIterator[bytes]:
    yield data
