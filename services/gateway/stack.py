"""`natomedia stack`: the production topology from a checkout, without Docker.

Each service runs as its own `natomedia serve` process (uvicorn) on its own loopback port, nginx
(Debian's package) sits in front with the repository's configuration, and everything talks to the
databases, Redis and SMTP server named by the environment. `Stack` is also the Python API the
end-to-end tests, the soak run and the benchmark use to start and stop that topology.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx

from services.gateway.nginx.config import GatewayConfig, local_config, render
from services.gateway.registry import SERVICE_NAMES

logger = logging.getLogger("natomedia.stack")

ACCEL_PREFIX = "/_protected_media/"
# A file being written by a `natomedia openapi` child, and that child.
PendingDocument = tuple[Path, "subprocess.Popen[bytes]", IO[bytes]]
DEFAULT_NGINX = "/usr/sbin/nginx"
STOP_GRACE_SECONDS = 10.0


class StackError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def find_nginx() -> str | None:
    """NATOMEDIA_NGINX, else nginx on PATH, else Debian's /usr/sbin/nginx (often not on PATH)."""
    configured = os.environ.get("NATOMEDIA_NGINX")
    if configured:
        return configured
    found = shutil.which("nginx")
    if found:
        return found
    return DEFAULT_NGINX if os.access(DEFAULT_NGINX, os.X_OK) else None


@dataclass
class ManagedProcess:
    """A child we started and will stop by its PID; its output goes to `log_path`."""

    name: str
    command: Sequence[str]
    log_path: Path
    ready_url: str | None = None
    stop_signal: signal.Signals = signal.SIGTERM
    # Added to the environment the stack gives every child (a replica's own data directory).
    extra_env: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)
    _terminated: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, env: Mapping[str, str], cwd: Path | None = None) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._terminated = False
        # A session of its own: a Ctrl-C in the terminal reaches the stack, which then stops its
        # children in order (gateway first), instead of reaching every child at once.
        self.process = subprocess.Popen(
            list(self.command),
            env={**env, **self.extra_env},
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, client: httpx.Client, deadline: float) -> None:
        if self.ready_url is None:
            return
        while True:
            if not self.running:
                raise StackError(f"{self.name} exited while starting:\n{self.log_tail()}")
            try:
                if client.get(self.ready_url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise StackError(f"{self.name} not ready at {self.ready_url}:\n{self.log_tail()}")
            time.sleep(0.1)

    def terminate(self) -> None:
        # Once only: a second SIGTERM makes uvicorn skip the app's shutdown (the mail sender's
        # clean stop, closing the database pool).
        if self.process is not None and self.process.poll() is None and not self._terminated:
            self.process.send_signal(self.stop_signal)
            self._terminated = True

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        self.terminate()
        if self.process is not None and self.process.poll() is None:
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass(frozen=True)
class Replica:
    service: str
    index: int
    port: int
    managed: ManagedProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def reachable_url(listen: str) -> str:
    """An http:// origin this machine can reach for an nginx `listen` value."""
    host, _, port = listen.rpartition(":")
    if host in ("", "*", "0.0.0.0", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def _python_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "services.gateway.cli", *args]


class Nginx:
    """nginx in the foreground with a rendered gateway config, no root and no system paths."""

    def __init__(self, config: GatewayConfig, run_dir: Path, binary: str | None = None) -> None:
        found = binary or find_nginx()
        if found is None:
            raise StackError("nginx not found: apt-get install nginx-light, or set NATOMEDIA_NGINX")
        self.binary = found
        self.config = config
        self.run_dir = run_dir
        self.config_path = run_dir / "nginx.conf"
        self.base_command = [
            self.binary,
            "-p",
            str(run_dir),
            "-c",
            str(self.config_path),
            "-e",
            config.error_log,
        ]
        self.managed = ManagedProcess(
            "nginx",
            [*self.base_command, "-g", "daemon off;"],
            run_dir / "logs" / "nginx.log",
            ready_url=f"{reachable_url(config.listen)}/healthz",
            # Graceful: requests in flight (a download, say) finish within the grace period.
            stop_signal=signal.SIGQUIT,
        )

    def write_config(self) -> Path:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        Path(self.config.temp_dir).mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render(self.config))
        return self.config_path

    def test_config(self) -> None:
        self.write_config()
        result = subprocess.run(
            [*self.base_command, "-t"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"nginx refused {self.config_path}:\n{result.stderr}")

    def start(self, env: Mapping[str, str], timeout: float = 30.0) -> None:
        self.test_config()
        self.managed.start(env)
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            try:
                self.managed.wait_ready(client, time.monotonic() + timeout)
            except StackError as exc:
                errors = Path(self.config.error_log)
                detail = errors.read_text()[-2000:] if errors.exists() else ""
                self.stop()
                raise StackError(f"{exc}\n{detail}") from exc

    def stop(self) -> None:
        self.managed.stop()


class Stack:
    """The services as separate processes behind nginx; start/stop, or use as a context manager.

    `env` is the environment every child gets (default: this process's). The stack adds what the
    topology needs: the services trust the gateway's client address, media hands files to nginx
    with X-Accel-Redirect, and media and news fetch the JWKS through the gateway.
    """

    def __init__(
        self,
        *,
        port: int = 8000,
        host: str = "127.0.0.1",
        auth_replicas: int = 1,
        media_replicas: int = 1,
        news_replicas: int = 1,
        run_dir: Path | None = None,
        env: Mapping[str, str] | None = None,
        seed: bool = False,
        migrate: bool = True,
        nginx_binary: str | None = None,
        startup_timeout: float = 60.0,
        separate_data_dirs: bool = False,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.run_dir = (run_dir or Path(tempfile.mkdtemp(prefix="natomedia-stack-"))).resolve()
        self.seed = seed
        self.migrate = migrate
        self.startup_timeout = startup_timeout
        # Each replica its own data directory (and local media directory), as on machines that
        # share no disk: what they share must then come from the environment and the stores.
        self.separate_data_dirs = separate_data_dirs
        counts = {"auth": auth_replicas, "media": media_replicas, "news": news_replicas}
        if any(count < 1 for count in counts.values()):
            raise ValueError("every service needs at least one replica")
        self.env = self._child_env(dict(os.environ if env is None else env))
        self.replicas: dict[str, list[Replica]] = {
            name: [self._replica(name, index) for index in range(1, counts[name] + 1)]
            for name in SERVICE_NAMES
        }
        self.media_root = Path(self.env["MEDIA_STORAGE_DIR"])
        self.nginx = Nginx(
            local_config(
                port=self.port,
                host=host,
                upstreams={
                    name: [f"127.0.0.1:{replica.port}" for replica in replicas]
                    for name, replicas in self.replicas.items()
                },
                media_root=self.media_root,
                run_dir=self.run_dir,
                accel_prefix=ACCEL_PREFIX,
                store_resolver=self.env.get("NATOMEDIA_STORE_RESOLVER") or None,
            ),
            self.run_dir,
            nginx_binary,
        )
        self._documents: list[PendingDocument] = []

    @property
    def url(self) -> str:
        return reachable_url(f"{self.host}:{self.port}")

    def _child_env(self, env: dict[str, str]) -> dict[str, str]:
        env.setdefault("PUBLIC_BASE_URL", self.url)
        env.setdefault("JWKS_URL", f"http://127.0.0.1:{self.port}/.well-known/jwks.json")
        data_dir = Path(env.get("NATOMEDIA_DATA_DIR", "var")).resolve()
        env["NATOMEDIA_DATA_DIR"] = str(data_dir)
        # Named explicitly so nginx's `alias` and the media service agree on one directory.
        media_root = Path(env.get("MEDIA_STORAGE_DIR") or data_dir / "media").resolve()
        env["MEDIA_STORAGE_DIR"] = str(media_root)
        env["MEDIA_ACCEL_REDIRECT"] = "true"
        env["MEDIA_ACCEL_PREFIX"] = ACCEL_PREFIX
        # nginx reaches the services over loopback: only it may name the client's address.
        env["NATOMEDIA_TRUSTED_PROXIES"] = "127.0.0.1"
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def _replica(self, name: str, index: int) -> Replica:
        port = free_port()
        extra_env = {}
        if self.separate_data_dirs:
            own = Path(self.env["NATOMEDIA_DATA_DIR"]) / "replicas" / f"{name}-{index}"
            extra_env = {"NATOMEDIA_DATA_DIR": str(own), "MEDIA_STORAGE_DIR": str(own / "media")}
        managed = ManagedProcess(
            f"{name}-{index}",
            _python_cli("serve", name, "--host", "127.0.0.1", "--port", str(port)),
            self.run_dir / "logs" / f"{name}-{index}.log",
            ready_url=f"http://127.0.0.1:{port}/readyz",
            extra_env=extra_env,
        )
        return Replica(name, index, port, managed)

    def processes(self) -> list[ManagedProcess]:
        return [replica.managed for replicas in self.replicas.values() for replica in replicas]

    def _run_for_each_service(self, action: str) -> None:
        """`natomedia ACTION SERVICE` for the three services at once; each owns its database."""
        logs = self.run_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        running = []
        for name in SERVICE_NAMES:
            log = logs / f"{action}-{name}.log"
            with log.open("ab") as output:
                process = subprocess.Popen(
                    _python_cli(action, name),
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            running.append((name, log, process))
        failed = []
        for name, log, process in running:
            try:
                process.wait(timeout=300)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.returncode != 0:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                failed.append(f"`natomedia {action} {name}` failed:\n{tail}")
        if failed:
            raise StackError("\n".join(failed))

    def _start_api_documents(self) -> None:
        """`natomedia openapi` writes what nginx serves at /openapi.json and /docs."""
        docs = Path(self.nginx.config.docs_root)
        docs.mkdir(parents=True, exist_ok=True)
        for name, args in (
            ("openapi.json", ["--server-url", self.env["PUBLIC_BASE_URL"]]),
            ("docs.html", ["--docs"]),
        ):
            output = (docs / name).open("wb")
            process = subprocess.Popen(
                _python_cli("openapi", *args),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.PIPE,
            )
            self._documents.append((docs / name, process, output))

    def _finish_api_documents(self, deadline: float) -> None:
        while self._documents:
            path, process, output = self._documents.pop()
            try:
                _, errors = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                _, errors = process.communicate()
            finally:
                output.close()
            # The API works without its description: nginx then answers 404 for it.
            if process.returncode != 0:
                path.unlink(missing_ok=True)
                logger.warning(
                    "no %s: `natomedia openapi` failed: %s",
                    path.name,
                    errors.decode(errors="replace")[-500:],
                )

    def _abandon_api_documents(self) -> None:
        while self._documents:
            _, process, output = self._documents.pop()
            process.kill()
            process.communicate()
            output.close()

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        Path(self.env["NATOMEDIA_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
        self.media_root.mkdir(parents=True, exist_ok=True)
        for managed in self.processes():
            for name in ("NATOMEDIA_DATA_DIR", "MEDIA_STORAGE_DIR"):
                if name in managed.extra_env:
                    Path(managed.extra_env[name]).mkdir(parents=True, exist_ok=True)
        # Once, before any replica serves: replicas never race each other over the schema.
        if self.migrate:
            self._run_for_each_service("migrate")
        if self.seed:
            self._run_for_each_service("seed")
        try:
            self._start_api_documents()
            for managed in self.processes():
                managed.start(self.env)
            deadline = time.monotonic() + self.startup_timeout
            with httpx.Client(trust_env=False, timeout=2.0) as client:
                for managed in self.processes():
                    managed.wait_ready(client, deadline)
            self._finish_api_documents(deadline)
            self.nginx.start(self.env, timeout=self.startup_timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Gateway first, so no request reaches a service that is shutting down."""
        self._abandon_api_documents()
        self.nginx.stop()
        # All at once: each service spends its shutdown (closing connections, the mail sender)
        # in parallel with the others.
        for managed in self.processes():
            managed.terminate()
        for managed in self.processes():
            managed.stop()

    def exited(self) -> list[ManagedProcess]:
        """Children that have died since the start."""
        return [
            managed
            for managed in [self.nginx.managed, *self.processes()]
            if managed.process is not None and not managed.running
        ]

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def describe(self) -> str:
        lines = [f"gateway  {self.url}  (nginx pid {self.nginx.managed.pid})"]
        for replicas in self.replicas.values():
            for replica in replicas:
                lines.append(
                    f"{replica.managed.name:<8} {replica.url}  (pid {replica.managed.pid}, "
                    f"log {replica.managed.log_path})"
                )
        lines.append(f"nginx config {self.nginx.config_path}")
        return "\n".join(lines)


def run_stack(
    *,
    port: int,
    host: str,
    auth_replicas: int,
    run_dir: Path | None,
    seed: bool,
    media_replicas: int = 1,
) -> int:
    """The CLI: start the stack, then hold it until SIGINT/SIGTERM or until a child dies."""
    data_dir = Path(os.environ.get("NATOMEDIA_DATA_DIR", "var"))
    stack = Stack(
        port=port,
        host=host,
        auth_replicas=auth_replicas,
        media_replicas=media_replicas,
        run_dir=run_dir or data_dir / "stack",
        seed=seed,
    )
    stopping = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            stack.start()
        except StackError as exc:
            sys.stderr.write(f"natomedia stack: {exc}\n")
            return 1
        sys.stdout.write(stack.describe() + "\n")
        sys.stdout.flush()
        try:
            while not stopping.wait(0.5):
                dead = stack.exited()
                if dead:
                    for managed in dead:
                        sys.stderr.write(f"{managed.name} exited:\n{managed.log_tail()}\n")
                    return 1
        finally:
            stack.stop()
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
