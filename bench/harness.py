"""What every part of a `make bench` run shares: its options, ports and state, the HTTP calls
it checks answers with, and `Harness`, which starts the servers and measures rows (wrk, settling,
turns, profiling). The row groups are in `rows_*.py`; `stack.py` prepares what they measure.
"""

from __future__ import annotations

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

from loadgen import Measurement, combine, run_wrk, wrk_command
from processes import Pinning, Process, ProcessGroup, clean_env, wait_http
from report import Row

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PROJECT_PYTHON = Path(sys.executable)
PEER_VENV = BENCH_DIR / "work" / "peer-venv"
PEER_REQUIREMENTS = ("fastapi-users[sqlalchemy]", "uvicorn[standard]", "aiosqlite", "asyncpg")
POSTGRES_URL = os.environ.get(
    "NATOMEDIA_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DATABASES = ("auth", "media", "news", "peer")
# Per run: two runs against one server (CI jobs, people sharing a machine) never drop each
# other's databases.
DATABASE_PREFIX = f"bench_{os.getpid()}_"
SECRET_NAME = re.compile(r"KEY|SECRET|PASSWORD|TOKEN", re.I)

ENGINE_NAMES = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}

EMAIL = "bench.reader@example.org"
EDITOR_EMAIL = "bench.editor@example.org"
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
    # PostgreSQL is what production runs on; SQLite is the development database.
    database: str = "postgresql"
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
    access_token: str = ""  # a reader's: no editor scope
    editor_token: str = ""
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


def find_tool(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(path) for path in (Path("/usr/sbin", name), Path("/sbin", name)) if path.exists()),
        None,
    )


class Harness:
    """The servers of one run and the measuring of its rows."""

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
        return f"{base}/{DATABASE_PREFIX}{name}"

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
                    await connection.execute(statement.format(name=f"{DATABASE_PREFIX}{name}"))
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
