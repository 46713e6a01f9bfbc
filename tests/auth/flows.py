"""Small helpers that walk the public API the way a client would."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from services.auth.models import CodeRequest
from services.common.database import Database
from services.gateway.mail_sink import MailSink

STRONG_PASSWORD = "Correct-Horse-42-Battery"


async def register(
    client: httpx.AsyncClient,
    email: str,
    password: str = STRONG_PASSWORD,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> httpx.Response:
    return await client.post(
        "/v1/auth/register", json={"email": email, "password": password, **extra}, headers=headers
    )


async def latest_code(sink: MailSink, email: str, count: int = 1) -> str:
    mails = await sink.wait_for(email, count)
    code = mails[-1].code
    assert code is not None, mails[-1].text
    return code


async def verified_account(
    client: httpx.AsyncClient, sink: MailSink, email: str, password: str = STRONG_PASSWORD
) -> dict[str, Any]:
    """Register and verify; returns the token pair."""
    before = len(sink.to(email))
    response = await register(client, email, password)
    assert response.status_code == 202, response.text
    code = await latest_code(sink, email, before + 1)
    verified = await client.post("/v1/auth/verify", json={"email": email, "code": code})
    assert verified.status_code == 200, verified.text
    pair: dict[str, Any] = verified.json()
    return pair


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def code_requests_answered(app: FastAPI | httpx.AsyncClient, timeout: float = 10.0) -> None:
    """Wait until the sender has answered every request for a code (it runs after the 202)."""
    if isinstance(app, httpx.AsyncClient):
        transport = app._transport
        assert isinstance(transport, httpx.ASGITransport)
        app = transport.app  # type: ignore[assignment]
    database: Database = app.state.database
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        async with database.sessionmaker() as session:
            pending = await session.scalar(select(func.count()).select_from(CodeRequest))
        if not pending:
            return
        if loop.time() > deadline:
            raise TimeoutError(f"{pending} code requests still unanswered")
        await asyncio.sleep(0.02)
