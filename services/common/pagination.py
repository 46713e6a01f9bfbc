"""Opaque cursors for keyset pagination: `?limit=&cursor=` in, `{items, next_cursor}` out."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar, overload

from fastapi import Query
from pydantic import BaseModel

from services.common.problems import FieldError, ProblemError

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=100, description="Page size (1-100)")]
Cursor = Annotated[
    str | None,
    Query(max_length=512, description="`next_cursor` from the previous page"),
]


class InvalidCursor(ProblemError):
    status = 422
    code = "validation_error"

    def __init__(self) -> None:
        super().__init__(
            "The cursor is not one this API issued.",
            errors=[FieldError(field="cursor", code="invalid_cursor", message="Unknown cursor")],
        )


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(*values: Any) -> str:
    raw = json.dumps(list(values), separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError) as exc:
        raise InvalidCursor from exc
    if not isinstance(values, list) or len(values) != arity:
        raise InvalidCursor
    if not all(isinstance(value, str | int | float) for value in values):
        raise InvalidCursor
    return values


@overload
def decode_position(
    cursor: str, *, leading: int = 0, id_type: Literal["uuid"] = "uuid"
) -> tuple[list[Any], datetime, uuid.UUID]: ...
@overload
def decode_position(
    cursor: str, *, leading: int = 0, id_type: Literal["str"]
) -> tuple[list[Any], datetime, str]: ...
def decode_position(
    cursor: str, *, leading: int = 0, id_type: Literal["uuid", "str"] = "uuid"
) -> tuple[list[Any], datetime, uuid.UUID | str]:
    """A keyset cursor ending in (instant, id): its `leading` values, the instant in UTC, the id.

    Every listing's cursor is read here, so a malformed one is the same 422 everywhere.
    """
    values = decode_cursor(cursor, leading + 2)
    *first, instant, row_id = values
    try:
        at = datetime.fromisoformat(str(instant))
        if at.tzinfo is None:
            raise InvalidCursor
        # Before year 1 in UTC does not exist: an instant no listing ever issued.
        at = at.astimezone(UTC)
        position_id: uuid.UUID | str = uuid.UUID(str(row_id)) if id_type == "uuid" else str(row_id)
    except (ValueError, OverflowError) as exc:
        raise InvalidCursor from exc
    return first, at, position_id
