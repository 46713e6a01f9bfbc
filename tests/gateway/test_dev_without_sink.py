"""`natomedia dev` without aiosmtpd (a production install): it says what to install."""

from __future__ import annotations

import builtins
from typing import Any

import pytest

from services.gateway import dev


def test_dev_names_the_missing_extra_when_aiosmtpd_is_not_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_import = builtins.__import__

    def without_aiosmtpd(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "services.gateway.mail_sink" or name.startswith("aiosmtpd"):
            raise ModuleNotFoundError("No module named 'aiosmtpd'", name="aiosmtpd")
        return real_import(name, *args, **kwargs)

    monkeypatch.delenv("SMTP_HOST", raising=False)
    # What run_dev would set itself, set here so the test leaves the environment as it found it.
    monkeypatch.setenv("PUBLIC_BASE_URL", "http://127.0.0.1:8000")
    monkeypatch.setenv("MAIL_SMTPUTF8", "true")
    monkeypatch.setattr(dev, "configure_logging", lambda level: None)
    monkeypatch.setattr(dev, "prepare", lambda: _nothing())
    monkeypatch.setattr(builtins, "__import__", without_aiosmtpd)
    with pytest.raises(SystemExit, match=r"aiosmtpd.*\.\[dev\]"):
        dev.run_dev()


async def _nothing() -> dict[str, Any]:
    return {}
