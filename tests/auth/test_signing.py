"""Access tokens: forgeries are refused by /me, and PyJWT verifies real ones from the JWKS alone."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from services.auth.config import AuthSettings
from services.common.jwt import generate_private_key_pem
from services.gateway.mail_sink import MailSink
from tests.auth.flows import bearer, verified_account


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(payload).encode())


@pytest.fixture
def private_pem(settings: AuthSettings, app: Any) -> bytes:
    # The app made its dev signing key under the data dir.
    return (Path(settings.data_dir) / "keys" / "auth-signing-key.pem").read_bytes()


@pytest.fixture
async def genuine(client: httpx.AsyncClient, mail_sink: MailSink) -> dict[str, Any]:
    pair = await verified_account(client, mail_sink, "signed@example.com")
    header = jwt.get_unverified_header(pair["access_token"])
    payload = jwt.decode(pair["access_token"], options={"verify_signature": False})
    return {"token": pair["access_token"], "header": header, "claims": payload}


async def test_genuine_token_is_accepted(
    client: httpx.AsyncClient, genuine: dict[str, Any]
) -> None:
    assert (await client.get("/v1/auth/me", headers=bearer(genuine["token"]))).status_code == 200


async def test_pyjwt_verifies_our_tokens_from_the_jwks_alone(
    client: httpx.AsyncClient, genuine: dict[str, Any]
) -> None:
    document = (await client.get("/.well-known/jwks.json")).json()
    keys = jwt.PyJWKSet.from_dict(document)
    key = next(k for k in keys.keys if k.key_id == genuine["header"]["kid"])
    decoded = jwt.decode(
        genuine["token"],
        key.key,
        algorithms=["ES256"],
        audience="natomedia-api",
        issuer="natomedia-auth",
        options={"require": ["exp", "iat", "sub", "jti"]},
    )
    assert decoded["sub"] == genuine["claims"]["sub"]
    assert decoded["email_verified"] is True
    assert decoded["scope"] == "media:download"
    assert decoded["exp"] - decoded["iat"] == 900
    assert genuine["header"]["typ"] == "at+jwt"


async def _refused(client: httpx.AsyncClient, token: str) -> None:
    response = await client.get("/v1/auth/me", headers=bearer(token))
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "invalid_token"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_alg_none_is_refused(client: httpx.AsyncClient, genuine: dict[str, Any]) -> None:
    header = {**genuine["header"], "alg": "none"}
    await _refused(client, _segments(header, genuine["claims"]) + ".")


async def test_hs256_keyed_with_the_public_key_is_refused(
    client: httpx.AsyncClient, genuine: dict[str, Any], private_pem: bytes
) -> None:
    public_pem = (
        serialization.load_pem_private_key(private_pem, password=None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = {**genuine["header"], "alg": "HS256"}
    signing_input = _segments(header, genuine["claims"])
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    await _refused(client, signing_input + "." + _b64(signature))


@pytest.mark.parametrize(
    "change",
    [
        {"aud": "someone-else"},
        {"iss": "https://evil.example"},
        {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 4600},
    ],
    ids=["wrong-aud", "wrong-iss", "expired"],
)
async def test_tokens_with_wrong_claims_are_refused(
    client: httpx.AsyncClient,
    genuine: dict[str, Any],
    private_pem: bytes,
    change: dict[str, Any],
) -> None:
    payload = {**genuine["claims"], "jti": uuid.uuid4().hex, **change}
    token = jwt.encode(payload, private_pem, algorithm="ES256", headers=genuine["header"])
    await _refused(client, token)


async def test_unknown_kid_is_refused(client: httpx.AsyncClient, genuine: dict[str, Any]) -> None:
    stranger = generate_private_key_pem()
    payload = {**genuine["claims"], "jti": uuid.uuid4().hex}
    token = jwt.encode(
        payload, stranger, algorithm="ES256", headers={**genuine["header"], "kid": "not-ours"}
    )
    await _refused(client, token)
    # Our kid but another key's signature.
    token = jwt.encode(payload, stranger, algorithm="ES256", headers=genuine["header"])
    await _refused(client, token)


async def test_tampered_claims_are_refused(
    client: httpx.AsyncClient, genuine: dict[str, Any]
) -> None:
    head, _, signature = genuine["token"].split(".")
    payload = {**genuine["claims"], "scope": "admin editor media:download"}
    await _refused(client, f"{head}.{_b64(json.dumps(payload).encode())}.{signature}")
