"""The nginx gateway's configuration: one template, rendered for `natomedia stack` and for Docker.

`python -m services.gateway.nginx.config > services/gateway/nginx/docker.conf` regenerates the
Docker rendering; a test fails when the committed file and the template drift apart.
"""

from __future__ import annotations

import getpass
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from services.common.problems import problem_response

TEMPLATE_NAME = "gateway.conf.template"
DOCKER_CONF_NAME = "docker.conf"
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
# Inside nginx's single-quoted strings these would end the string or start a variable.
_UNSAFE_IN_NGINX_STRING = re.compile(r"['$\\]")
UPSTREAM_SERVICES = ("auth", "media", "news")


@dataclass(frozen=True)
class TLS:
    certificate: str
    certificate_key: str
    listen: str = "443"


@dataclass(frozen=True)
class GatewayConfig:
    """Everything that differs between one deployment of the gateway and another."""

    listen: str
    upstreams: Mapping[str, Sequence[str]]
    media_root: str
    # Where `natomedia openapi` wrote openapi.json and docs.html.
    docs_root: str
    pid_path: str
    error_log: str
    access_log: str
    temp_dir: str
    accel_prefix: str = "/_protected_media/"
    # The internal location that fetches objects from the store by presigned URL.
    accel_store_prefix: str = "/_object_store/"
    # DNS server(s) nginx asks for the store's host name; none needed when it is an address.
    store_resolver: str | None = None
    server_name: str = "_"
    worker_processes: str = "auto"
    max_body_bytes: int = 1_048_576
    # nginx started by root hands its workers to `nobody` unless told otherwise.
    worker_user: str | None = None
    tls: TLS | None = None
    # Load balancers in front of nginx (addresses or CIDRs) whose X-Forwarded-For names the
    # client; empty when clients connect to nginx directly.
    real_ip_from: Sequence[str] = ()
    upstream_options: str = "max_fails=3 fail_timeout=10s"
    # How long a service may take to answer before the client gets 503 (nginx's 504).
    proxy_read_timeout: str = "60s"
    extra: Mapping[str, str] = field(default_factory=dict)


def template_text() -> str:
    return Path(__file__).with_name(TEMPLATE_NAME).read_text()


def _problem_body(status: int, code: str, title: str, detail: str) -> str:
    body = bytes(problem_response(status, code, detail, title=title).body).decode()
    if _UNSAFE_IN_NGINX_STRING.search(body):
        raise ValueError(f"cannot embed {body!r} in an nginx string")
    return body


def _servers(addresses: Sequence[str], options: str) -> str:
    if not addresses:
        raise ValueError("every upstream needs at least one server")
    return "\n".join(f"        server {address} {options};" for address in addresses)


def _size(max_body_bytes: int) -> str:
    if max_body_bytes % 1_048_576 == 0:
        return f"{max_body_bytes // 1_048_576}m"
    if max_body_bytes % 1024 == 0:
        return f"{max_body_bytes // 1024}k"
    return str(max_body_bytes)


def _tls_lines(tls: TLS | None) -> str:
    if tls is None:
        return ""
    return "\n".join(
        (
            f"        listen {tls.listen} ssl http2;",
            f"        ssl_certificate {tls.certificate};",
            f"        ssl_certificate_key {tls.certificate_key};",
            "        ssl_protocols TLSv1.2 TLSv1.3;",
            "        ssl_session_cache shared:natomedia_tls:10m;",
            "        ssl_session_timeout 1d;",
        )
    )


def _real_ip_lines(sources: Sequence[str]) -> str:
    if not sources:
        return ""
    lines = [f"        set_real_ip_from {source};" for source in sources]
    lines += ["        real_ip_header X-Forwarded-For;", "        real_ip_recursive on;"]
    return "\n".join(lines)


def render(config: GatewayConfig, template: str | None = None) -> str:
    missing = set(UPSTREAM_SERVICES) - set(config.upstreams)
    if missing:
        raise ValueError(f"no upstream servers for {', '.join(sorted(missing))}")
    accel_prefix = "/" + config.accel_prefix.strip("/") + "/"
    accel_store_prefix = "/" + config.accel_store_prefix.strip("/") + "/"
    values: dict[str, str] = {
        "user_directive": f"user {config.worker_user};" if config.worker_user else "",
        "worker_processes": config.worker_processes,
        "pid_path": config.pid_path,
        "error_log": config.error_log,
        "access_log": config.access_log,
        "temp_dir": config.temp_dir.rstrip("/"),
        "max_body_size": _size(config.max_body_bytes),
        "listen": config.listen,
        "tls_listen": _tls_lines(config.tls),
        "real_ip": _real_ip_lines(config.real_ip_from),
        "server_name": config.server_name,
        "proxy_read_timeout": config.proxy_read_timeout,
        "accel_prefix": accel_prefix,
        "accel_store_prefix": accel_store_prefix,
        "store_resolver": (
            f"            resolver {config.store_resolver} valid=30s;"
            if config.store_resolver
            else ""
        ),
        "media_root": config.media_root.rstrip("/"),
        "docs_root": config.docs_root.rstrip("/"),
        # Titles spelled out as in RFC 9110: Python's own phrases vary between versions.
        "not_found_body": _problem_body(404, "not_found", "Not Found", "No such resource."),
        "payload_too_large_body": _problem_body(
            413,
            "payload_too_large",
            "Content Too Large",
            f"The request body exceeds {config.max_body_bytes} bytes.",
        ),
        "bad_request_body": _problem_body(
            400, "bad_request", "Bad Request", "The request is not valid HTTP."
        ),
        "header_too_large_body": _problem_body(
            400,
            "header_too_large",
            "Bad Request",
            "A request header (or the cookies together) is too large.",
        ),
        "method_not_allowed_body": _problem_body(
            405,
            "method_not_allowed",
            "Method Not Allowed",
            "This resource does not take that method.",
        ),
        "uri_too_long_body": _problem_body(
            414, "uri_too_long", "URI Too Long", "The request line is too long."
        ),
        "not_implemented_body": _problem_body(
            501,
            "not_implemented",
            "Not Implemented",
            "The request uses a transfer coding the gateway does not support.",
        ),
        "http_version_not_supported_body": _problem_body(
            505,
            "http_version_not_supported",
            "HTTP Version Not Supported",
            "Use HTTP/1.1 or HTTP/1.0.",
        ),
        "service_unavailable_body": _problem_body(
            503,
            "service_unavailable",
            "Service Unavailable",
            "The service is unavailable; try again shortly.",
        ),
        "file_unavailable_body": _problem_body(
            503,
            "file_unavailable",
            "Service Unavailable",
            "The file is temporarily unavailable.",
        ),
        "range_not_satisfiable_body": _problem_body(
            416,
            "range_not_satisfiable",
            "Range Not Satisfiable",
            "The requested range is outside the file.",
        ),
        **{
            f"{name}_servers": _servers(config.upstreams[name], config.upstream_options)
            for name in UPSTREAM_SERVICES
        },
        **config.extra,
    }

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"the gateway template needs a value for {name!r}")
        return values[name]

    return _PLACEHOLDER.sub(fill, template if template is not None else template_text())


def local_config(
    *,
    port: int,
    upstreams: Mapping[str, Sequence[str]],
    media_root: Path,
    run_dir: Path,
    host: str = "127.0.0.1",
    accel_prefix: str = "/_protected_media/",
    max_body_bytes: int = 1_048_576,
    store_resolver: str | None = None,
) -> GatewayConfig:
    """The gateway of `natomedia stack`: every path under one run directory, no root needed."""
    return GatewayConfig(
        listen=f"{host}:{port}",
        upstreams=upstreams,
        media_root=str(media_root.resolve()),
        docs_root=str((run_dir / "docs").resolve()),
        pid_path=str(run_dir / "nginx.pid"),
        error_log=str(run_dir / "nginx-error.log"),
        access_log=str(run_dir / "nginx-access.log"),
        temp_dir=str(run_dir / "nginx-temp"),
        accel_prefix=accel_prefix,
        store_resolver=store_resolver,
        worker_processes="1",
        max_body_bytes=max_body_bytes,
        worker_user=getpass.getuser() if os.geteuid() == 0 else None,
    )


# The compose file's names: services answer on port 8000 of their service name, media files sit
# on the volume shared by the media and gateway containers, and nginx runs as an unprivileged user.
DOCKER = GatewayConfig(
    listen="8080",
    upstreams={name: [f"{name}:8000"] for name in UPSTREAM_SERVICES},
    media_root="/srv/media",
    docs_root="/srv/docs",
    pid_path="/tmp/nginx.pid",
    error_log="stderr",
    access_log="/dev/stdout",
    temp_dir="/tmp/nginx",
    # Docker's embedded DNS: the object store is named by its service name.
    store_resolver="127.0.0.11",
)


def docker_conf_path() -> Path:
    return Path(__file__).with_name(DOCKER_CONF_NAME)


if __name__ == "__main__":
    sys.stdout.write(render(DOCKER))
