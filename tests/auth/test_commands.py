"""CLI commands of the auth service: roles, migrations."""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from services.auth.commands import cli_grant_role, cli_revoke_role, seed
from services.auth.config import AuthSettings
from services.auth.models import Base
from services.common.clock import as_utc
from services.common.database import Database
from services.common.migrations import alembic_config
from services.gateway.mail_sink import MailSink
from tests.auth.flows import STRONG_PASSWORD, verified_account


async def _scope(client: httpx.AsyncClient, email: str) -> set[str]:
    response = await client.post(
        "/v1/auth/login", json={"email": email, "password": STRONG_PASSWORD}
    )
    token = response.json()["access_token"]
    return set(jwt.decode(token, options={"verify_signature": False})["scope"].split())


async def test_grant_and_revoke_role(
    client: httpx.AsyncClient,
    mail_sink: MailSink,
    settings: AuthSettings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await verified_account(client, mail_sink, "editor@example.com")
    args = argparse.Namespace(email="Editor@Example.com", role="editor")
    assert await cli_grant_role(settings, args) == 0
    assert "granted editor" in capsys.readouterr().out
    assert await _scope(client, "editor@example.com") == {"editor", "media:download"}

    assert await cli_revoke_role(settings, args) == 0
    assert await _scope(client, "editor@example.com") == {"media:download"}


async def test_grant_role_to_unknown_email_fails(
    settings: AuthSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    args = argparse.Namespace(email="nobody@example.com", role="admin")
    assert await cli_grant_role(settings, args) == 1
    assert "no account" in capsys.readouterr().out


async def test_seed_loads_no_accounts_and_may_run_twice(
    client: httpx.AsyncClient, settings: AuthSettings
) -> None:
    # Accounts are made by registering: a seed that loaded one would be a known password.
    await seed(settings)
    await seed(settings)
    database = Database(settings.resolved_database_url)
    try:
        async with database.engine.connect() as connection:
            for table in Base.metadata.sorted_tables:
                rows = await connection.scalar(sa.select(sa.func.count()).select_from(table))
                assert rows == 0, table.name
    finally:
        await database.dispose()


async def test_migration_matches_the_models(database_url: str) -> None:
    database = Database(database_url)

    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": False, "version_table": "alembic_version_auth"}
        )
        return list(compare_metadata(context, Base.metadata))

    def tables(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    try:
        async with database.engine.connect() as connection:
            assert await connection.run_sync(differences) == []
            assert "alembic_version_auth" in await connection.run_sync(tables)
    finally:
        await database.dispose()


async def test_the_refresh_family_migration_goes_down_and_up_again(database_url: str) -> None:
    from services.auth import commands

    database = Database(database_url)
    config = alembic_config(Path(commands.__file__).parent / "migrations", database_url)

    def migrate(connection: Connection, revision: str) -> dict[str, set[str]]:
        config.attributes["connection"] = connection
        if revision == "head":
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)
        found = inspect(connection)
        return {
            name: {c["name"] for c in found.get_columns(name)} for name in found.get_table_names()
        }

    try:
        async with database.engine.begin() as connection:
            before = await connection.run_sync(migrate, "0002")
        assert "refresh_tokens" in before
        assert "refresh_families" not in before
        assert "session_epoch" not in before["users"]
        async with database.engine.begin() as connection:
            after = await connection.run_sync(migrate, "head")
        assert "refresh_tokens" not in after
        assert after["refresh_families"] >= {"id", "user_id", "generation", "revoked_at"}
        assert "session_epoch" in after["users"]
    finally:
        await database.dispose()


async def test_the_sessions_migration_goes_down_and_up_again(database_url: str) -> None:
    from services.auth import commands

    database = Database(database_url)
    config = alembic_config(Path(commands.__file__).parent / "migrations", database_url)
    users = sa.table(
        "users",
        sa.column("id", sa.Uuid()),
        sa.column("email", sa.String()),
        sa.column("email_canonical", sa.String()),
        sa.column("password_hash", sa.String()),
        sa.column("roles", sa.JSON()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    lifecycle_columns = {
        "language",
        "pending_email",
        "previous_email",
        "previous_email_canonical",
        "previous_email_until",
    }

    def migrate(connection: Connection, revision: str) -> dict[str, set[str]]:
        config.attributes["connection"] = connection
        if revision == "head":
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)
        found = inspect(connection)
        return {
            name: {c["name"] for c in found.get_columns(name)} for name in found.get_table_names()
        }

    now = datetime.now(UTC)
    try:
        async with database.engine.begin() as connection:
            before = await connection.run_sync(migrate, "0006")
            assert "sign_in_sessions" not in before
            assert not lifecycle_columns & before["users"]
            # An account made before 0007: it must come through with the default language.
            await connection.execute(
                users.insert().values(
                    id=uuid.uuid4(),
                    email="before@example.org",
                    email_canonical="before@example.org",
                    password_hash="x",
                    roles=[],
                    created_at=now,
                    updated_at=now,
                )
            )
        async with database.engine.begin() as connection:
            after = await connection.run_sync(migrate, "head")
            language = await connection.scalar(
                sa.text("SELECT language FROM users WHERE email_canonical = 'before@example.org'")
            )
        assert after["sign_in_sessions"] >= {
            "id",
            "user_id",
            "session_epoch",
            "created_at",
            "last_used_at",
            "client_address",
            "user_agent",
        }
        assert lifecycle_columns <= after["users"]
        assert language == "en"
    finally:
        await database.dispose()


async def test_the_languages_migration_goes_down_and_up_again(database_url: str) -> None:
    from services.auth import commands

    database = Database(database_url)
    config = alembic_config(Path(commands.__file__).parent / "migrations", database_url)
    users = sa.table(
        "users",
        sa.column("id", sa.Uuid()),
        sa.column("email", sa.String()),
        sa.column("email_canonical", sa.String()),
        sa.column("password_hash", sa.String()),
        sa.column("newsletter", sa.Boolean()),
        sa.column("roles", sa.JSON()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )

    def migrate(connection: Connection, revision: str) -> dict[str, set[str]]:
        config.attributes["connection"] = connection
        if revision == "head":
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)
        found = inspect(connection)
        return {
            name: {c["name"] for c in found.get_columns(name)} for name in found.get_table_names()
        }

    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    try:
        async with database.engine.begin() as connection:
            before = await connection.run_sync(migrate, "0007")
            assert "language" not in before["code_requests"]
            assert "newsletter_since" not in before["users"]
            for address, newsletter in (("reader@example.org", True), ("quiet@example.org", False)):
                await connection.execute(
                    users.insert().values(
                        id=uuid.uuid4(),
                        email=address,
                        email_canonical=address,
                        password_hash="x",
                        newsletter=newsletter,
                        roles=[],
                        created_at=created,
                        updated_at=created,
                    )
                )
        async with database.engine.begin() as connection:
            after = await connection.run_sync(migrate, "head")
            since = dict(
                (
                    await connection.execute(
                        sa.text("SELECT email_canonical, newsletter_since FROM users")
                    )
                ).all()
            )
        assert "language" in after["code_requests"]
        assert "newsletter_since" in after["users"]
        assert "rotated_at" in after["refresh_families"]  # 0009
        # A subscription older than the column counts from the account's creation.
        reader = since["reader@example.org"]
        # Raw SQL on SQLite reads back the stored text.
        assert as_utc(datetime.fromisoformat(reader) if isinstance(reader, str) else reader) == (
            created
        )
        assert since["quiet@example.org"] is None
        async with database.engine.begin() as connection:
            down = await connection.run_sync(migrate, "0007")
        assert "language" not in down["code_requests"]
        assert "newsletter_since" not in down["users"]
        assert "rotated_at" not in down["refresh_families"]
        async with database.engine.begin() as connection:
            await connection.run_sync(migrate, "head")
    finally:
        await database.dispose()


def test_migrations_directory_ships_with_the_package() -> None:
    from services.auth import commands

    assert (Path(commands.__file__).parent / "migrations" / "versions" / "0001_initial.py").exists()


async def test_the_dead_letter_migration_goes_down_and_up_again(database_url: str) -> None:
    from services.auth import commands

    database = Database(database_url)
    config = alembic_config(Path(commands.__file__).parent / "migrations", database_url)

    def outbox(*extra: str) -> sa.TableClause:
        tz = sa.DateTime(timezone=True)
        columns = [
            sa.column("id", sa.Uuid()),
            sa.column("recipient", sa.String()),
            sa.column("subject", sa.String()),
            sa.column("text_body", sa.Text()),
            sa.column("html_body", sa.Text()),
            sa.column("created_at", tz),
            sa.column("attempts", sa.Integer()),
            sa.column("next_attempt_at", tz),
            sa.column("sent_at", tz),
        ]
        return sa.table("outbox_messages", *columns, *(sa.column(name, tz) for name in extra))

    now = datetime.now(UTC)

    def row(recipient: str, subject: str, **values: Any) -> dict[str, Any]:
        base = {
            "id": uuid.uuid4(),
            "recipient": recipient,
            "subject": subject,
            "text_body": "Verification code: 123456",
            "html_body": "<p>123456</p>",
            "created_at": now,
            "attempts": 0,
            "next_attempt_at": now,
            "sent_at": None,
        }
        return {**base, **values}

    def migrate(connection: Connection, revision: str) -> dict[str, set[str]]:
        config.attributes["connection"] = connection
        if revision == "head":
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)
        found = inspect(connection)
        return {
            name: {c["name"] for c in found.get_columns(name)} for name in found.get_table_names()
        }

    def contents(connection: Connection) -> dict[str, tuple[Any, ...]]:
        columns = ["recipient", "kind", "text_body", "html_body", "dead_at"]
        query = sa.text(f"SELECT {', '.join(columns)} FROM outbox_messages")
        return {found[0]: tuple(found[1:]) for found in connection.execute(query)}

    try:
        async with database.engine.begin() as connection:
            await connection.execute(
                outbox("dead_at").insert(),
                [
                    row("dead@example.org", "Reset password", text_body=None, html_body=None)
                    | {"dead_at": now}
                ],
            )
            before = await connection.run_sync(migrate, "0003")
        assert not {"kind", "dead_at", "relay_attempts", "retried_at"} & before["outbox_messages"]
        assert "registration_contested" not in before["users"]  # 0005 went down first
        old = outbox()
        async with database.engine.begin() as connection:
            # The dead message is gone: the old schema would have retried it forever.
            left = await connection.execute(sa.select(sa.func.count()).select_from(old))
            assert left.scalar() == 0
            await connection.execute(
                old.insert(),
                [
                    row("sent@example.org", "Your password has been updated", sent_at=now),
                    row("waiting@example.org", "Check your inbox and enter verification code"),
                    row("odd@example.org", "Something else"),
                ],
            )
            after = await connection.run_sync(migrate, "head")
            found = await connection.run_sync(contents)
        assert after["outbox_messages"] >= {"kind", "dead_at", "relay_attempts", "retried_at"}
        assert "registration_contested" in after["users"]
        assert found["sent@example.org"][:3] == ("password_changed", None, None)
        assert found["waiting@example.org"][:2] == (
            "verification_code",
            "Verification code: 123456",
        )
        assert found["odd@example.org"][0] == "other"
    finally:
        await database.dispose()
