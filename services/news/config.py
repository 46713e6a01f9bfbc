"""News service settings: `NEWS_*`, plus the contract's shared names."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import RefuseDevSecretsInProduction, ServiceSettings


class NewsSettings(RefuseDevSecretsInProduction, ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NEWS_", extra="ignore")

    database_url: str | None = None
    feed_title: str = "NATO Multimedia: news"
    feed_author: str = "NATO"
    # How many of the latest published articles the JSON Feed and Atom documents carry.
    feed_size: int = Field(50, ge=1, le=500)
    # Shared caches may keep public reads this long; drafts are never cached.
    cache_max_age_seconds: int = Field(60, ge=0)
    # Anonymous public reads are replayed from memory for this long (0 turns it off): under load
    # the same page is asked for many times a second. Writes through this process clear it.
    public_cache_seconds: float = Field(1.0, ge=0, le=60)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or self.sqlite_url("news")
