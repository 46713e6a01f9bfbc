"""Renditions in object storage: a large download through the gateway in each delivery mode
against a direct GET from the store in the same run, and media's RSS during an ingest.

SeaweedFS (`weed`, from the dev dependencies) and two `natomedia stack`s (nginx, SQLite; one per
delivery mode, sharing the catalogue and the bucket) run on loopback; every process is started
here and stopped by PID. The downloads are measured in rounds, one of each mode in turn (direct,
proxy, redirect), so a busy spell of a shared machine falls on all of them; each download also
records the CPU time nginx, the store and the client spent on it, which a busy machine does not
change much. Prints the table and writes it to bench/results-object-storage.md.

    .venv/bin/python bench/object_storage.py                    # 1 GiB download, 1 GiB ingest
    .venv/bin/python bench/object_storage.py --ingest-gib 5     # the 5 GB ingest of issue 22
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.gateway.stack import Stack  # noqa: E402
from services.media.object_storage import S3Storage  # noqa: E402
from services.media.signing import DownloadSigner  # noqa: E402
from tests.s3_support import TEST_BUCKET, S3Endpoint, SeaweedFS, find_weed  # noqa: E402

MIB = 1024 * 1024
RESULTS = Path(__file__).with_name("results-object-storage.md")
MODES = ("direct", "proxy", "redirect")
TICK = os.sysconf("SC_CLK_TCK")


def make_file(path: Path, size: int) -> None:
    block = os.urandom(8 * MIB)
    with path.open("wb") as handle:
        left = size
        while left > 0:
            handle.write(block[: min(left, len(block))])
            left -= len(block)


def rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else 0


def cpu_seconds(pids: list[int]) -> float:
    """User + system time of these processes (all their threads), from /proc."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in found.read_text().split()] if found.exists() else []


def load() -> str:
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


@dataclass
class Ingest:
    rendition_id: str
    seconds: float
    peak_kib: int
    # (seconds since start, RSS KiB), one sample every 50 ms
    samples: list[tuple[float, int]] = field(default_factory=list)

    def timeline(self, points: int = 10) -> str:
        """RSS at evenly spaced moments of the ingest, in MiB."""
        if not self.samples:
            return ""
        chosen = [
            self.samples[round(i * (len(self.samples) - 1) / (points - 1))] for i in range(points)
        ]
        return ", ".join(f"{at:.1f} s: {kib // 1024}" for at, kib in chosen)


def ingest(env: dict[str, str], source: Path) -> Ingest:
    """`natomedia media ingest` as its own process, its RSS sampled while it runs."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "services.gateway.cli", "media", "ingest", str(source),
         "--title", "Bench clip"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            kib = rss_kib(process.pid)
            if kib:
                samples.append((time.perf_counter() - started, kib))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    output, _ = process.communicate()
    stop.set()
    sampler.join()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"ingest failed:\n{output}")
    match = re.search(r"^rendition (\S+)", output, re.MULTILINE)
    assert match is not None, output
    peak = max((kib for _, kib in samples), default=0)
    return Ingest(match.group(1), seconds, peak, samples)


def get_httpx(client: httpx.Client, url: str, expect: int) -> None:
    received = 0
    with client.stream("GET", url) as response:
        if response.status_code == 302:
            location = response.headers["location"]
            response.close()
            with client.stream("GET", location) as redirected:
                assert redirected.status_code == 200, redirected.status_code
                for chunk in redirected.iter_raw(MIB):
                    received += len(chunk)
        else:
            assert response.status_code == 200, response.status_code
            for chunk in response.iter_raw(MIB):
                received += len(chunk)
    assert received == expect, (received, expect)


def get_curl(url: str, expect: int) -> None:
    result = subprocess.run(
        ["curl", "--silent", "--show-error", "--location", "--fail", "--noproxy", "*",
         "--output", "/dev/null", "--write-out", "%{size_download}", url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert int(result.stdout) == expect, (result.stdout, expect)


@dataclass
class Download:
    mode: str
    seconds: float
    nginx_cpu: float
    store_cpu: float
    client_cpu: float
    load: str


def measure(
    mode: str, fetch: Callable[[], None], nginx_pids: list[int], store_pid: int
) -> Download:
    before = (
        cpu_seconds(nginx_pids),
        cpu_seconds([store_pid]),
        time.process_time(),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    started = time.perf_counter()
    fetch()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    child = after.ru_utime + after.ru_stime - before[3].ru_utime - before[3].ru_stime
    return Download(
        mode,
        seconds,
        cpu_seconds(nginx_pids) - before[0],
        cpu_seconds([store_pid]) - before[1],
        time.process_time() - before[2] + child,
        load(),
    )


def nginx_workers(stack: Stack) -> list[int]:
    master = stack.nginx.managed.pid
    assert master is not None
    return [master, *children(master)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=1024, help="the downloaded file")
    parser.add_argument("--ingest-gib", type=float, default=0, help="a separate, larger ingest")
    parser.add_argument("--runs", type=int, default=3, help="rounds of downloads (one per mode)")
    parser.add_argument(
        "--client",
        choices=("curl", "httpx"),
        default="curl" if shutil.which("curl") else "httpx",
        help="what downloads: curl (default when installed) or httpx in this process",
    )
    parser.add_argument(
        "--workdir", type=Path, help="scratch directory (default: a new one under $TMPDIR)"
    )
    parser.add_argument(
        "--weed-ports",
        help="MASTER,VOLUME,FILER,S3 ports for weed (each + 10000 too; default: free ones)",
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="markdown file written (- for none)"
    )
    args = parser.parse_args()
    weed = find_weed()
    if weed is None:
        raise SystemExit("no weed binary: make install")
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="natomedia-bench-s3-", dir=args.workdir))
    started_at = datetime.datetime.now(datetime.UTC)
    load_at_start = load()
    store = SeaweedFS(weed, root / "weed", ports=_ports(args.weed_ports))
    store.start()
    try:
        rows, downloads = run(args, store, root)
    finally:
        store.stop()
        shutil.rmtree(root, ignore_errors=True)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if str(args.results) != "-":
        args.results.write_text(
            report(args, rows, downloads, started_at, load_at_start, load()) + "\n"
        )
        print(f"written to {args.results}")


def _ports(spec: str | None) -> list[int] | None:
    if not spec:
        return None
    ports = [int(port) for port in spec.split(",")]
    if len(ports) != 4:
        raise SystemExit("--weed-ports takes four ports: master, volume, filer, s3")
    return ports


def run(
    args: argparse.Namespace, store: SeaweedFS, root: Path
) -> tuple[list[tuple[str, str]], list[Download]]:
    endpoint = store.endpoint
    assert store.process is not None
    store_pid = store.process.pid
    secret = secrets.token_urlsafe(32)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MEDIA_", "NATOMEDIA_"))},
        **endpoint.env(),
        "NATOMEDIA_DATA_DIR": str(root / "data"),
        "MEDIA_STORAGE_URL": f"s3://{TEST_BUCKET}/bench",
        "MEDIA_SIGNING_SECRET": secret,
        "NATOMEDIA_LOG_LEVEL": "WARNING",
    }
    size = args.size_mib * MIB
    source = root / "clip.mp4"
    make_file(source, size)
    rows: list[tuple[str, str]] = []
    downloads: list[Download] = []
    signer = DownloadSigner(SecretStr(secret))
    # Both stacks share the catalogue (one SQLite data directory) and the bucket; the first
    # migrates it.
    proxy_env = {**env, "MEDIA_DELIVERY": "proxy"}
    redirect_env = {**env, "MEDIA_DELIVERY": "redirect"}
    with (
        Stack(port=0, env=proxy_env, run_dir=root / "proxy") as proxy,
        Stack(port=0, env=redirect_env, run_dir=root / "redirect") as redirect,
    ):
        first = ingest(proxy.env, source)
        rows.append((f"ingest {args.size_mib} MiB", _ingest_value(first)))
        source.unlink()
        now = int(time.time())
        path = signer.sign_path(first.rendition_id, "clip.mp4", "bench", now + 3600, issued_at=now)
        urls = {
            "direct": asyncio.run(_presigned(endpoint, first.rendition_id)),
            "proxy": proxy.url + path,
            "redirect": redirect.url + path,
        }
        nginx = {"direct": [], "proxy": nginx_workers(proxy), "redirect": nginx_workers(redirect)}
        with httpx.Client(trust_env=False, timeout=120) as client:
            for _ in range(args.runs):
                for mode in MODES:
                    url = urls[mode]
                    fetch: Callable[[], None] = (
                        partial(get_curl, url, size)
                        if args.client == "curl"
                        else partial(get_httpx, client, url, size)
                    )
                    downloads.append(measure(mode, fetch, nginx[mode], store_pid))
    best = {mode: min(d.seconds for d in downloads if d.mode == mode) for mode in MODES}
    for mode in MODES:
        mine = [d for d in downloads if d.mode == mode]
        # Each round's download against that round's direct GET.
        ratios = [
            direct.seconds / own.seconds
            for direct, own in zip([d for d in downloads if d.mode == "direct"], mine, strict=True)
        ]
        name = "direct GET from the store" if mode == "direct" else f"MEDIA_DELIVERY={mode}"
        value = f"{size / MIB / best[mode]:.0f} MiB/s best"
        if mode != "direct":
            value += (
                f", {best['direct'] / best[mode]:.2f}x direct (best against best),"
                f" {statistics.median(ratios):.2f}x (median of rounds)"
            )
        rows.append((f"download {args.size_mib} MiB, {name}", value))
    if args.ingest_gib:
        big = root / "big.mp4"
        make_file(big, int(args.ingest_gib * 1024 * MIB))
        with Stack(port=0, env=env, run_dir=root / "ingest") as stack:
            large = ingest(stack.env, big)
        big.unlink()
        rows.append((f"ingest {args.ingest_gib:g} GiB", _ingest_value(large)))
        rows.append((f"ingest {args.ingest_gib:g} GiB, RSS MiB over time", large.timeline()))
    return rows, downloads


def _ingest_value(done: Ingest) -> str:
    return f"{done.seconds:.1f} s, peak RSS {done.peak_kib // 1024} MiB"


def report(
    args: argparse.Namespace,
    rows: list[tuple[str, str]],
    downloads: list[Download],
    started_at: datetime.datetime,
    load_at_start: str,
    load_at_end: str,
) -> str:
    command = " ".join(["bench/object_storage.py", *sys.argv[1:]])
    lines = [
        "# Object storage results",
        "",
        f"Measured {started_at:%Y-%m-%d %H:%M} UTC by `{command}` on {os.cpu_count()} cores "
        f"(load average {load_at_start} at the start, {load_at_end} at the end): SeaweedFS "
        "(`weed server`) and `natomedia stack` on loopback, downloads by "
        f"{args.client}, {args.runs} rounds of one download per mode. Ratios are direct time "
        "over the mode's time. CPU seconds are per download, from /proc: nginx's (master and "
        "workers of that mode's gateway), the store's (every weed thread) and the client's.",
        "",
        "| measurement | result |",
        "| --- | --- |",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
        "| round | mode | MiB/s | nginx CPU s | store CPU s | client CPU s | load average |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    size = args.size_mib
    for index, download in enumerate(downloads):
        lines.append(
            f"| {index // len(MODES) + 1} | {download.mode} | {size / download.seconds:.0f} | "
            f"{download.nginx_cpu:.2f} | {download.store_cpu:.2f} | {download.client_cpu:.2f} | "
            f"{download.load} |"
        )
    return "\n".join(lines)


async def _presigned(endpoint: S3Endpoint, rendition_id: str) -> str:
    """The store's own URL of the rendition (found by listing: its key holds the id)."""
    storage = S3Storage(
        TEST_BUCKET,
        "bench/",
        endpoint_url=endpoint.url,
        access_key_id=endpoint.access_key,
        secret_access_key=endpoint.secret_key,
    )
    try:
        async for stored in storage.objects():
            if rendition_id in stored.key:
                url = await storage.presign_get(stored.key, 3600)
                assert url is not None
                return url
    finally:
        await storage.close()
    raise SystemExit("the ingested object is not in the store")


if __name__ == "__main__":
    main()
