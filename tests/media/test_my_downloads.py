"""`GET /v1/media/me/downloads`: the caller's own grants, paged; addresses kept 30 days."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from services.common.clock import FrozenClock
from services.media.ingest import Ingested
from services.media.models import DownloadGrant
from services.media.my_downloads import purge_grant_addresses
from tests.auth.flows import bearer
from tests.conftest import TokenFactory
from tests.media.conftest import Catalogue
from tests.media.test_downloads import assert_problem, request_url
from tests.strict_lists import assert_strict_list


async def test_lists_only_the_callers_grants_newest_first_in_pages(
    client: httpx.AsyncClient, catalogue: Catalogue, tokens: TokenFactory, clock: FrozenClock
) -> None:
    clip: Ingested = await catalogue.ingest_bytes(b"x" * 64, title="Oslo press point")
    me, someone = uuid.uuid4(), uuid.uuid4()
    mine = tokens.account(account_id=me)
    for _ in range(3):
        assert (await request_url(client, clip, mine)).status_code == 200
        clock.advance(1)
    assert (await request_url(client, clip, tokens.account(account_id=someone))).status_code == 200

    first = await client.get(
        "/v1/media/me/downloads", params={"limit": 2}, headers={"Authorization": f"Bearer {mine}"}
    )

    assert first.status_code == 200, first.text
    page = first.json()
    assert len(page["items"]) == 2
    item = page["items"][0]
    assert item["video_id"] == str(clip.video_id)
    assert item["video_title"] == "Oslo press point"
    assert item["rendition_id"] == str(clip.rendition_id)
    assert set(item) == {
        "video_id",
        "video_title",
        "rendition_id",
        "rendition_label",
        "granted_at",
        "expires_at",
    }
    assert page["items"][0]["granted_at"] > page["items"][1]["granted_at"]
    second = await client.get(
        "/v1/media/me/downloads",
        params={"limit": 2, "cursor": page["next_cursor"]},
        headers={"Authorization": f"Bearer {mine}"},
    )
    assert len(second.json()["items"]) == 1
    assert second.json()["next_cursor"] is None


async def test_needs_a_token_and_a_valid_cursor(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    assert_problem(await client.get("/v1/media/me/downloads"), 401, "invalid_token")
    bad = await client.get(
        "/v1/media/me/downloads",
        params={"cursor": "nonsense"},
        headers={"Authorization": f"Bearer {tokens.account()}"},
    )
    assert_problem(bad, 422, "validation_error")


async def test_grant_addresses_are_cleared_after_30_days(
    app: FastAPI,
    client: httpx.AsyncClient,
    catalogue: Catalogue,
    tokens: TokenFactory,
    clock: FrozenClock,
) -> None:
    clip = await catalogue.ingest_bytes(b"y" * 64)
    assert (await request_url(client, clip, tokens.account())).status_code == 200

    async def addresses() -> list[str | None]:
        async with app.state.database.sessionmaker() as session:
            return list(await session.scalars(select(DownloadGrant.client_address)))

    assert (await addresses())[0] is not None
    await purge_grant_addresses(app.state.database, clock.now() + timedelta(days=29))
    assert (await addresses())[0] is not None
    await purge_grant_addresses(app.state.database, clock.now() + timedelta(days=31))
    assert await addresses() == [None]


async def test_the_download_history_refuses_unknown_and_repeated_parameters(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    await assert_strict_list(client, "/v1/media/me/downloads", bearer(tokens.account()))
