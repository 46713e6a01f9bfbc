"""`natomedia media import` in batches: boundaries, a failing batch, one-line errors, and no
statement that outgrows PostgreSQL's bind-parameter limit."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from services.common.database import Database
from services.media import bulk_import
from services.media.config import MediaSettings
from services.media.models import Rendition, Video, VideoChange, VideoTag
from services.media.service import VideoFilters, list_videos
from services.media.storage import LocalStorage
from tests.media.test_import import counts, run, write
from tests.statements import planner_rows


@pytest.fixture
def settings(settings_factory: Callable[..., MediaSettings]) -> MediaSettings:
    return settings_factory(ffprobe_path="not-installed-ffprobe", ffmpeg_path="not-ffmpeg")


def stored_rows(settings: MediaSettings, rows: int, start: int = 0) -> list[dict[str, Any]]:
    """Videos whose two renditions are files already in storage, as a migrated archive has."""
    storage = LocalStorage(settings.resolved_storage_dir)
    videos = []
    for n in range(start, start + rows):
        renditions = []
        for label in ("1080p", "270p"):
            content = f"{label} of clip {n}".encode()
            key = f"legacy/{n}-{label}.mp4"
            target = storage.path(key)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            renditions.append(
                {
                    "label": label,
                    "storage_key": key,
                    "size_bytes": len(content),
                    "sha256": hashlib.sha256(content).hexdigest(),
                }
            )
        videos.append(
            {
                "external_id": f"legacy-{n}",
                "title": f"Archive clip {n} from Oslo",
                "tags": ["Archive", f"batch {n // 2}"],
                "shot_list": "1. Wide shot",
                "transcript": f"The Secretary General speaks, word{n}",
                "published_at": f"2001-01-{n + 1:02d}T12:00:00Z",
                "renditions": renditions,
            }
        )
    return videos


async def search(settings: MediaSettings, q: str) -> list[str]:
    database = Database(settings.resolved_database_url)
    try:
        async with database.sessionmaker() as session:
            videos, _ = await list_videos(session, VideoFilters(q=q), limit=100, cursor=None)
    finally:
        await database.dispose()
    return sorted(video.external_id or "" for video in videos)


async def test_batches_across_boundaries_write_every_row_once(
    settings: MediaSettings, tmp_path: Path
) -> None:
    path = write(tmp_path, stored_rows(settings, 5))
    database = Database(settings.resolved_database_url)
    storage = LocalStorage(settings.resolved_storage_dir)
    try:
        result = await bulk_import.import_file(database, storage, path, batch_size=2)
        assert (result.imported, result.renditions) == (5, 10)
        async with database.sessionmaker() as session:
            positions = list(
                await session.scalars(select(Video.feed_position).order_by(Video.feed_position))
            )
            tags = await session.scalar(select(func.count()).select_from(VideoTag))
            changes = list(await session.scalars(select(VideoChange.feed_position)))
    finally:
        await database.dispose()
    # Each video its own feed position, consecutive across the three batches.
    assert positions == list(range(positions[0], positions[0] + 5))
    assert sorted(changes) == positions
    assert tags == 10
    assert await counts(settings) == (5, 10, 5)
    # Every batch reached the search index, whatever the engine.
    assert await search(settings, "oslo") == [f"legacy-{n}" for n in range(5)]
    assert await search(settings, "word4 secretary") == ["legacy-4"]


async def test_a_failing_batch_leaves_none_of_its_rows_and_says_so_in_one_line(
    settings: MediaSettings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write(tmp_path, stored_rows(settings, 5))
    insert = bulk_import._insert
    calls = 0

    async def second_batch_fails(*args: Any) -> None:
        nonlocal calls
        calls += 1
        await insert(*args)  # the batch's rows are written in its transaction, then it fails
        if calls == 2:
            raise OperationalError("INSERT", {}, Exception("disk I/O error\nmore detail"))

    monkeypatch.setattr(bulk_import, "_insert", second_batch_fails)
    monkeypatch.setattr(bulk_import, "BATCH_SIZE", 2)
    monkeypatch.setattr(
        bulk_import.import_file, "__kwdefaults__", {"ffprobe": "x", "batch_size": 2}
    )
    assert await run(settings, path) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-2] == "rows 3-4: not written: OperationalError: disk I/O error"
    assert err[-1] == (
        "import stopped: 2 video(s) were imported before it; run it again to import the rest"
    )
    # The first batch stays; none of the second's rows, changes, tags or index entries.
    assert await counts(settings) == (2, 4, 2)
    assert await search(settings, "oslo") == ["legacy-0", "legacy-1"]

    monkeypatch.setattr(bulk_import, "_insert", insert)
    assert await run(settings, path) == 0
    assert await counts(settings) == (5, 10, 5)
    assert await search(settings, "oslo") == [f"legacy-{n}" for n in range(5)]


async def test_a_row_that_changed_after_the_check_stops_once_the_batch_in_flight_is_written(
    settings: MediaSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = stored_rows(settings, 5)
    path = write(tmp_path, rows)

    async def checked_before_the_change(*args: Any, **kwargs: Any) -> tuple[int, set[str]]:
        # The file as the check saw it, then changed on disk before the writing pass.
        checked = await check_file(*args, **kwargs)
        path.write_text(json.dumps([*rows[:3], {"external_id": "legacy-3"}, rows[4]]))
        return checked

    check_file = bulk_import.check_file
    monkeypatch.setattr(bulk_import, "check_file", checked_before_the_change)
    database = Database(settings.resolved_database_url)
    storage = LocalStorage(settings.resolved_storage_dir)
    try:
        with pytest.raises(bulk_import.ImportFailed) as failed:
            await bulk_import.import_file(database, storage, path, batch_size=2)
    finally:
        await database.dispose()
    assert failed.value.problems == ["row 4 (legacy-3): the file changed while it was imported"]
    # Rows 1-2 were being written when row 4 was read: they are, and the count says so.
    assert failed.value.written == 2
    assert await counts(settings) == (2, 4, 2)


async def test_a_storage_key_given_twice_is_one_line_and_nothing_is_written(
    settings: MediaSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = stored_rows(settings, 3)
    rows[2]["renditions"][1] = dict(rows[0]["renditions"][0])
    assert await run(settings, write(tmp_path, rows)) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "row 3 (legacy-2): renditions[1]: storage_key 'legacy/0-1080p.mp4' is also given by "
        "row 1 (legacy-0): renditions[0]",
        "import failed: 1 problem(s); nothing was imported",
    ]
    assert await counts(settings) == (0, 0, 0)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'[{"external_id": "a", "title": "\xff\xfe"}]', "not a JSON array of videos"),
        (b"[" + b'{"external_id": "a"},' * 3, "not a JSON array of videos"),
        (b'[{"external_id": "a", "title": "x", "renditions": [{"label": "x", '
         b'"storage_key": "../../etc/passwd", "size_bytes": 1, "sha256": "' + b"0" * 64 + b'"}]}]',
         "row 1 (a): renditions[0]: storage_key '../../etc/passwd'"),
        (b'[{"external_id": "a", "title": "x", "published_at": "yesterday", "renditions": []}]',
         "row 1 (a): published_at:"),
    ],
)  # fmt: skip
async def test_bad_input_is_refused_in_lines_not_a_traceback(
    settings: MediaSettings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    expected: str,
) -> None:
    path = tmp_path / "archive.json"
    path.write_bytes(content)
    assert await run(settings, path) == 1
    err = capsys.readouterr().err
    assert expected in err
    assert err.endswith("nothing was imported\n")
    assert "Traceback" not in err
    assert all("\n" not in line for line in err.splitlines())
    assert await counts(settings) == (0, 0, 0)


async def test_lookups_stay_under_the_bind_parameter_limit(settings: MediaSettings) -> None:
    """More values than PostgreSQL takes in one statement (32,767): chunked, not refused."""
    many = [f"legacy-{n}" for n in range(40_000)]
    database = Database(settings.resolved_database_url)
    try:
        async with database.sessionmaker() as session:
            assert await bulk_import._known(session, many) == set()
            assert await bulk_import._taken_keys(session, many) == set()
    finally:
        await database.dispose()


def test_a_batch_writes_a_bounded_number_of_values_per_statement() -> None:
    # Lookups are chunked below PostgreSQL's limit; inserts go row by row through the driver's
    # executemany (or SQLAlchemy's insertmanyvalues, which pages under the same limit).
    assert bulk_import.MAX_IN_VALUES < 32_767
    assert Rendition.__table__.c.storage_key.unique


async def test_a_database_without_the_tables_is_one_line(
    settings_factory: Callable[..., MediaSettings],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    empty = settings_factory(database_url=f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}")
    path = write(tmp_path, stored_rows(empty, 1))
    assert await run(empty, path) == 1
    err = capsys.readouterr().err
    assert err.startswith("import failed: the database refused: no such table: videos")
    assert err.count("\n") == 1


async def test_an_import_leaves_the_planner_statistics_of_what_it_wrote(
    settings: MediaSettings, tmp_path: Path
) -> None:
    # Without them the planner plans the archive as the empty tables it last saw.
    database = Database(settings.resolved_database_url)
    try:
        assert await planner_rows(database, "videos") == 0
        path = write(tmp_path, stored_rows(settings, 25))
        assert await run(settings, path) == 0
        assert await planner_rows(database, "videos") == 25
    finally:
        await database.dispose()
