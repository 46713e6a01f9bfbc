"""Access tokens (short-lived JWTs) for accounts and partner clients."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from services.common.clock import Clock
from services.common.jwt import SigningKey, encode_token
from services.common.scopes import MEDIA_DOWNLOAD


@dataclass(frozen=True)
class IssuedAccessToken:
    token: str
    expires_in: int
    scope: str


class AccessTokenIssuer:
    def __init__(
        self, key: SigningKey, *, issuer: str, audience: str, ttl_seconds: int, clock: Clock
    ) -> None:
        self.key = key
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    def _issue(self, subject: str, scope: str, extra: dict[str, object]) -> IssuedAccessToken:
        now = self.clock.now()
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=self.ttl_seconds)).timestamp()),
            "jti": uuid.uuid4().hex,
            "scope": scope,
            **extra,
        }
        return IssuedAccessToken(encode_token(claims, self.key), self.ttl_seconds, scope)

    def for_account(
        self,
        account_id: uuid.UUID,
        *,
        email_verified: bool,
        roles: Iterable[str],
        session_epoch: int,
        session_id: uuid.UUID | None = None,
    ) -> IssuedAccessToken:
        # Verified accounts may download; roles (editor, admin) ride along as scopes. `sep` is
        # the account's session epoch: raising it (a password reset) revokes the token.
        # `sid` names the login (its refresh family) the token was issued to.
        scopes = sorted({*roles, *([MEDIA_DOWNLOAD] if email_verified else [])})
        extra: dict[str, object] = {"email_verified": email_verified, "sep": session_epoch}
        if session_id is not None:
            extra["sid"] = str(session_id)
        return self._issue(str(account_id), " ".join(scopes), extra)

    def for_client(self, client_id: str, name: str | None = None) -> IssuedAccessToken:
        # The name rides along so media's download audit can say who, without asking auth.
        extra: dict[str, object] = {"client_id": client_id, "email_verified": False}
        if name:
            extra["client_name"] = name
        return self._issue(f"client:{client_id}", MEDIA_DOWNLOAD, extra)
