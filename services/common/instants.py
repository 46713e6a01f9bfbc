"""Instants from query strings, turned into UTC in one place so no service answers a 500 for one.

`0001-01-01T00:00:00+01:00` is a valid RFC 3339 time whose UTC value lies before year 1: Python
raises OverflowError converting it, which a validator must turn into a 422.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime


def to_utc(value: datetime) -> datetime:
    """The same instant in UTC; a value without an offset is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("out of range") from exc


# An RFC 3339 time with its offset, as UTC.
AwareInstant = Annotated[AwareDatetime, AfterValidator(to_utc)]
# The same, also accepting a time without an offset as UTC.
Instant = Annotated[datetime, AfterValidator(to_utc)]
