"""URL slugs made from titles, unique with -2, -3… suffixes."""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.news.models import Article

MAX_BASE_LENGTH = 100
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(title: str) -> str:
    """`"NATO-Russia Council: Oslo, 26 April"` -> `"nato-russia-council-oslo-26-april"`."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = _NOT_SLUG.sub("-", ascii_title.lower()).strip("-")
    slug = slug[:MAX_BASE_LENGTH].rstrip("-")
    return slug or "article"


async def unique_slug(session: AsyncSession, title: str) -> str:
    base = slugify(title)
    # Slugs hold no LIKE wildcards, so this prefix match is exact.
    taken = set(
        await session.scalars(
            select(Article.slug).where(or_(Article.slug == base, Article.slug.like(f"{base}-%")))
        )
    )
    if base not in taken:
        return base
    suffix = 2
    while f"{base}-{suffix}" in taken:
        suffix += 1
    return f"{base}-{suffix}"
