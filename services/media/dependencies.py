"""Typed access to what the app holds, and the checks routes share.

Every dependency is `async def`, even the getters: FastAPI runs a plain `def` dependency in its
thread pool, which costs a thread hop per request for one attribute read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.common.client_address import client_address
from services.common.clock import Clock
from services.media.config import MediaSettings
from services.media.delivery import RenditionFiles
from services.media.signing import DownloadSigner
from services.media.storage import Storage


async def get_settings(request: Request) -> MediaSettings:
    settings: MediaSettings = request.app.state.settings
    return settings


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


async def get_signer(request: Request) -> DownloadSigner:
    signer: DownloadSigner = request.app.state.signer
    return signer


async def get_rendition_files(request: Request) -> RenditionFiles:
    files: RenditionFiles = request.app.state.rendition_files
    return files


async def get_client_address(request: Request) -> str | None:
    return client_address(request, (await get_settings(request)).trusted_proxies)


SettingsDep = Annotated[MediaSettings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
StorageDep = Annotated[Storage, Depends(get_storage)]
SignerDep = Annotated[DownloadSigner, Depends(get_signer)]
RenditionFilesDep = Annotated[RenditionFiles, Depends(get_rendition_files)]
ClientAddressDep = Annotated[str | None, Depends(get_client_address)]
