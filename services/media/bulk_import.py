"""`natomedia media import FILE.json`: an existing archive in bulk, all or nothing, idempotent.

The file is a JSON array of videos, each with an `external_id` (the key that makes a second run
a no-op), its metadata, and renditions given as `{label, path}` (a local file, probed, copied and
hashed as `ingest` does) or `{label, storage_key, size_bytes, sha256}` (a file already in
storage, checked: it exists, has that size and that SHA-256). The file is read twice, streamed
(ijson): first every row is checked and every problem listed, and nothing is written if there
is one; then the videos are written in batches, each batch one short transaction in which every
video takes its feed position. Files are copied before their batch's transaction begins.
"""

from __future__ import annotations

import hashlib
import mimetypes
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Self

import ijson  # type: ignore[import-untyped]
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.database import Database, utcnow
from services.common.progress import ProgressBar
from services.media.feed import record_change
from services.media.ingest import (
    Probe,
    _hashed_chunks,
    download_filename,
    probe,
    rendition_label,
)
from services.media.models import Rendition, Video, VideoTag
from services.media.service import normalize_tag
from services.media.storage import Storage, StorageKeyError, check_key

BATCH_SIZE = 200
HEX64 = r"^[0-9a-f]{64}$"


class ImportRendition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=100)
    path: str | None = Field(None, min_length=1)
    storage_key: str | None = Field(None, min_length=1, max_length=500)
    size_bytes: int | None = Field(None, ge=0)
    sha256: str | None = Field(None, pattern=HEX64)

    @model_validator(mode="after")
    def one_source(self) -> Self:
        stored = (self.storage_key, self.size_bytes, self.sha256)
        if self.path is not None and any(value is not None for value in stored):
            raise ValueError("give either path, or storage_key with size_bytes and sha256")
        if self.path is None and any(value is None for value in stored):
            raise ValueError("give either path, or storage_key with size_bytes and sha256")
        return self


class ImportVideo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=300)
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    published_at: AwareDatetime | None = None
    language: str | None = Field(None, max_length=35)
    credits: str | None = Field(None, max_length=300)
    copyright: str | None = Field(None, max_length=300)
    location: str | None = Field(None, max_length=300)
    shot_list: str | None = None
    transcript: str | None = None
    related_article_slugs: list[str] = Field(default_factory=list)
    renditions: list[ImportRendition] = Field(min_length=1)


class ImportFailed(Exception):
    """The file cannot be imported; `problems` lists every reason, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


@dataclass
class ImportResult:
    imported: int = 0
    already_there: int = 0
    renditions: int = 0
    written_keys: list[str] = field(default_factory=list)


def _rows(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        with path.open("rb") as handle:
            yield from enumerate(ijson.items(handle, "item", use_float=True), start=1)
    except ijson.JSONError as exc:
        raise ImportFailed([f"{path}: not a JSON array of videos ({exc})"]) from exc
    except OSError as exc:
        raise ImportFailed([f"{path}: cannot read ({exc.strerror or exc})"]) from exc


def _where(number: int, item: Any) -> str:
    external = item.get("external_id") if isinstance(item, dict) else None
    return f"row {number}" + (f" ({external})" if isinstance(external, str) else "")


def _local(base: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else base / path


async def _stored_sha256(storage: Storage, key: str) -> str:
    digest = hashlib.sha256()
    async for chunk in storage.read(key):
        digest.update(chunk)
    return digest.hexdigest()


async def _known(session: AsyncSession, external_ids: list[str]) -> set[str]:
    if not external_ids:
        return set()
    found = await session.scalars(
        select(Video.external_id).where(Video.external_id.in_(external_ids))
    )
    return {value for value in found if value is not None}


async def check_file(database: Database, storage: Storage, path: Path) -> tuple[int, set[str]]:
    """Every problem of every row, or (row count, external ids already imported)."""
    problems: list[str] = []
    seen: set[str] = set()
    already: set[str] = set()
    pending: list[tuple[str, ImportVideo]] = []
    count = 0

    async def flush(session: AsyncSession) -> None:
        known = await _known(session, [video.external_id for _, video in pending])
        already.update(known)
        for where, video in pending:
            if video.external_id in known:
                continue
            for index, rendition in enumerate(video.renditions):
                problems.extend(
                    f"{where}: renditions[{index}]: {problem}"
                    for problem in await _rendition_problems(
                        session, storage, path.parent, rendition
                    )
                )
        pending.clear()

    async with database.sessionmaker() as session:
        for number, item in _rows(path):
            count = number
            where = _where(number, item)
            try:
                video = ImportVideo.model_validate(item)
            except ValidationError as exc:
                for error in exc.errors():
                    location = ".".join(str(part) for part in error["loc"]) or "row"
                    problems.append(f"{where}: {location}: {error['msg']}")
                continue
            if video.external_id in seen:
                problems.append(f"{where}: external_id appears twice in the file")
                continue
            seen.add(video.external_id)
            pending.append((where, video))
            if len(pending) >= BATCH_SIZE:
                await flush(session)
        await flush(session)
    if count == 0 and not problems:
        problems.append(f"{path}: no videos in the file")
    if problems:
        raise ImportFailed(problems)
    return count, already


async def _rendition_problems(
    session: AsyncSession, storage: Storage, base: Path, rendition: ImportRendition
) -> list[str]:
    if rendition.path is not None:
        source = _local(base, rendition.path)
        return [] if source.is_file() else [f"no such file: {source}"]
    assert rendition.storage_key is not None
    key = rendition.storage_key
    try:
        check_key(key)
    except StorageKeyError as exc:
        return [f"storage_key {key!r}: {exc}"]
    size = await storage.size(key)
    if size is None:
        return [f"storage_key {key!r}: not in storage"]
    if size != rendition.size_bytes:
        return [f"storage_key {key!r}: size is {size} bytes, not {rendition.size_bytes}"]
    if await _stored_sha256(storage, key) != rendition.sha256:
        return [f"storage_key {key!r}: SHA-256 differs"]
    if await session.scalar(select(Rendition.id).where(Rendition.storage_key == key)):
        return [f"storage_key {key!r}: already a rendition of another video"]
    return []


async def import_file(
    database: Database,
    storage: Storage,
    path: Path,
    *,
    ffprobe: str = "ffprobe",
) -> ImportResult:
    """Check everything, then write; `ImportFailed` lists every problem and nothing is written."""
    total, already = await check_file(database, storage, path)
    result = ImportResult(already_there=len(already))
    batch: list[ImportVideo] = []
    with ProgressBar(f"importing {path.name}", total, bytes=False) as progress:
        for _, item in _rows(path):
            video = ImportVideo.model_validate(item)
            if video.external_id in already:
                progress.advance(1)
                continue
            batch.append(video)
            if len(batch) >= BATCH_SIZE:
                await _write_batch(database, storage, path.parent, batch, result, ffprobe)
                progress.advance(len(batch))
                batch = []
        if batch:
            await _write_batch(database, storage, path.parent, batch, result, ffprobe)
            progress.advance(len(batch))
    return result


async def _write_batch(
    database: Database,
    storage: Storage,
    base: Path,
    batch: list[ImportVideo],
    result: ImportResult,
    ffprobe: str,
) -> None:
    copied: list[str] = []
    staged: list[tuple[ImportVideo, uuid.UUID, list[dict[str, Any]]]] = []
    try:
        # Copies and probes first, outside any transaction.
        for video in batch:
            video_id = uuid.uuid4()
            renditions = []
            for rendition in video.renditions:
                values = await _stage(storage, base, video_id, rendition, ffprobe, copied)
                renditions.append(values)
            staged.append((video, video_id, renditions))
        async with database.sessionmaker() as session:
            # Another import may have written some of these meanwhile: keep the run a no-op.
            known = await _known(session, [video.external_id for video, _, _ in staged])
            now = utcnow()
            for video, video_id, renditions in staged:
                if video.external_id in known:
                    result.already_there += 1
                    continue
                row = _video_row(video, video_id, now)
                session.add(row)
                for values in renditions:
                    values["filename"] = download_filename(
                        video.title, values["label"], values["container"], values["id"]
                    )
                    session.add(Rendition(video_id=video_id, created_at=now, **values))
                await record_change(
                    session, row, action="import", editor=None, fields=["renditions"], now=now,
                    created=True,
                )  # fmt: skip
                result.imported += 1
                result.renditions += len(renditions)
            await session.commit()
    except BaseException:
        for key in copied:
            await storage.delete(key)
        raise
    result.written_keys.extend(copied)


async def _stage(
    storage: Storage,
    base: Path,
    video_id: uuid.UUID,
    rendition: ImportRendition,
    ffprobe: str,
    copied: list[str],
) -> dict[str, Any]:
    rendition_id = uuid.uuid4()
    if rendition.path is not None:
        source = _local(base, rendition.path)
        container = source.suffix.lstrip(".").lower() or "bin"
        facts = await probe(source, ffprobe)
        key = f"videos/{video_id}/{rendition_id}.{container}"
        digest = hashlib.sha256()
        with source.open("rb") as handle:
            size = await storage.write(key, _hashed_chunks(handle, digest))
        copied.append(key)
        sha256 = digest.hexdigest()
        name = source.name
    else:
        assert rendition.storage_key is not None
        assert rendition.size_bytes is not None
        assert rendition.sha256 is not None
        key = rendition.storage_key
        container = PurePosixPath(key).suffix.lstrip(".").lower() or "bin"
        # Stored files are checked, not probed: they may live in storage nothing here can read
        # as a path.
        facts = Probe()
        size, sha256, name = rendition.size_bytes, rendition.sha256, PurePosixPath(key).name
    return {
        "id": rendition_id,
        "label": rendition.label or rendition_label(facts, container),
        "container": container,
        "content_type": mimetypes.guess_type(name)[0] or "application/octet-stream",
        "video_codec": facts.video_codec,
        "audio_codec": facts.audio_codec,
        "width": facts.width,
        "height": facts.height,
        "frame_rate": facts.frame_rate,
        "bitrate": facts.bitrate,
        "duration_seconds": facts.duration_seconds,
        "size_bytes": size,
        "sha256": sha256,
        "storage_key": key,
    }


def _video_row(video: ImportVideo, video_id: uuid.UUID, now: Any) -> Video:
    tags = sorted({normalize_tag(tag) for tag in video.tags} - {""})
    return Video(
        id=video_id,
        external_id=video.external_id,
        title=video.title,
        description=video.description,
        published_at=video.published_at or now,
        language=video.language,
        credits=video.credits,
        copyright=video.copyright,
        location=video.location,
        shot_list=video.shot_list,
        transcript=video.transcript,
        related_article_slugs=list(video.related_article_slugs),
        status="published",
        version=1,
        created_at=now,
        updated_at=now,
        tags=[VideoTag(tag=tag) for tag in tags],
    )
