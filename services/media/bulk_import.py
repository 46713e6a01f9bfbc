"""`natomedia media import FILE.json`: an existing archive in bulk, all or nothing, idempotent.

The file is a JSON array of videos, each with an `external_id` (the key that makes a second run
a no-op), its metadata, and renditions given as `{label, path}` (a local file, probed, copied and
hashed as `ingest` does) or `{label, storage_key, size_bytes, sha256}` (a file already in
storage, checked: it exists, has that size and that SHA-256). The file is read twice, streamed
(ijson): first every row is checked and every problem listed, and nothing is written if there
is one; then the videos are written in batches, each batch one short transaction in which every
video takes its feed position, one batch written while the next is read. Files are copied
before their batch's transaction begins.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import mimetypes
import posixpath
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Self, cast

import anyio
import ijson  # type: ignore[import-untyped]
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import Table, insert, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.database import Database, insert_many, time_ordered_uuid, utcnow
from services.common.progress import ProgressBar
from services.media.exceptions import IngestError
from services.media.feed import take_positions
from services.media.ingest import (
    Probe,
    _hashed_chunks,
    delete_quietly,
    download_filename,
    probe,
    rendition_label,
)
from services.media.models import Rendition, Video, VideoChange, VideoTag
from services.media.search import index_fields, search_for
from services.media.service import normalize_tag
from services.media.storage import CHUNK_SIZE, LocalStorage, Storage, StorageKeyError, check_key

# Videos per transaction: each batch takes its feed positions at once and holds the counter's
# lock until it commits, so batches stay short for the editors waiting on it.
BATCH_SIZE = 500
# Values in one `IN (…)`: PostgreSQL takes at most 32,767 bind parameters per statement, and a
# batch size is the caller's to choose.
MAX_IN_VALUES = 10_000
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
    """The file cannot be imported; `problems` lists every reason, one line each. `written`
    videos were imported before a failure while writing (a second run imports the rest)."""

    def __init__(self, problems: list[str], *, written: int = 0) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems
        self.written = written


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


async def _custom_plans(session: AsyncSession) -> None:
    """PostgreSQL plans each lookup for its values: the import fills the tables it looks up
    in, and a generic plan cached while they were small scans them whole."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


async def _known(session: AsyncSession, external_ids: list[str]) -> set[str]:
    await _custom_plans(session)
    known: set[str] = set()
    for start in range(0, len(external_ids), MAX_IN_VALUES):
        chunk = external_ids[start : start + MAX_IN_VALUES]
        found = await session.scalars(select(Video.external_id).where(Video.external_id.in_(chunk)))
        known.update(value for value in found if value is not None)
    return known


async def check_file(
    database: Database, storage: Storage, path: Path, *, batch_size: int = BATCH_SIZE
) -> tuple[int, set[str]]:
    """Every problem of every row, or (row count, external ids already imported)."""
    problems: list[str] = []
    seen: set[str] = set()
    # Where each stored file is named first: two rows cannot share one (a key is one rendition).
    keys: dict[str, str] = {}
    already: set[str] = set()
    pending: list[tuple[str, ImportVideo, dict[int, str]]] = []
    count = 0

    async def flush(session: AsyncSession) -> None:
        known = await _known(session, [video.external_id for _, video, _ in pending])
        already.update(known)
        checks: list[tuple[str, ImportRendition, str | None]] = []
        for where, video, shared in pending:
            if video.external_id in known:
                continue
            for index, rendition in enumerate(video.renditions):
                checks.append((f"{where}: renditions[{index}]", rendition, shared.get(index)))
        keys = [r.storage_key for _, r, _ in checks if r.storage_key and _valid_key(r.storage_key)]
        taken = await _taken_keys(session, keys)
        stored = await _stored_files(storage, [key for key in keys if key not in taken])
        for where, rendition, twice in checks:
            reasons = _rendition_problems(path.parent, rendition, taken, stored)
            # One problem per rendition: a shared key is worth saying only of a file that is fine.
            reasons = reasons or ([twice] if twice else [])
            problems.extend(f"{where}: {reason}" for reason in reasons)
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
            pending.append((where, video, _shared_keys(where, video, keys)))
            if len(pending) >= batch_size:
                await flush(session)
        await flush(session)
    if count == 0 and not problems:
        problems.append(f"{path}: no videos in the file")
    if problems:
        raise ImportFailed(problems)
    return count, already


def _shared_keys(where: str, video: ImportVideo, keys: dict[str, str]) -> dict[int, str]:
    """The video's renditions (by index) naming a stored file an earlier one named already."""
    problems = {}
    for index, rendition in enumerate(video.renditions):
        key = rendition.storage_key
        if key is None:
            continue
        if key in keys:
            problems[index] = f"storage_key {key!r} is also given by {keys[key]}"
        else:
            keys[key] = f"{where}: renditions[{index}]"
    return problems


# Stored files are checked this many at a time: each check waits on storage, rarely on the CPU.
CHECKS_IN_FLIGHT = 16


@dataclass(frozen=True)
class _Found:
    """A stored file's size and SHA-256, or None where storage has no such key."""

    size: int
    sha256: str


async def _stored_files(storage: Storage, keys: list[str]) -> dict[str, _Found | None]:
    if isinstance(storage, LocalStorage):
        # One worker thread for the lot: a thread hop per open, read and stat would cost more
        # than hashing a small file.
        return await anyio.to_thread.run_sync(_local_files, storage, keys)
    found: dict[str, _Found | None] = {}
    limiter = anyio.CapacityLimiter(CHECKS_IN_FLIGHT)

    async def check(key: str) -> None:
        async with limiter:
            size = await storage.size(key)
            found[key] = None if size is None else _Found(size, await _stored_sha256(storage, key))

    async with anyio.create_task_group() as group:
        for key in keys:
            group.start_soon(check, key)
    return found


def _local_files(storage: LocalStorage, keys: list[str]) -> dict[str, _Found | None]:
    found: dict[str, _Found | None] = {}
    for key in keys:
        digest = hashlib.sha256()
        size = 0
        try:
            with storage.path(key).open("rb") as handle:
                while chunk := handle.read(CHUNK_SIZE):
                    digest.update(chunk)
                    size += len(chunk)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            found[key] = None
            continue
        found[key] = _Found(size, digest.hexdigest())
    return found


async def _taken_keys(session: AsyncSession, keys: list[str]) -> set[str]:
    """Which of `keys` are already renditions of a video in the catalogue."""
    await _custom_plans(session)
    taken: set[str] = set()
    for start in range(0, len(keys), MAX_IN_VALUES):
        chunk = keys[start : start + MAX_IN_VALUES]
        found = await session.scalars(
            select(Rendition.storage_key).where(Rendition.storage_key.in_(chunk))
        )
        taken.update(found)
    return taken


def _valid_key(key: str) -> bool:
    try:
        check_key(key)
    except StorageKeyError:
        return False
    return True


def _rendition_problems(
    base: Path, rendition: ImportRendition, taken: set[str], stored: dict[str, _Found | None]
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
    if key in taken:
        return [f"storage_key {key!r}: already a rendition of another video"]
    found = stored.get(key)
    if found is None:
        return [f"storage_key {key!r}: not in storage"]
    if found.size != rendition.size_bytes:
        return [f"storage_key {key!r}: size is {found.size} bytes, not {rendition.size_bytes}"]
    if found.sha256 != rendition.sha256:
        return [f"storage_key {key!r}: SHA-256 differs"]
    return []


async def import_file(
    database: Database,
    storage: Storage,
    path: Path,
    *,
    ffprobe: str = "ffprobe",
    batch_size: int | None = None,
) -> ImportResult:
    """Check everything, then write; `ImportFailed` lists every problem and nothing is written."""
    batch_size = batch_size or BATCH_SIZE
    total, already = await check_file(database, storage, path, batch_size=batch_size)
    result = ImportResult(already_there=len(already))
    batch: list[ImportVideo] = []
    # The batch being written while the next one is read: the database works on one while
    # Python parses and checks the other. Batches still commit one after another, in order.
    in_flight: asyncio.Task[None] | None = None

    async def write(videos: list[ImportVideo], last: int) -> None:
        try:
            await _write_batch(database, storage, path.parent, videos, result, ffprobe)
        except (SQLAlchemyError, OSError, IngestError) as exc:
            first = last - len(videos) + 1
            reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["?"])[0]
            raise ImportFailed(
                [f"rows {first}-{last}: not written: {type(exc).__name__}: {reason}"],
                written=result.imported,
            ) from exc
        progress.advance(len(videos))

    async def settle() -> None:
        """Wait for the batch in flight; its failure is raised here."""
        nonlocal in_flight
        if in_flight is not None:
            task, in_flight = in_flight, None
            await task

    with ProgressBar(f"importing {path.name}", total, bytes=False) as progress:
        try:
            for number, item in _rows(path):
                try:
                    video = ImportVideo.model_validate(item)
                except ValidationError as exc:
                    await settle()
                    problem = f"{_where(number, item)}: the file changed while it was imported"
                    raise ImportFailed([problem], written=result.imported) from exc
                if video.external_id not in already:
                    batch.append(video)
                else:
                    progress.advance(1)
                if len(batch) >= batch_size:
                    await settle()
                    in_flight = asyncio.create_task(write(batch, number))
                    batch = []
                # Lets the batch in flight go on as soon as the database has answered.
                await asyncio.sleep(0)
            await settle()
            if batch:
                await write(batch, number)
        except BaseException:
            if in_flight is not None:
                # It commits or rolls back by itself; the failure to report is the first one.
                with contextlib.suppress(Exception):
                    await in_flight
            raise
    if result.imported:
        await database.analyze()
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
            # Time-ordered, as the change ids: every index keyed by a video id then grows at
            # its end. Rendition ids stay random: a download's file name quotes their start.
            video_id = time_ordered_uuid()
            renditions = []
            for rendition in video.renditions:
                values = await _stage(storage, base, video_id, rendition, ffprobe, copied)
                renditions.append(values)
            staged.append((video, video_id, renditions))
        async with database.sessionmaker() as session:
            # Another import may have written some of these meanwhile: keep the run a no-op.
            known = await _known(session, [video.external_id for video, _, _ in staged])
            fresh = [entry for entry in staged if entry[0].external_id not in known]
            result.already_there += len(staged) - len(fresh)
            if fresh:
                await _insert(session, fresh)
            await session.commit()
    except BaseException:
        await delete_quietly(storage, copied)
        raise
    result.imported += len(fresh)
    result.renditions += sum(len(renditions) for _, _, renditions in fresh)
    result.written_keys.extend(copied)


async def _insert(
    session: AsyncSession, fresh: list[tuple[ImportVideo, uuid.UUID, list[dict[str, Any]]]]
) -> None:
    """The batch's rows, one multi-row statement per table: the ORM's unit of work would cost a
    flush, a feed-position update and an index write per video."""
    now = utcnow()
    positions = await take_positions(session, len(fresh))
    videos: list[dict[str, Any]] = []
    texts: list[dict[str, str]] = []
    tags: list[dict[str, Any]] = []
    renditions: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    for (video, video_id, staged), position in zip(fresh, positions, strict=True):
        row = _video_row(video, video_id, now, position)
        names = _tags(video)
        videos.append(row)
        text = _Text(video_id, video.title, video.description, video.shot_list, video.transcript)
        texts.append(index_fields(text, names))
        tags.extend({"video_id": video_id, "tag": name} for name in names)
        for values in staged:
            filename = download_filename(
                video.title, values["label"], values["container"], values["id"]
            )
            renditions.append(
                {**values, "video_id": video_id, "filename": filename, "created_at": now}
            )
        changes.append(
            {
                "id": time_ordered_uuid(),
                "video_id": video_id,
                "version": 1,
                "feed_position": position,
                "action": "import",
                "editor": None,
                "fields": ["renditions"],
                "changed_at": now,
            }
        )
    await search_for(session).insert_videos(session, videos, texts)
    for model, rows in ((VideoTag, tags), (Rendition, renditions), (VideoChange, changes)):
        await insert_many(session, insert(cast(Table, model.__table__)), rows)


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
            size = await storage.write(
                key,
                _hashed_chunks(handle, digest),
                content_type=mimetypes.guess_type(source.name)[0] or "application/octet-stream",
            )
        copied.append(key)
        sha256 = digest.hexdigest()
        name = source.name
    else:
        assert rendition.storage_key is not None
        assert rendition.size_bytes is not None
        assert rendition.sha256 is not None
        key = rendition.storage_key
        container = posixpath.splitext(key)[1].lstrip(".").lower() or "bin"
        # Stored files are checked, not probed: they may live in storage nothing here can read
        # as a path.
        facts = Probe()
        size, sha256, name = rendition.size_bytes, rendition.sha256, posixpath.basename(key)
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


@dataclass(frozen=True)
class _Text:
    """What `index_fields` reads of a video row about to be inserted."""

    id: uuid.UUID
    title: str
    description: str
    shot_list: str | None
    transcript: str | None


def _tags(video: ImportVideo) -> list[str]:
    return sorted({normalize_tag(tag) for tag in video.tags} - {""})


def _video_row(
    video: ImportVideo, video_id: uuid.UUID, now: datetime, position: int
) -> dict[str, Any]:
    """Every column of the new `videos` row: a Core insert applies no ORM defaults."""
    return {
        "id": video_id,
        "external_id": video.external_id,
        "title": video.title,
        "description": video.description,
        "published_at": video.published_at or now,
        "duration_seconds": None,
        "language": video.language,
        "credits": video.credits,
        "copyright": video.copyright,
        "location": video.location,
        "shot_list": video.shot_list,
        "transcript": video.transcript,
        "thumbnail_key": None,
        "related_article_slugs": list(video.related_article_slugs),
        "status": "published",
        "version": 1,
        "feed_position": position,
        "withdrawn_at": None,
        "withdrawal_reason": None,
        "withdrawal_note": None,
        "created_at": now,
        "updated_at": now,
    }
