"""The French catalogue is complete: every marked text translated, placeholders kept, compiled.

Fails when a text marked in the code (`_()`, `N_()`) is missing from the catalogue (run
`make messages` and translate it), when a translation is empty or fuzzy, when a translation
drops or invents a placeholder, or when the committed .mo is older than the .po.
"""

from __future__ import annotations

import fnmatch
import gettext
import re
import tomllib
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from services.common import i18n

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED = [language for language in i18n.LANGUAGES if language != i18n.DEFAULT_LANGUAGE]
PLACEHOLDER = re.compile(r"\{[^{}]*\}|%\([a-z_]+\)[sd]|%[sd]")


def catalogue(language: str) -> Catalog:
    path = i18n.LOCALE_DIR / language / "LC_MESSAGES" / f"{i18n.DOMAIN}.po"
    with path.open("rb") as file:
        return read_po(file, locale=language)


def marked_in_code() -> set[str]:
    found = extract_from_dir(
        str(ROOT / "services"), method_map=[("**.py", "python")], keywords={"_": None, "N_": None}
    )
    return {message for _, _, message, _, _ in found if isinstance(message, str)}


def placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


def test_french_is_a_supported_language() -> None:
    assert TRANSLATED == ["fr"]


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_marked_text_has_a_translation(language: str) -> None:
    marked = marked_in_code()
    assert len(marked) > 50  # the extraction found the texts at all
    entries = {message.id: message for message in catalogue(language) if message.id}
    assert sorted(marked - entries.keys()) == [], "run `make messages` and translate these"
    untranslated = sorted(
        message_id for message_id, message in entries.items() if not message.string
    )
    assert untranslated == []
    fuzzy = sorted(message_id for message_id, message in entries.items() if message.fuzzy)
    assert fuzzy == [], "a fuzzy translation is not used: check it and drop the flag"
    # Texts no code marks any more only make the catalogue longer.
    assert sorted(entries.keys() - marked) == []


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_the_placeholders(language: str) -> None:
    differ = {
        message.id: message.string
        for message in catalogue(language)
        if message.id and placeholders(str(message.id)) != placeholders(str(message.string))
    }
    assert differ == {}


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_compiled_catalogue_matches_the_po(language: str) -> None:
    mo = i18n.LOCALE_DIR / language / "LC_MESSAGES" / f"{i18n.DOMAIN}.mo"
    with mo.open("rb") as file:
        compiled = gettext.GNUTranslations(file)
    for message in catalogue(language):
        if message.id:
            assert compiled.gettext(str(message.id)) == message.string, "run `make messages`"


def test_the_placeholder_check_sees_a_dropped_placeholder() -> None:
    assert placeholders("valid for {minutes} minutes, until {until}") != placeholders(
        "valable {minutes} minutes"
    )
    assert placeholders("{brand}: code") == placeholders("{brand} : code")


def test_the_catalogues_ship_with_the_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["services.common"]
    for path in i18n.LOCALE_DIR.rglob("*.mo"):
        relative = path.relative_to(i18n.LOCALE_DIR.parent).as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative


def test_an_unknown_language_reads_english() -> None:
    assert i18n.translate("The code is wrong or no longer valid.", "de") == (
        "The code is wrong or no longer valid."
    )
    assert i18n.translate("The code is wrong or no longer valid.", "fr") == (
        "Le code est erroné ou n’est plus valable."
    )
