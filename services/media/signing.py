"""Download URLs signed with HMAC-SHA256 over rendition, subject and expiry.

The URL is a bearer capability until it expires, so checking it needs only the secret: no
database, no auth service. The signature is checked before the expiry, so a forged URL learns
nothing about which expiry times would be accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from pydantic import SecretStr

from services.media.exceptions import InvalidSignature, LinkExpired

SIGNATURE_VERSION = b"natomedia-download-v1"
MAX_FIELD_LENGTH = 200


@dataclass(frozen=True)
class SignedDownload:
    """What a valid download URL grants: one rendition, to one subject, until `expires`."""

    rendition_id: str
    subject: str
    expires: int


class DownloadSigner:
    def __init__(self, secret: SecretStr) -> None:
        self._key = secret.get_secret_value().encode()

    def signature(self, rendition_id: str, subject: str, expires: str) -> str:
        # Length-prefixed fields: no choice of subject can shift bytes into another field.
        message = SIGNATURE_VERSION
        for value in (rendition_id, subject, expires):
            raw = value.encode()
            message += b"\n" + str(len(raw)).encode() + b":" + raw
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign_path(self, rendition_id: str, filename: str, subject: str, expires: int) -> str:
        """The path and query of a download URL, relative to the public origin."""
        query = urlencode(
            {
                "sub": subject,
                "exp": str(expires),
                "sig": self.signature(rendition_id, subject, str(expires)),
            }
        )
        return f"/v1/media/downloads/{rendition_id}/{quote(filename)}?{query}"

    def verify(
        self,
        rendition_id: str,
        subject: str | None,
        expires: str | None,
        signature: str | None,
        *,
        now: datetime,
    ) -> SignedDownload:
        if not subject or not expires or not signature:
            raise InvalidSignature
        if len(subject) > MAX_FIELD_LENGTH or len(expires) > 20 or len(signature) > 100:
            raise InvalidSignature
        expected = self.signature(rendition_id, subject, expires)
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise InvalidSignature
        # Only this service signs, and it signs integers; anything else is forged.
        if not expires.isdigit():
            raise InvalidSignature
        expires_at = int(expires)
        if expires_at <= int(now.astimezone(UTC).timestamp()):
            raise LinkExpired
        return SignedDownload(rendition_id, subject, expires_at)
