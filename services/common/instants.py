"""Instants from query strings, turned into UTC in one place so no service answers a 500 for one.

`0001-01-01T00:00:00+01:00` is a valid RFC 3339 time whose UTC value lies before year 1: Python
raises OverflowError converting it, which a validator must turn into a 422.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

# The start of an RFC 3339 date-time (RFC 3339 §5.6), which is what the document promises.
# pydantic would also take a number of seconds since 1970 (`updated_since=0.5`).
_DATE_TIME_START = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:")


def _rfc3339_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE_TIME_START.match(value):
        raise ValueError("expected an RFC 3339 date-time such as 2026-01-01T00:00:00Z")
    return value


def to_utc(value: datetime) -> datetime:
    """The same instant in UTC; a value without an offset is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("out of range") from exc


# An RFC 3339 time with its offset, as UTC.
AwareInstant = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(to_utc)]
# The same, also accepting a time without an offset as UTC.
Instant = Annotated[datetime, BeforeValidator(_rfc3339_text), AfterValidator(to_utc)]
