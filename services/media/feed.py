"""The change feed: every change to a video takes the next position, in commit order.

A change is recorded in one short transaction that ends with `take_position`: an
`UPDATE … RETURNING` of the single counter row. On PostgreSQL the row lock it takes is held to
the commit, so a later writer waits for it and positions become visible in the order they were
taken: a poller that has seen position n has seen every position below n. SQLite serialises
writers anyway. Slow work (copying, hashing, probing) happens before the transaction begins.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.database import utcnow
from services.media.models import FeedCounter, Video, VideoChange
from services.media.search import search_for

COUNTER_ID = 1


async def take_position(session: AsyncSession) -> int:
    """The next feed position; locks the counter row until this transaction ends."""
    return (await take_positions(session, 1))[0]


async def take_positions(session: AsyncSession, count: int) -> range:
    """The next `count` feed positions in one statement (a bulk import takes a batch's at once);
    locks the counter row until this transaction ends."""
    statement = (
        update(FeedCounter)
        .where(FeedCounter.id == COUNTER_ID)
        .values(position=FeedCounter.position + count)
        .returning(FeedCounter.position)
    )
    last = (await session.execute(statement)).scalar_one_or_none()
    if last is None:
        # The migration creates the row; a database emptied by hand (or by tests) may lack it.
        start = select(func.coalesce(func.max(Video.feed_position), 0)).scalar_subquery()
        values = {"id": COUNTER_ID, "position": start}
        dialect = session.get_bind().dialect.name
        insert = postgres_insert if dialect == "postgresql" else sqlite_insert
        await session.execute(insert(FeedCounter).values(**values).on_conflict_do_nothing())
        last = (await session.execute(statement)).scalar_one()
    return range(int(last) - count + 1, int(last) + 1)


async def record_change(
    session: AsyncSession,
    video: Video,
    *,
    action: str,
    editor: str | None,
    fields: Iterable[str] = (),
    now: datetime | None = None,
    created: bool = False,
) -> int:
    """Bump the video's version, give it the next feed position and audit who changed what.

    Call it at the end of the transaction and commit right after: the counter stays locked
    until then.
    """
    now = now or utcnow()
    position = await take_position(session)
    # One flush for the lot: `updated_at` is stamped now, in the transaction that commits it.
    video.version = 1 if created else (video.version or 0) + 1
    video.updated_at = now
    video.feed_position = position
    # Search follows every change, in the same transaction.
    await search_for(session).index(session, video, [tag.tag for tag in video.tags])
    session.add(
        VideoChange(
            video_id=video.id,
            version=video.version,
            feed_position=position,
            action=action,
            editor=editor,
            fields=sorted(set(fields)),
            changed_at=now,
        )
    )
    await session.flush()
    return position
