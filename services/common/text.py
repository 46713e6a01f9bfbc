"""Text that every database can store."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL: refuse it as bad input, the same on every database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


NulFreeText = Annotated[str, AfterValidator(_no_nul)]
