"""`natomedia media ingest`, `natomedia seed media` and `natomedia migrate media`."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, func, inspect, select
from sqlalchemy.orm import selectinload

from services.common.database import Database
from services.common.migrations import alembic_config
from services.gateway.cli import build_parser
from services.media import commands
from services.media.config import MediaSettings
from services.media.models import Base, Video
from services.media.storage import LocalStorage
from tests.media.conftest import DEMO_FILE


def ingest_args(*argv: str) -> Any:
    return build_parser().parse_args(["media", "ingest", *argv])


async def load_videos(settings: MediaSettings) -> list[Video]:
    database = Database(settings.resolved_database_url)
    try:
        async with database.sessionmaker() as session:
            statement = select(Video).options(
                selectinload(Video.tags), selectinload(Video.renditions)
            )
            return list((await session.scalars(statement.order_by(Video.published_at))).all())
    finally:
        await database.dispose()


def printed_ids(output: str) -> dict[str, uuid.UUID]:
    words = dict(
        line.split()[:2]
        for line in output.splitlines()
        if line.split()[0] in {"video", "rendition"}
    )
    return {name: uuid.UUID(value) for name, value in words.items()}


@pytest.mark.usefixtures("ffprobe")
async def test_ingest_creates_a_probed_video(
    settings: MediaSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ingest_args(
        str(DEMO_FILE), "--title", "Ministers in Oslo", "--description", "Arrivals",
        "--tag", "Oslo", "--tag", "NATO-Russia Council",
    )  # fmt: skip
    assert await commands.cli_ingest(settings, args) == 0
    ids = printed_ids(capsys.readouterr().out)

    [video] = await load_videos(settings)
    assert video.id == ids["video"]
    assert (video.title, video.description) == ("Ministers in Oslo", "Arrivals")
    assert [tag.tag for tag in video.tags] == ["nato-russia council", "oslo"]
    assert video.duration_seconds == pytest.approx(4.0, abs=0.1)
    assert video.thumbnail_key is not None
    [rendition] = video.renditions
    assert rendition.id == ids["rendition"]
    assert (rendition.video_codec, rendition.audio_codec) == ("h264", "aac")
    assert (rendition.width, rendition.height, rendition.frame_rate) == (480, 270, 25.0)
    assert rendition.label == "270p25 H.264 MP4"
    assert rendition.container == "mp4"
    assert rendition.content_type == "video/mp4"
    assert rendition.bitrate is not None
    assert rendition.bitrate > 0
    source = DEMO_FILE.read_bytes()
    assert rendition.size_bytes == len(source)
    assert rendition.sha256 == hashlib.sha256(source).hexdigest()
    stored = LocalStorage(settings.resolved_storage_dir).path(rendition.storage_key)
    assert stored.read_bytes() == source
    assert rendition.filename == f"ministers-in-oslo-270p25-h-264-{rendition.id.hex[:8]}.mp4"


@pytest.mark.usefixtures("ffprobe")
async def test_ingest_with_video_id_adds_a_rendition(
    settings: MediaSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await commands.cli_ingest(settings, ingest_args(str(DEMO_FILE), "--title", "T")) == 0
    video_id = printed_ids(capsys.readouterr().out)["video"]
    [before] = await load_videos(settings)
    args = ingest_args(
        str(DEMO_FILE), "--title", "ignored", "--video-id", str(video_id),
        "--label", "Proxy copy", "--tag", "extra",
    )  # fmt: skip
    assert await commands.cli_ingest(settings, args) == 0
    assert "(extended)" in capsys.readouterr().out
    [after] = await load_videos(settings)
    assert after.title == "T"
    assert sorted(r.label for r in after.renditions) == ["270p25 H.264 MP4", "Proxy copy"]
    assert [tag.tag for tag in after.tags] == ["extra"]
    assert after.updated_at > before.updated_at


async def test_ingest_without_ffprobe_still_records_size_and_hash(
    settings_factory: Callable[..., MediaSettings], tmp_path: Path
) -> None:
    settings = settings_factory(ffprobe_path="not-installed-ffprobe", ffmpeg_path="not-ffmpeg")
    source = tmp_path / "raw.mov"
    source.write_bytes(b"\x00" * 5000 + b"end")
    assert await commands.cli_ingest(settings, ingest_args(str(source), "--title", "Raw")) == 0
    [video] = await load_videos(settings)
    [rendition] = video.renditions
    assert rendition.video_codec is None
    assert rendition.label == "MOV"
    assert rendition.content_type == "video/quicktime"
    assert rendition.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert video.thumbnail_key is None


@pytest.mark.parametrize(
    "argv",
    [
        ("/nonexistent/file.mp4", "--title", "X"),
        (str(DEMO_FILE), "--title", "X", "--video-id", str(uuid.UUID(int=1))),
        (str(DEMO_FILE), "--title", "X", "--video-id", "not-a-uuid"),
    ],
)
async def test_ingest_failures_exit_1_and_store_nothing(
    settings: MediaSettings, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    assert await commands.cli_ingest(settings, ingest_args(*argv)) == 1
    assert capsys.readouterr().err.startswith("ingest failed:")
    assert await load_videos(settings) == []
    storage_dir = settings.resolved_storage_dir
    assert not storage_dir.exists() or not any(p.is_file() for p in storage_dir.rglob("*"))


@pytest.mark.usefixtures("ffprobe")
async def test_seed_loads_the_demo_catalogue_once(settings: MediaSettings) -> None:
    await commands.seed(settings)
    await commands.seed(settings)
    videos = await load_videos(settings)
    assert len(videos) == 3
    oslo = next(v for v in videos if v.related_article_slugs)
    assert oslo.title == "Foreign Ministers meet in Oslo"
    assert oslo.related_article_slugs == ["nato-russia-council-oslo-2007"]
    assert oslo.published_at.date() == datetime(2007, 4, 26, tzinfo=UTC).date()
    assert oslo.credits == "NATO"
    assert oslo.location == "Oslo, Norway"
    assert "oslo" in [tag.tag for tag in oslo.tags]
    storage = LocalStorage(settings.resolved_storage_dir)
    total = 0
    for video in videos:
        [rendition] = video.renditions
        assert rendition.video_codec == "h264"
        data = storage.path(rendition.storage_key).read_bytes()
        assert hashlib.sha256(data).hexdigest() == rendition.sha256
        total += len(data)
    assert total < 1_000_000


def test_demo_manifest_names_shipped_files() -> None:
    for entry in commands.demo_manifest():
        assert (commands.DEMO_DIR / entry["file"]).is_file()
        assert entry["credits"] == "NATO"


async def test_migrate_creates_the_schema_with_its_own_version_table(tmp_path: Path) -> None:
    settings = MediaSettings(NATOMEDIA_DATA_DIR=tmp_path, NATOMEDIA_ENV="test")
    await commands.migrate(settings)
    await commands.migrate(settings)  # idempotent
    database = Database(settings.resolved_database_url)
    try:
        async with database.engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
            version = await connection.scalar(select(func.count()).select_from(
                Base.metadata.tables["videos"]))  # fmt: skip
    finally:
        await database.dispose()
    assert {"videos", "video_tags", "renditions", "download_grants"} <= set(tables)
    assert "alembic_version_media" in tables
    assert version == 0


async def test_migration_matches_the_models(database_url: str) -> None:
    database = Database(database_url)

    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "version_table": "alembic_version_media"}
        )
        # The search index is the migration's alone: a tsvector column or an FTS5 table.
        return [
            difference
            for difference in compare_metadata(context, Base.metadata)
            if "search" not in str(difference)
        ]

    try:
        async with database.engine.connect() as connection:
            diff = await connection.run_sync(differences)
    finally:
        await database.dispose()
    assert diff == []


def test_production_refuses_to_start_without_a_signing_secret(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="MEDIA_SIGNING_SECRET is not set"):
        MediaSettings(NATOMEDIA_ENV="production", NATOMEDIA_DATA_DIR=tmp_path)


def test_development_makes_and_keeps_a_signing_secret(tmp_path: Path) -> None:
    settings = MediaSettings(NATOMEDIA_DATA_DIR=tmp_path)
    first = settings.resolved_signing_secret.get_secret_value()
    assert len(first) >= 32
    assert (
        MediaSettings(NATOMEDIA_DATA_DIR=tmp_path).resolved_signing_secret.get_secret_value()
        == first
    )


async def test_ingest_takes_every_metadata_field_and_shows_progress(
    settings_factory: Callable[..., MediaSettings],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = settings_factory(ffprobe_path="not-installed-ffprobe", ffmpeg_path="not-ffmpeg")
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"x" * 3_000_000)
    (tmp_path / "shots.txt").write_text("1. Wide shot\n2. Close-up\n")
    (tmp_path / "words.txt").write_text("Bonjour à tous.\n")
    args = ingest_args(
        str(source), "--title", "Sommet", "--language", "fr", "--credits", "NATO",
        "--copyright", "NATO 2026", "--location", "Vilnius, Lithuania",
        "--shot-list-file", str(tmp_path / "shots.txt"),
        "--transcript-file", str(tmp_path / "words.txt"),
    )  # fmt: skip
    assert await commands.cli_ingest(settings, args) == 0
    [video] = await load_videos(settings)
    assert (video.language, video.credits, video.copyright, video.location) == (
        "fr", "NATO", "NATO 2026", "Vilnius, Lithuania"
    )  # fmt: skip
    assert video.shot_list == "1. Wide shot\n2. Close-up\n"
    assert video.transcript == "Bonjour à tous.\n"
    # Not a terminal: plain progress lines on stderr, ending at 100%.
    progress = capsys.readouterr().err.splitlines()
    assert all(line.startswith("copying clip.mp4: ") for line in progress)
    assert progress[-1] == "copying clip.mp4: 100% (3000000/3000000 bytes)"
    assert len(progress) <= 11


async def test_ingest_with_an_unreadable_transcript_file_fails_in_one_line(
    settings: MediaSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ingest_args(str(DEMO_FILE), "--title", "X", "--transcript-file", "/nonexistent.txt")
    assert await commands.cli_ingest(settings, args) == 1
    err = capsys.readouterr().err
    assert err.startswith("ingest failed: --transcript-file")
    assert len(err.splitlines()) == 1
    assert await load_videos(settings) == []


async def test_withdraw_and_restore_commands(
    settings_factory: Callable[..., MediaSettings],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = settings_factory(ffprobe_path="not-installed-ffprobe", ffmpeg_path="not-ffmpeg")
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"x" * 100)
    assert await commands.cli_ingest(settings, ingest_args(str(source), "--title", "T")) == 0
    video_id = printed_ids(capsys.readouterr().out)["video"]

    parse = build_parser().parse_args
    args = parse(["media", "withdraw", str(video_id), "--reason-code", "rights", "--note", "n"])
    assert await commands.cli_withdraw(settings, args) == 0
    assert capsys.readouterr().out == f"video {video_id} withdrawn, version 2\n"
    [video] = await load_videos(settings)
    assert (video.status, video.withdrawal_reason, video.withdrawal_note) == (
        "withdrawn",
        "rights",
        "n",
    )

    assert await commands.cli_restore(settings, parse(["media", "restore", str(video_id)])) == 0
    assert capsys.readouterr().out == f"video {video_id} published, version 3\n"

    unknown = parse(["media", "withdraw", str(uuid.UUID(int=5)), "--reason", "error"])
    assert await commands.cli_withdraw(settings, unknown) == 1
    assert capsys.readouterr().err == f"withdraw failed: no video with id {uuid.UUID(int=5)}\n"
    with pytest.raises(SystemExit):
        parse(["media", "withdraw", str(video_id), "--reason-code", "legal"])


async def test_the_living_archive_migration_downgrades_and_upgrades_again(tmp_path: Path) -> None:
    settings = MediaSettings(NATOMEDIA_DATA_DIR=tmp_path, NATOMEDIA_ENV="test")
    await commands.migrate(settings)
    database = Database(settings.resolved_database_url)
    config = alembic_config(commands.MIGRATIONS_DIR, database.url)

    def downgrade(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")

    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(downgrade)
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
            columns = await connection.run_sync(
                lambda sync: [c["name"] for c in inspect(sync).get_columns("videos")]
            )
    finally:
        await database.dispose()
    assert "feed_counter" not in tables
    assert "status" not in columns
    await commands.migrate(settings)
