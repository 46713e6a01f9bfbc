"""The change feed is exact: a partner polling `updated_since` + cursor misses nothing.

A long ingest overlapped by a short one used to commit with the older timestamp (stamped before
it copied), so a partner whose cursor had moved past the short one never saw the long one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI

from services.common.database import Database
from services.media.feed import record_change
from services.media.ingest import VideoMetadata, ingest_file
from services.media.models import Video
from services.media.storage import LocalStorage

SINCE = (datetime.now(UTC) - timedelta(days=1)).isoformat()


class GatedStorage(LocalStorage):
    """Local storage whose copy of one file waits until the test opens the gate."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.copying = asyncio.Event()
        self.gate = asyncio.Event()

    async def write(self, key: str, chunks: AsyncIterable[bytes], **options: str | None) -> int:
        self.copying.set()
        await self.gate.wait()
        return await super().write(key, chunks, **options)


class Poller:
    """A partner's sync loop: keep the last non-null cursor, ask again with it."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.cursor: str | None = None
        self.seen: list[str] = []

    async def poll(self) -> list[str]:
        new: list[str] = []
        while True:
            params = {"updated_since": SINCE, "limit": "1"}
            if self.cursor is not None:
                params["cursor"] = self.cursor
            response = await self.client.get(
                "/v1/media/videos", params=params, headers={"Cache-Control": "no-cache"}
            )
            assert response.status_code == 200, response.text
            body = response.json()
            if not body["items"]:
                break
            new += [item["id"] for item in body["items"]]
            self.cursor = body["next_cursor"]
        self.seen += new
        return new


async def _ingest(database: Database, storage: LocalStorage, source: Path, title: str) -> uuid.UUID:
    async with database.sessionmaker() as session:
        result = await ingest_file(
            session,
            storage,
            source,
            VideoMetadata(title=title),
            ffprobe="no-ffprobe-for-this-test",
            ffmpeg="no-ffmpeg-for-this-test",
        )
        await session.commit()
    return result.video_id


async def test_two_interleaved_ingests_reach_two_pollers(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    database: Database = app.state.database
    gated = GatedStorage(app.state.storage.root)
    plain: LocalStorage = app.state.storage
    long_file = tmp_path / "long.mp4"
    long_file.write_bytes(b"L" * 300_000)
    short_file = tmp_path / "short.mp4"
    short_file.write_bytes(b"S" * 10)

    early, late = Poller(client), Poller(client)
    assert await early.poll() == []

    long_ingest = asyncio.create_task(_ingest(database, gated, long_file, "Long"))
    await asyncio.wait_for(gated.copying.wait(), 10)
    short_id = await _ingest(database, plain, short_file, "Short")

    # The early poller sees the short ingest while the long one is still copying.
    assert await early.poll() == [str(short_id)]

    gated.gate.set()
    long_id = await asyncio.wait_for(long_ingest, 10)

    # The long ingest committed after the short one: its change comes after, not before.
    assert await early.poll() == [str(long_id)]
    assert await early.poll() == []
    assert early.seen == [str(short_id), str(long_id)]

    # A poller starting now sees both once, in commit order.
    assert await late.poll() == [str(short_id), str(long_id)]
    assert await late.poll() == []


async def test_positions_become_visible_in_commit_order(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """The writer that takes a position first makes the next writer wait until it commits, so
    a poller never sees position n+1 while position n is still invisible."""
    database: Database = app.state.database
    poller = Poller(client)

    def new_video(title: str) -> Video:
        now = datetime.now(UTC)
        return Video(
            id=uuid.uuid4(),
            title=title,
            description="",
            published_at=now,
            created_at=now,
            updated_at=now,
            related_article_slugs=[],
            tags=[],
        )

    first = new_video("first")
    second = new_video("second")
    async with database.sessionmaker() as session_a:
        session_a.add(first)
        await record_change(session_a, first, action="create", editor=None, created=True)

        async def write_second() -> None:
            async with database.sessionmaker() as session_b:
                session_b.add(second)
                await record_change(session_b, second, action="create", editor=None, created=True)
                await session_b.commit()

        writer = asyncio.create_task(write_second())
        await asyncio.sleep(0.2)
        # Neither is visible: the first is uncommitted, the second waits for the counter.
        assert await poller.poll() == []
        assert not writer.done()
        await session_a.commit()
    await asyncio.wait_for(writer, 10)

    assert await poller.poll() == [str(first.id), str(second.id)]
    assert first.feed_position < second.feed_position
