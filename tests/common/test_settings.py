"""Settings: comma lists read one way everywhere; production refuses weak or missing essentials."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.auth.config import AuthSettings
from services.common.settings import ServiceSettings
from services.gateway.cli import main
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


PRODUCTION_DATABASES = {
    "AUTH_DATABASE_URL": "postgresql+asyncpg://auth@db/auth",
    "MEDIA_DATABASE_URL": "postgresql+asyncpg://media@db/media",
    "NEWS_DATABASE_URL": "postgresql+asyncpg://news@db/news",
}
GOOD_SECRET = "k" * 32


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NATOMEDIA_ENV", "production")
    monkeypatch.setenv("NATOMEDIA_DATA_DIR", str(tmp_path))
    for variable, url in PRODUCTION_DATABASES.items():
        monkeypatch.setenv(variable, url)
    monkeypatch.setenv("AUTH_CODE_HASH_KEY", GOOD_SECRET)
    monkeypatch.setenv("MEDIA_SIGNING_SECRET", GOOD_SECRET)


@pytest.mark.usefixtures("production")
def test_production_starts_with_every_secret_and_database() -> None:
    assert AuthSettings().code_hash_key is not None
    assert MediaSettings().signing_secret is not None
    assert NewsSettings().database_url == PRODUCTION_DATABASES["NEWS_DATABASE_URL"]


@pytest.mark.usefixtures("production")
@pytest.mark.parametrize(
    ("cls", "variable"),
    [(AuthSettings, "AUTH_CODE_HASH_KEY"), (MediaSettings, "MEDIA_SIGNING_SECRET")],
)
@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        (None, "is not set"),
        ("", "is shorter than 32 bytes"),
        ("k" * 31, "is shorter than 32 bytes"),
    ],
)
def test_production_refuses_missing_empty_and_short_secrets(
    monkeypatch: pytest.MonkeyPatch,
    cls: type[ServiceSettings],
    variable: str,
    value: str | None,
    complaint: str,
) -> None:
    if value is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=f"{variable} {complaint}"):
        cls()


@pytest.mark.usefixtures("production")
@pytest.mark.parametrize(
    ("cls", "variable"),
    [
        (AuthSettings, "AUTH_DATABASE_URL"),
        (MediaSettings, "MEDIA_DATABASE_URL"),
        (NewsSettings, "NEWS_DATABASE_URL"),
    ],
)
@pytest.mark.parametrize("value", [None, ""])
def test_production_refuses_to_fall_back_to_sqlite(
    monkeypatch: pytest.MonkeyPatch, cls: type[ServiceSettings], variable: str, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=f"{variable} is not set"):
        cls()


@pytest.mark.usefixtures("production")
def test_the_cli_says_what_is_wrong_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUTH_CODE_HASH_KEY", "too-short")
    monkeypatch.delenv("AUTH_DATABASE_URL")

    assert main(["migrate", "auth"]) == 2

    error = capsys.readouterr().err
    assert error == (
        "natomedia: AuthSettings: production refuses to start: "
        "AUTH_CODE_HASH_KEY is shorter than 32 bytes; AUTH_DATABASE_URL is not set\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("factory", "url_variable"),
    [
        ("services.auth.app", "AUTH_DATABASE_URL"),
        ("services.media.app", "MEDIA_DATABASE_URL"),
        ("services.news.app", "NEWS_DATABASE_URL"),
    ],
)
def test_each_service_keeps_the_pool_size_it_is_given(
    factory: str, url_variable: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Replicas times the pool must fit under PostgreSQL's max_connections: operators size it.
    monkeypatch.setenv("NATOMEDIA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(url_variable, "postgresql+asyncpg://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("NATOMEDIA_DATABASE_POOL_SIZE", "3")
    app = importlib.import_module(factory).create_app()

    assert app.state.database.engine.pool.size() == 3


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_a_pool_size_below_one_or_not_a_number_is_refused(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NATOMEDIA_DATABASE_POOL_SIZE", value)
    with pytest.raises(ValidationError, match="NATOMEDIA_DATABASE_POOL_SIZE"):
        ServiceSettings()
