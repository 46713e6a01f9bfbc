"""Schema fuzzing: every operation of every service, with and without a valid token.

Checks: no 5xx, responses match their declared schema and content type, and every error is
application/problem+json with a `code`. Bounded by examples per operation (`FUZZ_EXAMPLES`).
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, reject, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

pytestmark = pytest.mark.fuzz
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))


def problem_json_errors(_ctx: Any, response: Any, _case: Any) -> bool:
    if response.status_code < 400:
        return True
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith("application/problem+json"), (
        f"{response.status_code} answered as {content_type!r}"
    )
    if response.request.method == "HEAD":
        return True  # no body to read; the content type above is what a HEAD can show
    body = response.json()
    assert isinstance(body.get("code"), str), body
    assert body["code"], body
    assert body.get("status") == response.status_code, body
    return True


CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _request_kwargs(case: Any, headers: dict[str, str]) -> dict[str, Any]:
    kwargs: dict[str, Any] = case.as_transport_kwargs(base_url="", headers=headers)
    data = kwargs.pop("data", None)
    if isinstance(data, (bytes, str)):
        kwargs["content"] = data
    elif data is not None:
        kwargs["data"] = data
    kwargs.pop("files", None) if not kwargs.get("files") else None
    for key in ("cookies",):
        kwargs.pop(key, None)
    return kwargs


@pytest.mark.parametrize("authenticated", [False, True], ids=["anonymous", "token"])
def test_every_operation_holds_its_schema(
    fuzzed: tuple[str, httpx.Client, dict[str, str]], authenticated: bool
) -> None:
    name, client, token_headers = fuzzed
    schema = schemathesis.openapi.from_dict(client.get(f"/v1/{name}/openapi.json").json())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations
    failures: list[str] = []
    calls: dict[str, int] = {}
    headers = token_headers if authenticated else {}

    def fuzz(label: str, strategy: Any) -> None:
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def run(case: Any) -> None:
            calls[label] = calls.get(label, 0) + 1
            kwargs = _request_kwargs(case, headers)
            try:
                response = client.request(**kwargs)
            except httpx.LocalProtocolError:
                reject()  # a header no HTTP client may send (h11 refuses it): not a server test
            try:
                case.validate_response(response, checks=CHECKS)
                problem_json_errors(None, response, case)
            except Exception as exc:
                failures.append(f"{label}: {type(exc).__name__}: {exc}"[:600])
                raise

        run()

    for operation in operations:
        recorded = len(failures)
        try:
            fuzz(operation.label, operation.as_strategy())
        except Exception as exc:  # keep fuzzing the other operations
            if len(failures) == recorded:
                failures.append(f"{operation.label}: could not fuzz: {exc!r}"[:600])
    assert not failures, "\n\n".join(failures)
    # Every operation was exercised (Hypothesis could build requests for each).
    assert set(calls) == {operation.label for operation in operations}, calls


_ = st  # strategies stay importable for local, deeper runs
