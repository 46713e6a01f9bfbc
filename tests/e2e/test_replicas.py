"""Two auth replicas behind one gateway: one set of rate limits (Redis), each mail sent once."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest
import redis.asyncio as redis

from tests.access_log_support import logged, with_request_ids
from tests.e2e.conftest import E2E, PASSWORD, RESEND_LIMIT, new_email

pytestmark = [pytest.mark.e2e, pytest.mark.nginx, pytest.mark.postgres, pytest.mark.redis]


async def upstreams_of(e2e: E2E, path: str, request_ids: set[str]) -> list[str]:
    """Which server nginx sent each of these requests to, from its access log."""
    log = e2e.stack.run_dir / "nginx-access.log"
    entries = await logged(log, with_request_ids(request_ids))
    return [
        entry["upstream"]
        for entry in entries
        if entry["path"] == path and entry["request_id"] in request_ids
    ]


async def test_replicas_share_one_rate_limit_through_redis(
    e2e: E2E, gateway: httpx.AsyncClient
) -> None:
    # Only this test spends the per-address resend allowance; start it from zero.
    store = redis.from_url(e2e.redis_url)
    await store.flushdb()
    await store.aclose()

    answers = []
    for attempt in range(RESEND_LIMIT + 1):
        answers.append(
            await gateway.post(
                "/v1/auth/verify/resend",
                json={"email": new_email()},
                headers={"X-Request-ID": f"resend-{attempt}"},
            )
        )

    assert [answer.status_code for answer in answers] == [202] * RESEND_LIMIT + [429]
    refused = answers[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) > 0
    # The allowance was spent on both replicas: with per-process counters each would have
    # allowed RESEND_LIMIT on its own and the last call would have passed.
    served_by = await upstreams_of(
        e2e, "/v1/auth/verify/resend", {f"resend-{attempt}" for attempt in range(RESEND_LIMIT)}
    )
    replicas = {f"127.0.0.1:{replica.port}" for replica in e2e.stack.replicas["auth"]}
    assert set(served_by) == replicas


async def test_two_mail_senders_deliver_each_mail_exactly_once(
    e2e: E2E, gateway: httpx.AsyncClient
) -> None:
    addresses = [new_email() for _ in range(12)]

    request_ids = {address: f"register-{address}" for address in addresses}

    answers = await asyncio.gather(
        *(
            gateway.post(
                "/v1/auth/register",
                json={"email": address, "password": PASSWORD},
                headers={"X-Request-ID": request_ids[address]},
            )
            for address in addresses
        )
    )
    assert {answer.status_code for answer in answers} == {202}
    # Each replica wrote some of the mail to the outbox and woke its own sender.
    served_by = await upstreams_of(e2e, "/v1/auth/register", set(request_ids.values()))
    assert len(set(served_by)) == 2

    for address in addresses:
        await e2e.wait_for_mail(address)
    # Every outbox row of these addresses is marked sent: nothing left for a second delivery.
    database = await asyncpg.connect(
        e2e.database_urls["auth"].replace("postgresql+asyncpg://", "postgresql://")
    )
    try:
        for _ in range(300):
            rows = await database.fetch(
                "SELECT recipient, sent_at, attempts FROM outbox_messages"
                " WHERE recipient = ANY($1::text[])",
                addresses,
            )
            if len(rows) == len(addresses) and all(row["sent_at"] for row in rows):
                break
            await asyncio.sleep(0.1)
    finally:
        await database.close()

    assert sorted(row["recipient"] for row in rows) == sorted(addresses)
    assert all(row["sent_at"] is not None for row in rows)
    # Both replicas' senders had a poll cycle after the last send: a duplicate would be here.
    await asyncio.sleep(0.5)
    for address in addresses:
        assert len(e2e.mail.to(address)) == 1, address
