"""PostgreSQL stopped under traffic: clean 503s with Retry-After, then recovery in the same app.

Runs on a private cluster (never the shared one) that the test stops and starts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from services.gateway.mail_sink import MailSink
from tests.faults.conftest import PrivatePostgres
from tests.security.apps import (
    assert_problem,
    auth_settings,
    create_app,
    from_address,
    prepare,
    register,
    serving,
)

pytestmark = [pytest.mark.fault, pytest.mark.postgres]


async def _users(postgres: PrivatePostgres) -> list[tuple[str, int]]:
    connection = await asyncpg.connect(postgres.url.replace("+asyncpg", ""))
    try:
        rows = await connection.fetch(
            "SELECT u.email, (SELECT count(*) FROM one_time_codes c WHERE c.user_id = u.id) "
            "+ (SELECT count(*) FROM outbox_messages o WHERE o.recipient = u.email) "
            "FROM users u"
        )
    finally:
        await connection.close()
    return [(row[0], int(row[1])) for row in rows]


async def test_requests_get_503_while_postgres_is_down_then_recover(
    tmp_path: Path, mail_sink: MailSink, private_postgres: PrivatePostgres
) -> None:
    settings = auth_settings(tmp_path / "auth", mail_sink, database_url=private_postgres.url)
    await prepare("auth", settings)
    async with serving(create_app("auth", settings)) as client:
        assert (await register(client, "before@example.org")).status_code == 202
        assert (await client.get("/v1/auth/readyz")).status_code == 200

        # Traffic in flight while the database goes away.
        async def traffic(n: int) -> int:
            response = await register(
                client, f"during{n}@example.org", **from_address(f"10.8.{n // 200}.{n % 200 + 1}")
            )
            return response.status_code

        in_flight = [asyncio.create_task(traffic(n)) for n in range(10)]
        await asyncio.to_thread(private_postgres.stop)
        during = await asyncio.gather(*in_flight)
        assert set(during) <= {202, 503}, during

        down = await register(client, "down@example.org", **from_address("10.7.0.1"))
        assert_problem(down, 503, "service_unavailable")
        assert int(down.headers["retry-after"]) >= 1
        ready = await client.get("/v1/auth/readyz")
        assert ready.status_code == 503
        login = await client.post(
            "/v1/auth/login", json={"email": "before@example.org", "password": "x"}
        )
        assert_problem(login, 503, "service_unavailable")

        await asyncio.to_thread(private_postgres.start)
        # The same app, not restarted: the pool drops dead connections and reconnects.
        recovered = None
        for attempt in range(20):
            recovered = await register(client, "after@example.org", **from_address("10.7.0.2"))
            if recovered.status_code != 503:
                break
            await asyncio.sleep(0.25 * (attempt + 1))
        assert recovered is not None
        assert recovered.status_code == 202, recovered.text
        assert (await client.get("/v1/auth/readyz")).status_code == 200
        await mail_sink.wait_for("after@example.org")

    users = dict(await _users(private_postgres))
    assert "before@example.org" in users
    assert "after@example.org" in users
    assert "down@example.org" not in users
    # Every account that exists came with its code and its queued mail: nothing half-written.
    for email, pieces in users.items():
        assert pieces >= 2, email
