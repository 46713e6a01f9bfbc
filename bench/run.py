"""`make bench`: the product against its limits and its nearest peer, one run, one machine.

Every server runs single-process on loopback (uvicorn with uvloop and httptools, no access log,
the same flags for each) pinned to one core, wrk pinned to the other; the bench starts each
process and stops it by PID. The table is printed and written to bench/results.md.

    .venv/bin/python bench/run.py                 # full run (10 s a row, 1 GiB file, peer)
    .venv/bin/python bench/run.py --smoke         # seconds: CI keeps the harness from rotting
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from loadgen import (
    Measurement,
    combine,
    parse_probe,
    prober_command,
    run_wrk,
    wrk_command,
    wrk_script,
)
from machine import describe_machine
from processes import Pinning, Process, ProcessGroup, clean_env, wait_http
from report import Row, render_table, rows_as_json, write_results

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PROJECT_PYTHON = Path(sys.executable)
PEER_VENV = BENCH_DIR / "work" / "peer-venv"
PEER_REQUIREMENTS = ("fastapi-users[sqlalchemy]", "uvicorn[standard]", "aiosqlite", "asyncpg")
POSTGRES_URL = os.environ.get(
    "NATOMEDIA_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DATABASES = ("auth", "media", "news", "peer")
SECRET_NAME = re.compile(r"KEY|SECRET|PASSWORD|TOKEN", re.I)

EMAIL = "bench.reader@example.org"
PASSWORD = "Bench-Reader-2024!x"
NEWS_PATH = "/v1/news/articles?limit=20"
GIB = 1024**3

UVICORN_FLAGS = (
    "--host",
    "127.0.0.1",
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--no-access-log",
    "--log-level",
    "warning",
    "--no-proxy-headers",
    "--lifespan",
    "on",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Skipped(Exception):
    """A row this run does not measure (smoke mode); the message says why."""


@dataclass
class Ports:
    auth: int
    media: int
    media_stream: int
    news: int
    token_open: int
    token_protected: int
    bare: int
    peer: int
    static: int
    gateway: int

    @classmethod
    def allocate(cls) -> Ports:
        # All bound at once so no two of them can be the same port.
        sockets = []
        try:
            for _ in range(10):
                sock = socket.socket()
                sock.bind(("127.0.0.1", 0))
                sockets.append(sock)
            return cls(*(int(sock.getsockname()[1]) for sock in sockets))
        finally:
            for sock in sockets:
                sock.close()


@dataclass
class Options:
    smoke: bool
    duration: float
    threads: int
    connections: int
    file_size: int
    with_peer: bool
    workdir: Path
    output: Path
    json_output: Path | None
    profile: bool = False
    # Argon2 answers in tens of milliseconds: a one-second smoke row with 32 logins in flight
    # may finish none, so smoke mode logs in over fewer connections for longer.
    login_connections: int = 32
    login_duration: float = 10.0
    # The login rows (ours and the peer's) are measured in turns: `login_rounds` slices each of
    # `login_slice` seconds.
    login_rounds: int = 4
    login_slice: float = 5.0
    database: str = "sqlite"
    # Row-key prefixes to measure (`news`, `video`, `token`, `me`, `login`, `storm`, `file`).
    only: tuple[str, ...] = ()


@dataclass
class Turn:
    """A row measured in slices, in turns with others (`Bench.measure_in_turns`)."""

    key: str
    label: str
    run: Callable[[float], Measurement]  # one slice of the given seconds
    server: str
    reference: str | None = None
    target: tuple[str, float] | None = None


@dataclass
class State:
    """What the setup learned and the rows share."""

    video_path: str = ""
    news_body: bytes = b""
    video_body: bytes = b""
    access_token: str = ""
    download_path: str = ""
    direct_file_path: str = ""
    file_label: str = ""
    peer_token: str = ""
    gateway_source: str = ""
    notes: list[str] = field(default_factory=list)


def http(
    method: str,
    url: str,
    *,
    json_body: object | None = None,
    form: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, dict[str, str], bytes]:
    data = None
    sent = dict(headers or {})
    if json_body is not None:
        data = json.dumps(json_body).encode()
        sent["Content-Type"] = "application/json"
    elif form is not None:
        data = urllib.parse.urlencode(form).encode()
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=data, headers=sent, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            headers = {name.lower(): value for name, value in response.headers.items()}
            return response.status, headers, response.read()
    except urllib.error.HTTPError as exc:
        headers = {name.lower(): value for name, value in exc.headers.items()}
        return exc.code, headers, exc.read()


def expect(status: int, body: bytes, wanted: int, what: str) -> None:
    if status != wanted:
        raise RuntimeError(f"{what}: HTTP {status} (wanted {wanted}): {body[:300]!r}")


class Bench:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.pinning = Pinning.detect()
        self.work = options.workdir
        self.data = self.work / "data"
        self.ports = Ports.allocate()
        self.group = ProcessGroup(self.work / "logs", self.pinning)
        self.state = State()
        self.rows: list[Row] = []
        self.servers: dict[str, Process] = {}
        self.sink: object | None = None
        self.argon2: dict[str, int] = {}

    # ----------------------------------------------------------------- environment
    def base(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"

    def service_env(self, **extra: str) -> dict[str, str]:
        assert self.sink is not None
        # The caller's service settings pass through (`AUTH_HASHING_THREADS=1 make bench` tries a
        # configuration); the database and what the bench must control are set below.
        passed = {
            name: value
            for name, value in os.environ.items()
            if name.startswith(("AUTH_", "MEDIA_", "NEWS_")) and not name.endswith("DATABASE_URL")
        }
        return clean_env(
            {
                **passed,
                "NATOMEDIA_ENV": "development",
                "NATOMEDIA_DATA_DIR": str(self.data),
                "NATOMEDIA_LOG_LEVEL": "WARNING",
                "PUBLIC_BASE_URL": self.base(self.ports.gateway),
                "JWKS_URL": f"{self.base(self.ports.auth)}/.well-known/jwks.json",
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(self.sink.port),  # type: ignore[attr-defined]
                # The storm measures hashing and the event loop, not the login limiter (which
                # still runs its check on every request).
                "AUTH_LOGIN_RATE_LIMIT": "1000000/minute",
                "AUTH_REGISTER_RATE_LIMIT": "1000/minute",
                "MEDIA_DOWNLOAD_URL_RATE_LIMIT": "100000/minute",
                **self.database_env(),
                **extra,
            }
        )

    def database_url(self, name: str) -> str:
        if self.options.database == "sqlite":
            return f"sqlite+aiosqlite:///{(self.data / f'{name}.sqlite3').resolve()}"
        base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        return f"{base}/bench_{name}"

    def database_env(self) -> dict[str, str]:
        if self.options.database == "sqlite":
            return {}  # the services' own default: SQLite files under the data dir
        return {
            f"{name.upper()}_DATABASE_URL": self.database_url(name)
            for name in ("auth", "media", "news")
        }

    def postgres(self, statement: str) -> None:
        import asyncio

        import asyncpg

        async def run() -> None:
            connection = await asyncpg.connect(POSTGRES_URL, timeout=10)
            try:
                for name in DATABASES:
                    await connection.execute(statement.format(name=f"bench_{name}"))
            finally:
                await connection.close()

        asyncio.run(run())

    def uvicorn(
        self, name: str, target: str, port: int, env: Mapping[str, str], *, factory: bool
    ) -> Process:
        argv = [str(PROJECT_PYTHON), "-m", "uvicorn", *UVICORN_FLAGS, "--port", str(port)]
        if factory:
            argv.append("--factory")
        argv += ["--app-dir", str(BENCH_DIR), target]
        process = self.group.start(name, argv, env, cwd=ROOT)
        self.servers[name] = process
        return process

    def ready(self, name: str, url: str) -> None:
        wait_http(url, self.servers[name])

    # ----------------------------------------------------------------- setup
    def setup(self) -> None:
        from services.auth.config import AuthSettings
        from services.gateway.mail_sink import MailSink

        if self.work.exists():
            shutil.rmtree(self.work)
        self.data.mkdir(parents=True)
        if self.options.database == "postgresql":
            self.postgres('DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self.postgres('CREATE DATABASE "{name}"')
        sink = MailSink("127.0.0.1", free_port(), self.work / "mail")
        sink.start()
        self.sink = sink
        defaults = AuthSettings()
        self.argon2 = {
            "memory_cost": defaults.argon2_memory_cost,
            "time_cost": defaults.argon2_rounds,
            "parallelism": defaults.argon2_parallelism,
        }
        self.prepare_file()
        self.step("migrate, seed, ingest", self.prepare_data)

        services = {
            "auth": (self.ports.auth, self.service_env()),
            "news": (self.ports.news, self.service_env()),
            "media": (self.ports.media, self.service_env(MEDIA_ACCEL_REDIRECT="true")),
            "media-stream": (
                self.ports.media_stream,
                self.service_env(MEDIA_ACCEL_REDIRECT="false"),
            ),
        }
        for name, (port, env) in services.items():
            module = name.split("-")[0]
            self.uvicorn(name, f"services.{module}.app:create_app", port, env, factory=True)
        started = time.monotonic()
        for name, (port, _) in services.items():
            self.ready(name, f"{self.base(port)}/healthz")
        print(f"[bench] start services: {time.monotonic() - started:.1f} s", flush=True)

        self.step("fetch bodies", self.fetch_bodies)
        self.step("start bare and token apps", self.start_bare_and_token_app)
        self.step("start nginx", self.start_nginx)
        self.step("create account", self.create_account)
        self.step("ingest and sign the file", self.locate_download)

    def step(self, name: str, action: Callable[[], object]) -> None:
        started = time.monotonic()
        action()
        print(f"[bench] {name}: {time.monotonic() - started:.1f} s", flush=True)

    def prepare_file(self) -> None:
        size = self.options.file_size
        self.state.file_label = (
            f"{size / GIB:g} GiB" if size >= GIB else f"{size / 1024**2:g} MiB"
        ) + " sparse file"
        path = self.work / "bench-video.mp4"
        with path.open("wb") as handle:
            handle.truncate(size)
        self.big_file = path

    def fetch_bodies(self) -> None:
        status, _, body = http("GET", self.base(self.ports.news) + NEWS_PATH)
        expect(status, body, 200, "news page")
        self.state.news_body = body
        status, _, listing = http("GET", self.base(self.ports.media) + "/v1/media/videos?limit=1")
        expect(status, listing, 200, "video list")
        items = json.loads(listing)["items"]
        if not items:
            raise RuntimeError("the media catalogue is empty after seeding")
        self.state.video_path = f"/v1/media/videos/{items[0]['id']}"
        status, _, body = http("GET", self.base(self.ports.media) + self.state.video_path)
        expect(status, body, 200, "video detail")
        self.state.video_body = body

    def start_bare_and_token_app(self) -> None:
        static = self.work / "static"
        manifest = {}
        for path, body in (
            (NEWS_PATH.split("?")[0], self.state.news_body),
            (self.state.video_path, self.state.video_body),
        ):
            target = static / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
            manifest[path] = str(target)
        (self.work / "bare-manifest.json").write_text(json.dumps(manifest))
        bare_env = clean_env({"BENCH_BARE_MANIFEST": str(self.work / "bare-manifest.json")})
        self.uvicorn("bare", "bare_app:app", self.ports.bare, bare_env, factory=False)
        token_apps = {"open": self.ports.token_open, "protected": self.ports.token_protected}
        for route, port in token_apps.items():
            env = self.service_env(
                BENCH_TOKEN_APP_BODY=manifest[self.state.video_path], BENCH_TOKEN_APP_ROUTE=route
            )
            self.uvicorn(f"token-{route}", "token_app:create_app", port, env, factory=True)
        self.ready("bare", self.base(self.ports.bare) + "/")
        for route, port in token_apps.items():
            self.ready(f"token-{route}", self.base(port) + "/healthz")

    def storage_dir(self) -> Path:
        from services.media.config import MediaSettings

        return MediaSettings(NATOMEDIA_DATA_DIR=str(self.data)).resolved_storage_dir.resolve()

    def start_nginx(self) -> None:
        from services.gateway.nginx.config import local_config, render
        from services.media.config import MediaSettings

        nginx = find_tool("nginx") or "nginx"
        static_work = self.work / "nginx-static"
        static_work.mkdir(parents=True, exist_ok=True)
        values = {
            "USER_LINE": "user root;" if os.geteuid() == 0 else "",
            "WORK": str(static_work),
            "STATIC_ROOT": str((self.work / "static").resolve()),
            "STORAGE_DIR": str(self.storage_dir()),
            "STATIC_PORT": str(self.ports.static),
        }
        config = (BENCH_DIR / "nginx" / "static.conf.template").read_text()
        for name, value in values.items():
            config = config.replace(f"@{name}@", value)
        (static_work / "nginx.conf").write_text(config)
        static = self.group.start(
            "nginx-static",
            [nginx, "-p", str(static_work), "-c", str(static_work / "nginx.conf")],
            clean_env({}),
        )
        self.servers["nginx-static"] = static

        # The product's gateway exactly as `natomedia stack` renders it, upstreams on our ports.
        gateway_work = self.work / "nginx-gateway"
        gateway_config = local_config(
            port=self.ports.gateway,
            upstreams={
                "auth": [f"127.0.0.1:{self.ports.auth}"],
                "media": [f"127.0.0.1:{self.ports.media}"],
                "news": [f"127.0.0.1:{self.ports.news}"],
            },
            media_root=self.storage_dir(),
            run_dir=gateway_work,
            accel_prefix=MediaSettings(NATOMEDIA_DATA_DIR=str(self.data)).accel_prefix,
        )
        Path(gateway_config.temp_dir).mkdir(parents=True, exist_ok=True)
        (gateway_work / "nginx.conf").write_text(render(gateway_config))
        self.state.gateway_source = (
            "services/gateway/nginx/gateway.conf.template rendered by local_config() "
            "(as `natomedia stack`), 1 worker, access log on"
        )
        gateway = self.group.start(
            "nginx-gateway",
            [
                nginx,
                "-p",
                str(gateway_work),
                "-c",
                str(gateway_work / "nginx.conf"),
                "-e",
                gateway_config.error_log,
                "-g",
                "daemon off;",
            ],
            clean_env({}),
        )
        self.servers["nginx-gateway"] = gateway
        wait_http(self.base(self.ports.static) + "/", static)
        wait_http(self.base(self.ports.gateway) + "/v1/news/healthz", gateway)

    def create_account(self) -> None:
        auth = self.base(self.ports.auth)
        status, _, body = http(
            "POST", f"{auth}/v1/auth/register", json_body={"email": EMAIL, "password": PASSWORD}
        )
        expect(status, body, 202, "register")
        deadline = time.monotonic() + 30
        code = None
        while code is None and time.monotonic() < deadline:
            mails = self.sink.to(EMAIL)  # type: ignore[attr-defined]
            code = next((mail.code for mail in mails if mail.code), None)
            time.sleep(0.1)
        if code is None:
            raise RuntimeError("no verification code arrived at the mail sink within 30 s")
        status, _, body = http(
            "POST", f"{auth}/v1/auth/verify", json_body={"email": EMAIL, "code": code}
        )
        expect(status, body, 200, "verify")
        self.login()

    def login(self) -> None:
        status, _, body = http(
            "POST",
            f"{self.base(self.ports.auth)}/v1/auth/login",
            json_body={"email": EMAIL, "password": PASSWORD},
        )
        expect(status, body, 200, "login")
        self.state.access_token = json.loads(body)["access_token"]

    def prepare_data(self) -> None:
        completed = subprocess.run(
            [
                str(PROJECT_PYTHON),
                str(BENCH_DIR / "prepare_data.py"),
                str(self.big_file),
                "--title",
                "Bench sparse file",
            ],
            env=self.service_env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"prepare_data failed:\n{completed.stdout}\n{completed.stderr}")
        found = dict(re.findall(r"^(video|rendition) (\S+)", completed.stdout, re.M))
        if set(found) != {"video", "rendition"}:
            raise RuntimeError(f"ingest printed no ids:\n{completed.stdout}")
        self.ingested = (found["video"], found["rendition"])
        # The copy in storage is what is served; the source is not needed any more.
        self.big_file.unlink()

    def locate_download(self) -> None:
        media = self.base(self.ports.media)
        video_id, rendition_id = self.ingested
        status, _, body = http(
            "POST",
            f"{media}/v1/media/videos/{video_id}/renditions/{rendition_id}/download-url",
            headers={"Authorization": f"Bearer {self.state.access_token}"},
        )
        expect(status, body, 200, "download url")
        url = urllib.parse.urlsplit(json.loads(body)["url"])
        self.state.download_path = f"{url.path}?{url.query}" if url.query else url.path
        storage = self.storage_dir()
        stored = [
            path
            for path in storage.rglob(f"*{rendition_id}*")
            if path.is_file() and path.stat().st_size == self.options.file_size
        ]
        if not stored:
            raise RuntimeError(f"no stored file for rendition {rendition_id} under {storage}")
        self.state.direct_file_path = "/direct-media/" + stored[0].relative_to(storage).as_posix()

    # ----------------------------------------------------------------- peer
    def peer_python(self) -> Path:
        python = PEER_VENV / "bin" / "python"
        if not python.exists():
            print("[bench] installing the peer (fastapi-users) into", PEER_VENV, flush=True)
            subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        probe = "import fastapi_users, uvicorn, uvloop, httptools, aiosqlite, asyncpg"
        if subprocess.run([str(python), "-c", probe], capture_output=True).returncode != 0:
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", *PEER_REQUIREMENTS], check=True
            )
        return python

    def start_peer(self) -> None:
        if not self.options.with_peer:
            raise Skipped("skipped (smoke)")
        if "peer" in self.servers:
            return
        python = self.peer_python()
        database = (
            f"sqlite+aiosqlite:///{(self.work / 'peer.sqlite3').resolve()}"
            if self.options.database == "sqlite"
            else self.database_url("peer")
        )
        env = clean_env(
            {
                "PEER_DATABASE_URL": database,
                "PEER_SECRET": "bench-peer-secret-0123456789abcdef0123456789",
                "PEER_ARGON2_MEMORY_COST": str(self.argon2["memory_cost"]),
                "PEER_ARGON2_TIME_COST": str(self.argon2["time_cost"]),
                "PEER_ARGON2_PARALLELISM": str(self.argon2["parallelism"]),
            }
        )
        argv = [
            str(python),
            "-m",
            "uvicorn",
            *UVICORN_FLAGS,
            "--port",
            str(self.ports.peer),
            "--app-dir",
            str(BENCH_DIR),
            "peer_app:app",
        ]
        process = self.group.start("peer", argv, env, cwd=self.work)
        self.servers["peer"] = process
        peer = self.base(self.ports.peer)
        self.ready("peer", f"{peer}/healthz")
        status, _, body = http(
            "POST", f"{peer}/auth/register", json_body={"email": EMAIL, "password": PASSWORD}
        )
        expect(status, body, 201, "peer register")
        status, _, body = http(
            "POST", f"{peer}/auth/jwt/login", form={"username": EMAIL, "password": PASSWORD}
        )
        expect(status, body, 200, "peer login")
        self.state.peer_token = json.loads(body)["access_token"]

    # ----------------------------------------------------------------- measuring
    def wrk(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        script: Path | None = None,
        connections: int | None = None,
        threads: int | None = None,
        duration: float | None = None,
    ) -> Measurement:
        duration = duration or self.options.duration
        argv = wrk_command(
            url,
            duration=duration,
            threads=threads or self.options.threads,
            connections=connections or self.options.connections,
            headers=headers,
            script=script,
        )
        return run_wrk(argv, self.pinning.client, duration=duration)

    def check_same(
        self, url: str, expected: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        status, _, body = http("GET", url, headers=headers)
        expect(status, body, 200, url)
        if body != expected:
            raise RuntimeError(f"{url} returned different bytes ({len(body)} vs {len(expected)})")

    def json_rows(self, kind: str, path: str, body: bytes) -> None:
        bare = self.base(self.ports.bare) + path
        static = self.base(self.ports.static) + path
        direct = self.base(self.ports.news if kind == "news" else self.ports.media) + path
        gateway = self.base(self.ports.gateway) + path
        label = "GET /v1/news/articles?limit=20" if kind == "news" else "GET /v1/media/videos/{id}"
        size = f"{len(body)} B"

        def same_then_wrk(
            url: str, headers: Mapping[str, str] | None = None
        ) -> Callable[[], Measurement]:
            def run() -> Measurement:
                self.check_same(url, body, headers)
                return self.wrk(url, headers=headers)

            return run

        self.measure(f"{kind}.nginx", f"{label}: nginx static, same {size}", same_then_wrk(static))
        self.measure(
            f"{kind}.bare",
            f"{label}: bare ASGI, same bytes",
            same_then_wrk(bare),
            reference=f"{kind}.nginx",
        )
        self.measure(
            f"{kind}.direct",
            f"{label}: service direct",
            same_then_wrk(direct),
            reference=f"{kind}.bare",
            target=(">=", 0.30),
            server=kind if kind == "news" else "media",
        )
        self.measure(
            f"{kind}.gateway",
            f"{label}: through nginx gateway",
            same_then_wrk(gateway),
            reference=f"{kind}.direct",
            target=(">=", 0.85),
        )
        # Whoever sends a token is never served from a cache, by nginx or by the service: these
        # two rows show what proxying itself costs, which the cached rows above hide.
        bearer = {"Authorization": f"Bearer {self.state.access_token}"}
        self.measure(
            f"{kind}.direct-uncached",
            f"{label} with a token (never cached): service direct",
            same_then_wrk(direct, bearer),
            server=kind if kind == "news" else "media",
        )
        self.measure(
            f"{kind}.gateway-uncached",
            f"{label} with a token (never cached): through nginx gateway",
            same_then_wrk(gateway, bearer),
            reference=f"{kind}.direct-uncached",
            target=(">=", 0.85),
        )

    def token_rows(self) -> None:
        open_url = self.base(self.ports.token_open) + "/v1/media/bench/read"
        protected_url = self.base(self.ports.token_protected) + "/v1/media/bench/read"
        bearer = {"Authorization": f"Bearer {self.state.access_token}"}

        def open_read() -> Measurement:
            self.check_same(open_url, self.state.video_body)
            return self.wrk(open_url, headers=bearer)

        def protected_read() -> Measurement:
            status, _, body = http("GET", protected_url)
            expect(status, body, 401, "protected read without a token")
            self.check_same(protected_url, self.state.video_body, bearer)
            return self.wrk(protected_url, headers=bearer)

        self.measure(
            "token.open",
            "media-style read, no auth (bench token_app, same header sent)",
            open_read,
            server="token-open",
        )
        self.measure(
            "token.protected",
            "same read with Security(principal) (ES256 JWT, common verifier)",
            protected_read,
            reference="token.open",
            target=(">=", 0.90),
            server="token-protected",
        )

    def auth_rows(self) -> None:
        auth = self.base(self.ports.auth)
        peer = self.base(self.ports.peer)

        def our_me() -> Measurement:
            self.login()
            bearer = {"Authorization": f"Bearer {self.state.access_token}"}
            status, _, body = http("GET", f"{auth}/v1/auth/me", headers=bearer)
            expect(status, body, 200, "GET /v1/auth/me")
            return self.wrk(f"{auth}/v1/auth/me", headers=bearer)

        def peer_me() -> Measurement:
            self.start_peer()
            bearer = {"Authorization": f"Bearer {self.state.peer_token}"}
            status, _, body = http("GET", f"{peer}/users/me", headers=bearer)
            expect(status, body, 200, "peer GET /users/me")
            return self.wrk(f"{peer}/users/me", headers=bearer)

        self.measure("me.peer", "fastapi-users GET /users/me (peer)", peer_me, server="peer")
        self.measure(
            "me.ours",
            "GET /v1/auth/me",
            our_me,
            reference="me.peer",
            target=(">=", 5.0),
            server="auth",
        )

        ours_script = wrk_script(
            self.work / "login-ours.lua",
            method="POST",
            body=json.dumps({"email": EMAIL, "password": PASSWORD}),
            headers={"Content-Type": "application/json"},
        )
        peer_script = wrk_script(
            self.work / "login-peer.lua",
            method="POST",
            body=urllib.parse.urlencode({"username": EMAIL, "password": PASSWORD}),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

        connections = self.options.login_connections

        def peer_login(duration: float) -> Measurement:
            self.start_peer()
            return self.wrk(
                f"{peer}/auth/jwt/login",
                script=peer_script,
                connections=connections,
                duration=duration,
            )

        def our_login(duration: float) -> Measurement:
            return self.wrk(
                f"{auth}/v1/auth/login",
                script=ours_script,
                connections=connections,
                duration=duration,
            )

        cost = self.argon2
        argon = f"Argon2id m={cost['memory_cost']} t={cost['time_cost']} p={cost['parallelism']}"
        self.measure_in_turns(
            [
                Turn("login.peer", f"fastapi-users login (peer), {argon}", peer_login, "peer"),
                Turn(
                    "login.ours",
                    f"POST /v1/auth/login, {argon}",
                    our_login,
                    "auth",
                    reference="login.peer",
                    # A guard, not a goal: both logins are one Argon2id hash, so equal is the limit.
                    target=(">=", 0.9),
                ),
            ],
            rounds=self.options.login_rounds,
        )

        def storm(
            health_url: str, login_url: str, script: Path, *, peer: bool
        ) -> Callable[[], Measurement]:
            def run() -> Measurement:
                if peer:
                    self.start_peer()
                duration = self.options.login_duration
                storm_argv = wrk_command(
                    login_url,
                    duration=duration + 1,
                    threads=self.options.threads,
                    connections=self.options.login_connections,
                    script=script,
                )
                stormer = subprocess.Popen(
                    [*self.pinning.client, *storm_argv],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                try:
                    time.sleep(0.5)
                    probe = subprocess.run(
                        [
                            *self.pinning.client,
                            *prober_command(health_url, duration=duration, interval_ms=10),
                        ],
                        capture_output=True,
                        text=True,
                        timeout=duration + 60,
                        check=True,
                    )
                    out, _ = stormer.communicate(timeout=duration + 120)
                finally:
                    if stormer.poll() is None:
                        stormer.kill()
                        stormer.wait()
                from loadgen import parse_wrk

                logins = parse_wrk(out)
                result = parse_probe(probe.stdout)
                note = f"{logins.requests_per_s:.1f} logins/s meanwhile"
                if logins.errors:
                    note += f" ({logins.detail})"
                return Measurement(
                    requests_per_s=result.requests_per_s,
                    p50_ms=result.p50_ms,
                    p99_ms=result.p99_ms,
                    bytes_per_s=0.0,
                    requests=result.requests,
                    errors=result.errors + logins.errors,
                    detail="; ".join(filter(None, [result.detail, note])),
                )

            return run

        self.measure(
            "storm.peer",
            f"peer /healthz while {self.options.login_connections} connections log in",
            storm(f"{peer}/healthz", f"{peer}/auth/jwt/login", peer_script, peer=True),
            metric="p99",
        )
        self.measure(
            "storm.ours",
            f"auth /healthz while {self.options.login_connections} connections log in",
            storm(f"{auth}/healthz", f"{auth}/v1/auth/login", ours_script, peer=False),
            reference="storm.peer",
            metric="p99",
            target=("p99<", 50.0),
            server="auth",
        )

    def file_rows(self) -> None:
        label = self.state.file_label
        media = self.servers["media"]
        streamer = self.servers["media-stream"]

        def download(url: str, process: Process | None) -> Callable[[], Measurement]:
            def run() -> Measurement:
                status, headers, _ = http("HEAD", url)
                expect(status, b"", 200, f"HEAD {url}")
                length = int(headers.get("content-length", "-1"))
                if length != self.options.file_size:
                    raise RuntimeError(f"{url} announces {length} bytes")
                if process is not None:
                    process.reset_peak_rss()
                before = process.status_kib("VmRSS") if process else None
                # One stream, as one user downloads: its throughput and the server's memory.
                result = self.wrk(url, connections=1, threads=1)
                peak = process.status_kib("VmHWM") if process else None
                note = result.detail
                if process is not None and peak is not None:
                    note = "; ".join(
                        filter(
                            None,
                            [
                                note,
                                f"{process.name} RSS {before / 1024:.0f} MiB before, "
                                f"peak {peak / 1024:.0f} MiB",
                            ],
                        )
                    )
                return Measurement(
                    requests_per_s=result.requests_per_s,
                    p50_ms=result.p50_ms,
                    p99_ms=result.p99_ms,
                    bytes_per_s=result.bytes_per_s,
                    requests=result.requests,
                    errors=result.errors,
                    detail=note,
                )

            return run

        static = self.base(self.ports.static) + self.state.direct_file_path
        gateway = self.base(self.ports.gateway) + self.state.download_path
        stream = self.base(self.ports.media_stream) + self.state.download_path
        self.measure(
            "file.nginx", f"{label}: nginx directly", download(static, None), metric="mbps"
        )
        self.measure(
            "file.gateway",
            f"{label}: gateway, X-Accel-Redirect (media signs)",
            download(gateway, media),
            reference="file.nginx",
            metric="mbps",
            target=(">=", 0.90),
        )
        self.measure(
            "file.app",
            f"{label}: streamed by the media app (dev mode, no accel)",
            download(stream, streamer),
            reference="file.nginx",
            metric="mbps",
            server="media-stream",
        )

    def measure(
        self,
        key: str,
        label: str,
        run: Callable[[], Measurement],
        *,
        reference: str | None = None,
        metric: str = "rps",
        target: tuple[str, float] | None = None,
        server: str | None = None,
    ) -> None:
        if not self.selected(key):
            return
        row = Row(key=key, label=label, reference=reference, metric=metric, target=target)
        self.rows.append(row)
        print(f"[bench] {label} ...", flush=True)
        self.settle()

        def measured() -> Measurement:
            if self.options.profile and server is not None:
                if server == "peer":
                    self.start_peer()
                return self.profiled(key, server, run)
            return run()

        row.measurement = self.attempt(row, measured)

    def selected(self, key: str) -> bool:
        """Whether `--only` asks for this row (all rows without it)."""
        return not self.options.only or key.split(".")[0] in self.options.only

    def attempt(self, row: Row, run: Callable[[], Measurement]) -> Measurement | None:
        """Run one measurement of `row`; on failure or skip, say so in its status."""
        try:
            measurement = run()
            # A 1 GiB download may not finish within a row: bytes moved are what count there.
            moved = measurement.bytes_per_s if row.metric == "mbps" else measurement.requests
            if not moved:
                raise RuntimeError("nothing was answered within the row's duration")
            row.status = "ok"
            return measurement
        except Skipped as exc:
            row.status = str(exc)
        except Exception as exc:
            row.status = f"error: {exc}".splitlines()[0][:200]
            (self.work / "logs").mkdir(parents=True, exist_ok=True)
            with (self.work / "logs" / "errors.log").open("a") as log:
                log.write(f"== {row.key}\n{traceback.format_exc()}\n")
        return None

    def measure_in_turns(self, turns: Sequence[Turn], *, rounds: int) -> None:
        """Measure rows in turns, a slice each per round (A B A B ...), each summed over its slices.

        On this kind of VM a core's speed drifts: the same Argon2id verification took 15.1 to
        18.1 ms in consecutive 15 s runs. Two rows measured one after the other can each catch
        a different phase; in turns, both see the same drift, so their ratio does not.
        """
        turns = [turn for turn in turns if self.selected(turn.key)]
        if self.options.profile:  # py-spy samples one server over one whole row
            for turn in turns:
                self.measure(
                    turn.key,
                    turn.label,
                    lambda turn=turn: turn.run(self.options.login_duration),
                    reference=turn.reference,
                    target=turn.target,
                    server=turn.server,
                )
            return
        rows = [
            Row(key=t.key, label=t.label, reference=t.reference, target=t.target) for t in turns
        ]
        self.rows.extend(rows)
        slices: list[list[Measurement]] = [[] for _ in turns]
        seconds = self.options.login_slice
        for round_number in range(1, rounds + 1):
            for turn, row, taken in zip(turns, rows, slices, strict=True):
                if row.status not in ("not run", "ok"):
                    continue  # skipped or failed in an earlier round
                print(f"[bench] {turn.label} (slice {round_number}/{rounds}) ...", flush=True)
                self.settle()
                measurement = self.attempt(row, lambda turn=turn: turn.run(seconds))
                if measurement is not None:
                    taken.append(measurement)
        for row, taken in zip(rows, slices, strict=True):
            if row.status == "ok":
                row.measurement = combine(taken)

    def settle(self, quiet_for: float = 0.5, limit: float = 30.0) -> None:
        """Wait until no server is still busy with the previous row's load.

        A server whose event loop was blocked (the peer hashes on its loop) goes on answering
        the requests wrk left in flight after wrk has gone; on a shared core that work would be
        charged to the next row.
        """
        deadline = time.monotonic() + limit
        before = sum(process.cpu_seconds() for process in self.servers.values())
        while time.monotonic() < deadline:
            time.sleep(quiet_for)
            now = sum(process.cpu_seconds() for process in self.servers.values())
            # Idle servers still tick over (timers, pollers): a few percent of a core is quiet.
            if now - before < 0.05 * quiet_for:
                return
            before = now
        print("[bench] servers still busy after the previous row; measuring anyway", flush=True)

    def profiled(self, key: str, server: str, run: Callable[[], Measurement]) -> Measurement:
        py_spy = BENCH_DIR / "work" / "tools" / "bin" / "py-spy"
        if not py_spy.exists():
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--target",
                    str(py_spy.parents[1]),
                    "py-spy",
                ],
                check=True,
            )
        slow = key.startswith(("login", "storm"))
        duration = self.options.login_duration if slow else self.options.duration
        out = self.work / "profiles" / f"{key}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        sampler = subprocess.Popen(
            [
                *self.pinning.client,
                str(py_spy),
                "record",
                "--pid",
                str(self.servers[server].pid),
                "--duration",
                str(max(1, round(duration))),
                "--rate",
                "200",
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            return run()
        finally:
            _, err = sampler.communicate(timeout=duration + 60)
            if sampler.returncode != 0:
                print(f"[bench] py-spy on {server} failed: {err.decode()[-500:]}", flush=True)

    def run(self) -> int:
        setup_error = None
        try:
            self.setup()
        except Exception as exc:
            setup_error = exc
            traceback.print_exc()
        if setup_error is None:
            self.json_rows("news", NEWS_PATH, self.state.news_body)
            self.json_rows("video", self.state.video_path, self.state.video_body)
            self.token_rows()
            self.auth_rows()
            self.file_rows()
        self.group.stop_all()
        if self.sink is not None:
            self.sink.stop()  # type: ignore[attr-defined]
        if self.options.database == "postgresql":
            self.postgres('DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        machine = describe_machine(self.pinning, PEER_VENV / "bin" / "python")
        table = render_table(self.rows)
        settings = {
            "mode": "smoke" if self.options.smoke else "full",
            "database": self.options.database + " (every service and the peer)",
            "duration": f"{self.options.duration:g} s per row",
            "load": f"wrk -t{self.options.threads} -c{self.options.connections} --latency; "
            f"logins -c{self.options.login_connections}, ours and the peer's in turns: "
            f"{self.options.login_rounds} slices of {self.options.login_slice:g} s each; "
            f"storm {self.options.login_duration:g} s; "
            "file rows -t1 -c1; storm bystander: one GET /healthz every 10 ms",
            "gateway": self.state.gateway_source or "not started",
            "argon2": json.dumps(self.argon2),
            "service settings from the environment": ", ".join(
                sorted(
                    f"{name}={'***' if SECRET_NAME.search(name) else value}"
                    for name, value in os.environ.items()
                    if name.startswith(("AUTH_", "MEDIA_", "NEWS_"))
                )
            )
            or "none (defaults)",
        }
        if setup_error is not None:
            settings["setup error"] = str(setup_error).splitlines()[0]
        text = write_results(self.options.output, table, machine, settings)
        if self.options.json_output is not None:
            self.options.json_output.write_text(
                json.dumps(
                    {"rows": rows_as_json(self.rows), "run": settings, "machine": machine},
                    indent=2,
                )
            )
        print(text)
        failed = setup_error is not None or any(row.status.startswith("error") for row in self.rows)
        return 1 if failed else 0


def find_tool(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(path) for path in (Path("/usr/sbin", name), Path("/sbin", name)) if path.exists()),
        None,
    )


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny durations and a small file")
    parser.add_argument("--duration", type=float, help="seconds per row (default 10, smoke 1)")
    parser.add_argument("--connections", type=int, help="wrk -c (default 32, smoke 4)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--file-size", type=int, help="bytes (default 1 GiB, smoke 4 MiB)")
    parser.add_argument(
        "--peer",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure fastapi-users (default: yes, except in smoke mode)",
    )
    parser.add_argument("--workdir", type=Path, default=BENCH_DIR / "work" / "run")
    parser.add_argument("--output", type=Path, help="default bench/results.md (smoke: workdir)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated row groups to measure, e.g. news,token (default: all)",
    )
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="what every service and the peer store in (postgresql: NATOMEDIA_BENCH_POSTGRES_URL,"
        " bench_* databases made and dropped by the run)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="attach py-spy to the server of each Python row; raw profiles in WORKDIR/profiles "
        "(numbers from such a run are not the bench's: the sampler shares the machine)",
    )
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()
    duration = args.duration or (1.0 if args.smoke else 10.0)
    # A smoke run must never overwrite the measured table the README quotes.
    default_output = workdir.parent / "results-smoke.md" if args.smoke else BENCH_DIR / "results.md"
    return Options(
        smoke=args.smoke,
        duration=duration,
        threads=args.threads,
        # Smoke rows last a second: 32 connections queued on one busy core may see no answer.
        connections=args.connections or (4 if args.smoke else 32),
        file_size=args.file_size or (4 * 1024**2 if args.smoke else GIB),
        with_peer=args.peer if args.peer is not None else not args.smoke,
        workdir=workdir,
        output=(args.output or default_output).resolve(),
        json_output=args.json.resolve() if args.json else None,
        profile=args.profile,
        database=args.database,
        only=tuple(group.strip() for group in args.only.split(",") if group.strip()),
        login_connections=args.connections or (4 if args.smoke else 32),
        login_duration=max(2.0, duration) if args.smoke else duration,
        login_rounds=1 if args.smoke else 4,
        login_slice=max(2.0, duration) if args.smoke else duration / 2,
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    missing = [tool for tool in ("wrk", "nginx") if not find_tool(tool)]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        # Debian's packages: the bench installs what it drives, as CI runs it on a fresh machine.
        print(f"[bench] installing {' '.join(missing)} with apt-get", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=False)
        missing = [tool for tool in missing if not find_tool(tool)]
    if missing:
        print(f"[bench] missing {' '.join(missing)}: apt-get install -y {' '.join(missing)}")
        return 2
    bench = Bench(options)
    try:
        return bench.run()
    finally:
        bench.group.stop_all()


if __name__ == "__main__":
    sys.exit(main())
