"""The emails the auth service sends, in the account's language (see `services.common.i18n`).

Each is a letter, not a screen: a branded subject, the point first, then what to do about it;
a plain-text part and an HTML part with the same words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from html import escape

from services.common.i18n import DEFAULT_LANGUAGE, translator

BRAND = "NATO Multimedia"


class MailKind(StrEnum):
    """Which email a message is: kept in the outbox after its body is dropped."""

    VERIFICATION_CODE = "verification_code"
    PASSWORD_RESET_CODE = "password_reset_code"
    ACCOUNT_EXISTS = "account_exists"
    PASSWORD_CHANGED = "password_changed"
    EMAIL_CHANGE_CODE = "email_change_code"
    EMAIL_CHANGE_TAKEN = "email_change_taken"
    EMAIL_CHANGED = "email_changed"
    EMAIL_CHANGE_UNDONE = "email_change_undone"
    ACCOUNT_DELETED = "account_deleted"
    # A queued message whose row records no kind; its subject is none of the above.
    OTHER = "other"


@dataclass(frozen=True)
class Email:
    recipient: str
    subject: str
    text: str
    html: str
    kind: MailKind


def _compose(
    kind: MailKind,
    recipient: str,
    language: str,
    subject: str,
    paragraphs: list[str],
    code: str | None = None,
) -> Email:
    _ = translator(language)
    text_parts = list(paragraphs)
    html_parts = [f"<p>{escape(paragraph)}</p>" for paragraph in paragraphs]
    if code is not None:
        # The code comes first in the plain text so mail clients and tests find it at once.
        text_parts.insert(0, _("Your code: {code}").format(code=code))
        heading = _("Your code")
        html_parts.insert(
            0,
            f"<p>{escape(heading)}</p>"
            '<p style="font-size:28px;font-weight:bold;letter-spacing:4px">'
            f"{escape(code)}</p>",
        )
    tagline = _("Access NATO's broadcast-quality video content free of charge")
    automatic = _("This message was sent automatically; replies are not read.")
    text_parts.append(f"{BRAND}\n{tagline}\n{automatic}")
    html = (
        f'<!doctype html><html lang="{escape(language)}"><head><meta charset="utf-8">'
        f"<title>{escape(subject)}</title></head>"
        '<body style="font-family:sans-serif;max-width:40em">'
        f"{''.join(html_parts)}"
        f'<p style="color:#555;font-size:smaller">{BRAND}<br>{escape(tagline)}<br>'
        f"{escape(automatic)}</p></body></html>"
    )
    return Email(recipient, subject, "\n\n".join(text_parts) + "\n", html, kind)


def _subject(text: str) -> str:
    return text.format(brand=BRAND)


def _until(expires_at: datetime) -> str:
    return expires_at.strftime("%H:%M UTC")


def _one_line(text: str) -> str:
    """Someone else's text (a client name) as one printable line: it cannot lay out the mail."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def _names(names: Sequence[str]) -> str:
    return "; ".join(f"“{_one_line(name)}”" for name in names)


def verification_code(
    recipient: str,
    code: str,
    minutes: int,
    expires_at: datetime,
    *,
    language: str = DEFAULT_LANGUAGE,
    resent: bool = False,
) -> Email:
    _ = translator(language)
    paragraphs = [
        _(
            "Enter this code to confirm your email address and finish creating your {brand} "
            "account. It is valid for {minutes} minutes, until {until}."
        ).format(brand=BRAND, minutes=minutes, until=_until(expires_at)),
    ]
    if resent:
        paragraphs.append(_("This is a new code: codes sent to you earlier no longer work."))
    paragraphs.append(
        _(
            "Did not ask for it? Someone may have typed your address by mistake; you can ignore "
            "this message and no account will be confirmed."
        )
    )
    subject = _subject(_("{brand}: your verification code"))
    return _compose(MailKind.VERIFICATION_CODE, recipient, language, subject, paragraphs, code)


def account_exists(recipient: str, *, language: str = DEFAULT_LANGUAGE) -> Email:
    _ = translator(language)
    return _compose(
        MailKind.ACCOUNT_EXISTS,
        recipient,
        language,
        _subject(_("{brand}: you already have an account")),
        [
            _(
                "Someone, perhaps you, tried to create a {brand} account with this email "
                "address. You already have an account, so nothing was changed."
            ).format(brand=BRAND),
            _(
                "Log in with your password. If you have forgotten it, choose Reset password and "
                "enter this address: you will get a code to choose a new one."
            ),
        ],
    )


def password_reset_code(
    recipient: str,
    code: str,
    minutes: int,
    expires_at: datetime,
    *,
    language: str = DEFAULT_LANGUAGE,
) -> Email:
    _ = translator(language)
    return _compose(
        MailKind.PASSWORD_RESET_CODE,
        recipient,
        language,
        _subject(_("{brand}: your password reset code")),
        [
            _(
                "Enter this code to choose a new password for your {brand} account. It is valid "
                "for {minutes} minutes, until {until}. Codes sent to you earlier no longer work."
            ).format(brand=BRAND, minutes=minutes, until=_until(expires_at)),
            _(
                "Did not ask to reset your password? You can ignore this message; your password "
                "stays as it is."
            ),
        ],
        code,
    )


def password_changed(
    recipient: str, revoked_clients: Sequence[str] = (), *, language: str = DEFAULT_LANGUAGE
) -> Email:
    _ = translator(language)
    paragraphs = [
        _(
            "The password of your {brand} account has been changed, and every device that was "
            "signed in has been signed out. Log in with your new password."
        ).format(brand=BRAND),
    ]
    if revoked_clients:
        paragraphs.append(
            _(
                "Your API clients were revoked too, with every token and download link they "
                "held: {names}. Create new ones for your scripts once you have logged in."
            ).format(names=_names(revoked_clients))
        )
    paragraphs.append(
        _(
            "If you did not change it, reset your password now and check the security of your "
            "email account."
        )
    )
    return _compose(
        MailKind.PASSWORD_CHANGED,
        recipient,
        language,
        _subject(_("{brand}: your password has been changed")),
        paragraphs,
    )


def email_change_code(
    recipient: str,
    code: str,
    minutes: int,
    expires_at: datetime,
    *,
    language: str = DEFAULT_LANGUAGE,
) -> Email:
    _ = translator(language)
    return _compose(
        MailKind.EMAIL_CHANGE_CODE,
        recipient,
        language,
        _subject(_("{brand}: confirm your new email address")),
        [
            _(
                "Someone, perhaps you, asked to move a {brand} account to this address. Enter "
                "this code on the account page to confirm it. It is valid for {minutes} minutes, "
                "until {until}."
            ).format(brand=BRAND, minutes=minutes, until=_until(expires_at)),
            _("Did not ask for it? You can ignore this message; nothing changes."),
        ],
        code,
    )


def email_change_taken(recipient: str, *, language: str = DEFAULT_LANGUAGE) -> Email:
    _ = translator(language)
    return _compose(
        MailKind.EMAIL_CHANGE_TAKEN,
        recipient,
        language,
        _subject(_("{brand}: someone tried to use your address for another account")),
        [
            _(
                "Someone, perhaps you, tried to move another {brand} account to this email "
                "address. Your account already uses it, so nothing was changed."
            ).format(brand=BRAND),
        ],
    )


def email_changed(
    recipient: str, new_address: str, code: str, days: int, *, language: str = DEFAULT_LANGUAGE
) -> Email:
    _ = translator(language)
    return _compose(
        MailKind.EMAIL_CHANGED,
        recipient,
        language,
        _subject(_("{brand}: the email address of your account has been changed")),
        [
            _(
                "Your {brand} account now uses the address {address} instead of this one, and "
                "every other device that was signed in has been signed out."
            ).format(brand=BRAND, address=_one_line(new_address)),
            _(
                "If you did not change it, undo the change within {days} days with this code and "
                "this address (POST /v1/auth/me/email/undo): the account comes back to this "
                "address, every session and API client ends, and you choose a new password with "
                "Reset password."
            ).format(days=days),
        ],
        code,
    )


def email_change_undone(
    recipient: str, revoked_clients: Sequence[str] = (), *, language: str = DEFAULT_LANGUAGE
) -> Email:
    _ = translator(language)
    paragraphs = [
        _(
            "Your {brand} account uses this address again. Every device that was signed in has "
            "been signed out and the password has been replaced, since whoever changed the "
            "address may have known it."
        ).format(brand=BRAND),
        _("Choose a new password with Reset password: enter this address to get a code."),
    ]
    if revoked_clients:
        paragraphs.append(
            _("Your API clients were revoked too: {names}.").format(names=_names(revoked_clients))
        )
    return _compose(
        MailKind.EMAIL_CHANGE_UNDONE,
        recipient,
        language,
        _subject(_("{brand}: your email change has been undone")),
        paragraphs,
    )


def account_deleted(recipient: str, *, language: str = DEFAULT_LANGUAGE) -> Email:
    _ = translator(language)
    return _compose(
        MailKind.ACCOUNT_DELETED,
        recipient,
        language,
        _subject(_("{brand}: your account has been deleted")),
        [
            _(
                "Your {brand} account and what we held about it have been erased, as you asked. "
                "You can register again with this address at any time."
            ).format(brand=BRAND),
            _(
                "If you did not ask for this, someone knew your password: check the security of "
                "your email account."
            ),
        ],
    )
