"""What `Stack` tells each process and nginx, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.gateway.cli import build_parser
from services.gateway.stack import Stack, reachable_url


def make_stack(tmp_path: Path, env: dict[str, str] | None = None, **options: int) -> Stack:
    base = {"NATOMEDIA_DATA_DIR": str(tmp_path / "data")}
    return Stack(
        port=8123,
        run_dir=tmp_path / "run",
        env={**base, **(env or {})},
        nginx_binary="/usr/sbin/nginx",
        **options,
    )


def test_the_services_trust_only_the_gateway_for_client_addresses(tmp_path: Path) -> None:
    stack = make_stack(tmp_path, {"NATOMEDIA_TRUSTED_PROXIES": "0.0.0.0,10.0.0.0"})

    assert stack.env["NATOMEDIA_TRUSTED_PROXIES"] == "127.0.0.1"


def test_media_hands_files_to_nginx_from_the_directory_nginx_serves(tmp_path: Path) -> None:
    stack = make_stack(tmp_path, {"MEDIA_ACCEL_REDIRECT": "false"})

    assert stack.env["MEDIA_ACCEL_REDIRECT"] == "true"
    assert stack.env["MEDIA_ACCEL_PREFIX"] == "/_protected_media/"
    assert stack.env["MEDIA_STORAGE_DIR"] == str((tmp_path / "data" / "media").resolve())
    assert stack.nginx.config.media_root == stack.env["MEDIA_STORAGE_DIR"]
    assert stack.nginx.config.accel_prefix == stack.env["MEDIA_ACCEL_PREFIX"]


def test_an_explicit_storage_dir_is_kept(tmp_path: Path) -> None:
    stack = make_stack(tmp_path, {"MEDIA_STORAGE_DIR": str(tmp_path / "files")})

    assert stack.nginx.config.media_root == str((tmp_path / "files").resolve())


def test_urls_default_to_the_gateway_and_are_kept_when_given(tmp_path: Path) -> None:
    default = make_stack(tmp_path)
    public = make_stack(tmp_path, {"PUBLIC_BASE_URL": "https://api.example.org"})

    assert default.env["PUBLIC_BASE_URL"] == "http://127.0.0.1:8123"
    assert default.env["JWKS_URL"] == "http://127.0.0.1:8123/.well-known/jwks.json"
    assert public.env["PUBLIC_BASE_URL"] == "https://api.example.org"
    # Keys are fetched over loopback whatever the public origin is.
    assert public.env["JWKS_URL"] == "http://127.0.0.1:8123/.well-known/jwks.json"


def test_every_replica_has_its_own_port_and_is_an_upstream_server(tmp_path: Path) -> None:
    stack = make_stack(tmp_path, auth_replicas=3, news_replicas=2)

    ports = [replica.port for replicas in stack.replicas.values() for replica in replicas]
    assert len(ports) == len(set(ports)) == 6
    for name, replicas in stack.replicas.items():
        assert list(stack.nginx.config.upstreams[name]) == [
            f"127.0.0.1:{replica.port}" for replica in replicas
        ]
    assert [managed.name for managed in stack.processes()] == [
        "auth-1",
        "auth-2",
        "auth-3",
        "media-1",
        "news-1",
        "news-2",
    ]


def test_a_service_without_replicas_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one replica"):
        make_stack(tmp_path, media_replicas=0)


@pytest.mark.parametrize(
    ("listen", "url"),
    [
        ("127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("0.0.0.0:8000", "http://127.0.0.1:8000"),
        ("8080", "http://127.0.0.1:8080"),
        ("[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_reachable_url(listen: str, url: str) -> None:
    assert reachable_url(listen) == url


def test_the_cli_declares_the_stack_command() -> None:
    args = build_parser().parse_args(
        ["stack", "--port", "9000", "--auth-replicas", "2", "--run-dir", "/tmp/x", "--seed"]
    )

    assert (args.command, args.port, args.auth_replicas, args.run_dir, args.seed) == (
        "stack",
        9000,
        2,
        "/tmp/x",
        True,
    )
