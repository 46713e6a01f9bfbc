"""`natomedia`: run, migrate and administer the services."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from services.common.settings import settings_error_line
from services.gateway.registry import SERVICE_NAMES, service


def _services(name: str | None) -> list[str]:
    return [name] if name else list(SERVICE_NAMES)


async def _migrate(names: list[str], *, seed: bool) -> None:
    for name in names:
        modules = service(name)
        settings = modules.settings()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await modules.migrate(settings)
        if seed:
            await modules.seed(settings)


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    from services.common.logs import configure_logging

    modules = service(args.service)
    settings = modules.settings()
    configure_logging(settings.log_level)
    app = modules.module("app").create_app(settings)
    uvicorn.run(
        app, host=args.host, port=args.port, log_config=None, proxy_headers=False, workers=None
    )


def _stack(args: argparse.Namespace) -> int:
    from pathlib import Path

    from services.gateway.stack import run_stack

    return run_stack(
        port=args.port,
        host=args.host,
        auth_replicas=args.auth_replicas,
        media_replicas=args.media_replicas,
        run_dir=Path(args.run_dir) if args.run_dir else None,
        seed=args.seed,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="natomedia", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("dev", help="all services in one process on NATOMEDIA_HOST:NATOMEDIA_PORT")

    serve = commands.add_parser("serve", help="one service alone")
    serve.add_argument("service", choices=SERVICE_NAMES)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)

    stack = commands.add_parser(
        "stack", help="each service as its own process behind nginx (production topology)"
    )
    stack.add_argument("--host", default="127.0.0.1", help="where the gateway listens")
    stack.add_argument("--port", type=int, default=8000, help="the gateway's port")
    stack.add_argument("--auth-replicas", type=int, default=1, metavar="N")
    stack.add_argument(
        "--media-replicas",
        type=int,
        default=1,
        metavar="N",
        help="more than one needs MEDIA_STORAGE_URL (object storage) or a shared MEDIA_STORAGE_DIR",
    )
    stack.add_argument("--run-dir", help="nginx config, pid and logs (default: DATA_DIR/stack)")
    stack.add_argument("--seed", action="store_true", help="load demo content before serving")

    for name, text in (("migrate", "apply schema migrations"), ("seed", "load demo content")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("service", nargs="?", choices=SERVICE_NAMES)

    users = commands.add_parser("users", help="account administration").add_subparsers(
        dest="action", required=True
    )
    for action in ("grant-role", "revoke-role"):
        sub = users.add_parser(action)
        sub.add_argument("email")
        sub.add_argument("role", choices=["editor", "admin"])
    export = users.add_parser(
        "newsletter-export", help="the verified newsletter subscribers, for the mailing tool"
    )
    export.add_argument("--format", choices=["csv", "json"], default="csv")
    export.add_argument("--output", help="write to this file (created readable by its owner only)")

    media = commands.add_parser("media", help="video catalogue").add_subparsers(
        dest="action", required=True
    )
    ingest = media.add_parser("ingest", help="add a video file to the catalogue")
    ingest.add_argument("file")
    ingest.add_argument("--title", required=True)
    ingest.add_argument("--description", default="")
    ingest.add_argument("--tag", action="append", default=[])
    ingest.add_argument("--label", help="rendition label, e.g. '1080p25 H.264 MP4'")
    ingest.add_argument("--video-id", help="add the file as a rendition of this video")
    ingest.add_argument("--language", help="BCP 47 tag, e.g. en, fr")
    ingest.add_argument("--credits")
    ingest.add_argument("--copyright")
    ingest.add_argument("--location")
    ingest.add_argument("--shot-list-file", help="a UTF-8 text file with the shot list")
    ingest.add_argument("--transcript-file", help="a UTF-8 text file with the transcript")

    media_import = media.add_parser(
        "import", help="import videos from a JSON file (all or nothing, idempotent)"
    )
    media_import.add_argument("file")

    media.add_parser("create-bucket", help="create MEDIA_STORAGE_URL's bucket if it is missing")
    gc = media.add_parser(
        "gc", help="remove stored files no rendition refers to, and unfinished uploads"
    )
    gc.add_argument(
        "--grace-hours",
        type=int,
        default=24,
        help="keep anything younger than this: an ingest in flight (default 24)",
    )
    gc.add_argument("--dry-run", action="store_true", help="list what would go, remove nothing")
    withdraw = media.add_parser("withdraw", help="withdraw a video from the catalogue")
    withdraw.add_argument("video_id")
    withdraw.add_argument(
        "--reason-code",
        "--reason",
        dest="reason_code",
        required=True,
        choices=["rights", "error", "security", "other"],
        help="public: partners see it in the feed's tombstone",
    )
    withdraw.add_argument("--note", help="private to editors")
    restore = media.add_parser("restore", help="publish a withdrawn video again")
    restore.add_argument("video_id")

    openapi = commands.add_parser(
        "openapi", help="print the merged OpenAPI document (no server is started)"
    )
    openapi.add_argument(
        "--server-url", help="the document's `servers` URL (default: PUBLIC_BASE_URL)"
    )
    openapi.add_argument(
        "--docs", action="store_true", help="print the Swagger UI page for /docs instead"
    )
    openapi.add_argument(
        "--gaps", action="store_true", help="list what each operation has yet to document"
    )

    mail = commands.add_parser("mail", help="the mail outbox").add_subparsers(
        dest="action", required=True
    )
    mail.add_parser("status", help="due, deferred and dead mail (with reasons), oldest age")
    retry = mail.add_parser("retry", help="put dead mail back in the queue, due now")
    retry.add_argument("id", nargs="?", help="a dead message's id, as `mail status` shows it")
    retry.add_argument("--dead", action="store_true", help="every dead message")

    news = commands.add_parser("news", help="articles").add_subparsers(dest="action", required=True)
    news_import = news.add_parser("import", help="import articles from a JSON file")
    news_import.add_argument("file")

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers: dict[str, Any] = {
        "dev": lambda: __import__("services.gateway.dev", fromlist=["run_dev"]).run_dev(),
        "serve": lambda: _serve(args),
        "stack": lambda: _stack(args),
        "migrate": lambda: asyncio.run(_migrate(_services(args.service), seed=False)),
        "seed": lambda: asyncio.run(_seed(_services(args.service))),
        "users": lambda: _run_command("auth", args),
        "media": lambda: _run_command("media", args),
        "news": lambda: _run_command("news", args),
        "mail": lambda: _run_command("auth", args, prefix="mail_"),
        "openapi": lambda: _openapi(args),
    }
    try:
        result = handlers[args.command]()
    except ValidationError as exc:
        # A wrong setting is the operator's to fix: one line, not a traceback.
        print(f"natomedia: {settings_error_line(exc)}", file=sys.stderr)
        return 2
    return int(result or 0)


async def _seed(names: list[str]) -> None:
    for name in names:
        modules = service(name)
        settings = modules.settings()
        await modules.seed(settings)


def _openapi(args: argparse.Namespace) -> int:
    from services.common.settings import ServiceSettings
    from services.gateway import openapi

    if args.docs:
        sys.stdout.write(openapi.docs_html())
        return 0
    merge = openapi.build_merge(args.server_url or ServiceSettings().public_base_url)
    if args.gaps:
        for operation, gaps in merge.gaps.items():
            print(f"{operation}: {'; '.join(gaps)}")
        return 1 if merge.gaps else 0
    sys.stdout.write(openapi.render(merge.document))
    return 0


def _run_command(name: str, args: argparse.Namespace, prefix: str = "") -> int:
    """Service-specific subcommands live in `services/<name>/commands.py` as
    `cli_<prefix><action>`."""
    modules = service(name)
    action = prefix + args.action.replace("-", "_")
    function = getattr(modules.module("commands"), "cli_" + action)
    return int(asyncio.run(function(modules.settings(), args)) or 0)


if __name__ == "__main__":
    sys.exit(main())
