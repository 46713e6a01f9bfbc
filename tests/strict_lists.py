"""The contract's rule for list endpoints, checked the same way on each service's app."""

from __future__ import annotations

import httpx


async def assert_strict_list(
    client: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None
) -> None:
    """200 for known parameters; 422 naming an unknown one and a repeated single-value one."""
    headers = headers or {}
    assert (await client.get(path, params={"limit": 2}, headers=headers)).status_code == 200

    unknown = await client.get(path, params={"sort": "title"}, headers=headers)
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["code"] == "validation_error"
    assert [(e["field"], e["code"]) for e in unknown.json()["errors"]] == [
        ("sort", "unknown_parameter")
    ]

    repeated = await client.get(f"{path}?limit=2&limit=3", headers=headers)
    assert repeated.status_code == 422, repeated.text
    assert [(e["field"], e["code"]) for e in repeated.json()["errors"]] == [
        ("limit", "repeated_parameter")
    ]
