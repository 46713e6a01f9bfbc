"""Renditions in object storage: a large download through the gateway in each delivery mode
against a direct GET from the store in the same run, and media's peak RSS during an ingest.

SeaweedFS (`weed`, from the dev dependencies) and `natomedia stack` (nginx, SQLite) run on
loopback; every process is started here and stopped by PID. Prints a small table.

    .venv/bin/python bench/object_storage.py                    # 1 GiB download, 1 GiB ingest
    .venv/bin/python bench/object_storage.py --ingest-gib 5     # the 5 GB ingest of issue 22
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
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


def ingest(env: dict[str, str], source: Path) -> tuple[str, float, int]:
    """`natomedia media ingest` as its own process; (rendition id, seconds, peak RSS KiB)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "services.gateway.cli", "media", "ingest", str(source),
         "--title", "Bench clip"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss_kib(process.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    output, _ = process.communicate()
    stop.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"ingest failed:\n{output}")
    match = re.search(r"^rendition (\S+)", output, re.MULTILINE)
    assert match is not None, output
    return match.group(1), time.perf_counter() - started, peak


def timed_get(client: httpx.Client, url: str, expect: int) -> float:
    started = time.perf_counter()
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
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024, help="the downloaded file")
    parser.add_argument("--ingest-gib", type=float, default=0, help="a separate, larger ingest")
    parser.add_argument("--runs", type=int, default=3, help="downloads per row (best kept)")
    args = parser.parse_args()
    weed = find_weed()
    if weed is None:
        raise SystemExit("no weed binary: make install")
    root = Path(tempfile.mkdtemp(prefix="natomedia-bench-s3-"))
    store = SeaweedFS(weed, root / "weed")
    store.start()
    try:
        endpoint = store.endpoint
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
        # The stack migrates the databases the ingest writes to.
        rows: list[tuple[str, str]] = []
        signer = DownloadSigner(SecretStr(secret))
        rendition_id = ""
        for mode in ("proxy", "redirect"):
            with Stack(port=0, env={**env, "MEDIA_DELIVERY": mode}, run_dir=root / mode) as stack:
                if not rendition_id:
                    rendition_id, seconds, peak = ingest(stack.env, source)
                    rows.append(
                        (
                            f"ingest {args.size_mib} MiB",
                            f"{seconds:.1f} s, peak RSS {peak // 1024} MiB",
                        )
                    )
                now = int(time.time())
                path = signer.sign_path(
                    rendition_id, "clip.mp4", "bench", now + 3600, issued_at=now
                )
                with httpx.Client(trust_env=False, timeout=120) as client:
                    best = min(timed_get(client, stack.url + path, size) for _ in range(args.runs))
                    if mode == "proxy":
                        direct = asyncio.run(_presigned(endpoint, rendition_id))
                        best_direct = min(timed_get(client, direct, size) for _ in range(args.runs))
                        rows.append(
                            ("direct GET from the store", f"{size / MIB / best_direct:.0f} MiB/s")
                        )
                rows.append(
                    (
                        f"download via gateway, MEDIA_DELIVERY={mode}",
                        f"{size / MIB / best:.0f} MiB/s ({best_direct / best:.2f}x direct)",
                    )
                )
        source.unlink()
        if args.ingest_gib:
            big = root / "big.mp4"
            make_file(big, int(args.ingest_gib * 1024 * MIB))
            with Stack(port=0, env=env, run_dir=root / "ingest") as stack:
                _, seconds, peak = ingest(stack.env, big)
            rows.append(
                (f"ingest {args.ingest_gib:g} GiB", f"{seconds:.1f} s, peak RSS {peak // 1024} MiB")
            )
            big.unlink()
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            print(f"{name:<{width}}  {value}")
    finally:
        store.stop()


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
