"""The HMAC that makes a download URL a capability."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest
from pydantic import SecretStr

from services.media.exceptions import InvalidSignature, LinkExpired
from services.media.signing import DownloadSigner, SignedDownload

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ISSUED = int(NOW.timestamp()) - 60
RENDITION = "9b2d7c3a-51e4-4f0a-8c6b-2e7d1f4a6b38"


@pytest.fixture
def signer() -> DownloadSigner:
    return DownloadSigner(SecretStr("unit-test-secret"))


def signed(
    signer: DownloadSigner,
    subject: str = "user-1",
    expires: int = 1_780_400_000,
    *,
    session_epoch: int | None = 2,
    client_id: str | None = None,
) -> dict[str, str]:
    url = signer.sign_path(
        RENDITION,
        "clip.mp4",
        subject,
        expires,
        issued_at=ISSUED,
        session_epoch=session_epoch,
        client_id=client_id,
    )
    return dict(parse_qsl(urlsplit(url).query))


def verify(
    signer: DownloadSigner, query: dict[str, str], rendition: str = RENDITION
) -> SignedDownload:
    return signer.verify(
        rendition,
        query.get("sub"),
        query.get("exp"),
        query.get("sig"),
        issued_at=query.get("iat"),
        session_epoch=query.get("sep"),
        client_id=query.get("cid"),
        now=NOW,
    )


def signed_v1(signer: DownloadSigner, subject: str, expires: int = 1_780_400_000) -> dict[str, str]:
    """A URL as the previous release signed it: subject and expiry only."""
    return {
        "sub": subject,
        "exp": str(expires),
        "sig": signer.signature_v1(RENDITION, subject, str(expires)),
    }


def test_round_trip(signer: DownloadSigner) -> None:
    grant = verify(signer, signed(signer))
    assert grant == SignedDownload(
        RENDITION, "user-1", 1_780_400_000, issued_at=ISSUED, session_epoch=2, client_id=None
    )


def test_a_client_url_names_its_client(signer: DownloadSigner) -> None:
    query = signed(signer, "client:feed", session_epoch=None, client_id="feed")
    assert "sep" not in query
    grant = verify(signer, query)
    assert (grant.client_id, grant.session_epoch) == ("feed", 0)


def test_path_shape(signer: DownloadSigner) -> None:
    path = signer.sign_path(RENDITION, "a b.mp4", "client:x y", 1_780_400_000, issued_at=ISSUED)
    assert path.startswith(f"/v1/media/downloads/{RENDITION}/a%20b.mp4?")
    assert dict(parse_qsl(urlsplit(path).query))["sub"] == "client:x y"


def test_another_secret_does_not_verify(signer: DownloadSigner) -> None:
    query = signed(DownloadSigner(SecretStr("other-secret")))
    with pytest.raises(InvalidSignature):
        verify(signer, query)


@pytest.mark.parametrize("field", ["rendition", "sub", "sep", "iat", "exp", "sig"])
def test_any_changed_field_is_refused(signer: DownloadSigner, field: str) -> None:
    values = {"rendition": RENDITION, **signed(signer)}
    values[field] = values[field][:-1] + ("0" if values[field][-1] != "0" else "1")
    rendition = values.pop("rendition")
    with pytest.raises(InvalidSignature):
        verify(signer, values, rendition)


def test_a_changed_client_is_refused(signer: DownloadSigner) -> None:
    query = signed(signer, "client:feed", session_epoch=None, client_id="feed")
    with pytest.raises(InvalidSignature):
        verify(signer, {**query, "cid": "other"})


@pytest.mark.parametrize("added", [{"cid": "feed"}, {"sep": "9"}, {"sep": ""}])
def test_fields_that_were_not_signed_cannot_be_added(
    signer: DownloadSigner, added: dict[str, str]
) -> None:
    with pytest.raises(InvalidSignature):
        verify(signer, {**signed(signer, session_epoch=None), **added})


@pytest.mark.parametrize("dropped", ["sep", "iat"])
def test_signed_fields_cannot_be_dropped(signer: DownloadSigner, dropped: str) -> None:
    # Dropping `iat` would make it read as the older format: its signature does not match.
    query = signed(signer)
    del query[dropped]
    with pytest.raises(InvalidSignature):
        verify(signer, query)


def test_fields_cannot_be_shifted_into_each_other(signer: DownloadSigner) -> None:
    # With plain concatenation "a\nb" + "c" and "a" + "b\nc" would sign the same bytes.
    assert signer.signature("r", "a\n1", "2", issued_at="3") != signer.signature(
        "r", "a", "1\n2", issued_at="3"
    )


@pytest.mark.parametrize("missing", ["sub", "exp", "sig"])
def test_missing_field_is_refused(signer: DownloadSigner, missing: str) -> None:
    query = signed(signer)
    query[missing] = ""
    with pytest.raises(InvalidSignature):
        verify(signer, query)


def test_expiry_is_checked_after_the_signature(signer: DownloadSigner) -> None:
    expires = int(NOW.timestamp())
    query = signed(signer, expires=expires)
    with pytest.raises(LinkExpired):
        verify(signer, query)
    with pytest.raises(InvalidSignature):
        verify(signer, {**query, "sig": "x" + query["sig"][1:]})


def test_valid_until_the_last_second(signer: DownloadSigner) -> None:
    expires = int(NOW.timestamp()) + 1
    verify(signer, signed(signer, expires=expires))


def test_oversized_input_is_refused_without_hashing(signer: DownloadSigner) -> None:
    with pytest.raises(InvalidSignature):
        signer.verify(RENDITION, "x" * 10_000, "1", "sig", now=NOW)
    with pytest.raises(InvalidSignature):
        signer.verify(RENDITION, "u", "1", "sig", issued_at="1" * 10_000, now=NOW)


# --- URLs of the previous release ----------------------------------------------------------


def test_a_previous_release_url_is_honoured_until_it_expires_as_issued_under_epoch_0(
    signer: DownloadSigner,
) -> None:
    # Refusing them would break every download in progress at the upgrade; they expire within
    # MEDIA_DOWNLOAD_URL_TTL_SECONDS, and counting them as epoch 0 (older than any revocation)
    # means a revocation of their account or client still ends them.
    grant = verify(signer, signed_v1(signer, "user-1"))
    assert grant == SignedDownload(RENDITION, "user-1", 1_780_400_000)
    assert grant.session_epoch == 0
    assert grant.issued_at is None
    client = verify(signer, signed_v1(signer, "client:feed"))
    assert client.client_id == "feed"
    with pytest.raises(LinkExpired):
        verify(signer, signed_v1(signer, "user-1", expires=int(NOW.timestamp())))


@pytest.mark.parametrize("added", [{"sep": "5"}, {"cid": "feed"}])
def test_a_previous_release_url_cannot_gain_fields(
    signer: DownloadSigner, added: dict[str, str]
) -> None:
    with pytest.raises(InvalidSignature):
        verify(signer, {**signed_v1(signer, "user-1"), **added})


def test_a_new_url_is_not_a_previous_release_one(signer: DownloadSigner) -> None:
    # An old signature with `iat` added is checked as a new URL: the signatures differ.
    old = signed_v1(signer, "user-1")
    with pytest.raises(InvalidSignature):
        verify(signer, {**old, "iat": str(ISSUED)})
