"""Download URLs signed with HMAC-SHA256 over rendition, subject, session, issue time and expiry.

The URL is a bearer capability until it expires or its session or client is revoked, so checking
it needs only the secret and the revocations this process heard of: no database, no auth
service. The signature is checked before the expiry, so a forged URL learns
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

# v2 signs who the URL was issued to and under which session (see common/revocation.py); v1
# URLs (subject and expiry only) are still honoured until they expire, as issued under epoch 0.
SIGNATURE_VERSION = b"natomedia-download-v2"
SIGNATURE_VERSION_V1 = b"natomedia-download-v1"
MAX_FIELD_LENGTH = 200
CLIENT_SUBJECT_PREFIX = "client:"


@dataclass(frozen=True)
class SignedDownload:
    """What a valid download URL grants: one rendition, to one subject, until `expires`.

    `session_epoch` and `client_id` say which revocation would end it; `issued_at` is None for
    a v1 URL.
    """

    rendition_id: str
    subject: str
    expires: int
    issued_at: int | None = None
    session_epoch: int = 0
    client_id: str | None = None


def _digits(value: str, length: int) -> bool:
    return len(value) <= length and value.isascii() and value.isdigit()


class DownloadSigner:
    def __init__(self, secret: SecretStr) -> None:
        self._key = secret.get_secret_value().encode()

    def _sign(self, version: bytes, *fields: str) -> str:
        # Length-prefixed fields: no choice of subject can shift bytes into another field.
        message = version
        for value in fields:
            raw = value.encode()
            message += b"\n" + str(len(raw)).encode() + b":" + raw
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def signature(
        self,
        rendition_id: str,
        subject: str,
        expires: str,
        *,
        issued_at: str,
        session_epoch: str = "",
        client_id: str = "",
    ) -> str:
        return self._sign(
            SIGNATURE_VERSION, rendition_id, subject, client_id, session_epoch, issued_at, expires
        )

    def signature_v1(self, rendition_id: str, subject: str, expires: str) -> str:
        return self._sign(SIGNATURE_VERSION_V1, rendition_id, subject, expires)

    def sign_path(
        self,
        rendition_id: str,
        filename: str,
        subject: str,
        expires: int,
        *,
        issued_at: int,
        session_epoch: int | None = None,
        client_id: str | None = None,
    ) -> str:
        """The path and query of a download URL, relative to the public origin.

        Client URLs carry `cid` (they die with the client), account URLs `sep` (with the session).
        """
        fields = {
            "issued_at": str(issued_at),
            "session_epoch": "" if session_epoch is None else str(session_epoch),
            "client_id": client_id or "",
        }
        query = {"sub": subject}
        if client_id:
            query["cid"] = client_id
        if session_epoch is not None:
            query["sep"] = str(session_epoch)
        query |= {
            "iat": str(issued_at),
            "exp": str(expires),
            "sig": self.signature(rendition_id, subject, str(expires), **fields),
        }
        return f"/v1/media/downloads/{rendition_id}/{quote(filename)}?{urlencode(query)}"

    def verify(
        self,
        rendition_id: str,
        subject: str | None,
        expires: str | None,
        signature: str | None,
        *,
        issued_at: str | None = None,
        session_epoch: str | None = None,
        client_id: str | None = None,
        now: datetime,
    ) -> SignedDownload:
        if not subject or not expires or not signature:
            raise InvalidSignature
        if len(subject) > MAX_FIELD_LENGTH or len(expires) > 20 or len(signature) > 100:
            raise InvalidSignature
        if issued_at is None:
            # v1: nothing else was signed, so nothing else may come with it.
            if session_epoch is not None or client_id is not None:
                raise InvalidSignature
            expected = self.signature_v1(rendition_id, subject, expires)
        else:
            if len(issued_at) > 20 or len(session_epoch or "") > 20:
                raise InvalidSignature
            if len(client_id or "") > MAX_FIELD_LENGTH:
                raise InvalidSignature
            expected = self.signature(
                rendition_id,
                subject,
                expires,
                issued_at=issued_at,
                session_epoch=session_epoch or "",
                client_id=client_id or "",
            )
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise InvalidSignature
        # Only this service signs, and it signs integers; anything else is forged.
        if not _digits(expires, 20):
            raise InvalidSignature
        if issued_at is not None and not _digits(issued_at, 20):
            raise InvalidSignature
        if session_epoch is not None and not _digits(session_epoch, 20):
            raise InvalidSignature
        expires_at = int(expires)
        if expires_at <= int(now.astimezone(UTC).timestamp()):
            raise LinkExpired
        if issued_at is None:
            v1_client = subject[len(CLIENT_SUBJECT_PREFIX) :]
            return SignedDownload(
                rendition_id,
                subject,
                expires_at,
                client_id=v1_client if subject.startswith(CLIENT_SUBJECT_PREFIX) else None,
            )
        return SignedDownload(
            rendition_id,
            subject,
            expires_at,
            issued_at=int(issued_at),
            session_epoch=int(session_epoch or 0),
            client_id=client_id or None,
        )
