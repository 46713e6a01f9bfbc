"""Email addresses: validated without network access, normalised, and a canonical lookup key."""

from __future__ import annotations

from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

MAX_EMAIL_LENGTH = 320


class InvalidEmail(ValueError):
    pass


@dataclass(frozen=True)
class EmailAddress:
    # What the person typed, domain lowercased and Unicode-normalised: where mail goes.
    normalized: str
    # Lowercased as a whole: one account per mailbox whatever the capitalisation.
    canonical: str

    @property
    def local_part(self) -> str:
        return self.canonical.rsplit("@", 1)[0]


def parse_email(value: str) -> EmailAddress:
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from exc
    return EmailAddress(result.normalized, result.normalized.lower())
