"""The parts of delivery with rules of their own: header-safe filenames."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import unquote

import pytest

from services.media.delivery import RenditionFile, safe_filename
from services.media.ingest import download_filename


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("oslo-2007.mp4", "oslo-2007.mp4"),
        ('evil"; filename="x.exe', "evil-filename-x.exe"),
        ("line\r\nSet-Cookie: a=b.mp4", "line-Set-Cookie-a-b.mp4"),
        ("Genève \u2013 sommet.mp4", "Gen-ve-sommet.mp4"),
        ("../../etc/passwd", "etc-passwd"),
        ("...", "download"),
    ],
)
def test_safe_filename_needs_no_escaping(name: str, safe: str) -> None:
    assert safe_filename(name) == safe


def test_download_filename_names_the_variant_once() -> None:
    assert download_filename("Foreign Ministers meet in Oslo", "1080p25 H.264 MP4", "mp4") == (
        "foreign-ministers-meet-in-oslo-1080p25-h-264.mp4"
    )
    assert download_filename("Raw", "MOV", "mov") == "raw.mov"


RENDITION = uuid.UUID("9b2d7c3a-51e4-4f0a-8c6b-2e7d1f4a6b38")
OTHER = uuid.UUID("1c0e9a77-0000-4000-8000-000000000000")


def test_non_latin_titles_keep_a_readable_ascii_name() -> None:
    assert download_filename("Встреча министров в Осло", "1080p", "mp4", RENDITION) == (
        "vstrecha-ministrov-v-oslo-1080p-9b2d7c3a.mp4"
    )
    assert download_filename("Sommet de l'OTAN à Genève", "MP4", "mp4", RENDITION) == (
        "sommet-de-l-otan-a-geneve-9b2d7c3a.mp4"
    )
    # A title with nothing to transliterate still names the file.
    assert download_filename("!!!", "MP4", "mp4", RENDITION) == "video-9b2d7c3a.mp4"


def test_two_renditions_with_one_label_get_two_names() -> None:
    assert download_filename("Oslo", "1080p", "mp4", RENDITION) != download_filename(
        "Oslo", "1080p", "mp4", OTHER
    )


def test_content_disposition_carries_the_original_title() -> None:
    file = RenditionFile(
        id=RENDITION,
        storage_key="videos/x.mp4",
        size_bytes=1,
        sha256="0" * 64,
        content_type="video/mp4",
        filename="vstrecha-ministrov-1080p-9b2d7c3a.mp4",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        title="Встреча министров",
    )
    header = file.content_disposition
    assert header.startswith('attachment; filename="vstrecha-ministrov-1080p-9b2d7c3a.mp4"; ')
    encoded = header.split("filename*=UTF-8''", 1)[1]
    assert unquote(encoded) == "Встреча министров-1080p-9b2d7c3a.mp4"
    assert encoded.isascii()
    assert " " not in encoded
    assert ";" not in encoded


def test_content_disposition_never_carries_separators_or_controls() -> None:
    file = RenditionFile(
        id=RENDITION,
        storage_key="videos/x.mp4",
        size_bytes=1,
        sha256="0" * 64,
        content_type="video/mp4",
        filename="a-9b2d7c3a.mp4",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        title='../a"\r\nb',
    )
    decoded = unquote(file.content_disposition.split("filename*=UTF-8''", 1)[1])
    assert "/" not in decoded
    assert "\r" not in decoded
    assert "\n" not in decoded
