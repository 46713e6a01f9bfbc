"""What a `/docs` page loads, for the tests that check it works offline."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx

# Attributes and the Swagger UI call's `url:` that make a browser fetch something.
_REFERENCES = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|\burl:\s*["']([^"']+)["']""")


def references(page: str) -> list[str]:
    return [first or second for first, second in _REFERENCES.findall(page)]


async def assert_docs_work_offline(client: httpx.AsyncClient, docs_path: str) -> list[str]:
    """Every reference of the page is ours (no scheme, no host) and answers 200."""
    page = await client.get(docs_path)
    assert page.status_code == 200, page.text
    found = references(page.text)
    assert any(link.endswith("swagger-ui-bundle.js") for link in found), found
    assert any(link.endswith("swagger-ui.css") for link in found), found
    for link in found:
        parts = urlsplit(link)
        assert not parts.scheme, f"{docs_path} loads {link} from elsewhere"
        assert not parts.netloc, f"{docs_path} loads {link} from elsewhere"
        assert link.startswith("/"), link
        answer = await client.get(link)
        assert answer.status_code == 200, (link, answer.status_code)
        assert answer.content, link
    # No other origin anywhere in the page, not even in the script's options.
    assert "http://" not in page.text, page.text
    assert "https://" not in page.text, page.text
    return found
