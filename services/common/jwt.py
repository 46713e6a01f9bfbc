"""Everything JWT: signing keys, encoding, and verification against a JWKS.

This is the only module that imports a JWT library (python-jose), so it can be swapped here.
Verification pins one algorithm and checks issuer, audience and `typ`; a verified token is
cached until its `exp`, so each distinct token costs one signature check.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jwk as jose_jwk
from jose import jwt as jose_jwt
from jose.backends.base import Key
from jose.exceptions import JOSEError

from services.common.bounded import keep_newest

logger = logging.getLogger("natomedia.jwt")

Algorithm = Literal["ES256", "RS256"]
ACCESS_TOKEN_TYPE = "at+jwt"
LEEWAY_SECONDS = 5


class TokenError(Exception):
    """The token is not one we accept; the message says why (for logs, never for clients)."""


@dataclass(frozen=True)
class Principal:
    """Who a verified access token speaks for."""

    subject: str
    scopes: frozenset[str]
    email_verified: bool
    client_id: str | None
    token_id: str
    expires_at: int
    claims: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def is_client(self) -> bool:
        return self.client_id is not None


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def generate_private_key_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_jwk_from_pem(pem: bytes, algorithm: Algorithm = "ES256") -> dict[str, str]:
    """The public half of a PEM key (private or public) as a JWK with an RFC 7638 `kid`."""
    try:
        loaded: Any = serialization.load_pem_private_key(pem, password=None).public_key()
    except (ValueError, TypeError):
        loaded = serialization.load_pem_public_key(pem)
    if isinstance(loaded, ec.EllipticCurvePublicKey):
        numbers = loaded.public_numbers()
        size = (loaded.curve.key_size + 7) // 8
        x = base64.urlsafe_b64encode(numbers.x.to_bytes(size, "big")).rstrip(b"=").decode()
        y = base64.urlsafe_b64encode(numbers.y.to_bytes(size, "big")).rstrip(b"=").decode()
        members = {"crv": "P-256", "kty": "EC", "x": x, "y": y}
    else:
        rsa_numbers = loaded.public_numbers()
        members = {"e": _b64url_uint(rsa_numbers.e), "kty": "RSA", "n": _b64url_uint(rsa_numbers.n)}
    thumbprint = hashlib.sha256(
        json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    ).digest()
    kid = base64.urlsafe_b64encode(thumbprint).rstrip(b"=").decode()
    return {**members, "kid": kid, "alg": algorithm, "use": "sig"}


@dataclass(frozen=True)
class SigningKey:
    private_pem: bytes = field(repr=False)
    algorithm: Algorithm = "ES256"

    # Cached: parsing the PEM again for every token issued is work a login need not repeat.
    @cached_property
    def public_jwk(self) -> dict[str, str]:
        return public_jwk_from_pem(self.private_pem, self.algorithm)

    @cached_property
    def kid(self) -> str:
        return self.public_jwk["kid"]

    @cached_property
    def signer(self) -> Key:
        # jose parses a PEM handed to it on every call; a constructed key is reused as it is.
        return jose_jwk.construct(self.private_pem.decode(), self.algorithm)


def encode_token(
    claims: Mapping[str, Any], key: SigningKey, *, token_type: str = ACCESS_TOKEN_TYPE
) -> str:
    return str(
        jose_jwt.encode(
            dict(claims),
            key.signer,
            algorithm=key.algorithm,
            headers={"kid": key.kid, "typ": token_type},
        )
    )


JwksFetcher = Callable[[], Awaitable[Mapping[str, Any]]]


def http_jwks_fetcher(url: str, client: httpx.AsyncClient | None = None) -> JwksFetcher:
    async def fetch() -> Mapping[str, Any]:
        http = client or httpx.AsyncClient(timeout=5.0)
        try:
            response = await http.get(url)
            response.raise_for_status()
            document: Mapping[str, Any] = response.json()
            return document
        finally:
            if client is None:
                await http.aclose()

    return fetch


class TokenVerifier:
    """Verifies access tokens with the issuer's public keys, fetched from its JWKS and cached."""

    def __init__(
        self,
        fetch_jwks: JwksFetcher,
        *,
        issuer: str,
        audience: str,
        algorithm: Algorithm = "ES256",
        token_type: str = ACCESS_TOKEN_TYPE,
        cache_size: int = 10_000,
        refetch_interval: float = 30.0,
    ) -> None:
        self._fetch = fetch_jwks
        self.issuer = issuer
        self.audience = audience
        self.algorithm = algorithm
        self.token_type = token_type
        self._keys: dict[str, Key] = {}
        self._attempted_at = float("-inf")
        self._refetch_interval = refetch_interval
        self._lock = asyncio.Lock()
        self._cache: OrderedDict[str, Principal] = OrderedDict()
        self._cache_size = cache_size

    async def _refresh_keys(self) -> None:
        async with self._lock:
            # Refetching on every unknown kid would let forged tokens hammer the issuer.
            pause = self._refetch_interval if self._keys else 1.0
            if time.monotonic() - self._attempted_at < pause:
                return
            self._attempted_at = time.monotonic()
            try:
                document = await self._fetch()
            except (httpx.HTTPError, ValueError) as exc:
                logger.warning("JWKS fetch failed", extra={"error": str(exc)})
                return
            keys: dict[str, Key] = {}
            for entry in document.get("keys", []):
                if entry.get("alg", self.algorithm) != self.algorithm or "kid" not in entry:
                    continue
                try:
                    keys[entry["kid"]] = jose_jwk.construct(entry, self.algorithm)
                except JOSEError:
                    continue
            self._keys = keys

    async def _key_for(self, kid: str) -> Key:
        key = self._keys.get(kid)
        if key is None:
            await self._refresh_keys()
            key = self._keys.get(kid)
        if key is None:
            raise TokenError("unknown kid")
        return key

    async def verify(self, token: str) -> Principal:
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at > time.time() - LEEWAY_SECONDS:
                return cached
            self._cache.pop(token, None)
            raise TokenError("expired")
        principal = await self._verify_uncached(token)
        keep_newest(self._cache, token, principal, self._cache_size)
        return principal

    async def _verify_uncached(self, token: str) -> Principal:
        try:
            header = jose_jwt.get_unverified_header(token)
        except JOSEError as exc:
            raise TokenError("malformed") from exc
        if header.get("alg") != self.algorithm:
            raise TokenError("algorithm not allowed")
        if header.get("typ") != self.token_type:
            raise TokenError("wrong typ")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise TokenError("no kid")
        key = await self._key_for(kid)
        try:
            claims = jose_jwt.decode(
                token,
                key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require_exp": True,
                    "require_iat": True,
                    "require_sub": True,
                    "require_jti": True,
                    "leeway": LEEWAY_SECONDS,
                },
            )
        except JOSEError as exc:
            raise TokenError(str(exc)) from exc
        # jose checks only that `iat` is a number. A token from the future was minted with a
        # wrong clock or a stolen key, and would outlive revocations that compare with `iat`.
        if claims["iat"] > time.time() + LEEWAY_SECONDS:
            raise TokenError("issued in the future")
        return principal_from_claims(claims)


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    scope = claims.get("scope", "")
    if not isinstance(scope, str):
        raise TokenError("scope is not a string")
    exp = claims["exp"]
    if not isinstance(exp, int):
        raise TokenError("exp is not an integer")
    client_id = claims.get("client_id")
    return Principal(
        subject=str(claims["sub"]),
        scopes=frozenset(scope.split()),
        email_verified=claims.get("email_verified") is True,
        client_id=str(client_id) if client_id is not None else None,
        token_id=str(claims["jti"]),
        expires_at=exp,
        claims=claims,
    )
