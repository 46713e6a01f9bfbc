"""In-memory maps that keep their newest entries up to a size: the caches and memos of a process."""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def keep_newest(entries: OrderedDict[K, V], key: K, value: V, limit: int) -> None:
    """Store `value` as the newest entry; past `limit` entries the oldest ones go."""
    entries[key] = value
    entries.move_to_end(key)
    while len(entries) > limit:
        entries.popitem(last=False)
