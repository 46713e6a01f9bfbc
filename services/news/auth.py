"""Who may do what in news: the token aliases routes take."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Security

from services.common import scopes
from services.common.jwt import Principal
from services.common.public_reads import is_editor, public_reader
from services.common.security import principal
from services.news.exceptions import EditorRequired


async def editor(caller: Annotated[Principal, Depends(principal)]) -> Principal:
    if not is_editor(caller):
        raise EditorRequired
    return caller


async def reader_is_editor(
    caller: Annotated[Principal | None, Security(public_reader)],
) -> bool:
    return is_editor(caller)


# An editor's token.
Editor = Annotated[Principal, Security(editor, scopes=[scopes.EDITOR])]
# Anyone may read; an editor's token also shows drafts. A token that fails is ignored
# (`public_reads`).
ReaderIsEditor = Annotated[bool, Depends(reader_is_editor)]
