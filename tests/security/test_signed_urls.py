"""Download URLs: changing any signed part of the URL gets 403; an old one gets 410."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from services.common.clock import FrozenClock
from tests.conftest import TokenFactory
from tests.security.apps import assert_problem, create_app, prepare, serving, settings_for


@pytest.fixture
async def media_at(
    tmp_path: Path, tokens: TokenFactory, clock: FrozenClock
) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for("media", tmp_path / "media")
    await prepare("media", settings, seed=True)
    app = create_app("media", settings, token_verifier=tokens.verifier(), clock=clock)
    async with serving(app) as client:
        yield client


async def _renditions(media: httpx.AsyncClient) -> list[tuple[str, str]]:
    pairs = []
    for item in (await media.get("/v1/media/videos")).json()["items"]:
        video = (await media.get(f"/v1/media/videos/{item['id']}")).json()
        pairs.extend((video["id"], rendition["id"]) for rendition in video["renditions"])
    return pairs


async def _signed(media: httpx.AsyncClient, token: str, video: str, rendition: str) -> str:
    response = await media.post(
        f"/v1/media/videos/{video}/renditions/{rendition}/download-url",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    url = urlsplit(response.json()["url"])
    return f"{url.path}?{url.query}"


def _with(path_and_query: str, **changes: str | None) -> str:
    path, _, query = path_and_query.partition("?")
    params = {key: values[0] for key, values in parse_qs(query).items()}
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return f"{path}?{urlencode(params)}"


def _flip(text: str) -> str:
    return ("A" if text[0] != "A" else "B") + text[1:]


async def test_tampering_with_any_signed_field_is_refused(
    media_at: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    renditions = await _renditions(media_at)
    assert len(renditions) >= 2
    (video, rendition), (_, other_rendition) = renditions[0], renditions[1]
    url = await _signed(media_at, tokens.account(), video, rendition)
    assert (await media_at.head(url)).status_code == 200
    query = parse_qs(url.partition("?")[2])
    sub, exp, sig = query["sub"][0], query["exp"][0], query["sig"][0]
    tampered = {
        "other_rendition": url.replace(rendition, other_rendition, 1),
        "other_subject": _with(url, sub=_flip(sub)),
        "subject_removed": _with(url, sub=None),
        "expiry_extended": _with(url, exp=str(int(exp) + 1)),
        "expiry_far_future": _with(url, exp="99999999999"),
        "expiry_not_a_number": _with(url, exp=exp + ".0"),
        "expiry_removed": _with(url, exp=None),
        "signature_flipped": _with(url, sig=_flip(sig)),
        "signature_truncated": _with(url, sig=sig[:-2]),
        "signature_removed": _with(url, sig=None),
        "signature_padded": _with(url, sig=sig + "=="),
        "signature_huge": _with(url, sig=sig * 50),
        "signature_non_ascii": _with(url, sig="é" + sig[1:]),
        "subject_huge": _with(url, sub=sub * 100),
    }
    for name, target in tampered.items():
        for method in ("GET", "HEAD"):
            response = await media_at.request(method, target)
            assert response.status_code == 403, (name, method, response.status_code)
            if method == "GET":
                assert_problem(response, 403, "invalid_signature")


async def test_the_filename_is_cosmetic_but_cannot_change_the_file(
    media_at: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    video, rendition = (await _renditions(media_at))[0]
    url = await _signed(media_at, tokens.account(), video, rendition)
    genuine = await media_at.get(url)
    path, _, query = url.partition("?")
    renamed = await media_at.get(f"{path.rsplit('/', 1)[0]}/..%2F..%2Fetc%2Fpasswd?{query}")
    assert renamed.status_code in {200, 403, 404}
    if renamed.status_code == 200:
        assert renamed.content == genuine.content


async def test_an_expired_url_gets_410_and_a_forged_expired_one_403(
    media_at: httpx.AsyncClient, tokens: TokenFactory, clock: FrozenClock
) -> None:
    video, rendition = (await _renditions(media_at))[0]
    url = await _signed(media_at, tokens.account(), video, rendition)
    clock.advance(24 * 3600)
    assert_problem(await media_at.get(url), 410, "link_expired")
    exp = parse_qs(url.partition("?")[2])["exp"][0]
    # The signature is checked first: a forged URL learns nothing about which expiries pass.
    assert_problem(await media_at.get(_with(url, exp=str(int(exp) - 1))), 403, "invalid_signature")


async def test_unverified_accounts_get_no_download_url(
    media_at: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    video, rendition = (await _renditions(media_at))[0]
    response = await media_at.post(
        f"/v1/media/videos/{video}/renditions/{rendition}/download-url",
        headers={"Authorization": f"Bearer {tokens.account(verified=False)}"},
    )
    assert_problem(response, 403, "email_not_verified")
