"""A typed, thread-safe client for the NATO Multimedia API."""

from __future__ import annotations

import base64
import hashlib
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import httpx
from pydantic import BaseModel, ValidationError

from natomedia_client.errors import ApiError
from natomedia_client.models import (
    Article,
    ArticlePage,
    ArticleSummary,
    ClientToken,
    DownloadUrl,
    RenditionOut,
    TokenPair,
    VideoDetail,
    VideoPage,
    VideoSummary,
    VideoTombstone,
)

FeedItem = VideoSummary | VideoTombstone
_M = TypeVar("_M", bound=BaseModel)
Progress = Callable[[int], None]

_RETRY_STATUSES = frozenset({429, 503})
# Codes a download URL is refused with once it is too old or no longer honoured: ask for a new one.
_STALE_LINK_STATUSES = frozenset({403, 410})
_CHUNK = 1 << 16
_BEARER_ERRORS = frozenset({"invalid_token", "token_expired", "token_revoked"})


@dataclass
class _Token:
    value: str
    renew_at: float


@dataclass(frozen=True)
class FeedPage:
    """One page of the change feed; `cursor` is what to save once its items are handled."""

    items: list[FeedItem]
    cursor: str | None


class Client:
    """`Client(base_url, client_id=…, client_secret=…)` for a partner, or a user's tokens.

    Tokens are cached and renewed before they expire, after a 401 and after a long wait. 429
    and 503 answers are retried after `Retry-After` (or the `RateLimit` reset, or a backoff);
    every failure is raised as `ApiError` carrying the problem's `code`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        access_token: str | None = None,
        refresh_token: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 8,
        max_wait: float = 600.0,
        transport: httpx.BaseTransport | None = None,
        on_wait: Callable[[int, float], None] | None = None,
    ) -> None:
        """`on_wait(status, seconds)` is told of every pause before a retry."""
        if (client_id is None) != (client_secret is None):
            raise ValueError("client_id and client_secret go together")
        self.base_url = base_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._token: _Token | None = (
            _Token(access_token, float("inf")) if access_token is not None else None
        )
        self._lock = threading.Lock()
        self._not_before = 0.0
        self._links: dict[UUID, DownloadUrl] = {}
        self.max_retries = max_retries
        self.max_wait = max_wait
        self.on_wait = on_wait
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": "natomedia-client/0.1"},
            follow_redirects=False,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- tokens ------------------------------------------------------------------------------

    @property
    def can_renew(self) -> bool:
        return self._client_id is not None or self._refresh_token is not None

    def access_token(self, *, renew: bool = False) -> str | None:
        """The cached token, asking for a new one when it is (nearly) expired or `renew`."""
        with self._lock:
            token = self._token
            if token is not None and not renew and time.monotonic() < token.renew_at:
                return token.value
            if not self.can_renew:
                return token.value if token is not None else None
            self._token = self._new_token()
            return self._token.value

    def _new_token(self) -> _Token:
        if self._client_id is not None and self._client_secret is not None:
            answer = self._send(
                "POST",
                "/v1/auth/token",
                data={"grant_type": "client_credentials"},
                auth=(self._client_id, self._client_secret),
            )
            token = _parse(ClientToken, answer)
            return _Token(token.access_token, _renew_at(token.expires_in))
        answer = self._send(
            "POST", "/v1/auth/token/refresh", json={"refresh_token": self._refresh_token}
        )
        pair = _parse(TokenPair, answer)
        self._refresh_token = pair.refresh_token
        return _Token(pair.access_token, _renew_at(pair.expires_in))

    # -- requests ----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        authenticated: bool = True,
        params: Any = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send with the token, renewing it once after a 401; raise `ApiError` on failure."""

        def bearer() -> dict[str, str]:
            # Read before every attempt: after a long 429 wait the cached token may be due.
            token = self.access_token() if authenticated else None
            return {"Authorization": f"Bearer {token}"} if token is not None else {}

        renewed = False
        while True:
            answer = self._send(
                method, url, params=params, json=json, headers=headers, extra_headers=bearer
            )
            if answer.status_code == 401 and authenticated and self.can_renew and not renewed:
                renewed = True
                self.access_token(renew=True)
                continue
            return _checked(answer)

    def _send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        extra_headers: Callable[[], dict[str, str]] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request with retries on 429/503 and on connection failures. Not checked."""
        attempt = 0
        while True:
            self._wait_for_quota()
            sent = dict(headers or {})
            if extra_headers is not None:
                sent.update(extra_headers())
            try:
                answer = self._http.request(method, url, headers=sent, **kwargs)
            except httpx.TransportError as error:
                if attempt >= self.max_retries:
                    raise ApiError("network_error", str(error) or type(error).__name__) from error
                time.sleep(_backoff(attempt))
                attempt += 1
                continue
            self._note_quota(answer)
            if answer.status_code in _RETRY_STATUSES and attempt < self.max_retries:
                delay = _retry_after(answer)
                self._pause(answer.status_code, delay if delay is not None else _backoff(attempt))
                attempt += 1
                continue
            return answer

    def _pause(self, status: int, seconds: float) -> None:
        seconds = min(self.max_wait, seconds)
        if self.on_wait is not None:
            self.on_wait(status, seconds)
        time.sleep(seconds)

    def _wait_for_quota(self) -> None:
        delay = self._not_before - time.monotonic()
        if delay > 0:
            time.sleep(min(delay, self.max_wait))

    def _note_quota(self, answer: httpx.Response) -> None:
        """`RateLimit: "x";r=0;t=5` (or `RateLimit-Remaining: 0` + `RateLimit-Reset: 5`): pause."""
        remaining, reset = _ratelimit(answer.headers)
        if remaining == 0 and reset is not None:
            self._not_before = max(self._not_before, time.monotonic() + min(reset, self.max_wait))

    # -- catalogue ---------------------------------------------------------------------------

    def videos(self, *, limit: int = 100, **filters: Any) -> Iterator[VideoSummary]:
        """Every published video matching the filters (`q`, `tag`, `language`, …), newest first."""
        for item in self._walk("/v1/media/videos", VideoPage, limit, filters):
            if isinstance(item, VideoSummary):
                yield item

    def video(self, video_id: UUID | str) -> VideoDetail:
        return _parse(VideoDetail, self.request("GET", f"/v1/media/videos/{video_id}"))

    def articles(self, *, limit: int = 100, **filters: Any) -> Iterator[ArticleSummary]:
        yield from self._walk("/v1/news/articles", ArticlePage, limit, filters)

    def article(self, slug: str) -> Article:
        return _parse(Article, self.request("GET", f"/v1/news/articles/{slug}"))

    def _walk(
        self, path: str, page: type[Any], limit: int, filters: dict[str, Any]
    ) -> Iterator[Any]:
        params = {key: value for key, value in filters.items() if value is not None}
        cursor: str | None = None
        while True:
            query = {**params, "limit": limit}
            if cursor is not None:
                query["cursor"] = cursor
            answer = self.request("GET", path, params=query)
            parsed = _parse(page, answer)
            yield from parsed.items
            if not parsed.next_cursor or not parsed.items:
                return
            cursor = parsed.next_cursor

    def changes(
        self, updated_since: datetime | str, cursor: str | None = None, *, limit: int = 100
    ) -> Iterator[FeedPage]:
        """The change feed from `cursor`, oldest change first, until it is up to date.

        Save each page's `cursor` after handling its items and pass it (with the same
        `updated_since`) next time: the feed then gives exactly what changed since.
        """
        since = updated_since if isinstance(updated_since, str) else _iso(updated_since)
        while True:
            params: dict[str, Any] = {"updated_since": since, "limit": limit}
            if cursor is not None:
                params["cursor"] = cursor
            parsed = _parse(VideoPage, self.request("GET", "/v1/media/videos", params=params))
            if not parsed.items and parsed.next_cursor is None:
                return
            cursor = parsed.next_cursor or cursor
            yield FeedPage(list(parsed.items), cursor)
            if parsed.next_cursor is None:
                return

    # -- downloads ---------------------------------------------------------------------------

    def download_url(
        self, video_id: UUID | str, rendition_id: UUID | str, *, fresh: bool = False
    ) -> DownloadUrl:
        """A signed link, reused while it has more than a minute left."""
        key = UUID(str(rendition_id))
        link = self._links.get(key)
        if not fresh and link is not None and link.expires_at - timedelta(minutes=1) > _now():
            return link
        path = f"/v1/media/videos/{video_id}/renditions/{rendition_id}/download-url"
        link = _parse(DownloadUrl, self.request("POST", path))
        self._links[key] = link
        return link

    def remember_link(self, rendition_id: UUID | str, link: DownloadUrl) -> None:
        self._links[UUID(str(rendition_id))] = link

    def download(
        self,
        video_id: UUID | str,
        rendition: RenditionOut,
        dest: Path | str,
        *,
        progress: Progress | None = None,
        on_resume: Callable[[int], None] | None = None,
        max_bytes_per_second: float | None = None,
    ) -> Path:
        """Fetch `rendition` to `dest`: resumes `dest.part`, checks size and SHA-256, renames.

        The partial file is kept when the transfer fails, so a later call (or a rerun after a
        crash) resumes it with `Range` and `If-Range`.
        """
        dest = Path(dest)
        part = dest.with_name(dest.name + ".part")
        stale_links = 0
        broken = 0
        reported = 0  # bytes already counted by `progress`

        def advance(count: int) -> None:
            nonlocal reported
            reported += count
            if progress is not None and count:
                progress(count)

        while True:
            have, digest = _hash_prefix(part)
            if have > rendition.size_bytes:
                part.unlink()
                have, digest = 0, hashlib.sha256()
            link = self.download_url(video_id, rendition.id, fresh=stale_links > 0)
            headers = {"Accept-Encoding": "identity"}
            if have:
                headers.update(Range=f"bytes={have}-", **{"If-Range": f'"{rendition.sha256}"'})
            try:
                with self._stream(link.url, headers) as answer:
                    if answer.status_code in _STALE_LINK_STATUSES and stale_links < 3:
                        stale_links += 1
                        continue
                    if answer.status_code in _RETRY_STATUSES and broken < self.max_retries:
                        broken += 1
                        delay = _retry_after(answer)
                        self._pause(
                            answer.status_code, delay if delay is not None else _backoff(broken)
                        )
                        continue
                    if answer.status_code == 416:
                        part.unlink(missing_ok=True)
                        continue
                    _checked(answer)
                    if answer.status_code == 200:
                        # The whole file (the part held is not of this version): start over.
                        have, digest = 0, hashlib.sha256()
                    elif on_resume is not None:
                        on_resume(have)
                    advance(have - reported)
                    header_digest = _repr_digest(answer.headers.get("repr-digest"))
                    with part.open("r+b" if have else "wb") as output:
                        output.seek(have)
                        output.truncate()
                        _copy(answer, output, digest, advance, max_bytes_per_second)
                        output.flush()
                        os.fsync(output.fileno())
            except (httpx.TransportError, httpx.StreamError) as error:
                broken += 1
                if broken > self.max_retries:
                    raise ApiError("network_error", f"{dest.name}: {error}") from error
                time.sleep(_backoff(broken))
                continue
            break
        size = part.stat().st_size
        if size != rendition.size_bytes:
            raise ApiError(
                "size_mismatch", f"{dest.name}: {size} bytes, expected {rendition.size_bytes}"
            )
        actual = digest.hexdigest()
        expected = {rendition.sha256.lower()}
        if header_digest is not None:
            expected.add(header_digest)
        if expected != {actual}:
            part.unlink()
            raise ApiError("checksum_mismatch", f"{dest.name}: SHA-256 {actual} is not {expected}")
        os.replace(part, dest)
        fsync_directory(dest.parent)
        return dest

    def _stream(self, url: str, headers: dict[str, str]) -> Any:
        self._wait_for_quota()
        return self._http.stream("GET", url, headers=headers)


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` survive a power cut."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def sha256_file(path: Path) -> str:
    return str(_hash_prefix(path)[1].hexdigest())


def _hash_prefix(path: Path) -> tuple[int, Any]:
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as source:
            while chunk := source.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        pass
    return size, digest


def _copy(
    answer: httpx.Response,
    output: Any,
    digest: Any,
    progress: Progress,
    max_bytes_per_second: float | None,
) -> None:
    started = time.monotonic()
    sent = 0
    for chunk in answer.iter_bytes(_CHUNK):
        output.write(chunk)
        digest.update(chunk)
        sent += len(chunk)
        progress(len(chunk))
        if max_bytes_per_second:
            ahead = sent / max_bytes_per_second - (time.monotonic() - started)
            if ahead > 0:
                output.flush()
                time.sleep(ahead)


def _checked(answer: httpx.Response) -> httpx.Response:
    if answer.status_code < 400:
        return answer
    answer.read()
    problem: dict[str, Any] = {}
    try:
        body = answer.json()
        if isinstance(body, dict):
            problem = body
    except ValueError:
        pass
    code = str(problem.get("code") or f"http_{answer.status_code}")
    message = str(problem.get("detail") or problem.get("title") or answer.reason_phrase)
    raise ApiError(code, message, status=answer.status_code, problem=problem)


def _parse(model: type[_M], answer: httpx.Response) -> _M:
    _checked(answer)
    try:
        return model.model_validate_json(answer.content)
    except ValidationError as error:
        raise ApiError("bad_response", f"{answer.request.url}: {error}") from error


def _renew_at(expires_in: int) -> float:
    # Renew with a fifth of the lifetime left (at most a minute early) so a token never
    # expires between being read here and reaching the server.
    return time.monotonic() + expires_in - min(60.0, expires_in / 5)


def _backoff(attempt: int) -> float:
    return float(min(60.0, 0.5 * 2**attempt) * (0.5 + random.random() / 2))


def _retry_after(answer: httpx.Response) -> float | None:
    value = answer.headers.get("retry-after")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(0.0, (when - _now()).total_seconds())
    return _ratelimit(answer.headers)[1]


_RATELIMIT_PARAM = re.compile(r";\s*([rt])\s*=\s*(\d+)")


def _ratelimit(headers: httpx.Headers) -> tuple[int | None, float | None]:
    """(remaining, seconds to reset) from `RateLimit` (IETF draft) or `RateLimit-*` headers."""
    combined = headers.get("ratelimit")
    if combined:
        values = dict(_RATELIMIT_PARAM.findall(combined))
        remaining = int(values["r"]) if "r" in values else None
        reset = float(values["t"]) if "t" in values else None
        return remaining, reset
    remaining_text = headers.get("ratelimit-remaining") or headers.get("x-ratelimit-remaining")
    reset_text = headers.get("ratelimit-reset") or headers.get("x-ratelimit-reset")
    remaining = int(remaining_text) if remaining_text and remaining_text.isdigit() else None
    reset = float(reset_text) if reset_text and reset_text.isdigit() else None
    return remaining, reset


def _repr_digest(value: str | None) -> str | None:
    """The hex SHA-256 of `Repr-Digest: sha-256=:<base64>:`, None when absent."""
    if not value:
        return None
    for member in value.split(","):
        name, _, encoded = member.strip().partition("=")
        if name.strip().lower() == "sha-256":
            try:
                return base64.b64decode(encoded.strip().strip(":")).hex()
            except ValueError:
                raise ApiError("bad_response", f"unreadable Repr-Digest {value!r}") from None
    return None


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
