"""The one place news's domain errors become problem+json, each with its stable `code`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.common.i18n import N_
from services.common.problems import FieldError, problem_response
from services.news.exceptions import (
    ArticleNotFound,
    EditorRequired,
    InvalidArticle,
    NewsError,
    SlugTaken,
)


@dataclass(frozen=True)
class _Problem:
    status: int
    code: str
    detail: str


PROBLEMS: dict[type[NewsError], _Problem] = {
    ArticleNotFound: _Problem(404, "not_found", N_("No article has the slug {slug}.")),
    EditorRequired: _Problem(
        403, "insufficient_scope", N_("This call needs an access token with the editor role.")
    ),
    InvalidArticle: _Problem(422, "validation_error", N_("The request is not valid.")),
    SlugTaken: _Problem(
        409,
        "conflict",
        N_("Another article with this slug was created at the same moment; try again."),
    ),
}


def error_response(exc: NewsError) -> JSONResponse:
    problem = PROBLEMS[type(exc)]
    headers: dict[str, str] = {}
    errors = None
    values: dict[str, Any] | None = None
    if isinstance(exc, ArticleNotFound):
        values = {"slug": repr(exc.slug)}
    if isinstance(exc, EditorRequired):
        headers["WWW-Authenticate"] = 'Bearer error="insufficient_scope", scope="editor"'
    if isinstance(exc, InvalidArticle):
        errors = [FieldError(field=exc.field, code=exc.code, message=exc.message)]
    return problem_response(
        problem.status, problem.code, problem.detail, headers=headers, errors=errors, values=values
    )


def install_error_handlers(app: FastAPI) -> None:
    async def handle(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, NewsError)
        return error_response(exc)

    app.add_exception_handler(NewsError, handle)
