"""A request body that is not JSON (or not UTF-8) is one problem: 400 `json_invalid`.

FastAPI reports malformed JSON as a 422 naming the character offset as the field (`"9"`), and an
undecodable body as a bare 400 `bad_request`. Both mean the same to a client, which cannot fix
either by changing a field: one code, field `body`, and where the parser stopped in the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from fastapi.responses import JSONResponse

from services.common.problems import FieldError, problem_response

JSON_INVALID: Final = "json_invalid"


def json_invalid_response(message: str) -> JSONResponse:
    return problem_response(
        400,
        JSON_INVALID,
        "The request body is not valid JSON.",
        errors=[FieldError(field="body", code=JSON_INVALID, message=message)],
    )


def malformed_json(errors: Sequence[Any], document: Any) -> JSONResponse | None:
    """The problem for FastAPI's `json_invalid` validation error; None for any other."""
    for error in errors:
        if error.get("type") != JSON_INVALID:
            continue
        location = error.get("loc", ())
        position = location[-1] if location and isinstance(location[-1], int) else None
        reason = str((error.get("ctx") or {}).get("error") or "not valid JSON")
        if position is None:
            return json_invalid_response(f"{reason}.")
        where = f"character {position}"
        if isinstance(document, str):
            line = document.count("\n", 0, position) + 1
            column = position - (document.rfind("\n", 0, position) + 1) + 1
            where = f"line {line}, column {column} ({where})"
        return json_invalid_response(f"{reason} at {where}.")
    return None


def undecodable_body(cause: BaseException | None) -> JSONResponse | None:
    """The problem for a body FastAPI could not decode as text; None for any other cause."""
    if not isinstance(cause, UnicodeDecodeError):
        return None
    byte = cause.object[cause.start : cause.start + 1].hex()
    return json_invalid_response(
        f"The body is not valid UTF-8: byte 0x{byte} at byte offset {cause.start}."
    )
