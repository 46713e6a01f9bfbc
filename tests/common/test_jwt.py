"""Token verification refuses every forgery the contract names, and caches what it accepts."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization

from services.common.jwt import (
    LEEWAY_SECONDS,
    SigningKey,
    TokenError,
    TokenVerifier,
    encode_token,
    generate_private_key_pem,
)
from tests.conftest import TokenFactory


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": "natomedia-auth",
        "aud": "natomedia-api",
        "sub": "someone",
        "iat": now,
        "exp": now + 600,
        "jti": "j1",
        "scope": "media:download",
        "email_verified": True,
    }
    claims.update(overrides)
    return claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_accepts_its_own_tokens(tokens: TokenFactory) -> None:
    principal = await tokens.verifier().verify(tokens.account(roles=("editor",)))
    assert principal.email_verified
    assert principal.scopes == {"editor", "media:download"}
    assert not principal.is_client


async def test_client_tokens_name_the_client(tokens: TokenFactory) -> None:
    principal = await tokens.verifier().verify(tokens.client("acme"))
    assert principal.client_id == "acme"
    assert principal.subject == "client:acme"
    assert principal.scopes == {"media:download"}


async def test_refuses_alg_none(tokens: TokenFactory) -> None:
    header = _b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": tokens.key.kid}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    with pytest.raises(TokenError):
        await tokens.verifier().verify(f"{header}.{payload}.")


async def test_refuses_hs256_keyed_with_the_public_key(tokens: TokenFactory) -> None:
    public_pem = tokens.key.public_jwk  # what an attacker can read from the JWKS
    secret = json.dumps(public_pem).encode()
    header = {"alg": "HS256", "typ": "at+jwt", "kid": tokens.key.kid}
    import hashlib
    import hmac

    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(_claims()).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(TokenError):
        await tokens.verifier().verify(f"{signing_input}.{_b64(signature)}")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "https://evil.example"}, "issuer"),
        ({"exp": -60}, "expired"),
        ({"nbf": 600}, "not yet valid"),
    ],
)
async def test_refuses_wrong_claims(
    tokens: TokenFactory, overrides: dict[str, Any], reason: str
) -> None:
    # Instants are offsets from when the test runs: taken at collection, a long suite would
    # reach them before this test does.
    now = int(time.time())
    claims = {k: now + v if k in {"exp", "nbf"} else v for k, v in overrides.items()}
    token = encode_token(_claims(**claims), tokens.key)
    with pytest.raises(TokenError):
        await tokens.verifier().verify(token)


async def test_refuses_a_token_issued_in_the_future(tokens: TokenFactory) -> None:
    # Signed by the real key (a stolen key, a skewed issuer clock): still not accepted.
    token = encode_token(_claims(iat=int(time.time()) + 600), tokens.key)
    with pytest.raises(TokenError, match="issued in the future"):
        await tokens.verifier().verify(token)


async def test_accepts_an_iat_within_the_leeway(tokens: TokenFactory) -> None:
    # Clocks of the issuer and a verifier a moment apart.
    token = encode_token(_claims(iat=int(time.time()) + LEEWAY_SECONDS - 2), tokens.key)
    assert (await tokens.verifier().verify(token)).subject == "someone"


async def test_refuses_wrong_typ(tokens: TokenFactory) -> None:
    token = encode_token(_claims(), tokens.key, token_type="JWT")
    with pytest.raises(TokenError, match="typ"):
        await tokens.verifier().verify(token)


async def test_refuses_unknown_and_missing_kid(tokens: TokenFactory) -> None:
    stranger = SigningKey(generate_private_key_pem())
    with pytest.raises(TokenError, match="unknown kid"):
        await tokens.verifier().verify(encode_token(_claims(), stranger))
    private = serialization.load_pem_private_key(tokens.key.private_pem, password=None)
    no_kid = pyjwt.encode(_claims(), private, algorithm="ES256", headers={"typ": "at+jwt"})  # type: ignore[arg-type]
    with pytest.raises(TokenError):
        await tokens.verifier().verify(no_kid)


async def test_refuses_a_swapped_kid(tokens: TokenFactory) -> None:
    """A token signed by key B but naming key A's kid fails the signature check."""
    stranger = SigningKey(generate_private_key_pem())
    token = encode_token(_claims(), stranger)
    header, payload, signature = token.split(".")
    forged_header = json.loads(base64.urlsafe_b64decode(header + "=="))
    forged_header["kid"] = tokens.key.kid
    forged = f"{_b64(json.dumps(forged_header).encode())}.{payload}.{signature}"
    with pytest.raises(TokenError):
        await tokens.verifier().verify(forged)


async def test_a_tampered_payload_fails(tokens: TokenFactory) -> None:
    header, _, signature = tokens.account(verified=False).split(".")
    payload = _b64(json.dumps(_claims(email_verified=True)).encode())
    with pytest.raises(TokenError):
        await tokens.verifier().verify(f"{header}.{payload}.{signature}")


async def test_refetches_the_jwks_for_a_new_kid() -> None:
    old, new = SigningKey(generate_private_key_pem()), SigningKey(generate_private_key_pem())
    published = [old.public_jwk]
    fetches = 0

    async def fetch() -> dict[str, Any]:
        nonlocal fetches
        fetches += 1
        return {"keys": list(published)}

    verifier = TokenVerifier(
        fetch, issuer="natomedia-auth", audience="natomedia-api", refetch_interval=0
    )
    await verifier.verify(encode_token(_claims(jti="a"), old))
    published.append(new.public_jwk)  # the issuer rotates
    await verifier.verify(encode_token(_claims(jti="b"), new))
    assert fetches == 2


async def test_unknown_kids_do_not_hammer_the_issuer() -> None:
    key = SigningKey(generate_private_key_pem())
    fetches = 0

    async def fetch() -> dict[str, Any]:
        nonlocal fetches
        fetches += 1
        return {"keys": [key.public_jwk]}

    verifier = TokenVerifier(fetch, issuer="natomedia-auth", audience="natomedia-api")
    await verifier.verify(encode_token(_claims(), key))
    for _ in range(20):
        with pytest.raises(TokenError):
            await verifier.verify(encode_token(_claims(), SigningKey(generate_private_key_pem())))
    # Within the refetch interval of the last fetch, unknown kids cost the issuer no request.
    assert fetches == 1


async def test_each_token_is_verified_once(
    tokens: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = tokens.verifier()
    token = tokens.account()
    first = await verifier.verify(token)
    calls = 0
    original = verifier._verify_uncached

    async def counting(raw: str) -> Any:
        nonlocal calls
        calls += 1
        return await original(raw)

    monkeypatch.setattr(verifier, "_verify_uncached", counting)
    assert await verifier.verify(token) is first
    assert calls == 0


async def test_pyjwt_verifies_our_tokens_from_the_jwks_alone(tokens: TokenFactory) -> None:
    jwks = await tokens.jwks()
    token = tokens.account()
    kid = pyjwt.get_unverified_header(token)["kid"]
    (entry,) = [key for key in jwks["keys"] if key["kid"] == kid]  # type: ignore[index, union-attr]
    public_key = pyjwt.PyJWK(entry).key
    claims = pyjwt.decode(
        token, public_key, algorithms=["ES256"], audience="natomedia-api", issuer="natomedia-auth"
    )
    assert claims["email_verified"] is True


def test_jose_runs_on_its_cryptography_backend() -> None:
    # python-jose falls back to the pure-Python `ecdsa` package (CVE-2024-23342, timing) when
    # `cryptography` is missing; .ci/audit-ignore.md accepts that advisory on this ground only.
    from jose import backends
    from jose.backends.cryptography_backend import CryptographyECKey

    assert backends.ECKey is CryptographyECKey
    # The key every token is signed with.
    assert isinstance(SigningKey(generate_private_key_pem()).signer, CryptographyECKey)
