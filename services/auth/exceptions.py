"""Domain errors of the auth service. They know nothing of HTTP: `error_handlers` maps each to
its problem+json status and stable contract `code`."""

from __future__ import annotations

from collections.abc import Sequence


class AuthError(Exception):
    """Base of every auth domain error."""


class InvalidCredentials(AuthError):
    pass


class InvalidCode(AuthError):
    pass


class CodeExpired(AuthError):
    pass


class TooManyAttempts(AuthError):
    pass


class InvalidRefreshToken(AuthError):
    pass


class InvalidResetToken(AuthError):
    pass


class AccountRequired(AuthError):
    """The bearer is valid but speaks for no (longer existing) account."""


class AccountNotVerified(AuthError):
    pass


class ClientNotFound(AuthError):
    pass


class InvalidClient(AuthError):
    def __init__(self, *, basic: bool = False) -> None:
        super().__init__("invalid_client")
        self.basic = basic


class UnsupportedGrantType(AuthError):
    pass


class InvalidGrantRequest(AuthError):
    pass


class InvalidScope(AuthError):
    pass


class AccountLocked(AuthError):
    """Too many failed logins for the account from everywhere (unknown addresses alike)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("account_locked")
        self.retry_after = retry_after


class PasswordRequired(AuthError):
    """A contested registration: the code is right, but which password wins is not said."""


class WeakPassword(AuthError):
    def __init__(self, failed: Sequence[str], *, field: str = "password") -> None:
        super().__init__(", ".join(failed))
        self.failed = list(failed)
        self.field = field


class UnsupportedAddress(AuthError):
    """An address with non-ASCII characters while mail goes out without SMTPUTF8."""


class WrongPassword(AuthError):
    """The password that confirms a signed-in change is wrong."""


class EmailTaken(AuthError):
    """Another account holds the address by the time the change would take it."""


class SessionNotFound(AuthError):
    pass
