"""How codes, tokens and client secrets are made and how their stored digests are computed.

Codes have only 10^6 values, so they are stored as an HMAC under a server key (a leaked table
alone cannot be brute-forced), bound to their purpose and account. Opaque tokens carry 256
random bits, so a keyed hash is plenty; client secrets use plain SHA-256 so that rotating the
code key never breaks partner credentials.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

CODE_DIGITS = 6


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def new_opaque_token() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def keyed_digest(key: bytes, purpose: str, *parts: str) -> str:
    message = "\x1f".join((purpose, *parts)).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def digests_match(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode(), right.encode())
