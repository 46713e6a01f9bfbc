"""`natomedia media gc`: objects no rendition refers to, and uploads that never finished.

Both are left by failures the ingest could not clean up after (a killed process, a store that
went away while a failed ingest tried to delete what it had written). Anything younger than the
grace period is kept: an ingest in flight has written its object but not yet its catalogue row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from services.common.database import Database
from services.media.models import Rendition, Video
from services.media.storage import Storage

DEFAULT_GRACE = timedelta(hours=24)


@dataclass
class GcResult:
    kept: int = 0
    removed: int = 0
    removed_bytes: int = 0
    aborted_uploads: int = 0


async def referenced_keys(database: Database) -> set[str]:
    async with database.engine.connect() as connection:
        keys = set((await connection.scalars(select(Rendition.storage_key))).all())
        thumbnails = await connection.scalars(
            select(Video.thumbnail_key).where(Video.thumbnail_key.is_not(None))
        )
        keys.update(key for key in thumbnails.all() if key is not None)
    return keys


async def collect_garbage(
    database: Database,
    storage: Storage,
    *,
    now: datetime,
    grace: timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    report: Callable[[str], None] = lambda line: None,
) -> GcResult:
    result = GcResult()
    cutoff = now - grace
    # Read before listing: an object written after this read is younger than the cutoff.
    keys = await referenced_keys(database)
    async for stored in storage.objects():
        if stored.key in keys or stored.modified > cutoff:
            result.kept += 1
            continue
        report(f"{'would remove' if dry_run else 'removing'} {stored.key} ({stored.size} bytes)")
        if not dry_run:
            await storage.delete(stored.key)
        result.removed += 1
        result.removed_bytes += stored.size
    async for upload in storage.pending_uploads():
        if upload.started > cutoff:
            continue
        started = upload.started.isoformat(timespec="seconds")
        report(f"{'would abort' if dry_run else 'aborting'} upload of {upload.key} ({started})")
        if not dry_run:
            await storage.abort_upload(upload)
        result.aborted_uploads += 1
    return result
