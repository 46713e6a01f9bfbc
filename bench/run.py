"""`make bench`: the product against its limits and its nearest peer, one run, one machine.

Every server runs single-process on loopback (uvicorn with uvloop and httptools, no access log,
the same flags for each) pinned to one core, wrk pinned to the other; the bench starts each
process and stops it by PID. The table is printed and written to bench/results.md.

    .venv/bin/python bench/run.py                 # full run (10 s a row, 1 GiB file, peer)
    .venv/bin/python bench/run.py --smoke         # seconds: CI keeps the harness from rotting
    .venv/bin/python bench/run.py --database sqlite   # on SQLite (default: PostgreSQL)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import traceback
from pathlib import Path

from harness import (
    BENCH_DIR,
    ENGINE_NAMES,
    GIB,
    NEWS_PATH,
    PEER_VENV,
    SECRET_NAME,
    Options,
    find_tool,
)
from machine import describe_machine
from report import render_table, rows_as_json, write_results
from rows_auth import auth_rows
from rows_files import file_rows
from rows_objects import object_rows
from rows_reads import json_rows
from rows_token import token_rows
from stack import Bench


def run(bench: Bench) -> int:
    setup_error = None
    try:
        bench.setup()
    except Exception as exc:
        setup_error = exc
        traceback.print_exc()
    if setup_error is None:
        json_rows(bench, "news", NEWS_PATH, bench.state.news_body)
        json_rows(bench, "video", bench.state.video_path, bench.state.video_body)
        token_rows(bench)
        auth_rows(bench)
        file_rows(bench)
        object_rows(bench)
    bench.group.stop_all()
    if bench.sink is not None:
        bench.sink.stop()  # type: ignore[attr-defined]
    if bench.options.database == "postgresql":
        bench.postgres('DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    machine = describe_machine(bench.pinning, PEER_VENV / "bin" / "python")
    table = render_table(bench.rows)
    settings = {
        "mode": "smoke" if bench.options.smoke else "full",
        "database": bench.options.database + " (every service and the peer)",
        "duration": f"{bench.options.duration:g} s per row",
        "load": f"wrk -t{bench.options.threads} -c{bench.options.connections} --latency; "
        f"logins -c{bench.options.login_connections}, ours and the peer's in turns: "
        f"{bench.options.login_rounds} slices of {bench.options.login_slice:g} s each; "
        f"storm {bench.options.login_duration:g} s; "
        "file rows -t1 -c1; storm bystander: one GET /healthz every 10 ms",
        "gateway": bench.state.gateway_source or "not started",
        "argon2": json.dumps(bench.argon2),
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
    engine = ENGINE_NAMES[bench.options.database]
    text = write_results(bench.options.output, table, machine, settings, engine=engine)
    if bench.options.json_output is not None:
        bench.options.json_output.write_text(
            json.dumps(
                {"rows": rows_as_json(bench.rows), "run": settings, "machine": machine},
                indent=2,
            )
        )
    print(text)
    failed = setup_error is not None or any(row.status.startswith("error") for row in bench.rows)
    return 1 if failed else 0


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
        help=(
            "comma-separated row groups to measure: news, video, token, me, login, storm, "
            "file, objects (default: all)"
        ),
    )
    parser.add_argument(
        "--database",
        choices=("postgresql", "sqlite"),
        default="postgresql",
        help="what every service and the peer store in (default postgresql, the production "
        "database: NATOMEDIA_BENCH_POSTGRES_URL, bench_<pid>_* databases made and dropped by "
        "the run; sqlite: files in the workdir)",
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
        return run(bench)
    finally:
        bench.group.stop_all()


if __name__ == "__main__":
    sys.exit(main())
