"""Download URLs (who may get one) and the signed URLs themselves (GET, HEAD, Range, tampering)."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, event, select

from services.common.clock import FrozenClock
from services.common.problems import PROBLEM_JSON
from services.media.app import create_app
from services.media.ingest import Ingested
from services.media.models import DownloadGrant, Rendition
from tests.conftest import TokenFactory
from tests.media.conftest import PUBLIC_BASE_URL, Catalogue

CONTENT = bytes(range(256)) * 40 + b"tail"  # 10 244 bytes, every offset distinguishable


@pytest.fixture
async def clip(catalogue: Catalogue) -> Ingested:
    return await catalogue.ingest_bytes(CONTENT, title="Oslo press point")


def url_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return f"{parts.path}?{urlencode(query)}"


async def request_url(
    client: httpx.AsyncClient, clip: Ingested, token: str, **kwargs: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/media/videos/{clip.video_id}/renditions/{clip.rendition_id}/download-url",
        headers={"Authorization": f"Bearer {token}"},
        **kwargs,
    )


async def signed_url(client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory) -> str:
    response = await request_url(client, clip, tokens.account())
    assert response.status_code == 200, response.text
    url: str = response.json()["url"]
    return url


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == code


@pytest.fixture
def queries(app: FastAPI) -> Iterator[list[str]]:
    """Every SQL statement the app runs while the test does."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    engine = app.state.database.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


# --- who may obtain a download URL -----------------------------------------------------------


async def test_verified_account_gets_signed_url_and_grant_is_recorded(
    client: httpx.AsyncClient,
    app: FastAPI,
    clip: Ingested,
    tokens: TokenFactory,
    clock: FrozenClock,
) -> None:
    token = tokens.account(verified=True, session_epoch=3)
    response = await request_url(client, clip, token)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    url = urlsplit(body["url"])
    assert f"{url.scheme}://{url.netloc}" == PUBLIC_BASE_URL
    assert url.path == (
        f"/v1/media/downloads/{clip.rendition_id}/oslo-press-point-{clip.rendition_id.hex[:8]}.mp4"
    )
    query = dict(parse_qsl(url.query))
    # Signed with what would revoke it: the session it was issued under, and when.
    assert set(query) == {"sub", "sep", "iat", "exp", "sig"}
    assert query["sep"] == "3"
    assert int(query["iat"]) == int(clock.now().timestamp())
    expected_expiry = int(clock.now().timestamp()) + 3600
    assert int(query["exp"]) == expected_expiry
    assert body["expires_at"].endswith("Z")
    assert body["size_bytes"] == len(CONTENT)
    assert body["sha256"] == hashlib.sha256(CONTENT).hexdigest()

    async with app.state.database.sessionmaker() as session:
        grants = (await session.scalars(select(DownloadGrant))).all()
    [grant] = grants
    assert grant.subject == query["sub"]
    assert grant.rendition_id == clip.rendition_id
    assert grant.video_id == clip.video_id
    assert grant.client_id is None
    assert int(grant.expires_at.timestamp()) == expected_expiry
    assert grant.token_id


async def test_partner_client_gets_signed_url(
    client: httpx.AsyncClient, app: FastAPI, clip: Ingested, tokens: TokenFactory
) -> None:
    response = await request_url(client, clip, tokens.client("reuters-feed"))
    assert response.status_code == 200
    query = dict(parse_qsl(urlsplit(response.json()["url"]).query))
    assert query["sub"] == "client:reuters-feed"
    # A client URL dies with its client, not with its owner's sessions.
    assert query["cid"] == "reuters-feed"
    assert "sep" not in query
    async with app.state.database.sessionmaker() as session:
        grant = await session.scalar(select(DownloadGrant))
    assert grant is not None
    assert grant.client_id == "reuters-feed"
    download = await client.get(url_path(response.json()["url"]))
    assert download.status_code == 200
    assert download.content == CONTENT


async def test_unverified_account_is_refused(
    client: httpx.AsyncClient, app: FastAPI, clip: Ingested, tokens: TokenFactory
) -> None:
    response = await request_url(client, clip, tokens.account(verified=False))
    assert_problem(response, 403, "email_not_verified")
    async with app.state.database.sessionmaker() as session:
        assert (await session.scalars(select(DownloadGrant))).all() == []


async def test_client_without_download_scope_is_refused(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory
) -> None:
    # The auth issuer's own minting, with the scope a partner client would lack.
    token = tokens.issuer._issue(
        "client:no-scope", "news:read", {"client_id": "no-scope", "email_verified": False}
    ).token
    assert_problem(await request_url(client, clip, token), 403, "insufficient_scope")


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-jwt", "Basic dXNlcjpwdw=="])
async def test_missing_or_invalid_token_is_401(
    client: httpx.AsyncClient, clip: Ingested, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.post(
        f"/v1/media/videos/{clip.video_id}/renditions/{clip.rendition_id}/download-url",
        headers=headers,
    )
    assert_problem(response, 401, "invalid_token")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_token_from_another_issuer_is_401(client: httpx.AsyncClient, clip: Ingested) -> None:
    stranger = TokenFactory()  # same claims, keys the media service does not trust
    assert_problem(await request_url(client, clip, stranger.account()), 401, "invalid_token")


async def test_unknown_video_or_rendition_is_404(
    client: httpx.AsyncClient, catalogue: Catalogue, clip: Ingested, tokens: TokenFactory
) -> None:
    token = {"Authorization": f"Bearer {tokens.account()}"}
    other = await catalogue.ingest_bytes(b"other video", title="Other")
    for video_id, rendition_id in [
        (uuid.uuid4(), clip.rendition_id),
        (clip.video_id, uuid.uuid4()),
        (clip.video_id, other.rendition_id),  # a rendition of another video
    ]:
        response = await client.post(
            f"/v1/media/videos/{video_id}/renditions/{rendition_id}/download-url", headers=token
        )
        assert_problem(response, 404, "not_found")


async def test_download_url_issuing_is_rate_limited_per_subject(
    settings_factory: Any, clock: FrozenClock, tokens: TokenFactory, catalogue: Catalogue
) -> None:
    clip = await catalogue.ingest_bytes(CONTENT)
    app = create_app(
        settings_factory(download_url_rate_limit="2/minute"),
        clock=clock,
        token_verifier=tokens.verifier(),
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        first, second = tokens.account(), tokens.account()
        policy = '"media-download-url";q=2;w=60'
        one = await request_url(client, clip, first)
        assert one.status_code == 200
        assert one.headers["ratelimit-policy"] == policy
        assert re.fullmatch(r'"media-download-url";r=1;t=\d+', one.headers["ratelimit"])
        two = await request_url(client, clip, first)
        assert two.status_code == 200
        assert re.fullmatch(r'"media-download-url";r=0;t=\d+', two.headers["ratelimit"])
        limited = await request_url(client, clip, first)
        assert_problem(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["ratelimit-policy"] == policy
        assert re.fullmatch(r'"media-download-url";r=0;t=[1-9]\d*', limited.headers["ratelimit"])
        assert (await request_url(client, clip, second)).status_code == 200


# --- the signed URL ---------------------------------------------------------------------------


async def test_get_serves_the_file_with_its_headers(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory
) -> None:
    response = await client.get(url_path(await signed_url(client, clip, tokens)))
    assert response.status_code == 200
    assert response.content == CONTENT
    digest = hashlib.sha256(CONTENT)
    assert response.headers["content-length"] == str(len(CONTENT))
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["etag"] == f'"{digest.hexdigest()}"'
    assert response.headers["accept-ranges"] == "bytes"
    prefix = clip.rendition_id.hex[:8]
    assert response.headers["content-disposition"] == (
        f'attachment; filename="oslo-press-point-{prefix}.mp4"; '
        f"filename*=UTF-8''Oslo%20press%20point-{prefix}.mp4"
    )
    assert response.headers["repr-digest"] == (
        f"sha-256=:{base64.b64encode(digest.digest()).decode()}:"
    )
    assert "x-accel-redirect" not in response.headers


async def test_head_has_the_headers_and_no_body(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory
) -> None:
    path = url_path(await signed_url(client, clip, tokens))
    get = await client.get(path)
    head = await client.head(path)
    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-length", "content-type", "etag", "content-disposition", "repr-digest"):
        assert head.headers[name] == get.headers[name]


@pytest.mark.parametrize(
    ("range_header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, len(CONTENT) - 1),
        ("bytes=-50", len(CONTENT) - 50, len(CONTENT) - 1),
        ("bytes=5000-999999", 5000, len(CONTENT) - 1),
        ("bytes=-999999", 0, len(CONTENT) - 1),
        ("bytes=10243-10243", 10243, 10243),
    ],
)
async def test_single_range_gets_206_with_the_right_bytes(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory,
    range_header: str, start: int, end: int,
) -> None:  # fmt: skip
    path = url_path(await signed_url(client, clip, tokens))
    response = await client.get(path, headers={"Range": range_header})
    assert response.status_code == 206
    assert response.content == CONTENT[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{len(CONTENT)}"
    assert response.headers["content-length"] == str(end - start + 1)
    assert response.headers["etag"] == f'"{clip.sha256}"'


async def test_resumed_download_reassembles_the_file(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory
) -> None:
    path = url_path(await signed_url(client, clip, tokens))
    received = b""
    while len(received) < len(CONTENT):
        # What `curl -C -` does after each interruption: ask from the first missing byte.
        response = await client.get(path, headers={"Range": f"bytes={len(received)}-"})
        assert response.status_code == 206
        received += response.content[:3000]
    assert hashlib.sha256(received).hexdigest() == clip.sha256


@pytest.mark.parametrize("range_header", ["bytes=10244-", "bytes=999999-1000000", "bytes=-0"])
async def test_unsatisfiable_range_is_416(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory, range_header: str
) -> None:
    path = url_path(await signed_url(client, clip, tokens))
    response = await client.get(path, headers={"Range": range_header})
    assert_problem(response, 416, "range_not_satisfiable")
    assert response.headers["content-range"] == f"bytes */{len(CONTENT)}"


@pytest.mark.parametrize("range_header", ["bytes=0-1,5-6", "items=0-5", "bytes=9-3", "bytes=abc"])
async def test_ranges_we_do_not_serve_get_the_whole_file(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory, range_header: str
) -> None:
    path = url_path(await signed_url(client, clip, tokens))
    response = await client.get(path, headers={"Range": range_header})
    assert response.status_code == 200
    assert response.content == CONTENT


async def test_if_range_resumes_only_the_same_file(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory
) -> None:
    path = url_path(await signed_url(client, clip, tokens))
    same = await client.get(path, headers={"Range": "bytes=10-19", "If-Range": f'"{clip.sha256}"'})
    assert same.status_code == 206
    assert same.content == CONTENT[10:20]
    changed = await client.get(path, headers={"Range": "bytes=10-19", "If-Range": '"older"'})
    assert changed.status_code == 200
    assert changed.content == CONTENT
    dated = await client.get(
        path, headers={"Range": "bytes=10-19", "If-Range": "Tue, 01 Jan 2002 00:00:00 GMT"}
    )
    assert dated.status_code == 200


async def test_if_none_match_gets_304(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory
) -> None:
    path = url_path(await signed_url(client, clip, tokens))
    response = await client.get(path, headers={"If-None-Match": f'"{clip.sha256}"'})
    assert response.status_code == 304
    assert response.content == b""


async def test_filename_in_the_path_is_cosmetic(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory
) -> None:
    url = urlsplit(await signed_url(client, clip, tokens))
    renamed = url.path.rsplit("/", 1)[0] + "/whatever.bin?" + url.query
    response = await client.get(renamed)
    assert response.status_code == 200
    name = f"oslo-press-point-{clip.rendition_id.hex[:8]}.mp4"
    assert f'filename="{name}"' in response.headers["content-disposition"]


@pytest.mark.parametrize(
    "tamper",
    [
        {"sig": "A" * 43},
        {"exp": "9999999999"},
        {"sub": "someone-else"},
        {"sig": ""},
        {"exp": "-1"},
        {"sep": "4"},
        {"iat": "1"},
        {"cid": "someone-else"},
    ],
)
async def test_altered_url_is_403(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory, tamper: dict[str, str]
) -> None:
    url = await signed_url(client, clip, tokens)
    assert_problem(await client.get(with_query(url, **tamper)), 403, "invalid_signature")
    assert (await client.head(with_query(url, **tamper))).status_code == 403


async def test_signature_is_bound_to_the_rendition(
    client: httpx.AsyncClient, catalogue: Catalogue, clip: Ingested, tokens: TokenFactory
) -> None:
    other = await catalogue.ingest_bytes(b"another file", title="Other")
    url = urlsplit(await signed_url(client, clip, tokens))
    swapped = url.path.replace(str(clip.rendition_id), str(other.rendition_id)) + "?" + url.query
    assert_problem(await client.get(swapped), 403, "invalid_signature")
    uppercased = url.path.replace(str(clip.rendition_id), str(clip.rendition_id).upper())
    assert_problem(await client.get(f"{uppercased}?{url.query}"), 403, "invalid_signature")


async def test_url_without_query_is_403(client: httpx.AsyncClient, clip: Ingested) -> None:
    response = await client.get(f"/v1/media/downloads/{clip.rendition_id}/x.mp4")
    assert_problem(response, 403, "invalid_signature")


async def test_expired_link_is_410_but_forgery_still_403(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory, clock: FrozenClock
) -> None:
    url = await signed_url(client, clip, tokens)
    clock.advance(timedelta(seconds=3599))
    assert (await client.head(url_path(url))).status_code == 200
    clock.advance(timedelta(seconds=1))
    assert_problem(await client.get(url_path(url)), 410, "link_expired")
    assert (await client.head(url_path(url))).status_code == 410
    # Signature first: an attacker learns nothing about expiry from a forged URL.
    assert_problem(await client.get(with_query(url, sig="B" * 43)), 403, "invalid_signature")


async def test_checking_a_url_needs_no_database(
    client: httpx.AsyncClient,
    clip: Ingested,
    tokens: TokenFactory,
    clock: FrozenClock,
    queries: list[str],
) -> None:
    url = await signed_url(client, clip, tokens)
    queries.clear()
    assert (await client.get(with_query(url, sig="C" * 43))).status_code == 403
    assert queries == []
    assert (await client.get(url_path(url))).status_code == 200
    assert len(queries) == 1  # the rendition's file facts and video status, by primary key
    assert (await client.get(url_path(url), headers={"Range": "bytes=0-0"})).status_code == 206
    # Never remembered: a withdrawal must stop a link at once, in every process.
    assert len(queries) == 2
    clock.advance(timedelta(hours=2))
    assert (await client.get(url_path(url))).status_code == 410
    assert len(queries) == 2


async def test_rendition_removed_after_signing_is_404(
    client: httpx.AsyncClient, app: FastAPI, clip: Ingested, tokens: TokenFactory
) -> None:
    url = await signed_url(client, clip, tokens)
    async with app.state.database.sessionmaker() as session:
        await session.execute(delete(Rendition).where(Rendition.id == clip.rendition_id))
        await session.commit()
    assert_problem(await client.get(url_path(url)), 404, "not_found")


async def test_file_missing_from_storage_is_404_and_logged(
    client: httpx.AsyncClient,
    catalogue: Catalogue,
    clip: Ingested,
    tokens: TokenFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = await signed_url(client, clip, tokens)
    rendition = await catalogue.rendition(clip.rendition_id)
    await catalogue.storage.delete(rendition.storage_key)
    for method in ("GET", "HEAD"):
        response = await client.request(method, url_path(url))
        assert response.status_code == 404
    assert_problem(await client.get(url_path(url)), 404, "not_found")
    assert any(
        str(clip.rendition_id) in record.getMessage() and record.levelname == "ERROR"
        for record in caplog.records
    )


async def test_accel_redirect_hands_the_file_to_nginx(
    settings_factory: Any, clock: FrozenClock, tokens: TokenFactory, catalogue: Catalogue
) -> None:
    clip = await catalogue.ingest_bytes(CONTENT, title="Oslo press point")
    rendition = await catalogue.rendition(clip.rendition_id)
    app = create_app(
        settings_factory(accel_redirect=True, accel_prefix="/internal/media"),
        clock=clock,
        token_verifier=tokens.verifier(),
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        path = url_path(await signed_url(client, clip, tokens))
        for method in ("GET", "HEAD"):
            response = await client.request(method, path, headers={"Range": "bytes=0-9"})
            assert response.status_code == 200
            assert response.content == b""
            assert response.headers["x-accel-redirect"] == (
                f"/internal/media/{rendition.storage_key}"
            )
            assert response.headers["etag"] == f'"{clip.sha256}"'
            assert response.headers["content-type"] == "video/mp4"
            assert response.headers["accept-ranges"] == "bytes"
            assert response.headers["content-disposition"].startswith("attachment;")
            assert response.headers["repr-digest"].startswith("sha-256=:")
        forged = await client.get(with_query(path, sig="D" * 43))
        assert_problem(forged, 403, "invalid_signature")
        assert "x-accel-redirect" not in forged.headers
