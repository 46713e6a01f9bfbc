"""Auth commands for the CLI and the dev gateway: migrate, seed, roles, the mail queue."""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from services.auth.addresses import InvalidEmail, parse_email
from services.auth.app import code_hash_key
from services.auth.config import AuthSettings
from services.auth.mail_admin import QueueReport, Recomposer, put_back, queue_report
from services.auth.models import User
from services.auth.newsletter import render, verified_subscribers
from services.common.database import Database, utcnow
from services.common.migrations import upgrade_to_head

MIGRATIONS = Path(__file__).parent / "migrations"
ROLES = ("editor", "admin")


async def migrate_database(database: Database) -> None:
    await upgrade_to_head(database, MIGRATIONS)


async def migrate(settings: AuthSettings) -> None:
    database = Database(settings.resolved_database_url)
    try:
        await migrate_database(database)
    finally:
        await database.dispose()


async def seed(settings: AuthSettings) -> None:
    """Nothing to load: accounts are made by registering (demo content lives elsewhere)."""


async def _change_role(settings: AuthSettings, email: str, role: str, *, grant: bool) -> int:
    if role not in ROLES:
        print(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")  # noqa: T201
        return 2
    try:
        canonical = parse_email(email).canonical
    except InvalidEmail:
        canonical = email.strip().lower()
    database = Database(settings.resolved_database_url)
    try:
        async with database.sessionmaker() as session, session.begin():
            user = await session.scalar(select(User).where(User.email_canonical == canonical))
            if user is None:
                print(f"no account for {email}")  # noqa: T201
                return 1
            roles = set(user.roles)
            roles = roles | {role} if grant else roles - {role}
            user.roles = sorted(roles)
            shown = ", ".join(user.roles) or "none"
    finally:
        await database.dispose()
    verb = "granted" if grant else "revoked"
    # Tokens already issued keep their scopes until they expire (at most 15 minutes).
    print(f"{verb} {role} for {user.email}; roles now: {shown}")  # noqa: T201
    return 0


async def cli_grant_role(settings: AuthSettings, args: argparse.Namespace) -> int:
    return await _change_role(settings, args.email, args.role, grant=True)


async def cli_revoke_role(settings: AuthSettings, args: argparse.Namespace) -> int:
    return await _change_role(settings, args.email, args.role, grant=False)


async def cli_newsletter_export(
    settings: AuthSettings,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """`natomedia users newsletter-export [--format csv|json] [--output FILE]`."""
    out = out or sys.stdout
    err = err or sys.stderr
    database = Database(settings.resolved_database_url)
    try:
        async with database.sessionmaker() as session:
            subscribers = await verified_subscribers(session)
    except (SQLAlchemyError, OSError) as exc:
        err.write(f"newsletter export failed: cannot read the accounts: {type(exc).__name__}\n")
        return 1
    finally:
        await database.dispose()
    document = render(subscribers, args.format)
    if args.output is None:
        out.write(document)
        return 0
    try:
        # A list of addresses is personal data: readable by whoever runs the export only.
        descriptor = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(descriptor, "w", encoding="utf-8", newline="") as file:
            file.write(document)
    except OSError as exc:
        err.write(f"newsletter export failed: cannot write {args.output}: {exc.strerror}\n")
        return 1
    err.write(f"{len(subscribers)} subscriber(s) written to {args.output}\n")
    return 0


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _print_report(report: QueueReport, out: TextIO) -> None:
    now = utcnow()
    oldest = (
        f"{_duration((now - report.oldest_pending).total_seconds())} "
        f"(queued {_time(report.oldest_pending)})"
        if report.oldest_pending is not None
        else "none"
    )
    next_attempt = (
        f" (next attempt in {_duration((report.next_attempt - now).total_seconds())})"
        if report.next_attempt is not None
        else ""
    )
    out.write(f"due: {report.due}\n")
    out.write(f"sending: {report.sending}\n")
    out.write(f"deferred: {report.deferred}{next_attempt}\n")
    out.write(f"dead: {report.dead}\n")
    out.write(f"oldest pending: {oldest}\n")
    for dead in report.dead_mail:
        reason = " ".join(dead.reason.split())  # one line, whatever the relay said
        out.write(
            f"dead {dead.id} {dead.kind} to {dead.recipient} attempts {dead.attempts} "
            f"queued {_time(dead.created_at)} dead {_time(dead.dead_at)}: {reason}\n"
        )
    if report.dead > len(report.dead_mail):
        out.write(f"... and {report.dead - len(report.dead_mail)} older dead message(s)\n")


async def cli_mail_status(
    settings: AuthSettings,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """`natomedia mail status`: the outbox's due, deferred and dead mail."""
    out = out or sys.stdout
    err = err or sys.stderr
    database = Database(settings.resolved_database_url)
    try:
        report = await queue_report(database)
    except (SQLAlchemyError, OSError) as exc:
        err.write(f"mail status failed: cannot read the outbox: {type(exc).__name__}\n")
        return 1
    finally:
        await database.dispose()
    _print_report(report, out)
    return 0


async def cli_mail_retry(
    settings: AuthSettings,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """`natomedia mail retry ID` / `--dead`: put dead mail back in the queue, due now."""
    out = out or sys.stdout
    err = err or sys.stderr
    if bool(args.id) == bool(args.dead):
        err.write("mail retry: give one message ID or --dead (every dead message)\n")
        return 2
    ids: list[uuid.UUID] | None = None
    if args.id:
        try:
            ids = [uuid.UUID(args.id)]
        except ValueError:
            err.write(f"mail retry: {args.id!r} is not a message ID (see natomedia mail status)\n")
            return 2
    database = Database(settings.resolved_database_url)
    try:
        results = await put_back(database, Recomposer(settings, code_hash_key(settings)), ids)
    except (SQLAlchemyError, OSError) as exc:
        err.write(f"mail retry failed: cannot change the outbox: {type(exc).__name__}\n")
        return 1
    finally:
        await database.dispose()
    failed = 0
    for result in results:
        if result.error is None:
            out.write(f"queued {result.id} {result.kind} to {result.recipient}\n")
        else:
            failed += 1
            err.write(f"not queued {result.id}: {result.error}\n")
    if not results:
        out.write("no dead mail\n")
    return 1 if failed else 0
