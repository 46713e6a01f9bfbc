"""The local-filesystem storage: atomic writes, ranged reads, keys that cannot escape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.media.storage import LocalStorage, StorageKeyError

DATA = bytes(range(256)) * 10


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read_all(storage: LocalStorage, key: str, *args: int, **kwargs: int) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key, *args, **kwargs)])


async def test_write_then_read(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    assert await storage.write("videos/a/b.mp4", chunks(DATA[:100], DATA[100:])) == len(DATA)
    assert (tmp_path / "videos" / "a" / "b.mp4").read_bytes() == DATA
    assert await storage.size("videos/a/b.mp4") == len(DATA)
    assert await read_all(storage, "videos/a/b.mp4") == DATA


async def test_ranged_reads_in_small_chunks(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.write("f", chunks(DATA))
    pieces = [chunk async for chunk in storage.read("f", 10, 1000, chunk_size=64)]
    assert b"".join(pieces) == DATA[10:1001]
    assert max(len(piece) for piece in pieces) == 64
    assert await read_all(storage, "f", len(DATA) - 1, len(DATA) + 50) == DATA[-1:]


async def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    async def broken() -> AsyncIterator[bytes]:
        yield b"half"
        raise RuntimeError("source went away")

    with pytest.raises(RuntimeError):
        await storage.write("videos/x.mp4", broken())
    assert await storage.size("videos/x.mp4") is None
    assert list((tmp_path / "videos").iterdir()) == []


async def test_delete_and_missing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.write("f", chunks(b"x"))
    await storage.delete("f")
    await storage.delete("f")
    assert await storage.size("f") is None


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "../outside", "a/../../b", "a//b", "a/./b", "a\\b", "a\x00b"]
)
def test_keys_cannot_escape_the_root(tmp_path: Path, key: str) -> None:
    with pytest.raises(StorageKeyError):
        LocalStorage(tmp_path).path(key)
