"""The services the gateway composes, looked up by name so the CLI imports only what it runs."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

SERVICE_NAMES = ("auth", "media", "news")
PREFIXES = {"auth": "/v1/auth/", "media": "/v1/media/", "news": "/v1/news/"}


@dataclass(frozen=True)
class ServiceModules:
    name: str

    def module(self, leaf: str) -> ModuleType:
        return importlib.import_module(f"services.{self.name}.{leaf}")

    def settings(self) -> Any:
        config = self.module("config")
        return getattr(config, f"{self.name.capitalize()}Settings")()

    async def migrate(self, settings: Any) -> None:
        await self.module("commands").migrate(settings)

    async def seed(self, settings: Any) -> None:
        await self.module("commands").seed(settings)


def service(name: str) -> ServiceModules:
    if name not in SERVICE_NAMES:
        raise KeyError(name)
    return ServiceModules(name)
