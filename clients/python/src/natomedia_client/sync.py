"""`natomedia-sync DIR`: mirror the video catalogue into DIR and keep it current.

Layout: `DIR/<video id>/<file name>` and `DIR/<video id>/video.json`; withdrawn videos move to
`DIR/withdrawn/<video id>/` (with `withdrawal.json`); the feed position and what is on disk are
kept in `DIR/.natomedia-sync/state.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import unicodedata
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO

from natomedia_client.client import Client, FeedItem, fsync_directory, sha256_file
from natomedia_client.errors import ApiError
from natomedia_client.models import RenditionOut, VideoDetail, VideoSummary, VideoTombstone

STATE_DIR = ".natomedia-sync"
WITHDRAWN_DIR = "withdrawn"
SIDECAR = "video.json"
EPOCH = "1970-01-01T00:00:00Z"
STATE_FORMAT = 1
# Answers that mean the credentials themselves are wrong: retrying later will not help.
_CREDENTIAL_CODES = frozenset({"invalid_client", "invalid_token", "invalid_grant"})
_SAVE_EVERY_SECONDS = 5.0


class UsageError(Exception):
    """Bad flags, environment or credentials: exit 2 with this one line."""


# -- names on disk --------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str, fallback: str) -> str:
    """A file name from the server made safe for any file system: no separators, no dot files,
    no control characters, nothing reserved by this tool, at most 150 characters."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = _UNSAFE.sub("_", text).strip("._-")
    if len(text) > 150:
        stem, dot, extension = text.rpartition(".")
        keep = dot and 0 < len(extension) <= 10
        text = f"{stem[: 149 - len(extension)]}.{extension}" if keep else text[:150]
    if not text or text == SIDECAR or text.endswith(".part") or text.startswith("."):
        return fallback
    return text


def rendition_names(renditions: Sequence[RenditionOut]) -> dict[str, RenditionOut]:
    """Local file name for every rendition, unique within the folder."""
    names: dict[str, RenditionOut] = {}
    for rendition in renditions:
        fallback = f"{rendition.id}.{safe_name(rendition.container, 'bin')}"
        name = safe_name(rendition.filename, fallback)
        if name.lower() in {taken.lower() for taken in names}:
            name = f"{str(rendition.id)[:8]}-{name}"
        names[name] = rendition
    return names


# -- atomic files ---------------------------------------------------------------------------


def write_atomically(path: Path, data: bytes) -> bool:
    """Write `data` to `path` through a synced temporary file; False when it already holds it."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as output:
            output.write(data)
            output.flush()
            os.fsync(output.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
    return True


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode()


# -- output ---------------------------------------------------------------------------------


class Reporter:
    """Log lines (plain or JSON) and, on a terminal, rich progress bars."""

    def __init__(self, *, as_json: bool, stream: TextIO, bars: bool) -> None:
        self.as_json = as_json
        self.stream = stream
        self._lock = threading.Lock()
        self._progress: Any = None
        self._overall: Any = None
        if bars and not as_json:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}", justify="left"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
            )
            self._overall = self._progress.add_task("total", total=0)

    def __enter__(self) -> Reporter:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def event(self, kind: str, message: str, **fields: Any) -> None:
        with self._lock:
            if self.as_json:
                record = {"event": kind, "message": message, **fields}
                self.stream.write(json.dumps(record, default=str) + "\n")
                self.stream.flush()
            elif self._progress is not None:
                self._progress.console.print(message, markup=False, highlight=False)
            else:
                self.stream.write(f"{_stamp()} {message}\n")
                self.stream.flush()

    @contextlib.contextmanager
    def transfer(self, label: str, size: int) -> Iterator[Any]:
        """A per-file bar; yields the callback that advances it (and the total)."""
        if self._progress is None:
            yield lambda _count: None
            return
        progress = self._progress
        task = progress.add_task(label[:40], total=size)
        overall = self._overall
        with self._lock:
            total = progress.tasks[overall].total or 0
            progress.update(overall, total=total + size)

        def advance(count: int) -> None:
            progress.advance(task, count)
            progress.advance(overall, count)

        try:
            yield advance
        finally:
            progress.remove_task(task)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the mirror -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    tags: tuple[str, ...] = ()
    language: str | None = None
    since: datetime | None = None

    def match(self, video: VideoSummary | VideoDetail) -> bool:
        if self.tags and not set(self.tags) <= set(video.tags):
            return False
        if self.language and (video.language or "").lower() != self.language.lower():
            return False
        return not (self.since and video.published_at < self.since)

    def key(self) -> dict[str, Any]:
        return {
            "tags": sorted(self.tags),
            "language": self.language.lower() if self.language else None,
            "since": self.since.isoformat() if self.since else None,
        }


@dataclass
class Outcome:
    failed: dict[str, str] = field(default_factory=dict)
    downloaded: int = 0
    changed: int = 0


class Mirror:
    def __init__(
        self,
        client: Client,
        root: Path,
        reporter: Reporter,
        *,
        filters: Filters,
        parallel: int,
        delete_withdrawn: bool,
        verify: bool,
        max_rate: float | None,
    ) -> None:
        self.client = client
        self.root = root
        self.reporter = reporter
        self.filters = filters
        self.parallel = parallel
        self.delete_withdrawn = delete_withdrawn
        self.verify = verify
        self.max_rate = max_rate
        self.state_path = root / STATE_DIR / "state.json"
        self._lock = threading.Lock()
        self._saved_at = 0.0
        self._saved_bytes = b""
        self.state = self._load()

    def _load(self) -> dict[str, Any]:
        try:
            self._saved_bytes = self.state_path.read_bytes()
            state: dict[str, Any] = json.loads(self._saved_bytes)
        except FileNotFoundError:
            state = {}
        if state.get("format") != STATE_FORMAT or state.get("base_url") != self.client.base_url:
            state = {"format": STATE_FORMAT, "base_url": self.client.base_url, "videos": {}}
        if state.get("filters") != self.filters.key():
            # Other filters select other videos: read the whole feed again (files on disk are
            # kept and only checked, not fetched again).
            state["filters"] = self.filters.key()
            state["cursor"] = None
        state.setdefault("updated_since", EPOCH)
        state.setdefault("cursor", None)
        state.setdefault("videos", {})
        state.setdefault("pending", {})
        return state

    def save(self, *, force: bool = True) -> None:
        with self._lock:
            if not force and time.monotonic() - self._saved_at < _SAVE_EVERY_SECONDS:
                return
            data = _json_bytes(self.state)
            if data != self._saved_bytes:
                write_atomically(self.state_path, data)
                self._saved_bytes = data
            self._saved_at = time.monotonic()

    def run(self) -> Outcome:
        outcome = Outcome()
        work: dict[str, FeedItem] = {}
        for raw in self.state["pending"].values():
            item = _feed_item(raw)
            work[str(item.id)] = item
        cursor = self.state["cursor"]
        for page in self.client.changes(self.state["updated_since"], cursor):
            for item in page.items:
                work[str(item.id)] = item
            cursor = page.cursor
        repairs: set[str] = set()
        if self.verify:
            repairs = {video_id for video_id in self.state["videos"] if video_id not in work}
        if work or repairs:
            self.reporter.event(
                "plan",
                f"{len(work)} changed video(s), {len(repairs)} to verify",
                changed=len(work),
                verify=len(repairs),
            )
        jobs: list[tuple[str, FeedItem | None]] = [*work.items()]
        jobs += [(video_id, None) for video_id in sorted(repairs)]
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            results = pool.map(lambda job: self._handle(*job), jobs)
            for (video_id, job_item), problem in zip(jobs, results, strict=True):
                if problem is None:
                    self.state["pending"].pop(video_id, None)
                    continue
                outcome.failed[video_id] = problem
                if job_item is not None:
                    self.state["pending"][video_id] = job_item.model_dump(mode="json")
        self.state["cursor"] = cursor
        self.save()
        return outcome

    # One video, start to end; returns an error line or None.
    def _handle(self, video_id: str, item: FeedItem | None) -> str | None:
        try:
            if isinstance(item, VideoTombstone):
                self._withdraw(item)
            elif isinstance(item, VideoSummary) and not self.filters.match(item):
                self._forget(video_id, "left the filter")
            else:
                self._mirror(video_id)
        except ApiError as error:
            self.reporter.event("error", f"{video_id}: {error}", video=video_id, code=error.code)
            return f"{error.code}: {error.message}"
        except OSError as error:
            self.reporter.event("error", f"{video_id}: {error}", video=video_id, code="os_error")
            return f"os_error: {error}"
        return None

    def _mirror(self, video_id: str) -> None:
        try:
            video = self.client.video(video_id)
        except ApiError as error:
            if error.code == "video_withdrawn":
                # Its tombstone comes through the feed next run, with the reason.
                self.reporter.event("skip", f"{video_id}: withdrawn meanwhile", video=video_id)
                return
            if error.status == 404:
                self._forget(video_id, "no longer in the catalogue")
                return
            raise
        if not self.filters.match(video):
            self._forget(video_id, "left the filter")
            return
        folder = self.root / video_id
        kept = self.root / WITHDRAWN_DIR / video_id
        if not folder.exists() and kept.is_dir():
            # Restored: its files are checked (hashed) below instead of fetched again.
            os.replace(kept, folder)
            self.reporter.event("restore", f"{video_id}: published again", video=video_id)
        folder.mkdir(parents=True, exist_ok=True)
        record = self.state["videos"].get(video_id, {})
        known: dict[str, Any] = record.get("files", {})
        names = rendition_names(video.renditions)
        self._rename_kept(folder, names, known)
        for name, rendition in names.items():
            self._ensure_file(video, folder / name, rendition, known.get(name))
        for entry in folder.iterdir():
            if entry.name == SIDECAR or not entry.is_file():
                continue
            if entry.name in names or entry.name.removesuffix(".part") in names:
                continue
            entry.unlink()
            self.reporter.event("remove", f"{video_id}/{entry.name}: removed", file=entry.name)
        if write_atomically(folder / SIDECAR, _json_bytes(sidecar(video, names))):
            self.reporter.event("metadata", f"{video_id}: metadata v{video.version}")
        files = {
            name: {"rendition": str(r.id), "sha256": r.sha256, "size": r.size_bytes}
            for name, r in names.items()
        }
        with self._lock:
            self.state["videos"][video_id] = {"version": video.version, "files": files}
        self.save(force=False)

    def _rename_kept(
        self, folder: Path, names: dict[str, RenditionOut], known: dict[str, Any]
    ) -> None:
        """The server names files after the title: when it changes, rename what is already
        here (and partial files) instead of downloading the same bytes again."""
        previous = {entry.get("rendition"): name for name, entry in known.items()}
        for name, rendition in names.items():
            old = previous.get(str(rendition.id))
            if old is None or old == name or (folder / name).exists():
                continue
            for suffix in ("", ".part"):
                source = folder / (old + suffix)
                if source.is_file():
                    os.replace(source, folder / (name + suffix))
                    known[name] = known.get(old, {})
                    self.reporter.event("rename", f"{folder.name}/{old} -> {name}", file=name)
        fsync_directory(folder)

    def _ensure_file(
        self, video: VideoDetail, path: Path, rendition: RenditionOut, known: Any
    ) -> None:
        label = f"{video.id}/{path.name}"
        if path.exists():
            same = (
                isinstance(known, dict)
                and known.get("sha256") == rendition.sha256
                and path.stat().st_size == rendition.size_bytes
            )
            if same and not self.verify:
                return
            if sha256_file(path) == rendition.sha256:
                return
            self.reporter.event("repair", f"{label}: does not match the catalogue", file=label)
            path.unlink()
        self.reporter.event(
            "download", f"{label}: downloading {rendition.size_bytes} bytes", file=label
        )

        def resumed(offset: int) -> None:
            self.reporter.event(
                "resume", f"{label}: resuming at byte {offset}", file=label, offset=offset
            )

        with self.reporter.transfer(path.name, rendition.size_bytes) as advance:
            self.client.download(
                video.id,
                rendition,
                path,
                progress=advance,
                on_resume=resumed,
                max_bytes_per_second=self.max_rate,
            )
        self.reporter.event("done", f"{label}: verified SHA-256", file=label)

    def _withdraw(self, tombstone: VideoTombstone) -> None:
        video_id = str(tombstone.id)
        folder = self.root / video_id
        reason = tombstone.reason_code or "unspecified"
        with self._lock:
            self.state["videos"].pop(video_id, None)
        if not folder.exists():
            return
        if self.delete_withdrawn:
            shutil.rmtree(folder)
            self.reporter.event("withdrawn", f"{video_id}: withdrawn ({reason}), deleted")
            return
        target = self.root / WITHDRAWN_DIR / video_id
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(folder, target)
        write_atomically(target / "withdrawal.json", _json_bytes(tombstone.model_dump(mode="json")))
        fsync_directory(self.root)
        self.reporter.event(
            "withdrawn",
            f"{video_id}: withdrawn ({reason}), moved to {WITHDRAWN_DIR}/",
            video=video_id,
            reason_code=tombstone.reason_code,
        )

    def _forget(self, video_id: str, why: str) -> None:
        with self._lock:
            self.state["videos"].pop(video_id, None)
        folder = self.root / video_id
        if folder.exists():
            shutil.rmtree(folder)
            self.reporter.event("remove", f"{video_id}: {why}, removed", video=video_id)


def sidecar(video: VideoDetail, names: dict[str, RenditionOut]) -> dict[str, Any]:
    return {
        "id": str(video.id),
        "version": video.version,
        "title": video.title,
        "description": video.description,
        "shot_list": video.shot_list,
        "transcript": video.transcript,
        "credits": video.credits,
        "copyright": video.copyright,
        "language": video.language,
        "location": video.location,
        "tags": video.tags,
        "published_at": video.published_at.isoformat(),
        "updated_at": video.updated_at.isoformat(),
        "duration_seconds": video.duration_seconds,
        "related_article_slugs": video.related_article_slugs,
        "files": [
            {
                "file": name,
                "rendition_id": str(rendition.id),
                "label": rendition.label,
                "content_type": rendition.content_type,
                "size_bytes": rendition.size_bytes,
                "sha256": rendition.sha256,
                "width": rendition.width,
                "height": rendition.height,
            }
            for name, rendition in names.items()
        ],
    }


def _feed_item(raw: dict[str, Any]) -> FeedItem:
    if raw.get("status") == "withdrawn":
        return VideoTombstone.model_validate(raw)
    return VideoSummary.model_validate(raw)


# -- command line ---------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def parser() -> argparse.ArgumentParser:
    command = _Parser(
        prog="natomedia-sync",
        description="Mirror the NATO Multimedia video catalogue into DIR and keep it current.",
        epilog="The client secret comes from NATOMEDIA_CLIENT_SECRET or --client-secret-file.",
    )
    command.add_argument("dir", type=Path, metavar="DIR")
    command.add_argument("--base-url", default=os.environ.get("NATOMEDIA_BASE_URL"))
    command.add_argument("--client-id", default=os.environ.get("NATOMEDIA_CLIENT_ID"))
    command.add_argument("--client-secret-file", type=Path, metavar="FILE")
    command.add_argument("--client-secret", help=argparse.SUPPRESS)
    command.add_argument("--tag", action="append", default=[], help="keep videos with this tag")
    command.add_argument("--language", help="keep videos in this language (BCP 47)")
    command.add_argument("--since", help="keep videos published at or after this date")
    command.add_argument("--parallel", type=int, default=4, metavar="N")
    command.add_argument("--delete-withdrawn", action="store_true")
    command.add_argument("--verify", action="store_true", help="re-hash every file and repair")
    command.add_argument("--json", action="store_true", help="JSON lines instead of log lines")
    command.add_argument(
        "--max-rate", type=float, metavar="BYTES_PER_SECOND", help=argparse.SUPPRESS
    )
    return command


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {text!r} is not an ISO 8601 date") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _secret(arguments: argparse.Namespace) -> str:
    if arguments.client_secret is not None:
        raise UsageError(
            "--client-secret is refused (other users see it in the process list): "
            "use NATOMEDIA_CLIENT_SECRET or --client-secret-file"
        )
    if arguments.client_secret_file is not None:
        try:
            return str(arguments.client_secret_file.read_text()).strip()
        except OSError as error:
            raise UsageError(f"cannot read --client-secret-file: {error.strerror}") from None
    secret = os.environ.get("NATOMEDIA_CLIENT_SECRET")
    if not secret:
        raise UsageError("no client secret: set NATOMEDIA_CLIENT_SECRET or --client-secret-file")
    return secret


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except UsageError as error:
        sys.stderr.write(f"natomedia-sync: {error}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("natomedia-sync: interrupted; partial files resume next run\n")
        return 1


def _main(argv: Sequence[str] | None) -> int:
    arguments = parser().parse_args(argv)
    if not arguments.base_url:
        raise UsageError("no API address: pass --base-url or set NATOMEDIA_BASE_URL")
    if not arguments.client_id:
        raise UsageError("no client id: pass --client-id or set NATOMEDIA_CLIENT_ID")
    if arguments.parallel < 1:
        raise UsageError("--parallel must be at least 1")
    secret = _secret(arguments)
    filters = Filters(tuple(arguments.tag), arguments.language, _since(arguments.since))
    root: Path = arguments.dir
    try:
        (root / STATE_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot use {root}: {error.strerror}") from None
    reporter = Reporter(
        as_json=arguments.json,
        stream=sys.stdout,
        bars=sys.stderr.isatty() and sys.stdout.isatty(),
    )
    with (
        _exclusive(root),
        Client(
            arguments.base_url,
            client_id=arguments.client_id,
            client_secret=secret,
            on_wait=lambda status, seconds: reporter.event(
                "wait", f"{status}: waiting {seconds:.1f} s", status=status, seconds=seconds
            ),
        ) as client,
        reporter,
    ):
        try:
            client.access_token()
        except ApiError as error:
            if error.code in _CREDENTIAL_CODES or error.status in {401, 403}:
                raise UsageError(f"credentials refused by {arguments.base_url}: {error}") from None
            if error.status is not None and 400 <= error.status < 500:
                raise UsageError(
                    f"{arguments.base_url} refused the token request: {error}"
                ) from None
            # Down or unreachable: a later run may well succeed, so this is a failure, not usage.
            sys.stderr.write(f"natomedia-sync: cannot reach {arguments.base_url}: {error}\n")
            return 1
        mirror = Mirror(
            client,
            root,
            reporter,
            filters=filters,
            parallel=arguments.parallel,
            delete_withdrawn=arguments.delete_withdrawn,
            verify=arguments.verify,
            max_rate=arguments.max_rate,
        )
        try:
            outcome = mirror.run()
        except ApiError as error:
            reporter.event("error", f"the change feed failed: {error}", code=error.code)
            return 1
        if outcome.failed:
            for video_id, problem in sorted(outcome.failed.items()):
                reporter.event("failed", f"FAILED {video_id}: {problem}", video=video_id)
            reporter.event(
                "summary",
                f"{len(outcome.failed)} video(s) failed; the next run retries them",
                failed=len(outcome.failed),
            )
            return 1
        reporter.event("summary", "mirror complete", failed=0)
        return 0


@contextlib.contextmanager
def _exclusive(root: Path) -> Iterator[None]:
    """One natomedia-sync per directory (an overlapping cron run exits)."""
    path = root / STATE_DIR / "lock"
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"another natomedia-sync is working in {root}") from None
        yield


if __name__ == "__main__":
    sys.exit(main())
