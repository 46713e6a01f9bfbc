"""Query-string instants become UTC in one shared way; out-of-range ones are validation errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import TypeAdapter, ValidationError

from services.common.instants import AwareInstant, Instant


@pytest.mark.parametrize("kind", [Instant, AwareInstant])
def test_offsets_become_utc(kind: object) -> None:
    value = TypeAdapter(kind).validate_python("2026-05-04T11:00:00+02:00")
    assert value == datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    assert value.utcoffset() == timedelta(0)


def test_a_time_without_offset_is_utc_where_allowed() -> None:
    assert TypeAdapter(Instant).validate_python("2026-05-04T09:00:00") == datetime(
        2026, 5, 4, 9, 0, tzinfo=UTC
    )
    with pytest.raises(ValidationError):
        TypeAdapter(AwareInstant).validate_python("2026-05-04T09:00:00")


@pytest.mark.parametrize("kind", [Instant, AwareInstant])
def test_before_year_one_in_utc_is_a_validation_error(kind: object) -> None:
    with pytest.raises(ValidationError, match="out of range"):
        TypeAdapter(kind).validate_python(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))))


@pytest.mark.parametrize("text", ["0.5", "1700000000", "2026-01-01", "2026-01-01 10:00:00Z"])
def test_what_is_not_an_rfc3339_date_time_is_refused(text: str) -> None:
    # pydantic alone reads a number as seconds since 1970; the document says date-time.
    for annotation in (Instant, AwareInstant):
        with pytest.raises(ValidationError):
            TypeAdapter(annotation).validate_python(text)
