"""English and French: which language a reply or a mail is in, and its texts from the catalogues.

Texts are written in English in the code, marked with `_()` or `N_()` so Babel extracts them
(`make messages`); the French catalogue is `locale/fr/LC_MESSAGES/natomedia.po`, compiled to the
committed `.mo` that the standard `gettext` module reads at run time. English needs no
catalogue: the English text is the message's key.

Problem details follow the request's `Accept-Language` (`LanguageMiddleware` records it for the
request); mail follows the account's language.
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Callable
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Final, Literal

from starlette.types import ASGIApp, Receive, Scope, Send

Language = Literal["en", "fr"]
LANGUAGES: Final[tuple[str, ...]] = ("en", "fr")
DEFAULT_LANGUAGE: Final = "en"
DOMAIN: Final = "natomedia"
LOCALE_DIR: Final = Path(__file__).resolve().parent / "locale"

# The reply's language for the request being handled; None until a header or body says one.
_reply_language: ContextVar[str | None] = ContextVar("natomedia_reply_language", default=None)


def N_(text: str) -> str:
    """Marks `text` for the catalogue where it is defined; it is translated where it is shown."""
    return text


@cache
def translations(language: str) -> gettext.NullTranslations:
    if language not in LANGUAGES or language == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    # No fallback: a missing compiled catalogue is a packaging bug, not English for French users.
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[language])


def translator(language: str) -> Callable[[str], str]:
    return translations(language).gettext


def translate(text: str, language: str | None = None) -> str:
    return translations(language or reply_language()).gettext(text)


_RANGE = re.compile(r"^\s*([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)\s*(?:;\s*q\s*=\s*([0-9.]+))?")


def negotiate(accept_language: str | None) -> str | None:
    """The supported language `accept_language` prefers most (q-values honoured), or None."""
    if not accept_language:
        return None
    best: tuple[float, int, str] | None = None
    for position, item in enumerate(accept_language[:1000].split(",")):
        match = _RANGE.match(item)
        if match is None:
            continue
        tag, quality = match.group(1).lower(), match.group(2)
        try:
            q = float(quality) if quality is not None else 1.0
        except ValueError:
            continue
        if not 0 < q <= 1:
            continue
        primary = tag.split("-")[0]
        language = DEFAULT_LANGUAGE if primary == "*" else primary
        if language not in LANGUAGES:
            continue
        # Higher quality wins; among equals, the one listed first.
        candidate = (q, -position, language)
        if best is None or candidate > best:
            best = candidate
    return best[2] if best is not None else None


def reply_language() -> str:
    return _reply_language.get() or DEFAULT_LANGUAGE


def requested_language() -> str | None:
    """The language the request being handled asked for, if it asked for one."""
    return _reply_language.get()


def prefer_language(language: str) -> None:
    """Reply in `language` unless the request's `Accept-Language` already chose one."""
    if _reply_language.get() is None and language in LANGUAGES:
        _reply_language.set(language)


class LanguageMiddleware:
    """Records the language `Accept-Language` asks for, for the problems this request answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = next((v for k, v in scope.get("headers", ()) if k == b"accept-language"), None)
            chosen = negotiate(header.decode("latin-1")) if header is not None else None
            token = _reply_language.set(chosen)
            try:
                await self.app(scope, receive, send)
            finally:
                _reply_language.reset(token)
            return
        await self.app(scope, receive, send)
