"""The editor API of the catalogue: change metadata, withdraw and restore, delete renditions,
and see who downloaded a video. Every call needs an access token with the `editor` role."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Path
from starlette.responses import Response

from services.common.database import SessionDep
from services.common.pagination import Cursor, Limit
from services.common.problems import problem_responses
from services.media import editing, withdrawals
from services.media.auth import Editor
from services.media.dependencies import SettingsDep, StorageDep
from services.media.schemas import EditorVideo, VideoDownloadPage, VideoPatch, WithdrawRequest

router = APIRouter(prefix="/v1/media", tags=["editor"])

EDITOR_SCOPE = "editor"
VideoId = Annotated[uuid.UUID, Path(description="The video's id")]


EDITOR_FAILURES = ((401, "invalid_token"), (403, "insufficient_scope"), (404, "not_found"))


def _answer(video: EditorVideo, etag: str) -> Response:
    return Response(
        video.model_dump_json(),
        media_type="application/json",
        headers={"ETag": etag, "Cache-Control": "no-store"},
    )


@router.patch(
    "/videos/{video_id}",
    operation_id="updateVideo",
    response_model=EditorVideo,
    summary="Change a video's metadata",
    responses=problem_responses(
        *EDITOR_FAILURES, (412, "precondition_failed"), (422, "validation_error")
    ),
)
async def update_video(
    video_id: VideoId,
    patch: VideoPatch,
    editor: Editor,
    session: SessionDep,
    settings: SettingsDep,
    if_match: Annotated[
        str | None,
        Header(description="The video's `ETag` as read: 412 when it changed since"),
    ] = None,
) -> Response:
    """Only the fields sent change. Send the `ETag` of the video's detail in `If-Match` so
    another editor's change is never overwritten unseen. Every change raises `version` and
    appears in the change feed."""
    video = await editing.update_video(
        session,
        video_id,
        patch.model_dump(exclude_unset=True),
        editor=editor.subject,
        if_match=if_match,
        settings=settings,
    )
    return _answer(editing.editor_view(video, settings), editing.video_etag(video, settings))


@router.post(
    "/videos/{video_id}/withdraw",
    operation_id="withdrawVideo",
    response_model=EditorVideo,
    summary="Withdraw a video",
    responses=problem_responses(*EDITOR_FAILURES, (422, "validation_error")),
)
async def withdraw_video(
    video_id: VideoId,
    body: WithdrawRequest,
    editor: Editor,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """The video leaves the catalogue and search at once; its detail and every download link,
    even one signed before, answer 410 `video_withdrawn`; the change feed carries a tombstone
    with the public `reason_code`. The note stays with editors."""
    video = await withdrawals.withdraw(
        session, video_id, reason_code=body.reason_code, note=body.note, editor=editor.subject
    )
    return _answer(editing.editor_view(video, settings), editing.video_etag(video, settings))


@router.post(
    "/videos/{video_id}/restore",
    operation_id="restoreVideo",
    response_model=EditorVideo,
    summary="Publish a withdrawn video again",
    responses=problem_responses(*EDITOR_FAILURES, (422, "validation_error")),
)
async def restore_video(
    video_id: VideoId, editor: Editor, session: SessionDep, settings: SettingsDep
) -> Response:
    """Links signed before the withdrawal work again until they expire."""
    video = await withdrawals.restore(session, video_id, editor=editor.subject)
    return _answer(editing.editor_view(video, settings), editing.video_etag(video, settings))


@router.delete(
    "/videos/{video_id}/renditions/{rendition_id}",
    operation_id="deleteRendition",
    status_code=204,
    summary="Delete a rendition",
    response_class=Response,
    responses=problem_responses(*EDITOR_FAILURES, (422, "validation_error")),
)
async def delete_rendition(
    video_id: VideoId,
    rendition_id: Annotated[uuid.UUID, Path(description="One of the video's renditions")],
    editor: Editor,
    session: SessionDep,
    storage: StorageDep,
) -> Response:
    """Its file is deleted from storage and its links stop working."""
    storage_key = await editing.delete_rendition(
        session, video_id, rendition_id, editor=editor.subject
    )
    await storage.delete(storage_key)
    return Response(status_code=204)


@router.get(
    "/videos/{video_id}/downloads",
    operation_id="listVideoDownloads",
    response_model=VideoDownloadPage,
    summary="Who obtained download URLs for a video",
    responses=problem_responses(*EDITOR_FAILURES, (422, "validation_error")),
)
async def list_video_downloads(
    video_id: VideoId,
    _: Editor,
    session: SessionDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    """Newest first, so a withdrawal can be followed up with whoever holds copies."""
    items, next_cursor = await editing.list_downloads(session, video_id, limit=limit, cursor=cursor)
    page = VideoDownloadPage(items=items, next_cursor=next_cursor)
    return Response(
        page.model_dump_json(), media_type="application/json", headers={"Cache-Control": "no-store"}
    )
