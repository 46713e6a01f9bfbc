"""Forged access tokens: every way an attacker might get a JWT past a careless verifier."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization

from services.common.jwt import SigningKey, generate_private_key_pem
from tests.conftest import TokenFactory


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return ".".join(
        _b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )


def _es256(key: SigningKey, claims: dict[str, Any], **header: Any) -> str:
    return pyjwt.encode(claims, key.private_pem, algorithm="ES256", headers=header)


def genuine_claims(tokens: TokenFactory, roles: tuple[str, ...]) -> dict[str, Any]:
    claims: dict[str, Any] = pyjwt.decode(
        tokens.account(roles=roles), options={"verify_signature": False}
    )
    return claims


def forgeries(tokens: TokenFactory, roles: tuple[str, ...]) -> dict[str, str]:
    """Tokens that carry exactly the privileges wanted, each broken in one way."""
    key = tokens.key
    claims = genuine_claims(tokens, roles)
    kid = key.kid
    public_pem = serialization.load_pem_private_key(key.private_pem, None).public_key()
    public_bytes = public_pem.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    attacker = SigningKey(generate_private_key_pem())
    now = int(time.time())

    def hs256_with_public_key() -> str:
        signing_input = _segments({"alg": "HS256", "typ": "at+jwt", "kid": kid}, claims)
        mac = hmac.new(public_bytes, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(mac)}"

    def genuine(**changes: Any) -> str:
        return _es256(key, {**claims, **changes}, kid=kid, typ="at+jwt")

    def without(name: str) -> str:
        return _es256(key, {k: v for k, v in claims.items() if k != name}, kid=kid, typ="at+jwt")

    made: dict[str, Callable[[], str]] = {
        "alg_none": lambda: _segments({"alg": "none", "typ": "at+jwt", "kid": kid}, claims) + ".",
        "alg_none_uppercase": lambda: (
            _segments({"alg": "None", "typ": "at+jwt", "kid": kid}, claims) + "."
        ),
        "hs256_with_public_key": hs256_with_public_key,
        "kid_stripped": lambda: _es256(key, claims, typ="at+jwt"),
        "kid_swapped_to_attacker_key": lambda: _es256(
            attacker, claims, kid=attacker.kid, typ="at+jwt"
        ),
        "attacker_key_claiming_real_kid": lambda: _es256(attacker, claims, kid=kid, typ="at+jwt"),
        "kid_path_traversal": lambda: _es256(key, claims, kid="../../../dev/null", typ="at+jwt"),
        "typ_plain_jwt": lambda: _es256(key, claims, kid=kid, typ="JWT"),
        "typ_missing": lambda: _es256(key, claims, kid=kid),
        "wrong_issuer": lambda: genuine(iss="https://evil.example"),
        "wrong_audience": lambda: genuine(aud="someone-else"),
        "expired": lambda: genuine(exp=now - 3600, iat=now - 7200),
        "not_yet_valid": lambda: genuine(nbf=now + 3600),
        "no_exp": lambda: without("exp"),
        "no_sub": lambda: without("sub"),
        "signature_stripped": lambda: genuine().rsplit(".", 1)[0] + ".",
        "payload_swapped": lambda: (
            genuine().split(".")[0]
            + "."
            + _b64(json.dumps({**claims, "sub": "someone-else"}).encode())
            + "."
            + genuine().split(".")[2]
        ),
        "garbage": lambda: "not.a.jwt",
    }
    return {name: build() for name, build in made.items()}


FORGERY_NAMES = sorted(forgeries(TokenFactory(), ("editor",)))
