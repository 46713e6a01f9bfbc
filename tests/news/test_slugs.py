from __future__ import annotations

import pytest

from services.news.slugs import slugify


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("NATO-Russia Council meets in Oslo", "nato-russia-council-meets-in-oslo"),
        ("  Défense: l'Alliance à Bruxelles!  ", "defense-l-alliance-a-bruxelles"),
        ("2024 — Summit (Washington)", "2024-summit-washington"),
        ("???", "article"),
        ("Ракета", "article"),
    ],
)
def test_slugify(title: str, slug: str) -> None:
    assert slugify(title) == slug


def test_slugs_are_bounded_without_a_trailing_hyphen() -> None:
    slug = slugify("word " * 60)
    assert len(slug) <= 100
    assert not slug.endswith("-")
