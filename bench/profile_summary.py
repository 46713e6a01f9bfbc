"""Summarise a py-spy `--format raw` profile: where the samples are, by function and by file.

    .venv/bin/python bench/profile_summary.py bench/work/profiles/news.direct.txt [--top 30]

Self time says what to make cheaper; inclusive time says which call to avoid. Frames are
"function (file:line)"; lines are folded away so one function is one row.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(path: str) -> str:
    for marker in ("site-packages/", "/work/main/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def _key(frame: str) -> str:
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    return f"{match.group('function')} ({_short(match.group('file'))})"


def summarise(path: Path, top: int) -> str:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    by_file: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_key(frame) for frame in stack.split(";") if frame and "(" in frame]
        if not frames:
            continue
        total += count
        self_time[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
        by_file[frames[-1].rsplit("(", 1)[-1].rstrip(")").split("/")[0]] += count

    def table(counter: Counter[str]) -> list[str]:
        return [f"{100 * n / total:5.1f}%  {name}" for name, n in counter.most_common(top)]

    return "\n".join(
        [
            f"{path.name}: {total} samples",
            "-- self time",
            *table(self_time),
            "-- inclusive time",
            *table(inclusive),
            "-- self time by top-level package",
            *table(by_file),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for path in args.profiles:
        print(summarise(path, args.top))
        print()


if __name__ == "__main__":
    main()
