"""`natomedia dev`: every service in one process behind the prefix dispatcher."""

from __future__ import annotations

import asyncio
import os
from collections.abc import MutableMapping
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from services.common.logs import configure_logging
from services.common.settings import ServiceSettings
from services.gateway.dispatch import PrefixDispatcher
from services.gateway.openapi import document_app, merge_documents
from services.gateway.registry import PREFIXES, SERVICE_NAMES, service


async def prepare(*, seed: bool = True) -> dict[str, Any]:
    """Migrate every service (and load demo content into empty databases)."""
    all_settings = {}
    for name in SERVICE_NAMES:
        modules = service(name)
        settings = modules.settings()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await modules.migrate(settings)
        if seed:
            await modules.seed(settings)
        all_settings[name] = settings
    return all_settings


def build_gateway(all_settings: dict[str, Any]) -> PrefixDispatcher:
    auth_app: FastAPI = service("auth").module("app").create_app(all_settings["auth"])
    # Media and news fetch the JWKS from the auth app in-process: the same bytes nginx would serve.
    jwks_client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=auth_app), base_url="http://auth.internal"
    )
    apps: dict[str, FastAPI] = {"auth": auth_app}
    for name in ("media", "news"):
        apps[name] = (
            service(name).module("app").create_app(all_settings[name], jwks_client=jwks_client)
        )
    routes = [(PREFIXES[name], app) for name, app in apps.items()]
    routes.append(("/.well-known/", auth_app))
    server_url = all_settings["auth"].public_base_url
    documents = document_app(lambda: merge_documents(apps, server_url=server_url).document)
    return PrefixDispatcher(routes, exact={"/openapi.json": documents, "/docs": documents})


def own_sink_environment(environ: MutableMapping[str, str]) -> bool:
    """Whether `natomedia dev` starts its own sink; if so, mail settings that suit it.

    Our sink offers SMTPUTF8, so non-ASCII addresses may register; a relay named by SMTP_HOST
    may not, and keeps the settings' default (off) unless MAIL_SMTPUTF8 says otherwise.
    """
    if environ.get("SMTP_HOST"):
        return False
    environ.setdefault("MAIL_SMTPUTF8", "true")
    return True


def run_dev() -> None:
    host = os.environ.get("NATOMEDIA_HOST", "127.0.0.1")
    port = int(os.environ.get("NATOMEDIA_PORT", "8000"))
    os.environ.setdefault("PUBLIC_BASE_URL", f"http://{host}:{port}")
    # Before any settings are read: they take MAIL_SMTPUTF8 from the environment.
    own_sink = own_sink_environment(os.environ)
    common = ServiceSettings()
    configure_logging(common.log_level)
    all_settings = asyncio.run(prepare())
    sink = None
    if own_sink:
        try:
            from services.gateway.mail_sink import MailSink
        except ModuleNotFoundError as exc:
            if exc.name != "aiosmtpd":
                raise
            raise SystemExit(
                "natomedia dev: the local mail sink needs aiosmtpd, a development extra: "
                "pip install -e '.[dev]' (or set SMTP_HOST to use a mail relay of your own)"
            ) from exc
        sink = MailSink("127.0.0.1", 1025, common.data_dir / "mail", announce=True)
        sink.start()
        print(f"[mail] local SMTP sink on 127.0.0.1:1025, saving to {common.data_dir / 'mail'}")  # noqa: T201
    try:
        uvicorn.run(
            build_gateway(all_settings), host=host, port=port, log_config=None, proxy_headers=False
        )
    finally:
        if sink is not None:
            sink.stop()
