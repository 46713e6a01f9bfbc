"""Two media replicas on object storage (SeaweedFS), sharing configuration and secrets by
environment but no disk: a file ingested through one downloads through the other, in both
delivery modes."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.gateway.mail_sink import MailSink
from services.gateway.stack import Stack, StackError, find_nginx, free_port
from tests.access_log_support import logged, with_request_ids
from tests.conftest import unavailable
from tests.e2e.conftest import (
    E2E,
    _create_databases,
    _drop_databases,
    _redis_db_14,
    bearer,
    register_and_verify,
    stack_environment,
)
from tests.s3_support import TEST_BUCKET, S3Endpoint, new_prefix, sync_client

pytestmark = [pytest.mark.e2e, pytest.mark.nginx, pytest.mark.postgres, pytest.mark.s3]


@pytest.fixture(params=["proxy", "redirect"])
async def object_stack(
    request: pytest.FixtureRequest,
    s3_endpoint: S3Endpoint,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[E2E]:
    if find_nginx() is None:
        unavailable("nginx", "no nginx binary (apt-get install nginx-light)")
    client = sync_client(s3_endpoint)
    try:
        client.create_bucket(Bucket=TEST_BUCKET)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    finally:
        client.close()
    redis_url = await _redis_db_14()
    database_urls = await _create_databases(uuid.uuid4().hex[:8])
    root = tmp_path_factory.mktemp("e2e-s3")
    mail = MailSink("127.0.0.1", free_port(), root / "mail")
    mail.start()
    env = stack_environment(root, database_urls, redis_url, mail.port)
    env.update(s3_endpoint.env())
    env["MEDIA_STORAGE_URL"] = f"s3://{TEST_BUCKET}/{new_prefix()}"
    env["MEDIA_DELIVERY"] = request.param
    stack = Stack(
        port=free_port(),
        media_replicas=2,
        separate_data_dirs=True,
        run_dir=root / "run",
        env=env,
    )
    try:
        try:
            await asyncio.to_thread(stack.start)
        except StackError as exc:
            pytest.fail(f"the stack did not start: {exc}")
        yield E2E(stack, mail, database_urls, redis_url)
    finally:
        await asyncio.to_thread(stack.stop)
        mail.stop()
        await _drop_databases(database_urls)


def ingest_through(stack: Stack, replica: int, source: Path) -> dict[str, str]:
    """`natomedia media ingest` with one replica's environment (its own data directory)."""
    managed = stack.replicas["media"][replica].managed
    result = subprocess.run(
        [sys.executable, "-m", "services.gateway.cli", "media", "ingest", str(source),
         "--title", "Object storage clip"],
        env={**stack.env, **managed.extra_env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)


async def served_by(stack: Stack, request_ids: set[str]) -> set[str]:
    """The media replica of each request (nginx logs `media : store` when it went on to fetch
    the object)."""
    entries = await logged(stack.run_dir / "nginx-access.log", with_request_ids(request_ids))
    return {
        entry["upstream"].split(" : ")[0] for entry in entries if entry["request_id"] in request_ids
    }


async def test_a_file_ingested_through_one_replica_downloads_through_the_other(
    object_stack: E2E, tmp_path: Path
) -> None:
    stack = object_stack.stack
    redirect = stack.env["MEDIA_DELIVERY"] == "redirect"
    content = os.urandom(6 * 1024 * 1024 + 17)
    source = tmp_path / "clip.mp4"
    source.write_bytes(content)
    ingested = await asyncio.to_thread(ingest_through, stack, 0, source)
    video_id = ingested["video"].split()[0]
    rendition_id = ingested["rendition"].strip()

    async with object_stack.client() as gateway, httpx.AsyncClient(trust_env=False) as outside:
        _, tokens = await register_and_verify(gateway, object_stack)
        grant = await gateway.post(
            f"/v1/media/videos/{video_id}/renditions/{rendition_id}/download-url",
            headers=bearer(tokens),
        )
        assert grant.status_code == 200, grant.text
        parts = httpx.URL(grant.json()["url"])
        link = f"{parts.path}?{parts.query.decode()}"
        request_ids = {f"s3-download-{index}-{uuid.uuid4().hex[:6]}" for index in range(4)}
        for request_id in sorted(request_ids):
            answer = await gateway.get(link, headers={"X-Request-ID": request_id})
            if redirect:
                assert answer.status_code == 302, answer.text
                answer = await outside.get(answer.headers["location"])
                assert answer.status_code == 200
            else:
                assert answer.status_code == 200, answer.text
                assert answer.headers["etag"] == f'"{hashlib.sha256(content).hexdigest()}"'
            assert hashlib.sha256(answer.content).digest() == hashlib.sha256(content).digest()
        # Round-robin reached both replicas; neither has the file on its own disk.
        replicas = {f"127.0.0.1:{replica.port}" for replica in stack.replicas["media"]}
        assert await served_by(stack, request_ids) == replicas
        for replica in stack.replicas["media"]:
            media_dir = Path(replica.managed.extra_env["MEDIA_STORAGE_DIR"])
            assert not [path for path in media_dir.rglob("*") if path.is_file()]

        head = await gateway.head(link)
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(content))
        ranged = await gateway.get(link, headers={"Range": "bytes=0-9"})
        if redirect:
            assert ranged.status_code == 302
            ranged = await outside.get(ranged.headers["location"], headers={"Range": "bytes=0-9"})
        assert (ranged.status_code, ranged.content) == (206, content[:10])
