"""Withdrawing a video and putting it back: one short transaction each, taking a feed position.

A withdrawn video answers 410 on its detail and on every link, old or new (see `delivery`), and
is a tombstone in the change feed; the reason code is public, the editor's note is not.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.common.database import utcnow
from services.media.editing import load_for_change
from services.media.feed import record_change
from services.media.models import Video
from services.media.service import PUBLISHED, WITHDRAWN

REASON_CODES = ("rights", "error", "security", "other")


async def withdraw(
    session: AsyncSession,
    video_id: uuid.UUID,
    *,
    reason_code: str,
    note: str | None,
    editor: str | None,
) -> Video:
    """Withdraw the video (again, with a new reason, if it already is); commits."""
    if reason_code not in REASON_CODES:
        raise ValueError(f"reason code must be one of {', '.join(REASON_CODES)}")
    video = await load_for_change(session, video_id)
    now = utcnow()
    if video.status != WITHDRAWN:
        video.withdrawn_at = now
    video.status = WITHDRAWN
    video.withdrawal_reason = reason_code
    video.withdrawal_note = note
    await record_change(
        session, video, action="withdraw", editor=editor, fields=["status"], now=now
    )
    await session.commit()
    return video


async def restore(session: AsyncSession, video_id: uuid.UUID, *, editor: str | None) -> Video:
    """Publish a withdrawn video again; a published one is left as it is. Commits."""
    video = await load_for_change(session, video_id)
    if video.status == PUBLISHED:
        await session.rollback()
        return await load_for_change(session, video_id)
    video.status = PUBLISHED
    video.withdrawn_at = None
    video.withdrawal_reason = None
    video.withdrawal_note = None
    await record_change(session, video, action="restore", editor=editor, fields=["status"])
    await session.commit()
    return video
