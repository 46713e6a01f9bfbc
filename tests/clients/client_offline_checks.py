"""Run by test_sync.py with the client venv's Python: behaviours `natomedia dev` cannot show
(it sends no `RateLimit` header and never serves a file that disagrees with its catalogue),
against an `httpx.MockTransport`."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
from natomedia_client import ApiError, Client
from natomedia_client.models import RenditionOut
from natomedia_client.sync import rendition_names, safe_name

BASE = "http://api.test"
VIDEO = uuid.uuid4()
BODY = b"x" * 5000
SHA = hashlib.sha256(BODY).hexdigest()


def rendition(sha256: str = SHA) -> RenditionOut:
    return RenditionOut(
        id=uuid.uuid4(),
        label="clip",
        container="mp4",
        content_type="video/mp4",
        video_codec=None,
        audio_codec=None,
        width=None,
        height=None,
        frame_rate=None,
        bitrate=None,
        duration_seconds=None,
        size_bytes=len(BODY),
        sha256=sha256,
        filename="clip.mp4",
    )


def token(_: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"access_token": "t", "expires_in": 900, "scope": "s"})


def link(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "url": f"{BASE}/file",
            "expires_at": "2999-01-01T00:00:00Z",
            "size_bytes": len(BODY),
            "sha256": SHA,
        },
    )


def retry_after_then_ratelimit_pause() -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "0"}, json={"code": "rate_limited"}),
            httpx.Response(503, json={"code": "service_unavailable"}),
            httpx.Response(
                200,
                headers={"RateLimit": '"default";r=0;t=1'},
                json={"items": [], "next_cursor": None},
            ),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return token(request) if request.url.path == "/v1/auth/token" else next(answers)

    waits: list[tuple[int, float]] = []
    api = Client(
        BASE,
        client_id="c",
        client_secret="s",
        transport=httpx.MockTransport(handler),
        on_wait=lambda status, seconds: waits.append((status, seconds)),
    )
    assert list(api.videos()) == []
    assert [status for status, _ in waits] == [429, 503]
    assert waits[0][1] == 0
    # `RateLimit: r=0;t=1`: the next request waits for the window to reset.
    assert api._not_before > 0


def problem_becomes_api_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/auth/token":
            return token(request)
        body = {"title": "Gone", "status": 410, "code": "video_withdrawn", "detail": "withdrawn"}
        return httpx.Response(410, json=body, headers={"Content-Type": "application/problem+json"})

    api = Client(BASE, client_id="c", client_secret="s", transport=httpx.MockTransport(handler))
    error = raised(lambda: api.video(VIDEO))
    assert (error.status, error.code) == (410, "video_withdrawn")


def user_tokens_are_refreshed() -> None:
    refreshes: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/auth/token/refresh":
            refreshes.append(json.loads(request.content)["refresh_token"])
            pair = {"access_token": "new", "expires_in": 900, "refresh_token": "r2"}
            return httpx.Response(200, json=pair)
        if request.headers["authorization"] != "Bearer new":
            return httpx.Response(401, json={"title": "x", "status": 401, "code": "invalid_token"})
        return httpx.Response(200, json={"items": [], "next_cursor": None})

    api = Client(
        BASE, access_token="old", refresh_token="r1", transport=httpx.MockTransport(handler)
    )
    assert list(api.articles()) == []
    assert list(api.articles()) == []
    assert refreshes == ["r1"]


def digest_mismatch_is_refused(directory: Path) -> None:
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/auth/token":
            return token(request)
        if request.url.path.endswith("/download-url"):
            return link(request)
        return httpx.Response(200, content=BODY, headers={"Repr-Digest": f"sha-256=:{wrong}:"})

    api = Client(BASE, client_id="c", client_secret="s", transport=httpx.MockTransport(handler))
    # The catalogue's SHA-256 matches the bytes; only the server's Repr-Digest disagrees.
    error = raised(lambda: api.download(VIDEO, rendition(), directory / "clip.mp4"))
    assert error.code == "checksum_mismatch", error
    assert not (directory / "clip.mp4").exists()
    assert not (directory / "clip.mp4.part").exists()


def raised(call: Callable[[], object]) -> ApiError:
    try:
        call()
    except ApiError as error:
        return error
    raise AssertionError("no ApiError")


def names_are_sanitised() -> None:
    assert safe_name("../../etc/passwd", "f") == "etc_passwd"
    assert safe_name("Sommet d'Oslo: l'été.mp4", "f") == "Sommet_d_Oslo_l_ete.mp4"
    for hostile in ("", "..", ".bashrc", "video.json", "clip.mp4.part", "\x00\n/"):
        assert safe_name(hostile, "fallback.mp4") in {"fallback.mp4", "bashrc"}, hostile
    long = safe_name("a" * 400 + ".mp4", "f")
    assert len(long) == 150
    assert long.endswith(".mp4")
    twins = [rendition(), rendition()]
    names = rendition_names(twins)
    assert len(names) == 2
    assert sorted(names.values(), key=id) == sorted(twins, key=id)


def main() -> int:
    retry_after_then_ratelimit_pause()
    problem_becomes_api_error()
    user_tokens_are_refreshed()
    names_are_sanitised()
    with tempfile.TemporaryDirectory() as directory:
        digest_mismatch_is_refused(Path(directory))
    sys.stdout.write("ok\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
