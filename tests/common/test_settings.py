"""Every comma-list setting reads `a,b`, one item, spaces and an empty value the same way."""

from __future__ import annotations

import pytest

from services.auth.config import AuthSettings
from services.common.settings import ServiceSettings
from services.media.config import MediaSettings
from services.news.config import NewsSettings

COMMA_SETTINGS = [
    (AuthSettings, "AUTH_PREVIOUS_PUBLIC_KEY_FILES", "previous_public_key_files"),
    (AuthSettings, "AUTH_MAIL_PER_ADDRESS_LIMITS", "mail_per_address_limits"),
    *(
        (cls, variable, field)
        for cls in (ServiceSettings, AuthSettings, MediaSettings, NewsSettings)
        for variable, field in (
            ("CORS_ORIGINS", "cors_origins"),
            ("NATOMEDIA_TRUSTED_PROXIES", "trusted_proxies"),
        )
    ),
]


@pytest.mark.parametrize(("cls", "variable", "field"), COMMA_SETTINGS)
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("first,second", ["first", "second"]),
        ("first", ["first"]),
        (" first , second ,", ["first", "second"]),
        ("", []),
    ],
)
def test_comma_lists_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    cls: type[ServiceSettings],
    variable: str,
    field: str,
    value: str,
    expected: list[str],
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(cls(), field) == expected


def test_comma_lists_from_python_are_taken_as_they_are() -> None:
    settings = AuthSettings(
        previous_public_key_files=["a.pem", " b.pem "], NATOMEDIA_TRUSTED_PROXIES=["10.0.0.1"]
    )
    assert settings.previous_public_key_files == ["a.pem", "b.pem"]
    assert settings.trusted_proxies == ["10.0.0.1"]
