"""Files only the service's own user may read: SQLite databases, saved mail, dev keys and secrets.

Each is created with mode 0600 by the call that creates it (os.open / mkstemp), never widened
first and narrowed by a chmod afterwards, so no other local user can read it in between.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIRECTORY = 0o700


def make_private_directory(path: Path) -> None:
    # The mode applies only to directories made here; an existing one is the operator's choice.
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY)


def create_private(path: Path, content: bytes) -> None:
    """Write a new file readable by this user only; FileExistsError if it is already there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)


def create_private_once(path: Path, content: bytes) -> None:
    """Put `content` at `path` (0600) unless a file is already there, whole or not at all.

    Several processes may start on one data dir at once (replicas, the bench's two media
    servers): the content is written whole to a draft of its own and then linked into place,
    which only one of them can do, so all of them read the same content, never half of it.
    """
    make_private_directory(path.parent)
    fd, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        os.unlink(draft)


def touch_private(path: Path) -> None:
    """Create an empty file readable by this user only, unless one is already there."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
