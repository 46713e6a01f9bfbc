"""News service settings: `NEWS_*`, plus the contract's shared names."""

from __future__ import annotations

from pydantic import Field, field_validator
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
    # The website's article page, `{slug}` standing for the article (for example
    # `https://www.nato.int/news/{slug}`): the feeds link readers there. Unset, they link to the
    # API's JSON.
    site_url: str | None = None

    @field_validator("site_url")
    @classmethod
    def _site_url_template(cls, value: str | None) -> str | None:
        if not value:
            return None
        if value.count("{slug}") != 1 or not value.startswith(("https://", "http://")):
            raise ValueError("NEWS_SITE_URL must be an http(s) URL with one {slug} in it")
        return value

    @property
    def site_home_url(self) -> str | None:
        """The site's page the article pages sit under (up to the last `/` before `{slug}`)."""
        if self.site_url is None:
            return None
        before = self.site_url.split("{slug}", 1)[0]
        return before[: before.rfind("/") + 1]

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or self.sqlite_url("news")
