"""File downloads: nginx directly, the gateway with X-Accel-Redirect, the app streaming."""

from __future__ import annotations

from collections.abc import Callable

from harness import expect, http
from loadgen import Measurement
from processes import Process
from stack import Bench


def file_rows(bench: Bench) -> None:
    label = bench.state.file_label
    media = bench.servers["media"]
    streamer = bench.servers["media-stream"]

    def download(url: str, process: Process | None) -> Callable[[], Measurement]:
        def run() -> Measurement:
            status, headers, _ = http("HEAD", url)
            expect(status, b"", 200, f"HEAD {url}")
            length = int(headers.get("content-length", "-1"))
            if length != bench.options.file_size:
                raise RuntimeError(f"{url} announces {length} bytes")
            if process is not None:
                process.reset_peak_rss()
            before = process.status_kib("VmRSS") if process else None
            # One stream, as one user downloads: its throughput and the server's memory.
            result = bench.wrk(url, connections=1, threads=1)
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

    static = bench.base(bench.ports.static) + bench.state.direct_file_path
    gateway = bench.base(bench.ports.gateway) + bench.state.download_path
    stream = bench.base(bench.ports.media_stream) + bench.state.download_path
    bench.measure("file.nginx", f"{label}: nginx directly", download(static, None), metric="mbps")
    bench.measure(
        "file.gateway",
        f"{label}: gateway, X-Accel-Redirect (media signs)",
        download(gateway, media),
        reference="file.nginx",
        metric="mbps",
        target=(">=", 0.90),
    )
    bench.measure(
        "file.app",
        f"{label}: streamed by the media app (dev mode, no accel)",
        download(stream, streamer),
        reference="file.nginx",
        metric="mbps",
        server="media-stream",
    )
