"""Article HTML made safe to serve: nh3 (ammonia) keeps formatting and drops anything active."""

from __future__ import annotations

import html
import re

import nh3

# Block elements end a line of text; without this, "<p>a</p><p>b</p>" would read "ab".
_BLOCK_END = re.compile(r"</(p|div|h[1-6]|li|blockquote|pre|tr|table|ul|ol)>|<br\s*/?>", re.I)


def sanitise_html(raw: str) -> str:
    """Scripts, styles, event handlers and `javascript:` URLs removed; links get rel=noopener."""
    return str(nh3.clean(raw)).strip()


def plain_text(safe_html: str) -> str:
    """The readable text of sanitised HTML, for search and for feed readers."""
    spaced = _BLOCK_END.sub(lambda match: match.group(0) + "\n", safe_html)
    text = html.unescape(str(nh3.clean(spaced, tags=set())))
    return "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())
