"""The processes a bench run starts: pinned to a core, waited for, stopped by PID."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BASE_ENV_NAMES = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The caller's basics plus `extra`: no stray REDIS_URL or *_DATABASE_URL leaks in."""
    env = {name: os.environ[name] for name in BASE_ENV_NAMES if name in os.environ}
    env.update(extra)
    return env


@dataclass(frozen=True)
class Pinning:
    """Server on one core, load generator on another, when the machine has two."""

    server: tuple[str, ...] = ()
    client: tuple[str, ...] = ()

    @classmethod
    def detect(cls) -> Pinning:
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) >= 2 and shutil.which("taskset"):
            return cls(("taskset", "-c", str(cores[0])), ("taskset", "-c", str(cores[1])))
        return cls()

    def describe(self) -> str:
        if not self.server:
            return "not pinned (fewer than two cores or no taskset)"
        return f"server on core {self.server[-1]}, load generator on core {self.client[-1]}"


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    _stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def status_kib(self, field_name: str) -> int | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
        except (OSError, ValueError):
            return None
        return None

    def cpu_seconds(self) -> float:
        """User + system time of the process and its reaped children (0 once it is gone)."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return 0.0
        # Fields after the command name, which may itself hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        ticks = sum(int(value) for value in fields[11:15])
        return ticks / os.sysconf("SC_CLK_TCK")

    def move_to(self, pin: Sequence[str]) -> None:
        """Move the process and its children (nginx's workers) to the core a `Pinning` prefix
        names (`taskset -c N`); nothing without pinning."""
        if not pin:
            return
        cores = {int(pin[-1])}
        try:
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        except OSError:
            children = []
        for pid in (self.pid, *(int(child) for child in children)):
            try:
                os.sched_setaffinity(pid, cores)
            except ProcessLookupError:
                pass

    def reset_peak_rss(self) -> bool:
        # Writing 5 to clear_refs resets VmHWM (Linux >= 4.0), so each row sees its own peak.
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def stop(self, timeout: float = 10.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)
        # nginx workers belong to the group the bench created for this process.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class ProcessGroup:
    """Everything one run started; stopped in reverse order, each by its own PID."""

    def __init__(self, log_dir: Path, pinning: Pinning) -> None:
        self.log_dir = log_dir
        self.pinning = pinning
        self.processes: list[Process] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        cwd: Path | None = None,
    ) -> Process:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        # Pinned from the first instruction: a server sizes its pools by the cores it may use
        # (auth's hashing threads), so pinning it after start-up would leave it sized for two.
        prefix = self.pinning.server
        with log.open("wb") as handle:
            popen = subprocess.Popen(
                [*prefix, *argv],
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
            )
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def stop(self, process: Process) -> None:
        process.stop()
        if process in self.processes:
            self.processes.remove(process)

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()


def wait_http(url: str, process: Process, timeout: float = 60.0) -> None:
    """Until `url` answers below 500; fails early with the log when the process dies."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited:\n{process.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise RuntimeError(f"{process.name} did not answer {url} in {timeout:.0f}s ({last})")
