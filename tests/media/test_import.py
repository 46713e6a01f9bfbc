"""`natomedia media import FILE.json`: every row checked first, all or nothing, idempotent."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from services.common.database import Database
from services.gateway.cli import build_parser
from services.media import commands
from services.media.config import MediaSettings
from services.media.models import Rendition, Video, VideoChange
from services.media.storage import LocalStorage


@pytest.fixture
def settings(settings_factory: Callable[..., MediaSettings]) -> MediaSettings:
    return settings_factory(ffprobe_path="not-installed-ffprobe", ffmpeg_path="not-ffmpeg")


async def run(settings: MediaSettings, path: Path) -> int:
    args = build_parser().parse_args(["media", "import", str(path)])
    return await commands.cli_import(settings, args)


async def counts(settings: MediaSettings) -> tuple[int, int, int]:
    database = Database(settings.resolved_database_url)
    try:
        async with database.sessionmaker() as session:
            videos = await session.scalar(select(func.count()).select_from(Video))
            renditions = await session.scalar(select(func.count()).select_from(Rendition))
            changes = await session.scalar(select(func.count()).select_from(VideoChange))
    finally:
        await database.dispose()
    return videos or 0, renditions or 0, changes or 0


def archive(tmp_path: Path, settings: MediaSettings, rows: int = 3) -> list[dict[str, Any]]:
    """Rows with a local file each, and one with a file already in storage."""
    storage = LocalStorage(settings.resolved_storage_dir)
    stored = b"already in storage"
    target = storage.path("legacy/old-clip.mp4")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(stored)
    videos: list[dict[str, Any]] = []
    for n in range(rows):
        local = tmp_path / f"clip{n}.mp4"
        local.write_bytes(f"clip {n}".encode() * 100)
        videos.append(
            {
                "external_id": f"legacy-{n}",
                "title": f"Archive clip {n}",
                "description": "From the old archive",
                "tags": ["Archive"],
                "published_at": f"2001-01-0{n + 1}T12:00:00Z",
                "language": "en",
                "shot_list": "1. Wide shot",
                "renditions": [{"label": "Master", "path": local.name}],
            }
        )
    videos[0]["renditions"].append(
        {
            "label": "Legacy proxy",
            "storage_key": "legacy/old-clip.mp4",
            "size_bytes": len(stored),
            "sha256": hashlib.sha256(stored).hexdigest(),
        }
    )
    return videos


def write(tmp_path: Path, rows: Any) -> Path:
    path = tmp_path / "archive.json"
    path.write_text(json.dumps(rows))
    return path


async def test_import_writes_every_video_once_and_a_second_run_changes_nothing(
    settings: MediaSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, archive(tmp_path, settings))
    assert await run(settings, path) == 0
    out = capsys.readouterr()
    assert out.out == "imported 3 video(s) with 4 rendition(s); 0 already there\n"
    assert out.err.splitlines()[-1] == "importing archive.json: 100% (3/3)"
    assert await counts(settings) == (3, 4, 3)

    assert await run(settings, path) == 0
    assert capsys.readouterr().out == "imported 0 video(s) with 0 rendition(s); 3 already there\n"
    assert await counts(settings) == (3, 4, 3)

    database = Database(settings.resolved_database_url)
    try:
        async with database.sessionmaker() as session:
            video = await session.scalar(select(Video).where(Video.external_id == "legacy-0"))
            assert video is not None
            assert (video.title, video.language, video.shot_list) == (
                "Archive clip 0", "en", "1. Wide shot"
            )  # fmt: skip
            keys = set(
                await session.scalars(
                    select(Rendition.storage_key).where(Rendition.video_id == video.id)
                )
            )
    finally:
        await database.dispose()
    assert "legacy/old-clip.mp4" in keys


async def test_one_bad_row_writes_nothing_and_every_problem_is_listed(
    settings: MediaSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = archive(tmp_path, settings, rows=4)
    rows[1]["renditions"][0]["path"] = "missing.mp4"
    rows[2]["renditions"] = [
        {"label": "x", "storage_key": "legacy/old-clip.mp4", "size_bytes": 1, "sha256": "0" * 64}
    ]
    rows[3]["external_id"] = "legacy-0"
    rows.append({"external_id": "no-title", "renditions": []})
    path = write(tmp_path, rows)
    assert await run(settings, path) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "import failed: 5 problem(s); nothing was imported"
    problems = "\n".join(err[:-1])
    assert "row 2 (legacy-1): renditions[0]: no such file:" in problems
    assert "row 3 (legacy-2): renditions[0]: storage_key 'legacy/old-clip.mp4': size is" in problems
    assert "row 4 (legacy-0): external_id appears twice in the file" in problems
    assert "row 5 (no-title): title: Field required" in problems
    assert "row 5 (no-title): renditions:" in problems
    assert "Traceback" not in problems
    assert await counts(settings) == (0, 0, 0)
    storage_dir = settings.resolved_storage_dir
    assert [p.name for p in storage_dir.rglob("*") if p.is_file()] == ["old-clip.mp4"]


async def test_a_stored_file_with_another_hash_is_refused(
    settings: MediaSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = archive(tmp_path, settings, rows=1)
    rows[0]["renditions"][1]["sha256"] = "f" * 64
    assert await run(settings, write(tmp_path, rows)) == 1
    assert "SHA-256 differs" in capsys.readouterr().err
    assert await counts(settings) == (0, 0, 0)


@pytest.mark.parametrize("content", ["{not json", '{"videos": []}', "[]", "[1, 2"])
async def test_a_malformed_file_fails_in_lines_not_a_traceback(
    settings: MediaSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    path = tmp_path / "archive.json"
    path.write_text(content)
    assert await run(settings, path) == 1
    err = capsys.readouterr().err
    assert err.endswith("nothing was imported\n")
    assert "Traceback" not in err
    assert await counts(settings) == (0, 0, 0)


async def test_a_missing_file_fails_in_one_line(
    settings: MediaSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run(settings, tmp_path / "nope.json") == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{tmp_path / 'nope.json'}: cannot read")
