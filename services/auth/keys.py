"""The private key that signs access tokens, and the JWKS that publishes its public half."""

from __future__ import annotations

from typing import Any

from services.auth.config import AuthSettings
from services.common.jwt import SigningKey, generate_private_key_pem, public_jwk_from_pem
from services.common.private_files import create_private_once


def load_signing_key(settings: AuthSettings) -> SigningKey:
    if settings.signing_key is not None:
        return SigningKey(settings.signing_key.get_secret_value().encode())
    path = settings.signing_key_file or settings.data_dir / "keys" / "auth-signing-key.pem"
    if not path.exists():
        if settings.is_production:
            raise RuntimeError(f"no signing key at {path}; set AUTH_SIGNING_KEY_FILE")
        create_private_once(path, generate_private_key_pem())
    return SigningKey(path.read_bytes())


def jwks_document(settings: AuthSettings, key: SigningKey) -> dict[str, Any]:
    """The signing key's public half, then every listed one (older keys, or the next key
    published ahead of a rotation), each once."""
    keys = [key.public_jwk]
    for file in settings.previous_public_key_files:
        with open(file, "rb") as handle:
            jwk = public_jwk_from_pem(handle.read())
        if all(jwk["kid"] != known["kid"] for known in keys):
            keys.append(jwk)
    return {"keys": keys}
