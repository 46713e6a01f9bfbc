"""The parts of delivery with rules of their own: header-safe filenames."""

from __future__ import annotations

import pytest

from services.media.delivery import safe_filename
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
