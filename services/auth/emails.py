"""The emails the auth service sends, worded as the product's account pages are."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from html import escape

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
    # Queued before kinds were recorded, with a subject none of the above has.
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
    subject: str,
    paragraphs: list[str],
    code: str | None = None,
) -> Email:
    text_parts = list(paragraphs)
    html_parts = [f"<p>{escape(paragraph)}</p>" for paragraph in paragraphs]
    if code is not None:
        # The code comes first in the plain text so mail clients and tests find it at once.
        text_parts.insert(0, f"Verification code: {code}")
        html_parts.insert(
            0,
            '<p>Verification code</p><p style="font-size:28px;font-weight:bold;'
            f'letter-spacing:4px">{escape(code)}</p>',
        )
    text_parts.append(f"{BRAND}\nAccess NATO's broadcast-quality video content free of charge")
    html = (
        '<!doctype html><html><body style="font-family:sans-serif">'
        f"<h1>{escape(subject)}</h1>{''.join(html_parts)}"
        f"<p>{BRAND}<br>Access NATO&rsquo;s broadcast-quality video content free of charge</p>"
        "</body></html>"
    )
    return Email(recipient, subject, "\n\n".join(text_parts) + "\n", html, kind)


def verification_code(recipient: str, code: str, minutes: int) -> Email:
    return _compose(
        MailKind.VERIFICATION_CODE,
        recipient,
        "Check your inbox and enter verification code",
        [
            "We have sent a verification code to your email address. Enter the code to verify "
            f"your account. This code will expire in {minutes} minutes.",
            "Didn't ask for it? Someone may have typed your address by mistake; you can ignore "
            "this message.",
        ],
        code,
    )


def account_exists(recipient: str) -> Email:
    return _compose(
        MailKind.ACCOUNT_EXISTS,
        recipient,
        f"You already have a {BRAND} account",
        [
            f"Someone, perhaps you, tried to create a {BRAND} account with this email address. "
            "You already have an account, so nothing was changed.",
            "Log in with your password. If you have forgotten it, choose Reset password: enter "
            "the email address you registered with and we will send you a code to reset your "
            "password.",
        ],
    )


def password_reset_code(recipient: str, code: str, minutes: int) -> Email:
    return _compose(
        MailKind.PASSWORD_RESET_CODE,
        recipient,
        "Reset password",
        [
            "We have sent a verification code to your email address. Enter the code to reset "
            f"your password. This code will expire in {minutes} minutes.",
            "Didn't ask to reset your password? You can ignore this message; your password "
            "stays as it is.",
        ],
        code,
    )


def _one_line(text: str) -> str:
    """Someone else's text (a client name) as one printable line: it cannot lay out the mail."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def password_changed(recipient: str, revoked_clients: Sequence[str] = ()) -> Email:
    paragraphs = [
        f"The password of your {BRAND} account has been updated, and every device that "
        "was signed in has been signed out. Log in with your new password.",
    ]
    if revoked_clients:
        names = "; ".join(f"“{_one_line(name)}”" for name in revoked_clients)
        paragraphs.append(
            f"Your API clients were revoked too, with every token and download link they held: "
            f"{names}. Create new ones for your scripts once you have logged in."
        )
    paragraphs.append(
        "If you did not change it, reset your password now and check your email account's security."
    )
    return _compose(
        MailKind.PASSWORD_CHANGED, recipient, "Your password has been updated", paragraphs
    )


def email_change_code(recipient: str, code: str, minutes: int) -> Email:
    return _compose(
        MailKind.EMAIL_CHANGE_CODE,
        recipient,
        "Confirm your new email address",
        [
            f"Someone, perhaps you, asked to move a {BRAND} account to this address. Enter the "
            f"code on the account page to confirm it. This code will expire in {minutes} minutes.",
            "Didn't ask for it? You can ignore this message; nothing changes.",
        ],
        code,
    )


def email_change_taken(recipient: str) -> Email:
    return _compose(
        MailKind.EMAIL_CHANGE_TAKEN,
        recipient,
        f"Someone tried to use your address for another {BRAND} account",
        [
            f"Someone, perhaps you, tried to move another {BRAND} account to this email "
            "address. Your account already uses it, so nothing was changed.",
        ],
    )


def email_changed(recipient: str, new_address: str, code: str, days: int) -> Email:
    return _compose(
        MailKind.EMAIL_CHANGED,
        recipient,
        "The email address of your account has been changed",
        [
            f"Your {BRAND} account now uses the address {_one_line(new_address)} instead of "
            "this one, and every other device that was signed in has been signed out.",
            f"If you did not change it, undo the change within {days} days with this code and "
            "this address (POST /v1/auth/me/email/undo): the account comes back to this address, "
            "every session and API client ends, and you choose a new password with Reset "
            "password.",
        ],
        code,
    )


def email_change_undone(recipient: str, revoked_clients: Sequence[str] = ()) -> Email:
    paragraphs = [
        f"Your {BRAND} account uses this address again. Every device that was signed in has "
        "been signed out and the password has been replaced, since whoever changed the address "
        "may have known it.",
        "Choose a new password with Reset password: enter this address and we will send you a "
        "code.",
    ]
    if revoked_clients:
        names = "; ".join(f"“{_one_line(name)}”" for name in revoked_clients)
        paragraphs.append(f"Your API clients were revoked too: {names}.")
    return _compose(
        MailKind.EMAIL_CHANGE_UNDONE, recipient, "Your email change has been undone", paragraphs
    )


def account_deleted(recipient: str) -> Email:
    return _compose(
        MailKind.ACCOUNT_DELETED,
        recipient,
        f"Your {BRAND} account has been deleted",
        [
            f"Your {BRAND} account and what we held about it have been erased, as you asked. "
            "You can register again with this address at any time.",
            "If you did not ask for this, someone knew your password: check your email "
            "account's security.",
        ],
    )
