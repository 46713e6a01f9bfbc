"""Whether FastAPI's native OpenTelemetry instrumentation has anything to report to.

FastAPI asks on every request whether a tracer, meter or logger provider is configured, and
with none configured that question (environment lookups in the OpenTelemetry API) is most of
what it costs. When nothing is configured when the app is built,
the services switch it off through FastAPI's documented `telemetry=` argument; configure
OpenTelemetry (providers, `opentelemetry-instrument`, or `FASTAPI_OTEL_AUTO_CONFIGURE=true`)
and it stays on, as FastAPI ships it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import _logs, metrics, trace

# The API's placeholders until an SDK (or a vendor's distro) installs a real provider.
_PLACEHOLDERS = frozenset(
    {
        ("opentelemetry.trace", "ProxyTracerProvider"),
        ("opentelemetry.metrics._internal", "_ProxyMeterProvider"),
        ("opentelemetry._logs._internal", "ProxyLoggerProvider"),
    }
)
_PROVIDER_VARIABLES = (
    "OTEL_PYTHON_TRACER_PROVIDER",
    "OTEL_PYTHON_METER_PROVIDER",
    "OTEL_PYTHON_LOGGER_PROVIDER",
)
OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def _configured(provider: Any) -> bool:
    kind = type(provider)
    return (kind.__module__, kind.__name__) not in _PLACEHOLDERS


def opentelemetry_configured(environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    if environ.get("FASTAPI_OTEL_AUTO_CONFIGURE", "").lower() == "true":
        return True
    if any(environ.get(name) for name in _PROVIDER_VARIABLES):
        return True
    return any(
        _configured(get())
        for get in (
            trace.get_tracer_provider,
            metrics.get_meter_provider,
            _logs.get_logger_provider,
        )
    )


def telemetry_config(environ: Mapping[str, str] | None = None) -> TelemetryConfig | None:
    """FastAPI's `telemetry=` argument: its defaults when OpenTelemetry is configured, else off."""
    return None if opentelemetry_configured(environ) else OFF
