"""Both storage backends through the same tests: the local directory and S3 (SeaweedFS).

Atomic writes (multipart for large files on S3, aborted on failure), ranged reads, listings for
gc, presigned URLs, keys that cannot escape, and a store that cannot be reached.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.media.object_storage import S3Storage, StorageURLError, parse_storage_url
from services.media.storage import LocalStorage, Storage, StorageKeyError, StorageUnavailable
from tests.conftest import free_port

DATA = bytes(range(256)) * 10


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read_all(storage: Storage, key: str, *args: int, **kwargs: int) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key, *args, **kwargs)])


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "store")
    s3: S3Storage = request.getfixturevalue("s3_storage")
    return s3


async def test_write_then_read(storage: Storage) -> None:
    assert await storage.write("videos/a/b.mp4", chunks(DATA[:100], DATA[100:])) == len(DATA)
    assert await storage.size("videos/a/b.mp4") == len(DATA)
    assert await read_all(storage, "videos/a/b.mp4") == DATA


async def test_local_files_sit_under_the_root(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.write("videos/a/b.mp4", chunks(DATA))
    assert (tmp_path / "videos" / "a" / "b.mp4").read_bytes() == DATA


async def test_ranged_reads_in_small_chunks(storage: Storage) -> None:
    await storage.write("f", chunks(DATA))
    pieces = [chunk async for chunk in storage.read("f", 10, 1000, chunk_size=64)]
    assert b"".join(pieces) == DATA[10:1001]
    assert max(len(piece) for piece in pieces) == 64
    assert await read_all(storage, "f", len(DATA) - 1, len(DATA) + 50) == DATA[-1:]
    assert await read_all(storage, "f", 2000) == DATA[2000:]


async def test_a_large_write_in_parts_reads_back_whole(storage: Storage) -> None:
    # Larger than two of the test bucket's 5 MiB parts: a multipart upload on S3.
    block = os.urandom(1024 * 1024)
    size = await storage.write("big.mp4", chunks(*[block] * 11, b"tail"))
    assert size == 11 * len(block) + 4
    assert await storage.size("big.mp4") == size
    digest = hashlib.sha256()
    async for chunk in storage.read("big.mp4"):
        digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(block * 11 + b"tail").hexdigest()
    assert await read_all(storage, "big.mp4", size - 6) == block[-2:] + b"tail"
    if isinstance(storage, S3Storage):
        # Three 5 MiB parts, each checked by the store against the SHA-256 sent with it.
        client = await storage.client()
        head = await client.head_object(
            Bucket=storage.bucket, Key=storage.object_key("big.mp4"), ChecksumMode="ENABLED"
        )
        assert head["ChecksumSHA256"].endswith("-3")


@pytest.mark.parametrize("fail_after", [1, 12], ids=["small", "multipart"])
async def test_failed_write_leaves_nothing(storage: Storage, fail_after: int) -> None:
    async def broken() -> AsyncIterator[bytes]:
        for _ in range(fail_after):
            yield b"x" * 1024 * 1024
        raise RuntimeError("source went away")

    with pytest.raises(RuntimeError):
        await storage.write("videos/x.mp4", broken())
    assert await storage.size("videos/x.mp4") is None
    assert [item async for item in storage.objects()] == []
    # An aborted multipart upload leaves no parts behind.
    assert [upload async for upload in storage.pending_uploads()] == []


async def test_delete_and_missing(storage: Storage) -> None:
    await storage.write("f", chunks(b"x"))
    await storage.delete("f")
    await storage.delete("f")
    assert await storage.size("f") is None
    with pytest.raises(FileNotFoundError):
        await read_all(storage, "f")


async def test_empty_file(storage: Storage) -> None:
    assert await storage.write("empty", chunks()) == 0
    assert await storage.size("empty") == 0
    assert await read_all(storage, "empty") == b""


async def test_objects_list_what_is_stored(storage: Storage) -> None:
    await storage.write("videos/1/a.mp4", chunks(b"abc"))
    await storage.write("videos/2/thumbnail.jpg", chunks(b"jpeg"))
    listed = {item.key: item.size async for item in storage.objects()}
    assert listed == {"videos/1/a.mp4": 3, "videos/2/thumbnail.jpg": 4}


async def test_presigned_url(storage: Storage) -> None:
    await storage.write("videos/p.mp4", chunks(DATA), content_type="video/mp4")
    disposition = 'attachment; filename="p.mp4"'
    url = await storage.presign_get("videos/p.mp4", 60, content_disposition=disposition)
    if isinstance(storage, LocalStorage):
        assert url is None  # nothing outside us can read a local directory
        return
    assert url is not None
    async with httpx.AsyncClient(trust_env=False) as client:
        answer = await client.get(url, headers={"Range": "bytes=0-9"})
        assert answer.status_code == 206
        assert answer.content == DATA[:10]
        assert answer.headers["content-disposition"] == disposition
        tampered = await client.get(url.replace("p.mp4", "q.mp4"))
        assert tampered.status_code == 403


@pytest.mark.s3
async def test_a_stale_multipart_upload_is_listed_and_aborted(s3_storage: S3Storage) -> None:
    client = await s3_storage.client()
    await client.create_multipart_upload(
        Bucket=s3_storage.bucket, Key=s3_storage.object_key("videos/killed.mp4")
    )
    (upload,) = [upload async for upload in s3_storage.pending_uploads()]
    assert upload.key == "videos/killed.mp4"
    await s3_storage.abort_upload(upload)
    assert [upload async for upload in s3_storage.pending_uploads()] == []


async def test_an_unreachable_store_says_so() -> None:
    storage = S3Storage(
        "bucket",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        access_key_id="key",
        secret_access_key="secret",
        connect_timeout=0.5,
    )
    try:
        with pytest.raises(StorageUnavailable, match="object storage unavailable"):
            await storage.size("f")
        with pytest.raises(StorageUnavailable):
            await storage.write("f", chunks(b"data"))
        with pytest.raises(StorageUnavailable):
            await read_all(storage, "f")
    finally:
        await storage.close()


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [("s3://media", "media", ""), ("s3://media/a/b/", "media", "a/b/")],
)
def test_storage_urls(url: str, bucket: str, prefix: str) -> None:
    assert parse_storage_url(url) == (bucket, prefix)


@pytest.mark.parametrize("url", ["media", "http://media/x", "s3:///x", "s3://m/../x", "s3://m?x=1"])
def test_bad_storage_urls(url: str) -> None:
    with pytest.raises(StorageURLError):
        parse_storage_url(url)


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "../outside", "a/../../b", "a//b", "a/./b", "a\\b", "a\x00b"]
)
async def test_keys_cannot_escape_the_root(storage: Storage, key: str) -> None:
    with pytest.raises(StorageKeyError):
        await storage.write(key, chunks(b"x"))
