"""SQLite databases, saved mail, dev keys and secrets are created readable by their owner only.

Under the common umask 022 a plain create is world-readable; each file must be 0600 from the
call that creates it, so the tests also stop any later chmod from narrowing it.
"""

from __future__ import annotations

import os
import smtplib
import stat
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import text

from services.auth.config import AuthSettings
from services.auth.keys import load_signing_key
from services.common.database import Database
from services.common.settings import ServiceSettings, dev_secret
from services.gateway import mail_sink
from services.gateway.mail_sink import MailSink, ReceivedMail
from tests.conftest import free_port


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    previous = os.umask(0o022)
    # Whatever is created must already be private: a chmod after writing leaves a window.
    monkeypatch.setattr(Path, "chmod", lambda *_args, **_kwargs: None)
    monkeypatch.setattr(os, "chmod", lambda *_args, **_kwargs: None)
    yield
    os.umask(previous)


async def test_a_new_sqlite_database_and_its_wal_are_private(tmp_path: Path) -> None:
    path = tmp_path / "auth.sqlite3"
    database = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with database.engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (x INTEGER)"))
            await connection.execute(text("INSERT INTO t VALUES (1)"))
        files = sorted(tmp_path.iterdir())
        assert path in files
        assert Path(f"{path}-wal") in files
        assert {file.name: mode(file) for file in files} == {file.name: 0o600 for file in files}
    finally:
        await database.dispose()


def test_a_dev_signing_key_is_private(tmp_path: Path) -> None:
    settings = AuthSettings(NATOMEDIA_ENV="development", NATOMEDIA_DATA_DIR=tmp_path)
    key = load_signing_key(settings)
    path = tmp_path / "keys" / "auth-signing-key.pem"
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    # Made once: the next start signs with the same key.
    assert load_signing_key(settings).kid == key.kid


def test_a_dev_secret_is_private(tmp_path: Path) -> None:
    dev_secret(ServiceSettings(NATOMEDIA_DATA_DIR=tmp_path), "media-signing-secret")
    assert mode(tmp_path / "secrets" / "media-signing-secret") == 0o600
    assert mode(tmp_path / "secrets") == 0o700


async def test_saved_mail_is_private(tmp_path: Path) -> None:
    directory = tmp_path / "mail"
    sink = MailSink("127.0.0.1", free_port(), directory)
    sink.start()
    try:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "a@example.org", "b@example.org", "c"
        message.set_content("Your code is 123456")
        for _ in range(2):
            with smtplib.SMTP(sink.host, sink.port) as smtp:
                smtp.send_message(message)
        await sink.wait_for("b@example.org", 2)
    finally:
        sink.stop()
    saved = sorted(directory.iterdir())
    assert len(saved) == 2
    assert [mode(file) for file in saved] == [0o600, 0o600]
    assert mode(directory) == 0o700


def test_saved_mail_never_overwrites_earlier_mail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A sink restarted within the same second numbers its first mail as the last run did.
    monkeypatch.setattr(mail_sink.time, "strftime", lambda _format: "20260101T000000")
    for body in ("first", "second"):
        message = EmailMessage()
        message.set_content(body)
        sink = MailSink("127.0.0.1", free_port(), tmp_path)
        sink.deliver(ReceivedMail("a@example.org", ("b@example.org",), message), bytes(message))
    saved = sorted(tmp_path.iterdir())
    assert [file.name for file in saved] == [
        "20260101T000000-0001-1.eml",
        "20260101T000000-0001.eml",
    ]
    assert b"first" in saved[1].read_bytes()
    assert b"second" in saved[0].read_bytes()
