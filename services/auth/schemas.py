"""Request and response bodies of the auth API (never ORM objects)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from services.auth.addresses import MAX_EMAIL_LENGTH, EmailAddress, InvalidEmail, parse_email

# Generous enough for any policy-conforming password and a typo, small enough to bound hashing.
MAX_PASSWORD_INPUT = 1024


def _email(value: object) -> EmailAddress:
    if not isinstance(value, str) or len(value) > MAX_EMAIL_LENGTH:
        raise PydanticCustomError("invalid_email", "Not a valid email address")
    try:
        return parse_email(value)
    except InvalidEmail as exc:
        raise PydanticCustomError(
            "invalid_email", "Not a valid email address: {reason}", {"reason": str(exc)}
        ) from exc


EmailInput = Annotated[
    EmailAddress,
    PlainValidator(_email),
    PlainSerializer(lambda address: address.normalized, return_type=str),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": MAX_EMAIL_LENGTH}),
]
Password = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_INPUT)]
Code = Annotated[
    str, Field(pattern=r"^\s*\d{6}\s*$", description="The 6-digit code from the email")
]
OpaqueToken = Annotated[str, Field(min_length=1, max_length=512)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(Body):
    email: EmailInput
    password: Password
    newsletter: bool = False


class RegisterResponse(BaseModel):
    status: Literal["verification_pending"] = "verification_pending"
    code_expires_in: int = Field(description="Seconds the emailed code stays valid")


class EmailCodeRequest(Body):
    email: EmailInput
    code: Code


class EmailRequest(Body):
    email: EmailInput


class LoginRequest(Body):
    email: EmailInput
    password: Password


class RefreshRequest(Body):
    refresh_token: OpaqueToken


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Seconds the access token stays valid")
    refresh_token: str


class ResetTokenResponse(BaseModel):
    reset_token: str
    expires_in: int


class ResetCompleteRequest(Body):
    reset_token: OpaqueToken
    new_password: Password


class Account(BaseModel):
    id: uuid.UUID
    email: str
    email_verified: bool
    newsletter: bool
    created_at: datetime


class NewsletterRequest(Body):
    subscribed: bool


class ClientCreateRequest(Body):
    name: Annotated[str, Field(min_length=1, max_length=100)]


class ApiClientOut(BaseModel):
    client_id: str
    name: str
    created_at: datetime


class ApiClientCreated(ApiClientOut):
    client_secret: str = Field(description="Shown only in this response; store it now")


class ClientCredentialsForm(BaseModel):
    """RFC 6749 §4.4 token request; client_id/client_secret may come as HTTP Basic instead."""

    grant_type: str | None = Field(None, description="Must be `client_credentials`")
    client_id: str | None = Field(None, max_length=128)
    client_secret: str | None = Field(None, max_length=512)
    scope: str | None = Field(None, max_length=200, description="`media:download` (the default)")


class ClientToken(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    scope: str
