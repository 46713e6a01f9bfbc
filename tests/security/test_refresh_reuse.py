"""A refresh token is spent on use; presenting it again revokes its whole family (beyond the
short two-tabs grace, which tests/auth/test_refresh_grace.py covers with a frozen clock)."""

from __future__ import annotations

import httpx

from services.gateway.mail_sink import MailSink
from tests.security.apps import assert_problem, verified_account


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/v1/auth/token/refresh", json={"refresh_token": token})


async def test_reusing_a_spent_refresh_token_revokes_the_family(
    auth: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    first = await verified_account(auth, mail_sink, "reuse@example.org")
    second = await _refresh(auth, first["refresh_token"])
    assert second.status_code == 200, second.text
    assert second.json()["refresh_token"] != first["refresh_token"]
    # The holder refreshes again, so the stolen token's successor is spent: no grace applies.
    third = await _refresh(auth, second.json()["refresh_token"])
    assert third.status_code == 200, third.text
    # The thief replays the stolen, already spent token.
    assert_problem(await _refresh(auth, first["refresh_token"]), 401, "invalid_token")
    # The family is dead: the legitimate holder's newest token no longer works either.
    assert_problem(await _refresh(auth, third.json()["refresh_token"]), 401, "invalid_token")


async def test_forged_and_truncated_refresh_tokens_are_refused(
    auth: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    pair = await verified_account(auth, mail_sink, "forged@example.org")
    token = pair["refresh_token"]
    for forged in (token[:-1], token + "A", token[::-1], "", "x" * 4096, pair["access_token"]):
        response = await _refresh(auth, forged)
        assert response.status_code in {401, 422}, response.text
        assert_problem(response, response.status_code)
    # None of those attempts burnt the real token.
    assert (await _refresh(auth, token)).status_code == 200
