"""`natomedia migrate|seed media` and `natomedia media ingest|import|withdraw|restore`."""

from __future__ import annotations

import argparse
import gc
import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from services.common.database import Database
from services.common.migrations import upgrade_to_head
from services.common.progress import ProgressBar
from services.media import bulk_import, withdrawals
from services.media.config import MediaSettings
from services.media.exceptions import IngestError, VideoNotFound
from services.media.ingest import Ingested, VideoMetadata, ingest_file
from services.media.models import Video
from services.media.object_storage import S3Storage
from services.media.storage import StorageUnavailable
from services.media.storage_choice import open_storage
from services.media.storage_gc import collect_garbage

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
DEMO_DIR = Path(__file__).parent / "demo"


async def migrate_database(database: Database) -> None:
    await upgrade_to_head(database, MIGRATIONS_DIR)


async def migrate(settings: MediaSettings) -> None:
    database = Database(settings.resolved_database_url)
    try:
        await migrate_database(database)
    finally:
        await database.dispose()


def demo_manifest() -> list[dict[str, Any]]:
    document = json.loads((DEMO_DIR / "manifest.json").read_text())
    videos: list[dict[str, Any]] = document["videos"]
    return videos


async def seed(settings: MediaSettings) -> None:
    """Load the demo catalogue, only into an empty database."""
    database = Database(settings.resolved_database_url)
    storage = open_storage(settings)
    try:
        async with database.sessionmaker() as session:
            if await session.scalar(select(func.count()).select_from(Video)):
                return
            for entry in demo_manifest():
                metadata = VideoMetadata(
                    title=entry["title"],
                    description=entry["description"],
                    tags=entry["tags"],
                    published_at=datetime.fromisoformat(entry["published_at"]),
                    language=entry.get("language"),
                    credits=entry.get("credits"),
                    copyright=entry.get("copyright"),
                    location=entry.get("location"),
                    shot_list=entry.get("shot_list"),
                    transcript=entry.get("transcript"),
                    related_article_slugs=entry.get("related_article_slugs", []),
                )
                await ingest_file(
                    session,
                    storage,
                    DEMO_DIR / entry["file"],
                    metadata,
                    label=entry.get("label"),
                    ffprobe=settings.ffprobe_path,
                    ffmpeg=settings.ffmpeg_path,
                )
            await session.commit()
    finally:
        await storage.close()
        await database.dispose()


def _text_file(path: str | None, flag: str) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise IngestError(f"{flag}: cannot read {path}: {exc}") from exc


def _metadata(args: argparse.Namespace) -> VideoMetadata:
    return VideoMetadata(
        title=args.title,
        description=args.description,
        tags=args.tag,
        language=getattr(args, "language", None),
        credits=getattr(args, "credits", None),
        copyright=getattr(args, "copyright", None),
        location=getattr(args, "location", None),
        shot_list=_text_file(getattr(args, "shot_list_file", None), "--shot-list-file"),
        transcript=_text_file(getattr(args, "transcript_file", None), "--transcript-file"),
    )


async def ingest(settings: MediaSettings, args: argparse.Namespace) -> Ingested:
    video_id = uuid.UUID(args.video_id) if args.video_id else None
    source = Path(args.file)
    metadata = _metadata(args)
    size = source.stat().st_size if source.is_file() else 0
    database = Database(settings.resolved_database_url)
    storage = open_storage(settings)
    try:
        async with database.sessionmaker() as session:
            with ProgressBar(f"copying {source.name}", size) as progress:
                result = await ingest_file(
                    session,
                    storage,
                    source,
                    metadata,
                    label=args.label,
                    video_id=video_id,
                    ffprobe=settings.ffprobe_path,
                    ffmpeg=settings.ffmpeg_path,
                    progress=progress,
                )
    finally:
        await storage.close()
        await database.dispose()
    return result


async def cli_ingest(settings: MediaSettings, args: argparse.Namespace) -> int:
    try:
        result = await ingest(settings, args)
    except (IngestError, ValueError, OSError) as exc:
        sys.stderr.write(f"ingest failed: {exc}\n")
        return 1
    action = "created" if result.created_video else "extended"
    sys.stdout.write(
        f"video {result.video_id} ({action})\n"
        f"rendition {result.rendition_id}\n"
        f"size {result.size_bytes} bytes, sha256 {result.sha256}\n"
    )
    return 0


async def _editorial(settings: MediaSettings, args: argparse.Namespace, action: str) -> int:
    try:
        video_id = uuid.UUID(args.video_id)
    except ValueError:
        sys.stderr.write(f"{action} failed: not a video id: {args.video_id}\n")
        return 1
    database = Database(settings.resolved_database_url)
    try:
        async with database.sessionmaker() as session:
            if action == "withdraw":
                video = await withdrawals.withdraw(
                    session,
                    video_id,
                    reason_code=args.reason_code,
                    note=args.note,
                    editor=None,
                )
            else:
                video = await withdrawals.restore(session, video_id, editor=None)
    except VideoNotFound:
        sys.stderr.write(f"{action} failed: no video with id {video_id}\n")
        return 1
    finally:
        await database.dispose()
    sys.stdout.write(f"video {video.id} {video.status}, version {video.version}\n")
    return 0


async def cli_withdraw(settings: MediaSettings, args: argparse.Namespace) -> int:
    """The detail and every link answer 410 at once; partners get a tombstone in the feed."""
    return await _editorial(settings, args, "withdraw")


async def cli_restore(settings: MediaSettings, args: argparse.Namespace) -> int:
    return await _editorial(settings, args, "restore")


async def cli_import(settings: MediaSettings, args: argparse.Namespace) -> int:
    """All or nothing: every problem is listed, one line each, and then nothing is written."""
    database = Database(settings.resolved_database_url)
    storage = open_storage(settings)
    # The garbage collector would otherwise walk every object the program loaded, again and
    # again, while the import allocates rows by the million; none of them will be freed.
    gc.freeze()
    try:
        result = await bulk_import.import_file(
            database,
            storage,
            Path(args.file),
            ffprobe=settings.ffprobe_path,
        )
    except bulk_import.ImportFailed as exc:
        for problem in exc.problems:
            sys.stderr.write(f"{problem}\n")
        if exc.written:
            sys.stderr.write(
                f"import stopped: {exc.written} video(s) were imported before it; "
                "run it again to import the rest\n"
            )
        else:
            sys.stderr.write(
                f"import failed: {len(exc.problems)} problem(s); nothing was imported\n"
            )
        return 1
    except SQLAlchemyError as exc:
        # Before any write: the database is unreachable or not migrated.
        reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["?"])[0]
        sys.stderr.write(f"import failed: the database refused: {reason}; nothing was imported\n")
        return 1
    except StorageUnavailable as exc:
        sys.stderr.write(f"import failed: {exc}; nothing was imported\n")
        return 1
    finally:
        gc.unfreeze()
        await storage.close()
        await database.dispose()
    sys.stdout.write(
        f"imported {result.imported} video(s) with {result.renditions} rendition(s); "
        f"{result.already_there} already there\n"
    )
    return 0


async def cli_gc(settings: MediaSettings, args: argparse.Namespace) -> int:
    """Remove stored objects no rendition or thumbnail refers to, and abort stale uploads."""
    if args.grace_hours < 1:
        sys.stderr.write("gc failed: --grace-hours must be at least 1\n")
        return 1
    database = Database(settings.resolved_database_url)
    storage = open_storage(settings)

    def report(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    try:
        result = await collect_garbage(
            database,
            storage,
            now=datetime.now(UTC),
            grace=timedelta(hours=args.grace_hours),
            dry_run=args.dry_run,
            report=report,
        )
    except StorageUnavailable as exc:
        sys.stderr.write(f"gc failed: {exc}\n")
        return 1
    finally:
        await storage.close()
        await database.dispose()
    verb = "would remove" if args.dry_run else "removed"
    sys.stdout.write(
        f"{verb} {result.removed} object(s) ({result.removed_bytes} bytes), "
        f"{'would abort' if args.dry_run else 'aborted'} {result.aborted_uploads} "
        f"unfinished upload(s); {result.kept} object(s) kept\n"
    )
    return 0


async def cli_create_bucket(settings: MediaSettings, args: argparse.Namespace) -> int:
    """Create MEDIA_STORAGE_URL's bucket when it is missing (compose's first start)."""
    storage = open_storage(settings)
    try:
        if not isinstance(storage, S3Storage):
            sys.stdout.write("local storage: no bucket to create\n")
            return 0
        await storage.ensure_bucket()
    except StorageUnavailable as exc:
        sys.stderr.write(f"create-bucket failed: {exc}\n")
        return 1
    finally:
        await storage.close()
    sys.stdout.write(f"bucket {storage.bucket} ready\n")
    return 0
