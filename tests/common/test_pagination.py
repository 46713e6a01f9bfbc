from __future__ import annotations

import pytest

from services.common.pagination import InvalidCursor, decode_cursor, encode_cursor


def test_cursors_round_trip() -> None:
    cursor = encode_cursor("2007-04-26T10:00:00+00:00", "3f1c")
    assert decode_cursor(cursor, 2) == ["2007-04-26T10:00:00+00:00", "3f1c"]
    assert "=" not in cursor


@pytest.mark.parametrize(
    "cursor", ["", "%%%", "bm90IGpzb24", encode_cursor("a"), encode_cursor({"a": 1}, 2)]
)
def test_foreign_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor) as raised:
        decode_cursor(cursor, 2)
    assert raised.value.status == 422
    assert raised.value.errors is not None
    assert raised.value.errors[0].code == "invalid_cursor"
