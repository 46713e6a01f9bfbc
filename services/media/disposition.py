"""The name a downloaded file is saved under: `Content-Disposition`, for us and for the store."""

from __future__ import annotations

import functools
import re
import unicodedata
from urllib.parse import quote

from anyascii import anyascii

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")
# Control characters and path separators have no place in a saved file name.
_UNSAFE_TITLE = re.compile(r"[\x00-\x1f\x7f/\\]+")


# A bulk import names every rendition of a video after the same title, and labels repeat.
@functools.lru_cache(maxsize=1024)
def slugify(text: str, limit: int = 80) -> str:
    """Lower-case ASCII words joined by dashes; non-Latin scripts are transliterated."""
    ascii_text = anyascii(unicodedata.normalize("NFKC", text))
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:limit].strip("-")


def safe_filename(name: str) -> str:
    """ASCII letters, digits, dot, dash and underscore only: nothing to escape in a header."""
    cleaned = _UNSAFE_FILENAME.sub("-", name).strip(".-") or "download"
    return cleaned[:150]


def _suffix_after_title(stem: str, title: str) -> str:
    title_slug = slugify(title)
    if title_slug and stem.startswith(title_slug):
        return stem[len(title_slug) :].strip("-")
    return stem


def attachment(filename: str, title: str) -> str:
    """RFC 6266: an ASCII `filename` for every client, `filename*` with the real title."""
    ascii_name = safe_filename(filename)
    value = f'attachment; filename="{ascii_name}"'
    clean_title = _UNSAFE_TITLE.sub(" ", title).strip()
    stem, dot, extension = ascii_name.rpartition(".")
    if clean_title and dot:
        # The ASCII name is `<title slug>-<label slug>-<id prefix>`; the title slug is
        # replaced by the title itself, the rest (which tells renditions apart) is kept.
        suffix = _suffix_after_title(stem, title)
        original = f"{clean_title}-{suffix}.{extension}" if suffix else f"{clean_title}.{extension}"
        value += "; filename*=UTF-8''" + quote(original[:200], safe="")
    return value
