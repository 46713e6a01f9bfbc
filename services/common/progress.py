"""Progress for long commands: a rich bar on a terminal, plain lines in logs and pipes."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TextIO

from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

# Plain output: a line each time another tenth is done, so a log stays short.
PLAIN_STEPS = 10


class ProgressBar:
    """`advance(n)` as work is done; `bytes=True` shows sizes and speed, else counts."""

    def __init__(
        self, description: str, total: int, *, bytes: bool = True, stream: TextIO | None = None
    ) -> None:
        self.description = description
        self.total = max(total, 0)
        self.bytes = bytes
        self.stream = stream or sys.stderr
        self.done = 0
        self._printed_step = -1
        self._rich: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ProgressBar:
        if self.stream.isatty():
            columns = (
                [DownloadColumn(), TransferSpeedColumn()] if self.bytes else [MofNCompleteColumn()]
            )
            self._rich = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                *columns,
                TimeRemainingColumn(),
                transient=False,
            )
            self._rich.start()
            self._task = self._rich.add_task(self.description, total=self.total)
        # Plain output starts with the work: a command refused at once prints no progress.
        return self

    def advance(self, size: int) -> None:
        self.done += size
        if self._rich is not None and self._task is not None:
            self._rich.update(self._task, advance=size)
        else:
            self._plain()

    def _plain(self) -> None:
        step = PLAIN_STEPS if self.total == 0 else self.done * PLAIN_STEPS // self.total
        if step <= self._printed_step:
            return
        self._printed_step = step
        percent = 100 if self.total == 0 else min(100, self.done * 100 // self.total)
        what = f"{self.done}/{self.total}" + (" bytes" if self.bytes else "")
        self.stream.write(f"{self.description}: {percent}% ({what})\n")
        self.stream.flush()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._rich is not None:
            self._rich.stop()
