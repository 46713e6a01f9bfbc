"""The password rule (product + blocklist + no email) and Argon2id hashing off the event loop.

Passwords are NFKC-normalised (NIST SP 800-63B 5.1.1.2) before the rule and before hashing, so
the same password typed on keyboards or input methods that compose it differently (full-width
forms, ligatures, precomposed accents) is the same password. Accounts whose hash was made from
the raw form before normalisation existed still log in: `verify` tries the raw form too and asks
for a rehash of the normalised one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import string
import sys
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from importlib import resources
from typing import TypeVar

from passlib.context import CryptContext

from services.auth.config import AuthSettings
from services.common.i18n import N_

T = TypeVar("T")

MIN_LENGTH = 12
MAX_LENGTH = 128
# The shortest local part worth refusing inside a password; "jo" would forbid half the alphabet.
MIN_EMAIL_FRAGMENT = 3

RULE_MESSAGES = {
    # `{min_length}` and `{max_length}` are filled where the messages are shown.
    "too_short": N_("Use at least {min_length} characters."),
    "too_long": N_("Use at most {max_length} characters."),
    "whitespace": N_("Spaces are not allowed."),
    "missing_lowercase": N_("Include a lowercase letter."),
    "missing_uppercase": N_("Include an uppercase letter."),
    "missing_digit": N_("Include a number."),
    "missing_symbol": N_("Include a symbol."),
    "too_common": N_("This password is too common; choose another."),
    "contains_email": N_("The password must not contain your email address."),
    "invalid_character": N_("Control and invisible characters are not allowed."),
}
# Controls (NUL, escapes) and format characters (zero-width spaces and joiners, bidi overrides,
# the byte-order mark): invisible, so a password holding one cannot be typed again reliably.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf"})

_EDGE_DECORATION = string.digits + string.punctuation


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("services.auth").joinpath("common-passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def _is_common(password: str) -> bool:
    lowered = password.lower()
    # "Dragon2024!" is "dragon" with the decoration every rule-follower adds.
    core = lowered.strip(_EDGE_DECORATION)
    blocklist = common_passwords()
    return lowered in blocklist or (len(core) >= 4 and core in blocklist)


def normalize_password(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def _refused_character(char: str) -> bool:
    # Tabs and newlines are controls too, but `whitespace` already names what is wrong.
    return unicodedata.category(char) in REFUSED_CATEGORIES and not char.isspace()


def _symbol(char: str) -> bool:
    return not char.isalnum() and not char.isspace() and not _refused_character(char)


def failed_rules(password: str, email_local_part: str | None = None) -> list[str]:
    """Every rule id the (normalised) password breaks, in a stable order; empty when acceptable."""
    password = normalize_password(password)
    failed = []
    if len(password) < MIN_LENGTH:
        failed.append("too_short")
    if len(password) > MAX_LENGTH:
        failed.append("too_long")
    if any(char.isspace() for char in password):
        failed.append("whitespace")
    if not any(char.islower() for char in password):
        failed.append("missing_lowercase")
    if not any(char.isupper() for char in password):
        failed.append("missing_uppercase")
    if not any(char.isdigit() for char in password):
        failed.append("missing_digit")
    if not any(_symbol(char) for char in password):
        failed.append("missing_symbol")
    if _is_common(password):
        failed.append("too_common")
    local = (email_local_part or "").lower()
    if len(local) >= MIN_EMAIL_FRAGMENT and local in password.lower():
        failed.append("contains_email")
    if any(_refused_character(char) for char in password):
        failed.append("invalid_character")
    return failed


# Hashing threads yield the core to the event loop: a login storm then slows logins, not
# every other request of the process (the loop answers /healthz and token reads in between).
HASHING_THREAD_NICENESS = 10


def _lower_thread_priority() -> None:
    """Executor initializer: lower this thread's priority (Linux schedules threads one by one)."""
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    # Lowering one's own priority needs no privilege; a sandbox may still refuse it. Relative to
    # the process's own niceness, so a service started under `nice` keeps the same gap.
    with contextlib.suppress(OSError):
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + HASHING_THREAD_NICENESS))


class PasswordHasher:
    """Argon2id through passlib; every hash and verify runs in a small dedicated thread pool.

    One thread per usable core (`hashing_threads`), each at a lower scheduling priority than the
    event loop, so a login storm keeps the cores busy without delaying other requests. The
    semaphore in front of the pool keeps waiting requests out of the pool's queue: a caller
    that gives up while waiting never costs a hash.
    """

    def __init__(self, settings: AuthSettings) -> None:
        self.context = CryptContext(
            schemes=["argon2"],
            argon2__type="ID",
            argon2__memory_cost=settings.argon2_memory_cost,
            argon2__rounds=settings.argon2_rounds,
            argon2__parallelism=settings.argon2_parallelism,
        )
        self._threads = settings.hashing_threads
        self._slots: asyncio.Semaphore | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._dummy_hash: str | None = None
        self.busy_slots = 0

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self._threads,
                thread_name_prefix="auth-hashing",
                initializer=_lower_thread_priority,
            )
        return self._pool

    async def _run(self, function: Callable[..., T], *args: str) -> T:
        loop = asyncio.get_running_loop()
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._threads)
        slots = self._slots
        # A free slot is taken without yielding to the loop (anyio's limiter always yields once).
        await slots.acquire()
        self.busy_slots += 1
        outcome: asyncio.Future[T] = loop.create_future()

        def free_slot() -> None:
            self.busy_slots -= 1
            slots.release()

        def finish(job: Future[T]) -> None:
            # The slot is freed when the thread is done, not when the caller stops waiting:
            # callers that give up cannot pile hashes up in the pool's queue.
            free_slot()
            if outcome.done():
                return
            error = job.exception()
            if error is None:
                outcome.set_result(job.result())
            else:
                outcome.set_exception(error)

        def thread_done(job: Future[T]) -> None:
            # One wake-up of the loop per hash, for the slot and the answer together. After
            # shutdown there is no loop left to hand them to.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(finish, job)

        try:
            job = self._executor().submit(function, *args)
        except BaseException:
            free_slot()
            raise
        job.add_done_callback(thread_done)
        return await outcome

    async def hash(self, password: str) -> str:
        return str(await self._run(self.context.hash, normalize_password(password)))

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        """Whether it matches, and a new hash when the stored one should be replaced.

        The normalised form first; when it fails and the raw form differs, the raw form, which
        an account registered before normalisation has on file: a match then asks for a hash
        of the normalised form. A wrong password costs the same whether or not the account
        exists (`verify_nothing` comes here too).
        """
        normalized = normalize_password(password)
        ok, new_hash = await self._run(self.context.verify_and_update, normalized, password_hash)
        if ok or normalized == password:
            return bool(ok), new_hash
        ok, _ = await self._run(self.context.verify_and_update, password, password_hash)
        if not ok:
            return False, None
        return True, await self.hash(normalized)

    async def matches(self, password: str, password_hash: str) -> bool:
        """Whether the normalised password matches: one hash's work, whatever the outcome."""
        # `verify`, not `verify_and_update`: a match must not cost a second hash for a rehash.
        return bool(
            await self._run(self.context.verify, normalize_password(password), password_hash)
        )

    async def prepare(self) -> None:
        """Make the stand-in hash now, so the first unknown-email login is not the slow one."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(16))

    async def verify_nothing(self, password: str) -> None:
        """Spend a verification's time when there is no account, so timing reveals nothing."""
        await self.prepare()
        assert self._dummy_hash is not None
        await self.verify(password, self._dummy_hash)

    def close(self) -> None:
        """Stop the worker threads (after the hashes in flight); the pool restarts if used again."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)
