"""Where video files live: a small interface and its local-filesystem backend.

Keys are relative POSIX paths (`videos/<video id>/<rendition id>.mp4`); a backend maps them onto
its medium. Reads and writes move bounded chunks so memory stays flat whatever the file size.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

import anyio
import anyio.to_thread

# Large enough that a thread hop per chunk costs little, small enough to multiply by clients.
CHUNK_SIZE = 1024 * 1024


class StorageKeyError(ValueError):
    """A key that would escape the storage root or is otherwise malformed."""


def check_key(key: str) -> PurePosixPath:
    path = PurePosixPath(key)
    if (
        not key
        or path.is_absolute()
        or any(part in {"", ".", ".."} for part in key.split("/"))
        or "\\" in key
        or "\x00" in key
    ):
        raise StorageKeyError(f"invalid storage key: {key!r}")
    return path


class Storage(Protocol):
    async def write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Store the chunks under `key` atomically (all or nothing); return the bytes written."""
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


class LocalStorage:
    """Files under one directory; what nginx serves through its internal location."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).parts)

    async def write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        target = self.path(key)
        await anyio.to_thread.run_sync(lambda: target.parent.mkdir(parents=True, exist_ok=True))
        # Written beside the target and renamed, so readers never see half a file.
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
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
