"""The news service's errors. They know nothing of HTTP: `error_handlers` maps each to its
problem+json status and stable `code`."""

from __future__ import annotations


class NewsError(Exception):
    """Base of every news domain error a request can meet."""


class ArticleNotFound(NewsError):
    def __init__(self, slug: str) -> None:
        super().__init__(slug)
        self.slug = slug


class EditorRequired(NewsError):
    """The token is valid but lacks the editor role."""


class InvalidArticle(NewsError):
    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.code = code
        self.message = message


class SlugTaken(NewsError):
    """Another editor took the same slug between our check and our insert."""
