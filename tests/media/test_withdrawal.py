"""Withdrawal: the detail and every link (signed before or after) answer 410, the video leaves
the list, the feed carries a tombstone, and restoring brings it all back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.common.clock import FrozenClock
from services.common.ratelimit import RateLimiter
from services.media.app import create_app
from services.media.config import MediaSettings
from services.media.ingest import Ingested
from services.media.models import VideoChange
from tests.conftest import TokenFactory
from tests.media.conftest import Catalogue
from tests.media.test_downloads import CONTENT, assert_problem, signed_url, url_path

SINCE = (datetime.now(UTC) - timedelta(days=1)).isoformat()
TOMBSTONE_KEYS = {"id", "status", "version", "withdrawn_at", "reason_code", "updated_at"}


@pytest.fixture
async def clip(catalogue: Catalogue) -> Ingested:
    return await catalogue.ingest_bytes(CONTENT, title="Oslo press point")


def editor(tokens: TokenFactory) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.account(roles=('editor',))}"}


async def withdraw(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/media/videos/{clip.video_id}/withdraw",
        json={"reason_code": "rights", **body},
        headers=editor(tokens),
    )


async def feed(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/v1/media/videos", params={"updated_since": SINCE})
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_withdrawal_stops_detail_links_and_list_and_tombstones_the_feed(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory
) -> None:
    old_link = url_path(await signed_url(client, clip, tokens))
    # Read once, so the public cache holds the detail and the list.
    assert (await client.get(f"/v1/media/videos/{clip.video_id}")).status_code == 200
    listed = await client.get("/v1/media/videos")
    assert [item["id"] for item in listed.json()["items"]] == [str(clip.video_id)]
    assert listed.json()["items"][0]["status"] == "published"
    assert listed.json()["items"][0]["version"] == 1

    response = await withdraw(client, clip, tokens, note="Agency asked us to pull it")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "withdrawn"
    assert body["reason_code"] == "rights"
    assert body["withdrawal_note"] == "Agency asked us to pull it"
    assert body["version"] == 2

    detail = await client.get(f"/v1/media/videos/{clip.video_id}")
    assert_problem(detail, 410, "video_withdrawn")
    assert detail.json()["reason_code"] == "rights"
    assert detail.json()["withdrawn_at"] == body["withdrawn_at"].replace("+00:00", "Z")

    assert_problem(await client.get(old_link), 410, "video_withdrawn")
    assert (await client.head(old_link)).status_code == 410
    assert_problem(
        await client.post(
            f"/v1/media/videos/{clip.video_id}/renditions/{clip.rendition_id}/download-url",
            headers={"Authorization": f"Bearer {tokens.account()}"},
        ),
        410,
        "video_withdrawn",
    )
    assert_problem(
        await client.get(f"/v1/media/videos/{clip.video_id}/thumbnail.jpg"), 410, "video_withdrawn"
    )
    assert (await client.get("/v1/media/videos")).json()["items"] == []

    [tombstone] = await feed(client)
    assert set(tombstone) == TOMBSTONE_KEYS
    assert tombstone["id"] == str(clip.video_id)
    assert tombstone["status"] == "withdrawn"
    assert tombstone["reason_code"] == "rights"
    assert tombstone["version"] == 2
    assert "Agency" not in str(tombstone)

    restored = await client.post(
        f"/v1/media/videos/{clip.video_id}/restore", headers=editor(tokens)
    )
    assert restored.status_code == 200
    assert restored.json()["status"] == "published"
    assert restored.json()["withdrawal_note"] is None
    assert (await client.get(f"/v1/media/videos/{clip.video_id}")).status_code == 200
    assert (await client.get(old_link)).status_code == 200
    [item] = await feed(client)
    assert (item["status"], item["version"]) == ("published", 3)


async def test_a_tombstone_reaches_a_partner_holding_a_cursor(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory
) -> None:
    first = await client.get("/v1/media/videos", params={"updated_since": SINCE})
    cursor = first.json()["next_cursor"]
    assert cursor is not None
    assert (await withdraw(client, clip, tokens, reason_code="security")).status_code == 200
    later = await client.get("/v1/media/videos", params={"updated_since": SINCE, "cursor": cursor})
    [tombstone] = later.json()["items"]
    assert (tombstone["id"], tombstone["status"], tombstone["reason_code"]) == (
        str(clip.video_id),
        "withdrawn",
        "security",
    )


async def test_withdrawal_is_recorded_with_its_editor(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory, catalogue: Catalogue
) -> None:
    assert (await withdraw(client, clip, tokens)).status_code == 200
    async with catalogue.database.sessionmaker() as session:
        changes = (
            await session.scalars(
                select(VideoChange)
                .where(VideoChange.video_id == clip.video_id)
                .order_by(VideoChange.feed_position)
            )
        ).all()
    assert [(c.action, c.version) for c in changes] == [("create", 1), ("withdraw", 2)]
    assert changes[0].editor is None  # the ingest, by the operator
    assert changes[1].editor is not None


@pytest.mark.parametrize("reason", ["", "legal", None])
async def test_withdrawal_needs_a_known_reason(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory, reason: str | None
) -> None:
    response = await withdraw(client, clip, tokens, reason_code=reason)
    assert_problem(response, 422, "validation_error")


async def test_withdrawal_needs_an_editor(
    client: httpx.AsyncClient, clip: Ingested, tokens: TokenFactory
) -> None:
    path = f"/v1/media/videos/{clip.video_id}/withdraw"
    body = {"reason_code": "rights"}
    assert_problem(await client.post(path, json=body), 401, "invalid_token")
    reader = {"Authorization": f"Bearer {tokens.account()}"}
    assert_problem(await client.post(path, json=body, headers=reader), 403, "insufficient_scope")
    partner = {"Authorization": f"Bearer {tokens.client()}"}
    assert_problem(await client.post(path, json=body, headers=partner), 403, "insufficient_scope")
    assert (await client.get(f"/v1/media/videos/{clip.video_id}")).status_code == 200


async def test_withdrawing_an_unknown_video_is_404(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    response = await client.post(
        "/v1/media/videos/00000000-0000-4000-8000-000000000000/withdraw",
        json={"reason_code": "error"},
        headers=editor(tokens),
    )
    assert_problem(response, 404, "not_found")


async def test_another_process_stops_a_link_it_served_before(
    client: httpx.AsyncClient,
    clip: Ingested,
    tokens: TokenFactory,
    settings: MediaSettings,
    clock: FrozenClock,
) -> None:
    """A replica that already served the link (and so once knew the file) refuses it as soon as
    another replica withdraws the video: nothing about the file is remembered per process."""
    link = url_path(await signed_url(client, clip, tokens))
    other = create_app(
        settings, clock=clock, token_verifier=tokens.verifier(), rate_limiter=RateLimiter()
    )
    async with (
        other.router.lifespan_context(other),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=other), base_url="http://testserver"
        ) as replica,
    ):
        assert (await replica.get(link)).status_code == 200
        assert (await withdraw(client, clip, tokens)).status_code == 200
        assert_problem(await replica.get(link), 410, "video_withdrawn")
