"""Reading the gateway's access log, which nginx writes in batches (a full buffer, or a second)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Entry = dict[str, Any]


async def logged(
    path: Path, complete: Callable[[list[Entry]], bool], *, timeout: float = 15.0
) -> list[Entry]:
    """The log's entries once `complete` holds for them: nginx may hold a line for a second."""
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text() if path.exists() else ""
        entries = [json.loads(line) for line in text.splitlines() if line.strip()]
        if complete(entries):
            return entries
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never held the awaited entries:\n{text[-2000:]}")
        await asyncio.sleep(0.05)


def with_request_ids(request_ids: set[str]) -> Callable[[list[Entry]], bool]:
    return lambda entries: request_ids <= {entry["request_id"] for entry in entries}


def with_path(path: str) -> Callable[[list[Entry]], bool]:
    return lambda entries: any(entry["path"] == path for entry in entries)
