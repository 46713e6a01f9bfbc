"""List endpoints refuse query parameters they do not know, and repeats of single-value ones.

A misspelt or unsupported filter (`?languge=fr`, `?sort=title`) silently ignored returns the
whole catalogue as if it had been applied; a 422 tells the caller at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

from fastapi import Request

from services.common.problems import FieldError, ProblemError


class UnexpectedQuery(ProblemError):
    status = 422
    code = "validation_error"

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("The query has parameters this endpoint does not take.", errors=errors)


def strict_query(
    allowed: Collection[str], *, repeatable: Collection[str] = ()
) -> Callable[[Request], Awaitable[None]]:
    """A dependency: 422 `validation_error` naming each unknown or repeated parameter."""
    known = frozenset(allowed)
    many = frozenset(repeatable)

    async def check(request: Request) -> None:
        errors: list[FieldError] = []
        seen: set[str] = set()
        for name, _ in request.query_params.multi_items():
            if name not in known:
                errors.append(
                    FieldError(field=name, code="unknown_parameter", message="Unknown parameter")
                )
            elif name in seen and name not in many:
                errors.append(
                    FieldError(field=name, code="repeated_parameter", message="Give it once")
                )
            seen.add(name)
        if errors:
            raise UnexpectedQuery(errors)

    return check
