"""Rendering the gateway's nginx configuration, and nginx accepting what we render."""

from __future__ import annotations

import dataclasses
import datetime
import re
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.gateway.nginx.config import (
    DOCKER,
    TLS,
    docker_conf_path,
    local_config,
    render,
)
from services.gateway.stack import Nginx, find_nginx, free_port
from tests.conftest import unavailable

UPSTREAMS = {
    "auth": ["127.0.0.1:9001", "127.0.0.1:9002"],
    "media": ["127.0.0.1:9003"],
    "news": ["127.0.0.1:9004"],
}


def local(tmp_path: Path, **changes: object) -> str:
    config = local_config(
        port=8123, upstreams=UPSTREAMS, media_root=tmp_path / "media", run_dir=tmp_path
    )
    return render(dataclasses.replace(config, **changes))


def nginx_binary() -> str:
    binary = find_nginx()
    if binary is None:
        unavailable("nginx", "no nginx binary (apt-get install nginx-light)")
    assert binary is not None
    return binary


def test_every_placeholder_is_filled(tmp_path: Path) -> None:
    text = local(tmp_path)

    assert "{{" not in text
    assert "}}" not in text


def test_each_upstream_lists_every_replica(tmp_path: Path) -> None:
    text = local(tmp_path)

    auth = text.split("upstream natomedia_auth {")[1].split("}")[0]
    assert "server 127.0.0.1:9001 max_fails=3 fail_timeout=10s;" in auth
    assert "server 127.0.0.1:9002 max_fails=3 fail_timeout=10s;" in auth
    assert "keepalive 32;" in auth
    media = text.split("upstream natomedia_media {")[1].split("}")[0]
    assert "127.0.0.1:9003" in media
    assert "127.0.0.1:9001" not in media


def test_an_upstream_without_servers_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one server"):
        local(tmp_path, upstreams={**UPSTREAMS, "news": []})
    with pytest.raises(ValueError, match="news"):
        local(tmp_path, upstreams={"auth": ["a:1"], "media": ["m:1"]})


def test_the_internal_location_maps_onto_the_media_root(tmp_path: Path) -> None:
    text = local(tmp_path, accel_prefix="files")

    block = text.split("location /files/ {")[1].split("}")[0]
    assert "internal;" in block
    assert f"alias {(tmp_path / 'media').resolve()}/;" in block
    assert "etag off;" in block
    assert "add_header ETag $upstream_http_etag always;" in block


def test_the_body_limit_follows_the_services_limit(tmp_path: Path) -> None:
    text = local(tmp_path, max_body_bytes=2 * 1_048_576)

    assert "client_max_body_size 2m;" in text
    assert "The request body exceeds 2097152 bytes." in text


def test_tls_adds_an_ssl_listener_only_when_configured(tmp_path: Path) -> None:
    plain = local(tmp_path)
    secure = local(tmp_path, tls=TLS("/etc/ssl/api.pem", "/etc/ssl/api.key", "8443"))

    assert " ssl;" not in plain
    assert "listen 8443 ssl http2;" in secure
    assert "ssl_certificate /etc/ssl/api.pem;" in secure


def test_a_load_balancer_in_front_can_be_trusted_for_client_addresses(tmp_path: Path) -> None:
    direct = local(tmp_path)
    behind = local(tmp_path, real_ip_from=("10.0.0.0/8",))

    assert "set_real_ip_from" not in direct
    assert "set_real_ip_from 10.0.0.0/8;" in behind
    assert "real_ip_header X-Forwarded-For;" in behind


def test_access_log_writes_stay_atomic_on_a_pipe() -> None:
    # Docker's /dev/stdout is a pipe shared by every worker: a buffered write larger than
    # PIPE_BUF (4096 bytes on Linux) may interleave with another worker's lines.
    lines = render(DOCKER).splitlines()
    (line,) = [line for line in lines if line.strip().startswith("access_log")]
    match = re.search(r"\bbuffer=(\d+)([km]?)\b", line)
    assert match is not None, line
    size = int(match.group(1)) * {"": 1, "k": 1024, "m": 1024**2}[match.group(2)]
    assert size <= 4096, line


def test_the_committed_docker_config_is_the_templates_rendering() -> None:
    assert docker_conf_path().read_text() == render(DOCKER), (
        "regenerate: python -m services.gateway.nginx.config > services/gateway/nginx/docker.conf"
    )


@pytest.mark.nginx
def test_nginx_accepts_the_stack_config(tmp_path: Path) -> None:
    config = local_config(
        port=free_port(), upstreams=UPSTREAMS, media_root=tmp_path / "media", run_dir=tmp_path
    )

    Nginx(config, tmp_path, nginx_binary()).test_config()


@pytest.mark.nginx
def test_nginx_accepts_the_docker_config(tmp_path: Path) -> None:
    # Only the upstream host names are unresolvable here; everything else is the Docker rendering.
    config = dataclasses.replace(
        DOCKER,
        listen=str(free_port()),
        upstreams=UPSTREAMS,
        pid_path=str(tmp_path / "nginx.pid"),
        temp_dir=str(tmp_path / "temp"),
    )
    (tmp_path / "nginx.conf").write_text(render(config))
    (tmp_path / "temp").mkdir()

    result = subprocess.run(
        [nginx_binary(), "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-t"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.nginx
async def test_hsts_is_sent_over_tls_and_not_over_plain_http(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    plain_port, tls_port = free_port(), free_port()
    config = dataclasses.replace(
        local_config(
            port=plain_port, upstreams=UPSTREAMS, media_root=tmp_path, run_dir=tmp_path / "run"
        ),
        tls=TLS(str(cert), str(key), f"127.0.0.1:{tls_port}"),
    )
    nginx = Nginx(config, tmp_path / "run", nginx_binary())
    nginx.start({})
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    try:
        async with httpx.AsyncClient(verify=context, trust_env=False) as client:
            secure = await client.get(f"https://127.0.0.1:{tls_port}/healthz")
            plain = await client.get(f"http://127.0.0.1:{plain_port}/healthz")
    finally:
        nginx.stop()

    assert secure.status_code == plain.status_code == 200
    assert secure.headers["strict-transport-security"].startswith("max-age=")
    assert "strict-transport-security" not in plain.headers
