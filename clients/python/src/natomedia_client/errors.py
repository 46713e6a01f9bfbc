"""The one exception every call raises."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error from the API (its problem+json `code`) or one the client found itself.

    Client-side codes: `network_error` (no answer after retries), `checksum_mismatch`,
    `size_mismatch`, `bad_response` (an answer that is not what the document promises).
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}" if status is None else f"{status} {code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.problem = problem or {}
