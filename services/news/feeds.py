"""The latest published articles as a JSON Feed 1.1 and as an Atom 1.0 document."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from services.news.config import NewsSettings
from services.news.models import Article

JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
JSON_FEED_MEDIA_TYPE = "application/feed+json"
ATOM_MEDIA_TYPE = "application/atom+xml"
ATOM_NS = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# A feed with no articles still needs an `updated`; this keeps its ETag stable.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def article_url(settings: NewsSettings, slug: str) -> str:
    """The article in the API."""
    return f"{settings.public_base_url}/v1/news/articles/{slug}"


def reader_url(settings: NewsSettings, slug: str) -> str:
    """Where a reader of the feed reads the article: the website when NEWS_SITE_URL is set."""
    if settings.site_url is not None:
        return settings.site_url.replace("{slug}", quote(slug, safe=""))
    return article_url(settings, slug)


def _home_page_url(settings: NewsSettings) -> str:
    return settings.site_home_url or f"{settings.public_base_url}/v1/news/articles"


def _link_type(settings: NewsSettings) -> str:
    return "text/html" if settings.site_url is not None else "application/json"


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _published(article: Article) -> datetime:
    assert article.published_at is not None, "feeds carry published articles only"
    return article.published_at


def _item_id(article: Article) -> str:
    # The id never changes, even if an editor renames the slug one day.
    return f"urn:uuid:{article.id}"


def json_feed(settings: NewsSettings, articles: Sequence[Article]) -> dict[str, Any]:
    base = settings.public_base_url
    return {
        "version": JSON_FEED_VERSION,
        "title": settings.feed_title,
        "home_page_url": _home_page_url(settings),
        "feed_url": f"{base}/v1/news/feed.json",
        "description": "The latest news articles.",
        "language": "en",
        "authors": [{"name": settings.feed_author}],
        "items": [
            {
                "id": _item_id(article),
                "url": reader_url(settings, article.slug),
                "title": article.title,
                "content_html": article.body,
                "summary": article.summary,
                "date_published": _rfc3339(_published(article)),
                "date_modified": _rfc3339(article.updated_at),
                "tags": article.tags,
                "language": article.language,
            }
            for article in articles
        ],
    }


def atom_feed(settings: NewsSettings, articles: Sequence[Article]) -> bytes:
    """ElementTree escapes every text and attribute, so article HTML travels as text."""
    ET.register_namespace("", ATOM_NS)

    def sub(parent: ET.Element, name: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM_NS}}}{name}", attrs)
        if text is not None:
            element.text = text
        return element

    base = settings.public_base_url
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    sub(feed, "id", f"{base}/v1/news/feed.atom")
    sub(feed, "title", settings.feed_title)
    updated = max((article.updated_at for article in articles), default=EPOCH)
    sub(feed, "updated", _rfc3339(updated))
    sub(feed, "link", rel="self", type=ATOM_MEDIA_TYPE, href=f"{base}/v1/news/feed.atom")
    sub(feed, "link", rel="alternate", type=_link_type(settings), href=_home_page_url(settings))
    author = sub(feed, "author")
    sub(author, "name", settings.feed_author)
    for article in articles:
        entry = sub(feed, "entry")
        entry.set(XML_LANG, article.language)
        sub(entry, "id", _item_id(article))
        sub(entry, "title", article.title)
        sub(entry, "published", _rfc3339(_published(article)))
        sub(entry, "updated", _rfc3339(article.updated_at))
        sub(
            entry,
            "link",
            rel="alternate",
            type=_link_type(settings),
            href=reader_url(settings, article.slug),
        )
        sub(entry, "summary", article.summary)
        sub(entry, "content", article.body, type="html")
        for tag in article.tags:
            sub(entry, "category", term=tag)
    return bytes(ET.tostring(feed, encoding="utf-8", xml_declaration=True))
