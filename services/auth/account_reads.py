"""`GET /me` as one narrow read: the columns it shows, by primary key, serialised once.

The hottest authenticated call reads four columns. It skips the ORM (no identity map, no
password hash loaded, no unit of work), the request session and its commit, and the
response-model round trip (validate, then serialise): the row becomes JSON bytes in one call.
The route still declares `Account`, which the body matches field for field (tests compare them).
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.auth.models import User

_ACCOUNT = select(
    User.email, User.email_verified_at, User.newsletter, User.language, User.created_at
).where(User.id == bindparam("user_id"))
_JSON = TypeAdapter(dict[str, Any])


async def account_json(engine: AsyncEngine, user_id: uuid.UUID) -> bytes | None:
    """The `Account` body of `user_id`, or None when there is no such account."""
    # Its own connection, not a request session: read-only, so returning it ends the transaction.
    async with engine.connect() as connection:
        row = (await connection.execute(_ACCOUNT, {"user_id": user_id})).first()
    if row is None:
        return None
    email, verified_at, newsletter, language, created_at = row
    return _JSON.dump_json(
        {
            "id": user_id,
            "email": email,
            "email_verified": verified_at is not None,
            "newsletter": newsletter,
            "language": language,
            "created_at": created_at,
        }
    )
