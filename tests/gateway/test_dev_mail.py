"""`natomedia dev` and mail: its own sink takes non-ASCII addresses; another relay decides."""

from __future__ import annotations

from services.auth.config import AuthSettings
from services.gateway.dev import own_sink_environment


def test_with_its_own_sink_dev_sends_non_ascii_addresses() -> None:
    environ: dict[str, str] = {}
    assert own_sink_environment(environ) is True
    assert environ["MAIL_SMTPUTF8"] == "true"
    settings = AuthSettings(_env_file=None, **{"MAIL_SMTPUTF8": environ["MAIL_SMTPUTF8"]})
    assert settings.mail_smtputf8 is True


def test_an_explicit_setting_wins_over_the_dev_default() -> None:
    environ = {"MAIL_SMTPUTF8": "false"}
    assert own_sink_environment(environ) is True
    assert environ["MAIL_SMTPUTF8"] == "false"


def test_a_relay_named_by_smtp_host_keeps_the_safe_default() -> None:
    environ = {"SMTP_HOST": "smtp.example.org"}
    assert own_sink_environment(environ) is False
    assert "MAIL_SMTPUTF8" not in environ
    assert AuthSettings.model_fields["mail_smtputf8"].default is False
