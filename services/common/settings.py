"""Settings shared by every service; each service subclasses with its own env prefix."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.common.database import POOL_SIZE
from services.common.private_files import create_private_once


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        value = value.split(",")
    if isinstance(value, list | tuple):
        items = [item.strip() if isinstance(item, str) else item for item in value]
        return [item for item in items if item != ""]
    return value


# Every comma-separated setting, from the environment (`a.pem, b.pem`, one item, or empty) or
# from Python (a list). NoDecode: pydantic-settings would otherwise parse the value as JSON.
CommaList = Annotated[list[str], NoDecode, BeforeValidator(_split_commas)]


class ServiceSettings(BaseSettings):
    """What every service reads from the environment under the contract's shared names."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    environment: Literal["development", "test", "production"] = Field(
        "development", validation_alias=AliasChoices("NATOMEDIA_ENV")
    )
    data_dir: Path = Field(Path("var"), validation_alias=AliasChoices("NATOMEDIA_DATA_DIR"))
    public_base_url: str = Field(
        "http://127.0.0.1:8000", validation_alias=AliasChoices("PUBLIC_BASE_URL")
    )
    cors_origins: CommaList = Field(default_factory=list, validation_alias="CORS_ORIGINS")
    redis_url: str | None = Field(None, validation_alias=AliasChoices("REDIS_URL"))
    # Only these peers may tell us the client's address (X-Forwarded-For / X-Real-IP). None by
    # default: anyone reaching a service port directly (loopback included) could name any address
    # and dodge every per-address limit; the stack and compose name their gateway explicitly.
    trusted_proxies: CommaList = Field(
        default_factory=list, validation_alias="NATOMEDIA_TRUSTED_PROXIES"
    )
    jwt_issuer: str = Field("natomedia-auth", validation_alias=AliasChoices("JWT_ISSUER"))
    jwt_audience: str = Field("natomedia-api", validation_alias=AliasChoices("JWT_AUDIENCE"))
    # Where media and news fetch the auth service's public keys; defaults to the public origin.
    jwks_url: str | None = Field(None, validation_alias=AliasChoices("JWKS_URL"))
    log_level: str = Field("INFO", validation_alias=AliasChoices("NATOMEDIA_LOG_LEVEL"))
    max_body_bytes: int = Field(1_048_576, validation_alias="NATOMEDIA_MAX_BODY_BYTES")
    # PostgreSQL connections one service process keeps (and at most holds): replicas times this
    # must stay under the server's max_connections.
    database_pool_size: int = Field(
        POOL_SIZE, ge=1, le=1000, validation_alias="NATOMEDIA_DATABASE_POOL_SIZE"
    )

    @field_validator("public_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def resolved_jwks_url(self) -> str:
        return self.jwks_url or f"{self.public_base_url}/.well-known/jwks.json"

    def sqlite_url(self, name: str) -> str:
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{name}.sqlite3').resolve()}"


def dev_secret(settings: ServiceSettings, name: str) -> SecretStr:
    """A random secret kept under the data dir (mode 0600), made on first use: development only."""
    path = settings.data_dir / "secrets" / name
    if not path.exists():
        create_private_once(path, secrets.token_urlsafe(32).encode())
    return SecretStr(path.read_text().strip())


MIN_SECRET_BYTES = 32


class RefuseDevSecretsInProduction:
    """Mixin for settings classes whose secrets and database must be given in production.

    A secret that is there but empty or short (a truncated file, `VAR=` in a template) is as bad
    as a missing one, and a missing database URL would quietly put production data in SQLite
    files under the data dir.
    """

    secret_fields: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _require_secrets(self) -> Any:
        if getattr(self, "environment", None) != "production":
            return self
        prefix = str(getattr(self, "model_config", {}).get("env_prefix", ""))
        problems = []
        for name in self.secret_fields:
            value = getattr(self, name, None)
            variable = f"{prefix}{name}".upper()
            if value is None:
                problems.append(f"{variable} is not set")
                continue
            secret = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
            if len(secret.encode()) < MIN_SECRET_BYTES:
                problems.append(f"{variable} is shorter than {MIN_SECRET_BYTES} bytes")
        if hasattr(self, "database_url") and not getattr(self, "database_url", None):
            problems.append(f"{prefix}DATABASE_URL is not set")
        if problems:
            raise ValueError(f"production refuses to start: {'; '.join(problems)}")
        return self


def settings_error_line(error: ValidationError) -> str:
    """A settings error as one line for the console: what is wrong, and where."""
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return f"{error.title}: {'; '.join(parts)}"
