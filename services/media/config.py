"""Media service settings: `MEDIA_*`, plus the contract's shared names."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from services.common.revocation import MAX_DOWNLOAD_URL_TTL_SECONDS
from services.common.settings import RefuseDevSecretsInProduction, ServiceSettings, dev_secret
from services.media.object_storage import parse_storage_url


class MediaSettings(RefuseDevSecretsInProduction, ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEDIA_", extra="ignore")
    secret_fields: ClassVar[tuple[str, ...]] = ("signing_secret",)

    database_url: str | None = None
    # Where the local-filesystem storage keeps files; `<data dir>/media` when unset.
    storage_dir: Path | None = None
    # `s3://bucket/prefix`: renditions in S3-compatible object storage instead of storage_dir.
    storage_url: str | None = None
    # A store other than AWS S3 (MinIO, SeaweedFS, Ceph RGW); credentials come from the
    # standard AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION variables.
    s3_endpoint_url: str | None = None
    # Object storage only. `proxy`: the signed URL answers with the bytes (through nginx, which
    # fetches them from the store); `redirect`: it answers 302 to a presigned URL of the store.
    delivery: Literal["proxy", "redirect"] = "proxy"
    # How long a presigned URL of the store lives: the withdrawal window of `redirect` delivery.
    redirect_ttl_seconds: int = Field(60, ge=5, le=3600)
    # Keys the HMAC of download URLs; in development one is made under the data dir.
    signing_secret: SecretStr | None = None
    # At most what revocation records are kept for (see common/revocation.py).
    download_url_ttl_seconds: int = Field(3600, ge=60, le=MAX_DOWNLOAD_URL_TTL_SECONDS)
    # Issuing download URLs is cheap but recorded; partners pulling in bulk stay far below this.
    download_url_rate_limit: str = "600/minute"
    # Behind nginx: answer a valid download URL with X-Accel-Redirect and let nginx send the file.
    accel_redirect: bool = False
    # The `internal` nginx location that maps onto the storage directory.
    accel_prefix: str = "/_protected_media/"
    # The `internal` nginx location that fetches an object from the store by its presigned URL.
    accel_store_prefix: str = "/_object_store/"
    ffprobe_path: str = "ffprobe"
    ffmpeg_path: str = "ffmpeg"
    # Anonymous public reads are replayed from memory for this long (0 turns it off): under load
    # the same page is asked for many times a second. Writes through this process clear it.
    public_cache_seconds: float = Field(1.0, ge=0, le=60)

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, value: str | None) -> str | None:
        if value:
            parse_storage_url(value)
        return value or None

    @field_validator("accel_prefix", "accel_store_prefix")
    @classmethod
    def _slashes(cls, value: str) -> str:
        return "/" + value.strip("/") + "/"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or self.sqlite_url("media")

    @property
    def resolved_storage_dir(self) -> Path:
        return self.storage_dir or self.data_dir / "media"

    @property
    def resolved_signing_secret(self) -> SecretStr:
        return self.signing_secret or dev_secret(self, "media-signing-secret")
