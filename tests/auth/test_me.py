"""`GET /v1/auth/me`: the narrow read answers exactly what the declared `Account` model would."""

from __future__ import annotations

import httpx
from sqlalchemy import delete

from services.auth.models import User
from services.auth.schemas import Account
from services.common.database import Database
from services.gateway.mail_sink import MailSink
from tests.auth.flows import bearer, verified_account


async def test_me_is_the_account_model_byte_for_byte(
    client: httpx.AsyncClient, mail_sink: MailSink
) -> None:
    pair = await verified_account(client, mail_sink, "Grace.Hopper@Example.org")
    headers = bearer(pair["access_token"])
    # The newsletter call answers through the response model: the reference rendering.
    modelled = await client.put(
        "/v1/auth/me/newsletter", json={"subscribed": True}, headers=headers
    )
    assert modelled.status_code == 200
    me = await client.get("/v1/auth/me", headers=headers)
    assert me.status_code == 200
    assert me.headers["content-type"] == "application/json"
    assert me.content == modelled.content
    account = Account.model_validate_json(me.content)
    assert account.email == "Grace.Hopper@example.org"
    assert account.newsletter is True
    assert account.created_at.tzinfo is not None


async def test_me_refuses_a_token_whose_account_is_gone(
    client: httpx.AsyncClient, mail_sink: MailSink, database_url: str
) -> None:
    pair = await verified_account(client, mail_sink, "gone@example.org")
    database = Database(database_url)
    try:
        async with database.sessionmaker() as session, session.begin():
            await session.execute(delete(User))
    finally:
        await database.dispose()
    response = await client.get("/v1/auth/me", headers=bearer(pair["access_token"]))
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
