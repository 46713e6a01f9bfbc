"""What the numbers were measured on: CPU, cores, memory, kernel, and every version that matters."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path

from processes import Pinning

PACKAGES = (
    "fastapi",
    "starlette",
    "pydantic",
    "uvicorn",
    "uvloop",
    "httptools",
    "sqlalchemy",
    "aiosqlite",
    "python-jose",
    "cryptography",
    "argon2-cffi",
    "libpass",
)
PEER_PACKAGES = ("fastapi-users", "fastapi", "pwdlib", "sqlalchemy", "uvicorn", "pyjwt")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        match = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
    except OSError:
        return "unknown"
    return f"{int(match.group(1)) / 1024**2:.1f} GiB" if match else "unknown"


def _first_line(argv: list[str]) -> str:
    try:
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "missing"
    text = (completed.stdout + completed.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


def _peer_versions(python: Path) -> str:
    if not python.exists():
        return "not installed"
    code = (
        "from importlib import metadata as m\n"
        f"for n in {PEER_PACKAGES!r}:\n"
        "    try: print(n, m.version(n))\n"
        "    except m.PackageNotFoundError: pass\n"
    )
    completed = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    return ", ".join(completed.stdout.split("\n")).strip(", ") or "unknown"


def describe_machine(pinning: Pinning, peer_python: Path) -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    virtual = "hypervisor" in cpuinfo
    return {
        "CPU": f"{_cpu_model()}{' (virtual machine)' if virtual else ''}",
        "cores": f"{os.cpu_count()} online, {len(os.sched_getaffinity(0))} usable by the bench",
        "memory": _memory(),
        "kernel": f"{platform.system()} {platform.release()}",
        "pinning": pinning.describe(),
        "load average at the end": " ".join(f"{value:.2f}" for value in os.getloadavg()),
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": ", ".join(f"{name} {_version(name)}" for name in PACKAGES),
        "peer (own venv)": _peer_versions(peer_python),
        "nginx": _first_line(["nginx", "-v"]),
        "wrk": _first_line(["wrk", "-v"]).split("[")[0].strip(),
    }
