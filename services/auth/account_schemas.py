"""Request and response bodies of the account-lifecycle calls (see `account_router`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, StrictBool

from services.auth.schemas import (
    Account,
    Body,
    Code,
    EmailInput,
    Language,
    NewPassword,
    Password,
    TokenPair,
    _examples,
)

_EMAIL = "jane.doe@example.com"
_NEW_EMAIL = "jane.doe@example.org"
_PASSWORD = "Blue-Harbour-2026!"
_NEW_PASSWORD = "Green-Lighthouse-2027?"
SESSION_EXAMPLE: dict[str, Any] = {
    "id": "0b7f4d1e-4a53-4a8e-9f57-0c6d2f3a9b21",
    "created_at": "2026-11-27T15:30:00Z",
    "last_used_at": "2026-11-28T08:12:00Z",
    "client_address": "198.51.100.23",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
    "current": True,
}


class PasswordChangeRequest(Body):
    model_config = _examples({"current_password": _PASSWORD, "new_password": _NEW_PASSWORD})

    current_password: Password
    new_password: NewPassword


class PasswordConfirmation(Body):
    model_config = _examples({"password": _PASSWORD})

    password: Password


class EmailChangeRequest(Body):
    model_config = _examples({"new_email": _NEW_EMAIL, "password": _PASSWORD})

    new_email: EmailInput
    password: Password


class EmailChangeCode(Body):
    model_config = _examples({"code": "482913"})

    code: Code


class EmailChangeUndo(Body):
    model_config = _examples({"email": _EMAIL, "code": "482913"})

    email: EmailInput = Field(description="The address the account had before the change")
    code: Code


class AccountUpdate(Body):
    model_config = _examples({"language": "fr"}, {"newsletter": False, "language": "en"})

    language: Language | None = None
    newsletter: StrictBool | None = None


class AccountWithTokens(Account):
    """The account after an email change, and the new token pair of the session that made it:
    every other session has ended."""

    model_config = _examples(
        {
            **Account.model_json_schema()["examples"][0],
            "email": _NEW_EMAIL,
            "tokens": TokenPair.model_json_schema()["examples"][0],
        }
    )

    tokens: TokenPair


class SessionOut(BaseModel):
    model_config = _examples(SESSION_EXAMPLE)

    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime
    client_address: str | None = Field(
        description="Where the login came from; cleared after 30 days"
    )
    user_agent: str | None
    current: bool = Field(description="Whether this is the session the access token belongs to")


class SessionList(BaseModel):
    model_config = _examples({"items": [SESSION_EXAMPLE]})

    items: list[SessionOut]


EXPORT_EXAMPLE: dict[str, Any] = {
    "account": {
        "id": "ae9e7fa9-8e0d-421f-9401-9ffa622fde2e",
        "email": _EMAIL,
        "email_verified": True,
        "email_verified_at": "2026-11-27T15:31:00Z",
        "newsletter": True,
        "newsletter_since": "2026-11-27T15:30:00Z",
        "language": "en",
        "roles": [],
        "created_at": "2026-11-27T15:30:00Z",
        "updated_at": "2026-11-28T08:12:00Z",
        "pending_email": None,
        "previous_email": None,
        "previous_email_until": None,
    },
    "sessions": [
        {
            "id": SESSION_EXAMPLE["id"],
            "created_at": "2026-11-27T15:30:00Z",
            "last_used_at": "2026-11-28T08:12:00Z",
            "expires_at": "2026-12-27T15:30:00Z",
            "client_address": "198.51.100.23",
            "user_agent": SESSION_EXAMPLE["user_agent"],
        }
    ],
    "api_clients": [
        {
            "client_id": "nmc_d4215d1e98273f34a1d7",
            "name": "Evening news ingest",
            "created_at": "2026-11-27T15:32:00Z",
            "revoked_at": None,
        }
    ],
    "login_addresses": {
        "count": 1,
        "note": "Addresses this account logged in from lately are kept only as keyed digests…",
    },
}


class AccountExport(BaseModel):
    model_config = _examples(EXPORT_EXAMPLE)

    account: dict[str, Any]
    sessions: list[dict[str, Any]]
    api_clients: list[dict[str, Any]]
    login_addresses: dict[str, Any]
