"""The storage the settings name: object storage for MEDIA_STORAGE_URL, else a local directory."""

from __future__ import annotations

from services.media.config import MediaSettings
from services.media.object_storage import S3Storage
from services.media.storage import LocalStorage, Storage


def open_storage(settings: MediaSettings) -> Storage:
    if settings.storage_url:
        return S3Storage.from_url(settings.storage_url, endpoint_url=settings.s3_endpoint_url)
    return LocalStorage(settings.resolved_storage_dir)
