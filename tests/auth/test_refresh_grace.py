"""Two tabs refreshing at once: a spent refresh token presented again within the grace gets the
same successor; any other reuse still revokes the family, and a thief inside the window is caught
once either party spends the chain a second time."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from services.auth.config import AuthSettings
from services.common.clock import FrozenClock
from services.gateway.mail_sink import MailSink
from tests.auth.flows import bearer, verified_account
from tests.auth.test_router import claims, problem

GRACE = 10  # AUTH_REFRESH_REUSE_GRACE_SECONDS' default


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/v1/auth/token/refresh", json={"refresh_token": token})


async def _spend(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await _refresh(client, token)
    assert response.status_code == 200, response.text
    pair: dict[str, Any] = response.json()
    return pair


@pytest.mark.parametrize("generation", [0, 2])
async def test_the_second_tab_gets_the_same_successor_within_the_grace(
    client: httpx.AsyncClient, mail_sink: MailSink, clock: FrozenClock, generation: int
) -> None:
    token = (await verified_account(client, mail_sink, "tabs@example.com"))["refresh_token"]
    for _ in range(generation):  # the login's own token, and one further down the chain
        token = (await _spend(client, token))["refresh_token"]
    first_tab = await _spend(client, token)
    clock.advance(GRACE - 1)
    second_tab = await _spend(client, token)

    assert second_tab["refresh_token"] == first_tab["refresh_token"]
    assert second_tab["access_token"] != first_tab["access_token"]
    assert claims(second_tab["access_token"])["sid"] == claims(first_tab["access_token"])["sid"]
    # The family lives on: either tab's copy of the successor moves the chain forward.
    assert (await _refresh(client, second_tab["refresh_token"])).status_code == 200


async def test_a_reuse_after_the_grace_revokes_the_family(
    client: httpx.AsyncClient, mail_sink: MailSink, clock: FrozenClock
) -> None:
    first = (await verified_account(client, mail_sink, "late@example.com"))["refresh_token"]
    second = (await _spend(client, first))["refresh_token"]
    clock.advance(GRACE + 1)
    problem(await _refresh(client, first), 401, "invalid_token")
    problem(await _refresh(client, second), 401, "invalid_token")


async def test_a_reuse_after_the_successor_was_spent_revokes_the_family(
    client: httpx.AsyncClient, mail_sink: MailSink, clock: FrozenClock
) -> None:
    first = (await verified_account(client, mail_sink, "spent@example.com"))["refresh_token"]
    second = (await _spend(client, first))["refresh_token"]
    third = (await _spend(client, second))["refresh_token"]
    # Within the grace of `first` being spent, but its successor is spent too.
    problem(await _refresh(client, first), 401, "invalid_token")
    problem(await _refresh(client, third), 401, "invalid_token")


async def test_a_thief_inside_the_window_is_caught_when_the_chain_is_spent_twice(
    client: httpx.AsyncClient, mail_sink: MailSink, clock: FrozenClock
) -> None:
    stolen = (await verified_account(client, mail_sink, "thief@example.com"))["refresh_token"]
    owner = await _spend(client, stolen)
    # The thief replays the stolen token at once: inside the grace it passes for a second tab.
    thief = await _spend(client, stolen)
    assert thief["refresh_token"] == owner["refresh_token"]
    # The owner moves on; later, the thief's copy of the same generation is a replay.
    owners_next = await _spend(client, owner["refresh_token"])
    clock.advance(GRACE + 1)
    problem(await _refresh(client, thief["refresh_token"]), 401, "invalid_token")
    # The whole family is dead, the owner's newest token included.
    problem(await _refresh(client, owners_next["refresh_token"]), 401, "invalid_token")


async def test_the_thiefs_older_token_revokes_the_family_even_inside_the_window(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    stolen = (await verified_account(client, mail_sink, "older@example.com"))["refresh_token"]
    owner = await _spend(client, stolen)
    await _spend(client, stolen)  # the thief, inside the grace
    owners_next = await _spend(client, owner["refresh_token"])
    # `stolen`'s successor is spent now: presenting `stolen` again is reuse, grace or not.
    problem(await _refresh(client, stolen), 401, "invalid_token")
    problem(await _refresh(client, owners_next["refresh_token"]), 401, "invalid_token")


async def test_no_grace_for_a_family_that_ended(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    first = (await verified_account(client, mail_sink, "ended@example.com"))["refresh_token"]
    await _spend(client, first)
    assert (await client.post("/v1/auth/logout", json={"refresh_token": first})).status_code in {
        200,
        204,
    }
    problem(await _refresh(client, first), 401, "invalid_token")


async def test_no_grace_once_every_session_ended(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    pair = await verified_account(client, mail_sink, "epoch@example.com")
    spent = await _spend(client, pair["refresh_token"])
    ended = await client.post("/v1/auth/logout-all", headers=bearer(spent["access_token"]))
    assert ended.status_code in {200, 204}, ended.text
    problem(await _refresh(client, pair["refresh_token"]), 401, "invalid_token")


def test_the_grace_is_at_most_thirty_seconds() -> None:
    assert AuthSettings(NATOMEDIA_ENV="test").refresh_reuse_grace_seconds == GRACE
    assert AuthSettings(NATOMEDIA_ENV="test", refresh_reuse_grace_seconds=30)
    with pytest.raises(ValidationError):
        AuthSettings(NATOMEDIA_ENV="test", refresh_reuse_grace_seconds=31)
