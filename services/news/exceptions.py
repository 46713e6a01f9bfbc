"""The news service's errors, each with its stable problem+json `code`."""

from __future__ import annotations

from services.common.i18n import N_
from services.common.problems import FieldError, InsufficientScope, NotFound, ProblemError


class ArticleNotFound(NotFound):
    def __init__(self, slug: str) -> None:
        super().__init__(N_("No article has the slug {slug}."), values={"slug": repr(slug)})


class EditorRequired(InsufficientScope):
    def __init__(self) -> None:
        super().__init__(
            N_("This call needs an access token with the editor role."),
            headers={"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="editor"'},
        )


class InvalidArticle(ProblemError):
    status = 422
    code = "validation_error"

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(
            N_("The request is not valid."),
            errors=[FieldError(field=field, code=code, message=message)],
        )
