"""Refresh tokens carry their claims under an HMAC: read back exactly, altered never."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.auth.exceptions import InvalidRefreshToken
from services.auth.refresh_tokens import RefreshTokens
from services.common.clock import FrozenClock

KEY = b"k" * 32
START = datetime(2026, 11, 27, 12, 0, 0, 750_000, tzinfo=UTC)


def tokens(key: bytes = KEY) -> RefreshTokens:
    return RefreshTokens(key, FrozenClock(START), family_ttl_seconds=30 * 86_400)


def raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_a_new_family_reads_back_as_generation_zero_until_its_deadline() -> None:
    user = uuid.uuid4()
    token = tokens().start_family(user, session_epoch=3)
    claims = tokens().read(token)
    assert claims.user_id == user
    assert claims.generation == 0
    assert claims.session_epoch == 3
    assert claims.expires_at == START.replace(microsecond=0) + timedelta(days=30)
    assert len(token) == 108
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert tokens().read(tokens().start_family(user, 3)).family_id != claims.family_id


def test_every_altered_bit_is_refused() -> None:
    token = tokens().start_family(uuid.uuid4(), 0)
    data = raw(token)
    for index in range(len(data)):
        for bit in (0x01, 0x80):
            altered = bytearray(data)
            altered[index] ^= bit
            with pytest.raises(InvalidRefreshToken):
                tokens().read(encode(bytes(altered)))


def test_a_token_signed_under_another_key_is_refused() -> None:
    token = tokens(b"other key" * 4).start_family(uuid.uuid4(), 0)
    with pytest.raises(InvalidRefreshToken):
        tokens().read(token)


@pytest.mark.parametrize(
    "text",
    ["", "nope", "é" * 108, "A" * 108, "+" * 108, "=" * 108, "A" * 4096, " " + "A" * 107],
)
def test_what_is_not_a_token_is_refused(text: str) -> None:
    with pytest.raises(InvalidRefreshToken):
        tokens().read(text)


def test_a_truncated_or_extended_token_is_refused() -> None:
    token = tokens().start_family(uuid.uuid4(), 0)
    for changed in (token[:-1], token[:-4], token + "A", token + "AAAA"):
        with pytest.raises(InvalidRefreshToken):
            tokens().read(changed)
