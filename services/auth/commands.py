"""Auth commands for the CLI and the dev gateway: migrate, seed, role administration."""

from __future__ import annotations

import argparse
from pathlib import Path

from sqlalchemy import select

from services.auth.addresses import InvalidEmail, parse_email
from services.auth.config import AuthSettings
from services.auth.models import User
from services.common.database import Database
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
