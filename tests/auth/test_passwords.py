"""The password rule and Argon2id hashing."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from pathlib import Path

import pytest

from services.auth.config import AuthSettings, usable_cores
from services.auth.passwords import (
    HASHING_THREAD_NICENESS,
    MAX_LENGTH,
    RULE_MESSAGES,
    PasswordHasher,
    common_passwords,
    failed_rules,
)


def full_width(text: str) -> str:
    """Letters and digits as some input methods type them (U+FF10...); NFKC gives them back."""
    return "".join(chr(ord(char) + 0xFEE0) if char.isalnum() else char for char in text)


def test_a_password_meeting_every_rule_passes() -> None:
    assert failed_rules("Correct-Horse-42-Battery", "alice") == []


def test_every_rule_is_reported_at_once() -> None:
    assert failed_rules(" ") == [
        "too_short",
        "whitespace",
        "missing_lowercase",
        "missing_uppercase",
        "missing_digit",
        "missing_symbol",
    ]
    assert set(RULE_MESSAGES) == {
        "too_short",
        "too_long",
        "whitespace",
        "missing_lowercase",
        "missing_uppercase",
        "missing_digit",
        "missing_symbol",
        "too_common",
        "contains_email",
        "invalid_character",
    }


def test_length_bounds() -> None:
    assert "too_long" in failed_rules("Aa1!" * 33)
    assert "too_long" not in failed_rules(("Aa1!" * 32)[:MAX_LENGTH])
    assert "too_short" in failed_rules("Aa1!Aa1!Aa1")
    assert "too_short" not in failed_rules("Aa1!Aa1!Aa1!")


@pytest.mark.parametrize("space", [" ", "\t", "\u00a0"])
def test_any_whitespace_is_refused(space: str) -> None:
    assert failed_rules(f"Correct{space}Horse-42") == ["whitespace"]


@pytest.mark.parametrize(
    "invisible",
    ["\x00", "\x1b", "\x7f", "\u200b", "\u200d", "\u2060", "\ufeff", "\u202e", "\u2066"],
)
def test_control_and_invisible_characters_are_refused(invisible: str) -> None:
    assert failed_rules(f"Correct-Horse-42{invisible}-Battery") == ["invalid_character"]
    # Nor do they stand in for the symbol.
    assert failed_rules(f"CorrectHorse42{invisible}Battery") == [
        "missing_symbol",
        "invalid_character",
    ]
    assert "invalid_character" in RULE_MESSAGES


def test_the_rule_applies_to_the_nfkc_form() -> None:
    # Full-width letters and the "fi" ligature (U+FB01) are their plain forms once normalised.
    assert failed_rules(full_width("Alice-Long-Pass-42"), "alice") == ["contains_email"]
    assert failed_rules("\ufb01" * 65 + "A1!") == ["too_long"]
    assert failed_rules(full_width("Correct-Horse-42-Battery")) == []


async def test_hashes_are_of_the_normalised_form() -> None:
    hasher = PasswordHasher(AuthSettings(argon2_memory_cost=1024, argon2_rounds=1))
    stored = await hasher.hash(full_width("Correct-Horse-42"))
    assert hasher.context.verify("Correct-Horse-42", stored)
    assert await hasher.verify("Correct-Horse-42", stored) == (True, None)
    hasher.close()


async def test_a_hash_of_the_raw_form_still_verifies_and_asks_for_a_rehash() -> None:
    hasher = PasswordHasher(AuthSettings(argon2_memory_cost=1024, argon2_rounds=1))
    legacy = hasher.context.hash(full_width("Correct-Horse-42"))
    ok, new_hash = await hasher.verify(full_width("Correct-Horse-42"), legacy)
    assert ok
    assert new_hash is not None
    assert hasher.context.verify("Correct-Horse-42", new_hash)
    assert await hasher.verify(full_width("Wrong-Horse-42"), legacy) == (False, None)
    hasher.close()


def test_blocklist_ships_at_least_ten_thousand_passwords() -> None:
    blocklist = common_passwords()
    assert len(blocklist) >= 10_000
    assert "password" in blocklist
    assert "qwerty" in blocklist


@pytest.mark.parametrize(
    "password", ["Password123!", "PASSWORD123!", "Qwertyuiop1!", "Dragon2024!!", "iLoveYou123!"]
)
def test_common_passwords_are_refused_case_insensitively(password: str) -> None:
    assert "too_common" in failed_rules(password)


def test_email_local_part_is_refused_in_any_case() -> None:
    assert failed_rules("My-JSmith-Pass-99", "jsmith") == ["contains_email"]
    # Very short local parts would forbid too much.
    assert failed_rules("Correct-Horse-42-Battery", "co") == []


async def test_hashes_are_argon2id_and_verify(tmp_path: object) -> None:
    hasher = PasswordHasher(AuthSettings(argon2_memory_cost=1024, argon2_rounds=1))
    stored = await hasher.hash("Correct-Horse-42-Battery")
    assert stored.startswith("$argon2id$")
    assert await hasher.verify("Correct-Horse-42-Battery", stored) == (True, None)
    assert (await hasher.verify("wrong", stored))[0] is False


async def test_outdated_parameters_ask_for_a_rehash() -> None:
    old = PasswordHasher(AuthSettings(argon2_memory_cost=1024, argon2_rounds=1))
    stored = await old.hash("Correct-Horse-42-Battery")
    current = PasswordHasher(AuthSettings())
    ok, new_hash = await current.verify("Correct-Horse-42-Battery", stored)
    assert ok
    assert new_hash is not None
    assert "m=19456,t=2,p=1" in new_hash


def test_one_hashing_thread_per_usable_core_by_default() -> None:
    assert AuthSettings().hashing_threads == usable_cores()
    assert AuthSettings(hashing_threads=1).hashing_threads == 1


@pytest.fixture
def eight_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    # The quota must be smaller than the affinity to show, whatever machine runs the tests.
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(8)), raising=False)


def _cpu_max(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cpu.max"
    path.write_text(text)
    return path


@pytest.mark.usefixtures("eight_cores")
@pytest.mark.parametrize(
    ("cpu_max", "cores"),
    [("max 100000\n", 8), ("150000 100000\n", 2), ("50000 100000\n", 1), ("1600000 100000\n", 8)],
)
def test_a_cgroup_v2_cpu_quota_caps_the_usable_cores(
    tmp_path: Path, cpu_max: str, cores: int
) -> None:
    assert usable_cores(cpu_max=_cpu_max(tmp_path, cpu_max)) == cores


@pytest.mark.usefixtures("eight_cores")
@pytest.mark.parametrize(
    "cpu_max", ["", "max", "150000", "1.5 100000", "150000 0", "-1 100000", "150000 100000 1"]
)
def test_a_malformed_cpu_max_is_ignored(tmp_path: Path, cpu_max: str) -> None:
    assert usable_cores(cpu_max=_cpu_max(tmp_path, cpu_max)) == 8


@pytest.mark.usefixtures("eight_cores")
def test_a_missing_cpu_max_is_ignored(tmp_path: Path) -> None:
    assert usable_cores(cpu_max=tmp_path / "cpu.max") == 8


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priorities are Linux's")
async def test_hashing_threads_run_below_the_event_loop_priority() -> None:
    hasher = PasswordHasher(
        AuthSettings(argon2_memory_cost=1024, argon2_rounds=1, hashing_threads=2)
    )
    try:
        await asyncio.gather(*(hasher.hash("Correct-Horse-42-Battery") for _ in range(4)))
        workers = [t for t in threading.enumerate() if t.name.startswith("auth-hashing")]
        assert workers
        loop_niceness = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        for worker in workers:
            assert worker.native_id is not None
            niceness = os.getpriority(os.PRIO_PROCESS, worker.native_id)
            assert niceness == min(19, loop_niceness + HASHING_THREAD_NICENESS)
    finally:
        hasher.close()


async def test_a_caller_that_gives_up_frees_its_slot_once_the_thread_is_done() -> None:
    hasher = PasswordHasher(
        AuthSettings(argon2_memory_cost=1024, argon2_rounds=1, hashing_threads=1)
    )
    try:
        started = asyncio.create_task(hasher.hash("Correct-Horse-42-Battery"))
        waiting = asyncio.create_task(hasher.hash("Correct-Horse-42-Battery"))
        await asyncio.sleep(0)
        started.cancel()
        waiting.cancel()
        await asyncio.gather(started, waiting, return_exceptions=True)
        for _ in range(200):
            if hasher.busy_slots == 0:
                break
            await asyncio.sleep(0.01)
        assert hasher.busy_slots == 0
        # The pool still works for the next caller.
        assert (await hasher.hash("Correct-Horse-42-Battery")).startswith("$argon2id$")
    finally:
        hasher.close()
