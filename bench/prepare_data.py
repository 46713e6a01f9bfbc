"""Migrate and seed every service, then ingest the bench file: one process, the services' own code.

Run by bench/run.py with the services' environment (NATOMEDIA_DATA_DIR and so on); prints the
ingest report (`video <id>`, `rendition <id>`) on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.gateway.registry import SERVICE_NAMES, service


async def prepare(file: str, title: str) -> int:
    all_settings = {}
    for name in SERVICE_NAMES:
        modules = service(name)
        settings = modules.settings()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await modules.migrate(settings)
        all_settings[name] = settings
    await asyncio.gather(*(service(name).seed(all_settings[name]) for name in SERVICE_NAMES))
    ingest = argparse.Namespace(
        file=file, title=title, description="", tag=[], label=None, video_id=None
    )
    commands = service("media").module("commands")
    return int(await commands.cli_ingest(all_settings["media"], ingest) or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file")
    parser.add_argument("--title", required=True)
    args = parser.parse_args()
    sys.exit(asyncio.run(prepare(args.file, args.title)))


if __name__ == "__main__":
    main()
