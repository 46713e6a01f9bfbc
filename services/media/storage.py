"""Where video files live: a small interface and its local-filesystem backend.

Keys are relative POSIX paths (`videos/<video id>/<rendition id>.mp4`); a backend maps them onto
its medium. Reads and writes move bounded chunks so memory stays flat whatever the file size.
The S3-compatible backend is in `object_storage.py`; `open_storage` picks one from the settings.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

import anyio
import anyio.to_thread

# Large enough that a thread hop per chunk costs little, small enough to multiply by clients.
CHUNK_SIZE = 1024 * 1024


class StorageKeyError(ValueError):
    """A key that would escape the storage root or is otherwise malformed."""


class StorageUnavailable(OSError):
    """The store cannot be reached or fails: nothing is known about the key, try again later."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    modified: datetime


@dataclass(frozen=True)
class PendingUpload:
    """A write that began and never finished (a process killed mid-upload leaves these)."""

    key: str
    upload_id: str
    started: datetime


def check_key(key: str) -> str:
    """`key` if it names a file under the storage root, relative and without `.` or `..`."""
    if (
        not key
        or key.startswith("/")
        or any(part in {"", ".", ".."} for part in key.split("/"))
        or "\\" in key
        or "\x00" in key
    ):
        raise StorageKeyError(f"invalid storage key: {key!r}")
    return key


class Storage(Protocol):
    async def write(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str | None = None,
        content_disposition: str | None = None,
    ) -> int:
        """Store the chunks under `key` atomically (all or nothing); return the bytes written.

        The content type and disposition are kept with the object where the medium can (object
        storage sends them to whoever fetches it directly)."""
        ...

    def read(
        self, key: str, start: int = 0, end: int | None = None, *, chunk_size: int = CHUNK_SIZE
    ) -> AsyncIterator[bytes]:
        """Bytes `start..end` (inclusive; `end=None` for the rest) in chunks of `chunk_size`."""
        ...

    async def size(self, key: str) -> int | None:
        """The size in bytes, or None when nothing is stored under `key`."""
        ...

    async def delete(self, key: str) -> None: ...

    async def presign_get(
        self,
        key: str,
        expires_in: int,
        *,
        content_type: str | None = None,
        content_disposition: str | None = None,
    ) -> str | None:
        """A URL that GETs the object without our credentials for `expires_in` seconds, or None
        when the medium has no such thing (a local directory)."""
        ...

    def objects(self) -> AsyncIterator[StoredObject]:
        """Every stored object (for gc); unfinished writes are not among them."""
        ...

    def pending_uploads(self) -> AsyncIterator[PendingUpload]:
        """Writes that began and never finished or were aborted."""
        ...

    async def abort_upload(self, upload: PendingUpload) -> None: ...

    async def close(self) -> None: ...


_PARTIAL_SUFFIX = ".partial"


class LocalStorage:
    """Files under one directory; what nginx serves through its internal location."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def write(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str | None = None,
        content_disposition: str | None = None,
    ) -> int:
        target = self.path(key)
        await anyio.to_thread.run_sync(lambda: target.parent.mkdir(parents=True, exist_ok=True))
        # Written beside the target and renamed, so readers never see half a file.
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}{_PARTIAL_SUFFIX}")
        written = 0
        handle: BinaryIO = await anyio.to_thread.run_sync(partial.open, "wb")
        try:
            async for chunk in chunks:
                await anyio.to_thread.run_sync(handle.write, chunk)
                written += len(chunk)
            await anyio.to_thread.run_sync(handle.flush)
            await anyio.to_thread.run_sync(os.fsync, handle.fileno())
        except BaseException:
            handle.close()
            partial.unlink(missing_ok=True)
            raise
        handle.close()
        await anyio.to_thread.run_sync(os.replace, partial, target)
        return written

    async def read(
        self, key: str, start: int = 0, end: int | None = None, *, chunk_size: int = CHUNK_SIZE
    ) -> AsyncIterator[bytes]:
        path = self.path(key)
        handle: BinaryIO = await anyio.to_thread.run_sync(path.open, "rb")
        try:
            if start:
                await anyio.to_thread.run_sync(handle.seek, start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                want = chunk_size if remaining is None else min(chunk_size, remaining)
                chunk = await anyio.to_thread.run_sync(handle.read, want)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            handle.close()

    async def size(self, key: str) -> int | None:
        path = self.path(key)
        try:
            stat = await anyio.to_thread.run_sync(path.stat)
        except FileNotFoundError:
            return None
        return stat.st_size

    async def delete(self, key: str) -> None:
        path = self.path(key)
        await anyio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))

    async def presign_get(
        self,
        key: str,
        expires_in: int,
        *,
        content_type: str | None = None,
        content_disposition: str | None = None,
    ) -> str | None:
        return None

    def _walk(self, partial: bool) -> list[tuple[str, os.stat_result]]:
        found: list[tuple[str, os.stat_result]] = []
        if not self.root.is_dir():
            return found
        for path in self.root.rglob("*"):
            is_partial = path.name.startswith(".") and path.name.endswith(_PARTIAL_SUFFIX)
            if is_partial != partial:
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if path.is_file():
                found.append((path.relative_to(self.root).as_posix(), stat))
        return sorted(found)

    async def objects(self) -> AsyncIterator[StoredObject]:
        for key, stat in await anyio.to_thread.run_sync(self._walk, False):
            yield StoredObject(key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))

    async def pending_uploads(self) -> AsyncIterator[PendingUpload]:
        for key, stat in await anyio.to_thread.run_sync(self._walk, True):
            started = datetime.fromtimestamp(stat.st_mtime, UTC)
            yield PendingUpload(key, key, started)

    async def abort_upload(self, upload: PendingUpload) -> None:
        await self.delete(upload.upload_id)

    async def close(self) -> None:
        return None
