"""A per-process micro-cache of public GET responses, answered before routing and dependencies.

Under load the same public page (a news listing, a video's detail) is asked for many times a
second. Routing, dependency solving, a database round trip and serialisation cost far more
than sending bytes, so a response a route marks public is kept, as sent, for about a second
and replayed to later anonymous requests for the same path and query. A second is short enough
that nobody notices; writes through this process clear it at once.

Who is served from it (`public_reads.py`, "Tokens on public reads"): anonymous callers and
callers whose valid token lacks the `editor` scope get the same entry, since their answer is the
same. The token is verified (signature, revocations) before the lookup, so an editor is never
given the public copy and never fills it, and a failing token gets the public answer marked for
it alone (`WWW-Authenticate`, `no-store`) and stores nothing. A route that calls
`allow_public_cache` promises that its answer is the same for all those callers.

What is never served from or stored in it: editors, anything but GET, responses the route did
not mark with `allow_public_cache`, responses that are not 200, that say `private` or
`no-store`, set a cookie, or vary on anything but `Authorization`. A client's
`Cache-Control: no-cache` skips the lookup. Conditional requests (`If-None-Match`,
`If-Modified-Since`) are answered from the entry.
When an entry expires, one request fetches a fresh copy while concurrent ones are still given the
old one (never older than two lifetimes), so a busy page costs one query per lifetime, not one
per connection waiting at that moment.

The responses kept here carry `X-Accel-Expires` with the same lifetime, which is what the
gateway's nginx caches on (and only on). nginx counts whole seconds, so its copy lives one to two
of them: through the gateway a public read may be about three seconds old at worst, and a write
clears this process's copy but not nginx's. nginx cannot verify tokens, so it neither serves nor
stores anything for a request carrying one: those come here, where the check is made.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.http_cache import etag_matches
from services.common.public_reads import CHALLENGE, Reader, reader_of, refused_headers
from services.common.security import BearerChecks

SCOPE_KEY = "natomedia.public_cache"
Headers = list[tuple[bytes, bytes]]
# Headers that describe a body; a 304 has none (RFC 9110 §15.4.5).
_BODY_HEADERS = frozenset({b"content-length", b"content-type"})


class _Ticket:
    """Put in the scope of each cacheable-looking request; the route flips it to opt in."""

    __slots__ = ("allowed",)

    def __init__(self) -> None:
        self.allowed = False


def allow_public_cache(request: Request) -> None:
    """Mark this response as the same for every caller but editors, so it may be replayed."""
    ticket = request.scope.get(SCOPE_KEY)
    if ticket is not None:
        ticket.allowed = True


@dataclass(frozen=True, slots=True)
class CachedResponse:
    headers: Headers
    not_modified_headers: Headers
    body: bytes
    etag: str | None
    last_modified: datetime | None
    expires: float


class PublicCache:
    """Bounded in entries and bytes; oldest entries go first. `ttl_seconds` 0 disables it."""

    def __init__(
        self,
        ttl_seconds: float,
        *,
        max_entries: int = 2048,
        max_bytes: int = 32 * 1024 * 1024,
        max_entry_bytes: int = 1024 * 1024,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_entry_bytes
        self.monotonic = monotonic
        self._entries: OrderedDict[tuple[str, bytes], CachedResponse] = OrderedDict()
        self._bytes = 0
        # Keys whose expired entry one request is refreshing; the others get the old copy
        # meanwhile, for at most one more lifetime, rather than all going to the database.
        self._refreshing: set[tuple[str, bytes]] = set()
        # Bumped by every clear: a read that began before a write must not store what it read.
        self.generation = 0

    @property
    def enabled(self) -> bool:
        return self.ttl_seconds > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[str, bytes]) -> CachedResponse | None:
        """The entry, or None when the caller should fetch (and `put`, then `refreshed`) it."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = self.monotonic()
        if now < entry.expires:
            return entry
        if now >= entry.expires + self.ttl_seconds:
            self._remove(key)
            return None
        if key in self._refreshing:
            return entry
        self._refreshing.add(key)
        return None

    def refreshed(self, key: tuple[str, bytes]) -> None:
        """The fetch for `key` is over, stored or not."""
        self._refreshing.discard(key)

    def put(
        self, key: tuple[str, bytes], status_headers: Headers, body: bytes, generation: int
    ) -> bool:
        """Store a 200 response; False when it is not storable or a write came in between."""
        if generation != self.generation or len(body) > self.max_entry_bytes:
            return False
        validators = shareable(status_headers)
        if validators is None:
            return False
        etag, last_modified = validators
        self._remove(key)
        entry = CachedResponse(
            headers=status_headers,
            not_modified_headers=[item for item in status_headers if item[0] not in _BODY_HEADERS],
            body=body,
            etag=etag,
            last_modified=last_modified,
            expires=self.monotonic() + self.ttl_seconds,
        )
        self._entries[key] = entry
        self._bytes += len(body)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._remove(oldest)
        return True

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
        self._refreshing.clear()
        self._bytes = 0

    def _remove(self, key: tuple[str, bytes]) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry.body)


def shareable(headers: Headers) -> tuple[str | None, datetime | None] | None:
    """(ETag, Last-Modified) of a response any anonymous caller may be given; None if not."""
    etag = last_modified = None
    for name, value in headers:
        if name == b"cache-control":
            directives = value.lower()
            if b"no-store" in directives or b"private" in directives:
                return None
        elif name == b"set-cookie":
            return None
        elif name == b"vary":
            varies = {part.strip() for part in value.lower().split(b",")}
            if not varies <= {b"authorization"}:
                return None
        elif name == b"etag":
            etag = value.decode("latin-1")
        elif name == b"last-modified":
            last_modified = _http_date(value.decode("latin-1"))
    return etag, last_modified


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # an unreadable date is ignored, as RFC 9110 asks
    return parsed if parsed.tzinfo is not None else None


def _parameter_name(pair: bytes) -> bytes:
    return pair.partition(b"=")[0]


def canonical_query(query_string: bytes) -> bytes:
    """Parameters ordered by name; a repeated one keeps its values' order, which may matter."""
    if b"&" not in query_string:
        return query_string
    pairs = query_string.split(b"&")
    pairs.sort(key=_parameter_name)
    return b"&".join(pairs)


def _is_fresh(
    entry: CachedResponse, if_none_match: str | None, if_modified_since: str | None
) -> bool:
    """The client's copy is current: the same rules the routes apply (RFC 9110 §13.1)."""
    if if_none_match is not None:
        return entry.etag is not None and etag_matches(if_none_match, entry.etag)
    if if_modified_since is None or entry.last_modified is None:
        return False
    since = _http_date(if_modified_since)
    # HTTP dates have whole seconds.
    return since is not None and entry.last_modified.replace(microsecond=0) <= since


async def _replay(
    send: Send,
    entry: CachedResponse,
    if_none_match: str | None,
    if_modified_since: str | None,
    *,
    refused: bool,
) -> None:
    """The entry, or 304 when the client's copy is current; `refused`: marked for this caller."""
    not_modified = bool(if_none_match or if_modified_since) and _is_fresh(
        entry, if_none_match, if_modified_since
    )
    headers = entry.not_modified_headers if not_modified else entry.headers
    # A copy either way: outer middleware appends its own headers (the request id) to the list.
    headers = refused_headers(headers, CHALLENGE) if refused else list(headers)
    await send(
        {"type": "http.response.start", "status": 304 if not_modified else 200, "headers": headers}
    )
    await send({"type": "http.response.body", "body": b"" if not_modified else entry.body})


class PublicCacheMiddleware:
    """Serves and fills a `PublicCache`; a write answered with success clears it."""

    def __init__(self, app: ASGIApp, cache: PublicCache, bearer_checks: BearerChecks) -> None:
        self.app = app
        self.cache = cache
        # The app's own (`app.state.bearer_checks`), held here: every read with a token uses it.
        self.bearer_checks = bearer_checks
        # nginx counts whole seconds; it never passes X-Accel-* headers on to clients.
        self.accel_expires = str(max(1, round(cache.ttl_seconds))).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method != "GET":
            if method in ("HEAD", "OPTIONS", "TRACE"):
                await self.app(scope, receive, send)
            else:
                await self._write(scope, receive, send)
            return

        if_none_match = if_modified_since = None
        no_cache = has_token = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                has_token = True
            elif name == b"if-none-match":
                if_none_match = value.decode("latin-1")
            elif name == b"if-modified-since":
                if_modified_since = value.decode("latin-1")
            elif name in (b"cache-control", b"pragma") and b"no-cache" in value.lower():
                no_cache = True

        reader = Reader.PUBLIC
        if has_token:
            if self.bearer_checks.verifier is None:
                await self.app(scope, receive, send)
                return
            # Before any lookup: an editor must not be given the public copy, and a failing
            # token changes the answer's headers. Each distinct token costs one signature check
            # (the verifier keeps verified tokens); after that this is dictionary lookups.
            reader = await reader_of(scope, self.bearer_checks)
            if reader is Reader.EDITOR:
                await self.app(scope, receive, send)
                return

        key = (scope["path"], canonical_query(scope.get("query_string", b"")))
        entry = None if no_cache else self.cache.get(key)
        if entry is not None:
            # A failing token gets the public answer marked for it alone.
            refused = reader is Reader.REFUSED
            await _replay(send, entry, if_none_match, if_modified_since, refused=refused)
            return
        # A failing token's read answers as an anonymous one, so what it fetches may be kept
        # like an anonymous fetch (`RefusedTokenMiddleware`, outside, marks only its own copy):
        # else clients with expired tokens would each reach the database while nobody without
        # a token refills the entry.
        await self._fill(key, scope, receive, send)

    async def _fill(
        self, key: tuple[str, bytes], scope: Scope, receive: Receive, send: Send
    ) -> None:
        ticket = _Ticket()
        scope[SCOPE_KEY] = ticket
        generation = self.cache.generation
        headers: Headers | None = None
        chunks: list[bytes] = []
        size = 0

        async def capture(message: Message) -> None:
            nonlocal headers, size
            if message["type"] == "http.response.start":
                if message["status"] == 200 and ticket.allowed:
                    candidate = list(message.get("headers", []))
                    if shareable(candidate) is not None:
                        # The gateway's nginx keeps it as long (and only what we would keep).
                        candidate.append((b"x-accel-expires", self.accel_expires))
                        message["headers"] = candidate
                        # Ours, apart from the message's: outer middleware edits that in place.
                        headers = list(candidate)
            elif message["type"] == "http.response.body" and headers is not None:
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.cache.max_entry_bytes:
                    headers = None
                    chunks.clear()
                else:
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        self.cache.put(key, headers, b"".join(chunks), generation)
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            self.cache.refreshed(key)

    async def _write(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def clear_on_success(message: Message) -> None:
            # The request's transaction commits before its response starts, so from here on a
            # read sees the change; failed writes (a 401 from anyone) leave the cache alone.
            if message["type"] == "http.response.start" and message["status"] < 400:
                self.cache.clear()
            await send(message)

        await self.app(scope, receive, clear_on_success)
