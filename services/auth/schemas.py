"""Request and response bodies of the auth API (never ORM objects)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
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
# A password being set: its length is the policy's to judge (422 `weak_password`, rule
# `too_long`), not the schema's; the request body limit bounds what reaches it.
NewPassword = Annotated[str, Field(min_length=1)]
# People copy codes as printed ("892 537") or type them grouped ("892-537"): separators are
# dropped, the 6 digits remain. The document's pattern is the validator's, so what it calls
# invalid is refused and everything it allows is accepted.
_CODE_PATTERN = r"[ \t\r\n-]*(?:[0-9][ \t\r\n-]*){6}"
_CODE_SHAPE = re.compile(_CODE_PATTERN)
_CODE_SEPARATORS = str.maketrans("", "", " \t\r\n-")


def _code(value: object) -> str:
    if not isinstance(value, str) or len(value) > 64 or not _CODE_SHAPE.fullmatch(value):
        raise PydanticCustomError(
            "invalid_code_format",
            "Expected the 6-digit code from the email, such as 482913 "
            "(spaces or hyphens between the digits are fine)",
        )
    return value.translate(_CODE_SEPARATORS)


Code = Annotated[
    str,
    PlainValidator(_code),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": f"^{_CODE_PATTERN}$",
            "maxLength": 64,
            "description": "The 6-digit code from the email; spaces and hyphens are ignored",
            "examples": ["482913", "482 913"],
        }
    ),
]
Language = Literal["en", "fr"]
OpaqueToken = Annotated[str, Field(min_length=1, max_length=512)]

# Values shared by the examples below, so the documented calls chain into one another.
_EMAIL = "jane.doe@example.com"
_PASSWORD = "Blue-Harbour-2026!"
_ACCESS_TOKEN = (
    "eyJhbGciOiJFUzI1NiIsImtpZCI6Im04MDg4Qlg2cGZIOFlnMFVONklVYTRFajNqYjdsVlFIZ0J3aE8tZzFoNFkiLC"
    "J0eXAiOiJhdCtqd3QifQ.eyJzdWIiOiJhZTllN2ZhOS04ZTBkLTQyMWYtOTQwMS05ZmZhNjIyZmRlMmUifQ.c2lnbmF0dXJl"
)
_REFRESH_TOKEN = (
    "AdNbQL4qG0Z6lDLHzafu2rcLXPKmbB5PQ506L2-PH0t3AAAAAAAAAAAAAAAAazF9"
    "PFPEoJYP_SPqbDGrYrOiyuuIulFufchkcWAXYFVyf3fq"
)
_CLIENT_ID = "nmc_d4215d1e98273f34a1d7"
_CLIENT_SECRET = "nms_SSpFfQA_SmNAws6pIzkiTbP3ZEj4CtYaZFVQVtRD6WQ"
API_CLIENT_EXAMPLE: dict[str, Any] = {
    "client_id": _CLIENT_ID,
    "name": "Evening news ingest",
    "created_at": "2026-11-27T15:32:00Z",
}


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class Body(BaseModel):
    # Booleans are StrictBool: the document says boolean, so 0 or "yes" is refused, not guessed.
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(Body):
    model_config = _examples(
        {"email": _EMAIL, "password": _PASSWORD, "newsletter": True},
        {"email": _EMAIL, "password": _PASSWORD, "language": "fr"},
    )

    email: EmailInput
    password: NewPassword
    newsletter: StrictBool = False
    language: Language = Field(
        "en", description="The account's language (`en` or `fr`): its mail is written in it"
    )


_RESEND_AFTER = Field(
    description=(
        "Seconds until another code can be sent for this address (0: now): the countdown of a "
        "'Send new code' button. The same for every address, registered or not."
    )
)


class RegisterResponse(BaseModel):
    model_config = _examples(
        {"status": "verification_pending", "code_expires_in": 1800, "resend_after": 60}
    )

    status: Literal["verification_pending"] = "verification_pending"
    code_expires_in: int = Field(description="Seconds the emailed code stays valid")
    resend_after: int = _RESEND_AFTER


class CodeRequested(BaseModel):
    model_config = _examples({"code_expires_in": 1800, "resend_after": 60})

    code_expires_in: int = Field(description="Seconds an emailed code stays valid")
    resend_after: int = _RESEND_AFTER


class EmailCodeRequest(Body):
    model_config = _examples({"email": _EMAIL, "code": "482913"})

    email: EmailInput
    code: Code


class VerifyRequest(Body):
    model_config = _examples(
        {"email": _EMAIL, "code": "482913", "password": _PASSWORD},
        {"email": _EMAIL, "code": "482913"},
    )

    email: EmailInput
    code: Code
    password: NewPassword | None = Field(
        default=None,
        description=(
            "The password typed on the register screen. Frontends should send it: it becomes the "
            "account's password once the code is redeemed. When the address was registered more "
            "than once with different passwords, the code is refused without it "
            "(422 `password_required`, the code stays valid)."
        ),
    )


class EmailRequest(Body):
    model_config = _examples({"email": _EMAIL})

    email: EmailInput


class LoginRequest(Body):
    model_config = _examples({"email": _EMAIL, "password": _PASSWORD})

    email: EmailInput
    password: Password


class RefreshRequest(Body):
    model_config = _examples({"refresh_token": _REFRESH_TOKEN})

    refresh_token: OpaqueToken


class TokenPair(BaseModel):
    model_config = _examples(
        {
            "access_token": _ACCESS_TOKEN,
            "token_type": "Bearer",
            "expires_in": 900,
            "refresh_token": _REFRESH_TOKEN,
        }
    )

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Seconds the access token stays valid")
    refresh_token: str


class ResetTokenResponse(BaseModel):
    model_config = _examples(
        {"reset_token": "VSExEI_6wRwYqdDBjSv4eE8ETmFykcplw0YWtm0Dvqk", "expires_in": 900}
    )

    reset_token: str
    expires_in: int


class ResetCompleteRequest(Body):
    model_config = _examples(
        {
            "reset_token": "VSExEI_6wRwYqdDBjSv4eE8ETmFykcplw0YWtm0Dvqk",
            "new_password": "Quiet-Fjord-2027?",
        }
    )

    reset_token: OpaqueToken
    new_password: NewPassword


class Account(BaseModel):
    model_config = _examples(
        {
            "id": "ae9e7fa9-8e0d-421f-9401-9ffa622fde2e",
            "email": _EMAIL,
            "email_verified": True,
            "newsletter": True,
            "language": "en",
            "created_at": "2026-11-27T15:30:00Z",
        }
    )

    id: uuid.UUID
    email: str
    email_verified: bool
    newsletter: bool
    language: Language
    created_at: datetime


class NewsletterRequest(Body):
    model_config = _examples({"subscribed": True})

    subscribed: StrictBool


class ClientCreateRequest(Body):
    model_config = _examples({"name": "Evening news ingest"})

    name: Annotated[str, Field(min_length=1, max_length=100)]


class ApiClientOut(BaseModel):
    model_config = _examples(API_CLIENT_EXAMPLE)

    client_id: str
    name: str
    created_at: datetime


class ApiClientCreated(ApiClientOut):
    model_config = _examples({**API_CLIENT_EXAMPLE, "client_secret": _CLIENT_SECRET})

    client_secret: str = Field(description="Shown only in this response; store it now")


class ClientCredentialsForm(BaseModel):
    """RFC 6749 §4.4 token request; client_id/client_secret may come as HTTP Basic instead."""

    model_config = _examples(
        {
            "grant_type": "client_credentials",
            "client_id": _CLIENT_ID,
            "client_secret": _CLIENT_SECRET,
            "scope": "media:download",
        }
    )

    grant_type: str | None = Field(None, description="Must be `client_credentials`")
    client_id: str | None = Field(None, max_length=128)
    client_secret: str | None = Field(None, max_length=512)
    scope: str | None = Field(None, max_length=200, description="`media:download` (the default)")


class ClientToken(BaseModel):
    model_config = _examples(
        {
            "access_token": _ACCESS_TOKEN,
            "token_type": "Bearer",
            "expires_in": 900,
            "scope": "media:download",
        }
    )

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    scope: str
