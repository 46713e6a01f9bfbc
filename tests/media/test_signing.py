"""The HMAC that makes a download URL a capability."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest
from pydantic import SecretStr

from services.media.exceptions import InvalidSignature, LinkExpired
from services.media.signing import DownloadSigner

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
RENDITION = "9b2d7c3a-51e4-4f0a-8c6b-2e7d1f4a6b38"


@pytest.fixture
def signer() -> DownloadSigner:
    return DownloadSigner(SecretStr("unit-test-secret"))


def signed(
    signer: DownloadSigner, subject: str = "user-1", expires: int = 1_780_400_000
) -> dict[str, str]:
    url = signer.sign_path(RENDITION, "clip.mp4", subject, expires)
    return dict(parse_qsl(urlsplit(url).query))


def test_round_trip(signer: DownloadSigner) -> None:
    query = signed(signer)
    grant = signer.verify(RENDITION, query["sub"], query["exp"], query["sig"], now=NOW)
    assert (grant.rendition_id, grant.subject, grant.expires) == (
        RENDITION,
        "user-1",
        1_780_400_000,
    )


def test_path_shape(signer: DownloadSigner) -> None:
    path = signer.sign_path(RENDITION, "a b.mp4", "client:x y", 1_780_400_000)
    assert path.startswith(f"/v1/media/downloads/{RENDITION}/a%20b.mp4?")
    assert dict(parse_qsl(urlsplit(path).query))["sub"] == "client:x y"


def test_another_secret_does_not_verify(signer: DownloadSigner) -> None:
    query = signed(DownloadSigner(SecretStr("other-secret")))
    with pytest.raises(InvalidSignature):
        signer.verify(RENDITION, query["sub"], query["exp"], query["sig"], now=NOW)


@pytest.mark.parametrize("field", ["rendition", "sub", "exp", "sig"])
def test_any_changed_field_is_refused(signer: DownloadSigner, field: str) -> None:
    query = signed(signer)
    values = {"rendition": RENDITION, **query}
    values[field] = values[field][:-1] + ("0" if values[field][-1] != "0" else "1")
    with pytest.raises(InvalidSignature):
        signer.verify(values["rendition"], values["sub"], values["exp"], values["sig"], now=NOW)


def test_fields_cannot_be_shifted_into_each_other(signer: DownloadSigner) -> None:
    # With plain concatenation "a\nb" + "c" and "a" + "b\nc" would sign the same bytes.
    assert signer.signature("r", "a\n1", "2") != signer.signature("r", "a", "1\n2")


@pytest.mark.parametrize("missing", ["sub", "exp", "sig"])
def test_missing_field_is_refused(signer: DownloadSigner, missing: str) -> None:
    query = signed(signer)
    query[missing] = ""
    with pytest.raises(InvalidSignature):
        signer.verify(RENDITION, query["sub"], query["exp"], query["sig"], now=NOW)


def test_expiry_is_checked_after_the_signature(signer: DownloadSigner) -> None:
    expires = int(NOW.timestamp())
    query = signed(signer, expires=expires)
    with pytest.raises(LinkExpired):
        signer.verify(RENDITION, query["sub"], query["exp"], query["sig"], now=NOW)
    with pytest.raises(InvalidSignature):
        signer.verify(RENDITION, query["sub"], query["exp"], "x" + query["sig"][1:], now=NOW)


def test_valid_until_the_last_second(signer: DownloadSigner) -> None:
    expires = int(NOW.timestamp()) + 1
    query = signed(signer, expires=expires)
    signer.verify(RENDITION, query["sub"], query["exp"], query["sig"], now=NOW)


def test_oversized_input_is_refused_without_hashing(signer: DownloadSigner) -> None:
    with pytest.raises(InvalidSignature):
        signer.verify(RENDITION, "x" * 10_000, "1", "sig", now=NOW)
