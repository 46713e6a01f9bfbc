"""What user search text turns into before it reaches either engine."""

from __future__ import annotations

import pytest

from services.news.search import MAX_TERMS, quoted, search_terms


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("CFE", ["cfe"]),
        ("Missile Defence", ["missile", "defence"]),
        ("NATO-Russia Council", ["nato", "russia", "council"]),
        ('"missile" AND defence OR NEAR(x y)', ["missile", "defence", "near", "x", "y"]),
        ("title:missile*", ["title", "missile"]),
        ("'; DROP TABLE articles;--", ["drop", "table", "articles"]),
        ("the of and or not", []),
        ("snake_case", ["snake", "case"]),
        ("Ракетная оборона", ["ракетная", "оборона"]),
        ("cfe CFE Cfe", ["cfe"]),
        ("", []),
    ],
)
def test_search_terms_are_plain_words(text: str, terms: list[str]) -> None:
    assert search_terms(text) == terms


def test_search_terms_are_bounded() -> None:
    assert len(search_terms(" ".join(f"word{i}" for i in range(50)))) == MAX_TERMS
    assert search_terms("a" * 65 + " ok") == ["ok"]


def test_quoted_terms() -> None:
    assert quoted(["missile", "defence"]) == '"missile" "defence"'
