"""The newsletter: an account's subscription, and the subscribers for the mailing tool
(`natomedia users newsletter-export`).

Only verified accounts count: an unverified address may belong to someone who never asked.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.account_events import AccountEvents
from services.auth.models import User
from services.common.clock import Clock

ExportFormat = Literal["csv", "json"]
FIELDS = ("email", "language", "subscribed_since")


async def set_newsletter(
    session: AsyncSession, user: User, subscribed: bool, *, clock: Clock, events: AccountEvents
) -> User:
    if user.newsletter != subscribed:
        user.newsletter = subscribed
        user.newsletter_since = clock.now() if subscribed else None
        events.account_changed(session, user)
    await session.flush()
    return user


@dataclass(frozen=True)
class Subscriber:
    email: str
    language: str
    subscribed_since: datetime


async def verified_subscribers(session: AsyncSession) -> list[Subscriber]:
    """Verified accounts that want the newsletter, longest-subscribed first."""
    rows = await session.execute(
        select(User.email, User.language, User.newsletter_since, User.created_at)
        .where(User.newsletter.is_(True), User.email_verified_at.is_not(None))
        .order_by(User.newsletter_since, User.email_canonical)
    )
    return [
        # A subscription without a start predates its recording: the account's creation bounds it.
        Subscriber(email, language, since if since is not None else created)
        for email, language, since, created in rows
    ]


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def render(subscribers: Sequence[Subscriber], export_format: ExportFormat) -> str:
    records = [
        {
            "email": subscriber.email,
            "language": subscriber.language,
            "subscribed_since": _instant(subscriber.subscribed_since),
        }
        for subscriber in subscribers
    ]
    if export_format == "json":
        return json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()
