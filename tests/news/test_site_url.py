"""NEWS_SITE_URL: the feeds link readers to the website's article pages, not the API's JSON."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from services.news.config import NewsSettings
from tests.news.conftest import BASE_URL, Editor

SITE = "https://www.nato.int/news/{slug}"
ATOM = {"atom": "http://www.w3.org/2005/Atom"}


async def test_the_feeds_link_to_the_site_when_it_is_set(
    client: httpx.AsyncClient, editor: Editor, settings: NewsSettings
) -> None:
    settings.site_url = SITE
    slug = (await editor.create(title="On the site", status="published"))["slug"]

    feed = (await client.get("/v1/news/feed.json")).json()
    assert feed["home_page_url"] == "https://www.nato.int/news/"
    assert [item["url"] for item in feed["items"]] == [f"https://www.nato.int/news/{slug}"]
    assert feed["feed_url"] == f"{BASE_URL}/v1/news/feed.json"

    root = ET.fromstring((await client.get("/v1/news/feed.atom")).content)
    alternate = root.find("atom:link[@rel='alternate']", ATOM)
    assert alternate is not None
    assert alternate.get("href") == "https://www.nato.int/news/"
    assert alternate.get("type") == "text/html"
    link = root.find("atom:entry/atom:link", ATOM)
    assert link is not None
    assert link.get("href") == f"https://www.nato.int/news/{slug}"
    assert link.get("type") == "text/html"
    # The API's own answers still point at the API.
    article = (await client.get(f"/v1/news/articles/{slug}")).json()
    assert article["url"] == f"{BASE_URL}/v1/news/articles/{slug}"


async def test_without_it_the_feeds_link_to_the_api(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    slug = (await editor.create(status="published"))["slug"]
    feed = (await client.get("/v1/news/feed.json")).json()
    assert feed["home_page_url"] == f"{BASE_URL}/v1/news/articles"
    assert feed["items"][0]["url"] == f"{BASE_URL}/v1/news/articles/{slug}"


def test_the_setting_is_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWS_SITE_URL", "https://www.nato.int/cps/en/natohq/news_{slug}.htm")
    settings = NewsSettings(NATOMEDIA_DATA_DIR=tmp_path, NATOMEDIA_ENV="test")
    assert settings.site_home_url == "https://www.nato.int/cps/en/natohq/"
    monkeypatch.setenv("NEWS_SITE_URL", "https://www.nato.int/news/")
    with pytest.raises(ValidationError):
        NewsSettings(NATOMEDIA_DATA_DIR=tmp_path, NATOMEDIA_ENV="test")
