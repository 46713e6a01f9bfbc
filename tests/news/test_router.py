"""Every news call of CONTRACT.md over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete

from services.common.clock import FrozenClock
from services.news import service
from services.news.commands import seed
from services.news.config import NewsSettings
from services.news.demo_content import DEMO_ARTICLES, OSLO_SLUG
from services.news.models import Article
from tests.conftest import TokenFactory
from tests.news.conftest import BASE_URL, Editor
from tests.strict_lists import assert_strict_list

ARTICLES = "/v1/news/articles"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2025, 1, day, hour, tzinfo=UTC)


@pytest.fixture
async def seeded(settings: NewsSettings) -> None:
    await seed(settings)


async def all_pages(
    client: httpx.AsyncClient, params: dict[str, Any] | None = None, **kwargs: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**(params or {}), **({"cursor": cursor} if cursor else {})}
        response = await client.get(ARTICLES, params=query, **kwargs)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["status"] == status
    return body


# --- listing ---------------------------------------------------------------------------------


async def test_empty_listing(client: httpx.AsyncClient) -> None:
    response = await client.get(ARTICLES)
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


@pytest.mark.usefixtures("seeded")
async def test_listing_is_newest_first_summaries_without_body(client: httpx.AsyncClient) -> None:
    response = await client.get(ARTICLES, params={"limit": 100})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=60"
    items = response.json()["items"]
    assert len(items) == len(DEMO_ARTICLES)
    published = [item["published_at"] for item in items]
    assert published == sorted(published, reverse=True)
    oslo = next(item for item in items if item["slug"] == OSLO_SLUG)
    assert "body" not in oslo
    assert oslo["published_at"] == "2007-04-26T17:00:00Z"
    assert oslo["url"] == f"{BASE_URL}{ARTICLES}/{OSLO_SLUG}"
    assert oslo["tags"][:4] == [
        "nato-russia-council",
        "missile-defence",
        "cfe-treaty",
        "arms-control",
    ]
    for item in items:
        assert RFC3339.match(item["published_at"])
        assert RFC3339.match(item["updated_at"])
        uuid.UUID(item["id"])


async def test_pagination_visits_every_article_once_while_others_are_inserted(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    originals = [
        (await editor.create(title=f"Article {day}", status="published", published_at=at(day)))[
            "id"
        ]
        for day in range(1, 12)
    ]
    # Two share a publication time: the id breaks the tie.
    originals.append(
        (await editor.create(title="Twin", status="published", published_at=at(5)))["id"]
    )
    seen: list[str] = []
    cursor = None
    inserted = 0
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(ARTICLES, params=params)).json()
        seen.extend(item["id"] for item in page["items"])
        # New articles land both before (newer) and inside (same instants) the unread part.
        await editor.create(title=f"Newer {inserted}", status="published", published_at=at(28))
        inserted += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "an article was served twice"
    assert all(seen.count(article_id) == 1 for article_id in originals)
    assert set(seen) == set(originals)
    assert inserted == 4


async def test_filters_by_tag_and_publication_time(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    await editor.create(title="One", tags=["Exercises"], status="published", published_at=at(1))
    await editor.create(title="Two", tags=["summits"], status="published", published_at=at(2))
    await editor.create(title="Three", tags=["exercises"], status="published", published_at=at(3))

    tagged = (await client.get(ARTICLES, params={"tag": "EXERCISES"})).json()["items"]
    assert [item["title"] for item in tagged] == ["Three", "One"]

    window = {"published_after": at(2).isoformat(), "published_before": at(3).isoformat()}
    assert [
        item["title"] for item in (await client.get(ARTICLES, params=window)).json()["items"]
    ] == ["Two"]
    after = (await client.get(ARTICLES, params={"published_after": "2025-01-02T12:00:00"})).json()
    assert [item["title"] for item in after["items"]] == ["Three", "Two"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WyJ4Il0"}, "cursor"),
        ({"published_after": "yesterday"}, "published_after"),
        # Valid RFC 3339, but before year 1 in UTC: a 422, not an OverflowError's 500.
        ({"published_before": "0001-01-01T00:00:00+01:00"}, "published_before"),
        ({"published_after": "0001-01-01T00:59:59+01:00"}, "published_after"),
        (
            {"published_after": "2025-02-01T00:00:00Z", "published_before": "2025-01-01T00:00:00Z"},
            "published_before",
        ),
        ({"q": "x" * 201}, "q"),
        # NUL is refused by the service itself, not left to PostgreSQL (which cannot store it).
        ({"q": "\x00"}, "q"),
        ({"q": "missile\x00defence"}, "q"),
        ({"tag": "\x00"}, "tag"),
    ],
)
async def test_bad_listing_parameters_are_422(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    body = assert_problem(await client.get(ARTICLES, params=params), 422, "validation_error")
    assert field in {error["field"].split(".")[-1] for error in body["errors"]}


async def test_a_search_cursor_is_refused_without_the_search(
    client: httpx.AsyncClient, editor: Editor
) -> None:
    for day in range(1, 4):
        await editor.create(title=f"Exercise {day}", status="published", published_at=at(day))
    page = (await client.get(ARTICLES, params={"q": "exercise", "limit": 1})).json()
    assert page["next_cursor"]
    response = await client.get(ARTICLES, params={"cursor": page["next_cursor"]})
    assert_problem(response, 422, "validation_error")


# --- search ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize("q", ["CFE", "missile defence", "Missile-Defence", "the CFE treaty"])
async def test_search_finds_the_oslo_article_first(client: httpx.AsyncClient, q: str) -> None:
    items = (await client.get(ARTICLES, params={"q": q})).json()["items"]
    assert items, f"nothing found for {q!r}"
    assert items[0]["slug"] == OSLO_SLUG


@pytest.mark.usefixtures("seeded")
async def test_search_matches_every_word_and_stems(client: httpx.AsyncClient) -> None:
    cfe = {
        item["slug"] for item in (await client.get(ARTICLES, params={"q": "CFE"})).json()["items"]
    }
    assert cfe == {OSLO_SLUG, "arms-control-conference-2008"}
    stemmed = (await client.get(ARTICLES, params={"q": "exercising submarines"})).json()["items"]
    assert [item["slug"] for item in stemmed] == ["dynamic-mongoose-submarine-exercise-2021"]
    summits = await search_slugs(client, "summit")
    assert set(summits) == {
        "bucharest-summit-opens-2008",
        "lisbon-summit-strategic-concept-2010",
        "wales-summit-readiness-action-plan-2014",
        "vilnius-summit-2023",
    }
    assert await search_slugs(client, "NATO-Russia") == [OSLO_SLUG]
    none = (await client.get(ARTICLES, params={"q": "submarine Oslo"})).json()
    assert none == {"items": [], "next_cursor": None}


@pytest.mark.usefixtures("seeded")
async def test_search_pages_follow_the_ranking(client: httpx.AsyncClient) -> None:
    whole = (await client.get(ARTICLES, params={"q": "allied", "limit": 100})).json()["items"]
    assert len(whole) > 5
    paged = await all_pages(client, {"q": "allied", "limit": 2})
    assert [item["id"] for item in paged] == [item["id"] for item in whole]


@pytest.mark.usefixtures("seeded")
async def test_search_combines_with_filters(client: httpx.AsyncClient) -> None:
    params = {"q": "summit", "tag": "summits", "published_after": "2014-01-01T00:00:00Z"}
    slugs = {item["slug"] for item in (await client.get(ARTICLES, params=params)).json()["items"]}
    assert slugs == {"wales-summit-readiness-action-plan-2014", "vilnius-summit-2023"}


HOSTILE_SEARCHES = [
    '"',
    '"missile',
    "missile AND",
    "OR",
    "missile OR defence",
    "NEAR(missile defence, 2)",
    "missile NOT defence",
    "missil*",
    "*",
    "title:missile",
    "^missile",
    "(((",
    "')--",
    "'; DROP TABLE articles;--",
    "1 OR 1=1",
    "a & b | !c <-> d",
    "-missile",
    "\\",
    "%_",
    "the of and",
    "   ",
    "ракетная оборона",
]


@pytest.mark.usefixtures("seeded")
async def test_search_syntax_in_user_text_is_just_words(client: httpx.AsyncClient) -> None:
    plain = (await client.get(ARTICLES, params={"q": "missile defence"})).json()
    assert plain["items"]
    for q in HOSTILE_SEARCHES:
        response = await client.get(ARTICLES, params={"q": q})
        assert response.status_code == 200, (q, response.text)
        assert isinstance(response.json()["items"], list)
    # Operators are words here (and stop words at that): both spellings find the same articles.
    for q in (
        "missile OR defence",
        "missile AND defence",
        "(missile) NOT defence*",
        '"missile defence',
    ):
        assert (await client.get(ARTICLES, params={"q": q})).json() == plain, q
    for q in ("*", "(((", "')--", "the of and", "   "):
        assert (await client.get(ARTICLES, params={"q": q})).json() == {
            "items": [],
            "next_cursor": None,
        }


@pytest.mark.usefixtures("seeded")
async def test_database_intact_after_hostile_search(client: httpx.AsyncClient) -> None:
    await client.get(ARTICLES, params={"q": "'; DELETE FROM articles;--"})
    items = (await client.get(ARTICLES, params={"limit": 100})).json()["items"]
    assert len(items) == len(DEMO_ARTICLES)


async def test_search_follows_edits_and_deletes(client: httpx.AsyncClient, editor: Editor) -> None:
    article = await editor.create(title="Harbour visit", status="published")
    slug = article["slug"]
    assert await search_slugs(client, "harbour") == [slug]
    await editor.http.patch(
        f"{ARTICLES}/{slug}", json={"title": "Frigate visit"}, headers=editor.headers
    )
    assert await search_slugs(client, "harbour") == []
    assert await search_slugs(client, "frigate") == [slug]
    await editor.http.delete(f"{ARTICLES}/{slug}", headers=editor.headers)
    assert await search_slugs(client, "frigate") == []


async def search_slugs(client: httpx.AsyncClient, q: str, **kwargs: Any) -> list[str]:
    response = await client.get(ARTICLES, params={"q": q}, **kwargs)
    assert response.status_code == 200
    return [item["slug"] for item in response.json()["items"]]


# --- detail ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("seeded")
async def test_article_detail(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{ARTICLES}/{OSLO_SLUG}")
    assert response.status_code == 200
    article = response.json()
    assert {
        "id",
        "slug",
        "title",
        "summary",
        "body",
        "published_at",
        "updated_at",
        "tags",
        "related_video_ids",
    } <= article.keys()
    assert article["slug"] == OSLO_SLUG
    assert article["published_at"] == "2007-04-26T17:00:00Z"
    assert article["location"] == "Oslo, Norway"
    assert "<h2>Profound concerns</h2>" in article["body"]
    assert "Istanbul commitments" in article["body"]
    assert response.headers["etag"].startswith('"')
    assert response.headers["cache-control"] == "public, max-age=60"
    assert parsedate_to_datetime(response.headers["last-modified"]) <= datetime.now(UTC)


async def test_unknown_article_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"{ARTICLES}/no-such-article"), 404, "not_found")


async def test_an_unknown_article_is_told_in_the_callers_language(
    client: httpx.AsyncClient,
) -> None:
    french = await client.get(f"{ARTICLES}/no-such-article", headers={"Accept-Language": "fr"})
    assert_problem(french, 404, "not_found")
    assert (french.json()["title"], french.json()["detail"]) == (
        "Introuvable",
        "Aucun article n’a le slug 'no-such-article'.",
    )
    english = await client.get(f"{ARTICLES}/no-such-article")
    assert english.json()["detail"] == "No article has the slug 'no-such-article'."


async def test_conditional_requests(
    client: httpx.AsyncClient, editor: Editor, clock: FrozenClock
) -> None:
    slug = (await editor.create(title="Conditional", status="published"))["slug"]
    first = await client.get(f"{ARTICLES}/{slug}")
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]

    cached = await client.get(f"{ARTICLES}/{slug}", headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached.headers["etag"] == etag
    assert cached.headers["cache-control"] == "public, max-age=60"
    both = await client.get(f"{ARTICLES}/{slug}", headers={"If-None-Match": f'"other", {etag}'})
    assert both.status_code == 304
    since = await client.get(f"{ARTICLES}/{slug}", headers={"If-Modified-Since": last_modified})
    assert since.status_code == 304
    # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
    stale_tag = await client.get(
        f"{ARTICLES}/{slug}",
        headers={"If-None-Match": '"stale"', "If-Modified-Since": last_modified},
    )
    assert stale_tag.status_code == 200
    garbage_date = await client.get(f"{ARTICLES}/{slug}", headers={"If-Modified-Since": "soon"})
    assert garbage_date.status_code == 200

    clock.advance(timedelta(minutes=5))
    await editor.http.patch(
        f"{ARTICLES}/{slug}", json={"summary": "Changed."}, headers=editor.headers
    )
    changed = await client.get(f"{ARTICLES}/{slug}", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.json()["summary"] == "Changed."
    modified = await client.get(f"{ARTICLES}/{slug}", headers={"If-Modified-Since": last_modified})
    assert modified.status_code == 200
    later = format_datetime(clock.now(), usegmt=True)
    assert modified.headers["last-modified"] == later


async def test_listing_and_feeds_answer_304(client: httpx.AsyncClient, editor: Editor) -> None:
    await editor.create(title="Cached", status="published")
    for path in (ARTICLES, "/v1/news/feed.json", "/v1/news/feed.atom"):
        first = await client.get(path)
        again = await client.get(path, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304, path


# --- drafts ----------------------------------------------------------------------------------


async def test_drafts_are_visible_to_editors_only(
    client: httpx.AsyncClient, editor: Editor, tokens: TokenFactory
) -> None:
    draft = await editor.create(title="Embargoed communique", summary="Secret until noon.")
    assert draft["status"] == "draft"
    assert draft["published_at"] is None
    slug = draft["slug"]
    reader = {"Authorization": f"Bearer {tokens.account()}"}

    for headers in ({}, reader):
        assert_problem(await client.get(f"{ARTICLES}/{slug}", headers=headers), 404, "not_found")
        assert (await client.get(ARTICLES, headers=headers)).json()["items"] == []
        assert await search_slugs(client, "embargoed", headers=headers) == []
    feed = (await client.get("/v1/news/feed.json")).json()
    assert feed["items"] == []

    as_editor = await client.get(f"{ARTICLES}/{slug}", headers=editor.headers)
    assert as_editor.status_code == 200
    assert as_editor.headers["cache-control"] == "private, no-store"
    listing = await client.get(ARTICLES, headers=editor.headers)
    assert [item["slug"] for item in listing.json()["items"]] == [slug]
    assert listing.headers["cache-control"] == "private, no-store"
    assert await search_slugs(client, "embargoed", headers=editor.headers) == [slug]

    published = await client.post(f"{ARTICLES}/{slug}/publish", headers=editor.headers)
    assert published.status_code == 200
    assert published.json()["status"] == "published"
    assert published.json()["published_at"] is not None
    public = await client.get(f"{ARTICLES}/{slug}")
    assert public.status_code == 200
    assert public.headers["cache-control"] == "public, max-age=60"
    assert await search_slugs(client, "embargoed") == [slug]


async def test_a_bad_token_on_a_public_read_is_ignored(client: httpx.AsyncClient) -> None:
    # Public reads answer as for an anonymous caller (tests/security/test_public_reads.py).
    response = await client.get(ARTICLES, headers={"Authorization": "Bearer forged"})
    assert response.status_code == 200, response.text
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert response.headers["cache-control"] == "no-store"


# --- feeds -----------------------------------------------------------------------------------


def assert_valid_json_feed(feed: dict[str, Any]) -> None:
    """The rules of https://jsonfeed.org/version/1.1 that a reader relies on."""
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(feed["title"], str)
    assert feed["title"]
    for key in ("home_page_url", "feed_url"):
        assert feed[key].startswith(("https://", "http://"))
    assert isinstance(feed["items"], list)
    ids = [item["id"] for item in feed["items"]]
    assert len(ids) == len(set(ids))
    for item in feed["items"]:
        assert isinstance(item["id"], str)
        assert item["id"]
        assert "url" in item or "content_html" in item or "content_text" in item
        assert "content_html" in item or "content_text" in item, "an item needs content"
        assert isinstance(item["content_html"], str)
        for key in ("date_published", "date_modified"):
            if key in item:
                assert RFC3339.match(item[key]), item[key]
        assert all(isinstance(tag, str) for tag in item.get("tags", []))
        assert item["url"].startswith(BASE_URL)


@pytest.mark.usefixtures("seeded")
async def test_json_feed(client: httpx.AsyncClient, settings: NewsSettings) -> None:
    response = await client.get("/v1/news/feed.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/feed+json"
    feed = response.json()
    assert_valid_json_feed(feed)
    assert feed["feed_url"] == f"{BASE_URL}/v1/news/feed.json"
    assert len(feed["items"]) == len(DEMO_ARTICLES)
    dates = [item["date_published"] for item in feed["items"]]
    assert dates == sorted(dates, reverse=True)
    oslo = next(item for item in feed["items"] if item["url"].endswith(OSLO_SLUG))
    assert oslo["date_published"] == "2007-04-26T17:00:00Z"
    assert "cfe-treaty" in oslo["tags"]
    assert "Profound concerns" in oslo["content_html"]


async def test_json_feed_is_limited_to_the_latest(
    client: httpx.AsyncClient, editor: Editor, settings: NewsSettings
) -> None:
    settings.feed_size = 2
    for day in range(1, 4):
        await editor.create(title=f"Day {day}", status="published", published_at=at(day))
    feed = (await client.get("/v1/news/feed.json")).json()
    assert [item["title"] for item in feed["items"]] == ["Day 3", "Day 2"]


async def test_atom_feed_parses_and_escapes(client: httpx.AsyncClient, editor: Editor) -> None:
    title = 'Allies & partners <meet> "today"'
    body = "<p>Fish &amp; chips <b>served</b></p>"
    created = await editor.create(title=title, body=body, tags=["food"], status="published")
    response = await client.get("/v1/news/feed.atom")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    ns = {"atom": "http://www.w3.org/2005/Atom"}
    root = ET.fromstring(response.content)
    assert root.tag == "{http://www.w3.org/2005/Atom}feed"
    for name in ("id", "title", "updated"):
        assert root.find(f"atom:{name}", ns) is not None
    self_link = root.find("atom:link[@rel='self']", ns)
    assert self_link is not None
    assert self_link.get("href") == f"{BASE_URL}/v1/news/feed.atom"
    entries = root.findall("atom:entry", ns)
    assert len(entries) == 1
    entry = entries[0]
    assert entry.findtext("atom:title", namespaces=ns) == title
    assert entry.findtext("atom:id", namespaces=ns) == f"urn:uuid:{created['id']}"
    content = entry.find("atom:content", ns)
    assert content is not None
    assert entry.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    assert content.get("type") == "html"
    assert content.text == created["body"]
    category = entry.find("atom:category", ns)
    assert category is not None
    assert category.get("term") == "food"
    link = entry.find("atom:link", ns)
    assert link is not None
    assert link.get("href") == f"{BASE_URL}{ARTICLES}/{created['slug']}"


async def test_empty_feeds_are_valid(client: httpx.AsyncClient) -> None:
    assert_valid_json_feed((await client.get("/v1/news/feed.json")).json())
    root = ET.fromstring((await client.get("/v1/news/feed.atom")).content)
    assert root.findtext("{http://www.w3.org/2005/Atom}updated") == "1970-01-01T00:00:00Z"


# --- editor API ------------------------------------------------------------------------------


async def test_editor_calls_need_a_token(client: httpx.AsyncClient, editor: Editor) -> None:
    slug = (await editor.create())["slug"]
    calls = [
        ("POST", ARTICLES, {"title": "t", "summary": "s", "body": "b"}),
        ("PATCH", f"{ARTICLES}/{slug}", {"title": "t"}),
        ("DELETE", f"{ARTICLES}/{slug}", None),
        ("POST", f"{ARTICLES}/{slug}/publish", None),
    ]
    for method, path, body in calls:
        response = await client.request(method, path, json=body)
        assert_problem(response, 401, "invalid_token")
        assert response.headers["www-authenticate"].startswith("Bearer")
        forged = await client.request(
            method, path, json=body, headers={"Authorization": "Bearer x.y.z"}
        )
        assert_problem(forged, 401, "invalid_token")


async def test_editor_calls_need_the_editor_role(
    client: httpx.AsyncClient, editor: Editor, tokens: TokenFactory
) -> None:
    slug = (await editor.create())["slug"]
    for token in (tokens.account(), tokens.account(roles=("admin",)), tokens.client()):
        headers = {"Authorization": f"Bearer {token}"}
        for method, path, body in [
            ("POST", ARTICLES, {"title": "t", "summary": "s", "body": "b"}),
            ("PATCH", f"{ARTICLES}/{slug}", {"title": "t"}),
            ("DELETE", f"{ARTICLES}/{slug}", None),
            ("POST", f"{ARTICLES}/{slug}/publish", None),
            # No probing for slugs without the role either.
            ("DELETE", f"{ARTICLES}/no-such-article", None),
        ]:
            response = await client.request(method, path, json=body, headers=headers)
            assert_problem(response, 403, "insufficient_scope")
    assert (await client.get(f"{ARTICLES}/{slug}", headers=editor.headers)).json()["title"] == (
        "Allies meet in Brussels"
    )


async def test_create_article(
    client: httpx.AsyncClient, editor: Editor, clock: FrozenClock
) -> None:
    video = str(uuid.uuid4())
    response = await client.post(
        ARTICLES,
        headers=editor.headers,
        json={
            "title": "  Défense aérienne: Allies train together!  ",
            "summary": "Air defence units trained.",
            "body": "<p>Units <em>trained</em>.</p>",
            "tags": ["Air Defence", "exercises", "EXERCISES"],
            "location": "Brussels, Belgium",
            "language": "fr",
            "related_video_ids": [video],
        },
    )
    assert response.status_code == 201
    article = response.json()
    assert article["slug"] == "defense-aerienne-allies-train-together"
    assert response.headers["location"] == f"{BASE_URL}{ARTICLES}/{article['slug']}"
    assert article["title"] == "Défense aérienne: Allies train together!"
    assert article["tags"] == ["air-defence", "exercises"]
    assert article["related_video_ids"] == [video]
    assert article["language"] == "fr"
    assert article["status"] == "draft"
    assert article["created_at"] == clock.now().isoformat().replace("+00:00", "Z")
    stored = await client.get(f"{ARTICLES}/{article['slug']}", headers=editor.headers)
    assert stored.json() == article


async def test_slugs_are_unique(editor: Editor) -> None:
    slugs = [(await editor.create(title="Ministers meet!"))["slug"] for _ in range(3)]
    assert slugs == ["ministers-meet", "ministers-meet-2", "ministers-meet-3"]
    assert (await editor.create(title="¿¿??"))["slug"] == "article"


async def test_publishing_a_new_article_directly(editor: Editor, clock: FrozenClock) -> None:
    article = await editor.create(status="published")
    assert article["published_at"] == clock.now().isoformat().replace("+00:00", "Z")


async def test_script_is_gone_after_a_write(client: httpx.AsyncClient, editor: Editor) -> None:
    hostile = (
        '<p onclick="steal()">Hello<script>alert("x")</script></p>'
        '<a href="javascript:alert(1)">link</a><img src="x.png" onerror="alert(1)">'
        "<style>body{display:none}</style><iframe src='https://evil.example'></iframe>"
    )
    created = await editor.create(body=hostile, status="published")
    patched = await client.patch(
        f"{ARTICLES}/{created['slug']}",
        json={"body": hostile + "<p>more</p><SCRIPT>x()</SCRIPT>"},
        headers=editor.headers,
    )
    for body in (created["body"], patched.json()["body"]):
        lowered = body.lower()
        for forbidden in (
            "<script",
            "alert",
            "onclick",
            "onerror",
            "javascript:",
            "<style",
            "<iframe",
        ):
            assert forbidden not in lowered, body
        assert "<p>Hello</p>" in body
    served = (await client.get(f"{ARTICLES}/{created['slug']}")).json()["body"]
    assert "<script" not in served.lower()
    assert "<p>more</p>" in served
    feed = (await client.get("/v1/news/feed.json")).json()
    assert "<script" not in feed["items"][0]["content_html"].lower()


async def test_patch_changes_only_what_is_sent(
    client: httpx.AsyncClient, editor: Editor, clock: FrozenClock
) -> None:
    article = await editor.create(title="Original", tags=["a", "b"], location="Oslo")
    clock.advance(60)
    response = await client.patch(
        f"{ARTICLES}/{article['slug']}",
        json={"title": "Renamed", "tags": ["b", "C"], "location": None},
        headers=editor.headers,
    )
    assert response.status_code == 200
    patched = response.json()
    assert patched["slug"] == article["slug"]
    assert patched["title"] == "Renamed"
    assert patched["tags"] == ["b", "c"]
    assert patched["location"] is None
    assert patched["summary"] == article["summary"]
    assert patched["updated_at"] > article["updated_at"]
    clock.advance(60)
    unchanged = await client.patch(
        f"{ARTICLES}/{article['slug']}", json={"title": "Renamed"}, headers=editor.headers
    )
    assert unchanged.json()["updated_at"] == patched["updated_at"]


async def test_patch_refuses_bad_input(client: httpx.AsyncClient, editor: Editor) -> None:
    slug = (await editor.create(status="published"))["slug"]
    for body in (
        {"title": None},
        {"title": ""},
        {"title": "x" * 301},
        {"tags": ["no spaces allowed?"]},
        {"tags": [f"t{i}" for i in range(21)]},
        {"status": "archived"},
        {"published_at": None},
        {"published_at": "2025-01-01T00:00:00"},
        {"slug": "new-slug"},
        {"related_video_ids": ["not-a-uuid"]},
        {"language": "english!"},
    ):
        response = await client.patch(f"{ARTICLES}/{slug}", json=body, headers=editor.headers)
        assert_problem(response, 422, "validation_error")
    assert_problem(
        await client.patch(f"{ARTICLES}/missing", json={"title": "x"}, headers=editor.headers),
        404,
        "not_found",
    )


async def test_create_refuses_bad_input(client: httpx.AsyncClient, editor: Editor) -> None:
    for body in (
        {},
        {"title": "t", "summary": "s"},
        {"title": "t" * 301, "summary": "s", "body": "b"},
        {"title": "t", "summary": "s" * 2001, "body": "b"},
        {"title": "t", "summary": "s", "body": "b", "tags": ["-bad-"]},
        {"title": "t", "summary": "s", "body": "b", "unknown": 1},
    ):
        response = await client.post(ARTICLES, json=body, headers=editor.headers)
        assert_problem(response, 422, "validation_error")
    malformed = await client.post(
        ARTICLES,
        content=b"{not json",
        headers={**editor.headers, "Content-Type": "application/json"},
    )
    assert_problem(malformed, 400, "json_invalid")


async def test_withdrawing_and_deleting(client: httpx.AsyncClient, editor: Editor) -> None:
    slug = (await editor.create(status="published"))["slug"]
    withdrawn = await client.patch(
        f"{ARTICLES}/{slug}", json={"status": "draft"}, headers=editor.headers
    )
    assert withdrawn.json()["status"] == "draft"
    assert (await client.get(f"{ARTICLES}/{slug}")).status_code == 404
    again = await client.post(f"{ARTICLES}/{slug}/publish", headers=editor.headers)
    assert again.json()["published_at"] == withdrawn.json()["published_at"]
    twice = await client.post(f"{ARTICLES}/{slug}/publish", headers=editor.headers)
    assert twice.json() == again.json()

    deleted = await client.delete(f"{ARTICLES}/{slug}", headers=editor.headers)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_problem(await client.get(f"{ARTICLES}/{slug}", headers=editor.headers), 404, "not_found")
    assert_problem(
        await client.delete(f"{ARTICLES}/{slug}", headers=editor.headers), 404, "not_found"
    )
    assert_problem(
        await client.post(f"{ARTICLES}/{slug}/publish", headers=editor.headers), 404, "not_found"
    )


async def test_health(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz", "/v1/news/healthz", "/v1/news/readyz"):
        assert (await client.get(path)).status_code == 200


async def test_openapi_documents_the_routes(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/v1/news/openapi.json")).json()
    paths = schema["paths"]
    assert {"get", "post"} <= paths["/v1/news/articles"].keys()
    assert {"get", "patch", "delete"} <= paths["/v1/news/articles/{slug}"].keys()
    assert "post" in paths["/v1/news/articles/{slug}/publish"]
    assert "/v1/news/feed.json" in paths
    assert "/v1/news/feed.atom" in paths
    assert "403" in paths["/v1/news/articles"]["post"]["responses"]


async def test_the_article_list_refuses_unknown_and_repeated_parameters(
    client: httpx.AsyncClient,
) -> None:
    await assert_strict_list(client, "/v1/news/articles")


async def test_an_article_deleted_while_an_edit_is_under_way_answers_404(
    app: FastAPI, client: httpx.AsyncClient, editor: Editor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two editors: one deletes the article after the other's PATCH has read it. The PATCH finds
    # nothing left to change: 404, as if it had come a moment later, and nothing is written.
    article = await editor.create(title="Harbour visit", status="published")
    edit = service.update_article

    async def deleted_meanwhile(session: Any, found: Any, data: Any, *, now: datetime) -> Any:
        async with app.state.database.sessionmaker() as other:
            await other.execute(delete(Article).where(Article.id == found.id))
            await other.commit()
        return await edit(session, found, data, now=now)

    monkeypatch.setattr(service, "update_article", deleted_meanwhile)
    response = await client.patch(
        f"{ARTICLES}/{article['slug']}",
        json={"title": "Frigate visit"},
        headers={**editor.headers, "Accept-Language": "fr"},
    )
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "not_found"
    assert response.json()["detail"] == "Ce que cette requête modifie a été supprimé entre-temps."
    monkeypatch.undo()
    assert (await client.get(f"{ARTICLES}/{article['slug']}")).status_code == 404
