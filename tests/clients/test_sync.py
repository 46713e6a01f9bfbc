"""`clients/python` (natomedia-client) installed alone into a fresh venv, and `natomedia-sync`
mirroring a real `natomedia dev`: first sync, idempotent rerun, `kill -9` mid-file then resume,
`--verify` repairs, a metadata edit, a removed rendition, a withdrawal, an expired token and an
expired link, a 429 storm.

The client is installed into a venv of its own rather than into `.venv`: `test_python.py`
generates another package under the same import name, and a venv that cannot import `services`
shows the client needs nothing from the server. Its dependencies (httpx, pydantic, rich) are the
ones `.venv` pins, made visible through a `.pth` file, so nothing unpinned is fetched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pty
import signal
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients.conftest import ROOT, DevServer, run_dev_server

GENERATOR = ROOT / "clients" / "python" / "tools" / "generate_models.py"
PASSWORD = "Quiet-Harbour-2025!"
TOKEN_TTL_SECONDS = 3
# The lowest the server accepts; the expired-link test waits it out.
LINK_TTL_SECONDS = 60
SERVER_ENV = {
    "AUTH_ACCESS_TOKEN_TTL_SECONDS": str(TOKEN_TTL_SECONDS),
    "MEDIA_DOWNLOAD_URL_TTL_SECONDS": str(LINK_TTL_SECONDS),
    # Low enough that several workers asking for links at once are refused with 429.
    "MEDIA_DOWNLOAD_URL_RATE_LIMIT": "5/2seconds",
    "MEDIA_PUBLIC_CACHE_SECONDS": "0",
}


@dataclass(frozen=True)
class Partner:
    server: DevServer
    client_id: str
    client_secret: str
    editor_email: str
    python: Path
    sync: Path


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("client-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "natomedia-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    result = subprocess.run(
        [
            venv / "bin" / "python",
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            ROOT / "clients/python",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return venv


@pytest.fixture(scope="module")
async def partner(
    tmp_path_factory: pytest.TempPathFactory, client_venv: Path
) -> AsyncIterator[Partner]:
    async with run_dev_server(tmp_path_factory.mktemp("sync-server"), SERVER_ENV) as server:
        email = f"sync-{uuid.uuid4().hex[:10]}@example.org"
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
            registered = await api.post(
                "/v1/auth/register", json={"email": email, "password": PASSWORD}
            )
            assert registered.status_code == 202, registered.text
            code = await server.code_for(email)
            verified = await api.post("/v1/auth/verify", json={"email": email, "code": code})
            assert verified.status_code == 200, verified.text
            natomedia(server, "users", "grant-role", email, "editor")
            login = await api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
            token = login.json()["access_token"]
            # Access tokens live TOKEN_TTL_SECONDS here: ask for the client before it expires.
            created = await api.post(
                "/v1/auth/clients",
                json={"name": "mirror"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert created.status_code == 201, created.text
        yield Partner(
            server,
            created.json()["client_id"],
            created.json()["client_secret"],
            email,
            client_venv / "bin" / "python",
            client_venv / "bin" / "natomedia-sync",
        )


@contextlib.contextmanager
def editor(partner: Partner) -> Iterator[httpx.Client]:
    """An editor's session (tokens here outlive only a few requests: log in each time)."""
    with httpx.Client(base_url=partner.server.url, timeout=30) as api:
        login = api.post(
            "/v1/auth/login", json={"email": partner.editor_email, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        api.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        yield api


def natomedia(server: DevServer, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "services.gateway.cli", *args],
        cwd=ROOT,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def ingest(partner: Partner, tmp: Path, size: int, *args: str) -> tuple[str, str]:
    """A file of `size` random bytes as a new video (or a rendition of `--video-id`)."""
    source = tmp / f"clip-{uuid.uuid4().hex[:6]}.mp4"
    source.write_bytes(os.urandom(size))
    output = natomedia(partner.server, "media", "ingest", str(source), *args)
    video = output.split("video ", 1)[1].split()[0]
    rendition = output.split("rendition ", 1)[1].split()[0]
    return video, rendition


def sync_env(partner: Partner) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("NATOMEDIA_")}
    env.update(
        NATOMEDIA_BASE_URL=partner.server.url,
        NATOMEDIA_CLIENT_ID=partner.client_id,
        NATOMEDIA_CLIENT_SECRET=partner.client_secret,
    )
    return env


@dataclass
class Run:
    code: int
    events: list[dict[str, Any]]
    stderr: str

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["event"] == kind]


def run_sync(partner: Partner, directory: Path, *args: str, timeout: float = 300) -> Run:
    result = subprocess.run(
        [str(partner.sync), str(directory), "--json", *args],
        cwd=directory.parent,
        env=sync_env(partner),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return Run(result.returncode, events, result.stderr)


def catalogue(partner: Partner, **params: Any) -> list[dict[str, Any]]:
    videos: list[dict[str, Any]] = []
    with httpx.Client(base_url=partner.server.url, timeout=30) as api:
        cursor = None
        while True:
            query = {**params, "limit": 100} | ({"cursor": cursor} if cursor else {})
            page = api.get("/v1/media/videos", params=query)
            page.raise_for_status()
            body = page.json()
            videos += [api.get(f"/v1/media/videos/{item['id']}").json() for item in body["items"]]
            cursor = body["next_cursor"]
            if not cursor or not body["items"]:
                return videos


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(directory)): (path.stat().st_mtime_ns, path.stat().st_size)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_mirrored(directory: Path, videos: list[dict[str, Any]]) -> None:
    for video in videos:
        folder = directory / video["id"]
        sidecar = json.loads((folder / "video.json").read_text())
        assert (sidecar["title"], sidecar["version"]) == (video["title"], video["version"])
        assert len(sidecar["files"]) == len(video["renditions"])
        for entry, rendition in zip(sidecar["files"], video["renditions"], strict=True):
            assert sha256(folder / entry["file"]) == rendition["sha256"], entry
        assert sorted(path.name for path in folder.iterdir()) == sorted(
            [entry["file"] for entry in sidecar["files"]] + ["video.json"]
        )


def test_package_stands_alone(partner: Partner) -> None:
    imports = subprocess.run(
        [str(partner.python), "-c", "import natomedia_client, services"],
        cwd=partner.python.parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "No module named 'services'" in imports.stderr


def test_offline_client_behaviours(partner: Partner) -> None:
    """Retry-After, 503 backoff, a `RateLimit` pause, problem codes, a wrong digest."""
    result = subprocess.run(
        [partner.python, Path(__file__).with_name("client_offline_checks.py")],
        cwd=partner.python.parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "ok\n"


def test_models_match_openapi() -> None:
    check = subprocess.run(
        [sys.executable, GENERATOR, "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr


def test_models_check_fails_when_the_document_drifts(tmp_path: Path) -> None:
    document = json.loads((ROOT / "openapi.json").read_text())
    document["components"]["schemas"]["RenditionOut"]["properties"]["bitrate_mode"] = {
        "type": "string"
    }
    drifted = tmp_path / "openapi.json"
    drifted.write_text(json.dumps(document))
    check = subprocess.run(
        [sys.executable, GENERATOR, "--check", "--document", drifted],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 1
    assert "does not match" in check.stderr


def test_first_sync_then_a_rerun_touches_nothing(partner: Partner, tmp_path: Path) -> None:
    ingest(partner, tmp_path, 50_000, "--title", "Odd: name/with..slashes", "--tag", "first")
    mirror = tmp_path / "mirror"
    first = run_sync(partner, mirror)
    assert first.code == 0, (first.events, first.stderr)
    videos = catalogue(partner)
    assert len(videos) >= 4
    assert_mirrored(mirror, videos)
    before = snapshot(mirror)

    again = run_sync(partner, mirror)
    assert again.code == 0, (again.events, again.stderr)
    assert not again.kinds("download")
    assert snapshot(mirror) == before


def test_kill_9_mid_file_then_resume(partner: Partner, tmp_path: Path) -> None:
    tag = f"kill-{uuid.uuid4().hex[:6]}"
    video, _ = ingest(partner, tmp_path, 3_000_000, "--title", "Long clip", "--tag", tag)
    mirror = tmp_path / "mirror"
    process = subprocess.Popen(
        [str(partner.sync), str(mirror), "--json", "--tag", tag, "--max-rate", "200000"],
        env=sync_env(partner),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        part = _wait_for_part(mirror / video, process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    held = part.stat().st_size
    assert 0 < held < 3_000_000

    resumed = run_sync(partner, mirror, "--tag", tag)
    assert resumed.code == 0, (resumed.events, resumed.stderr)
    offsets = [event["offset"] for event in resumed.kinds("resume")]
    assert offsets
    assert offsets[0] >= held - 65536
    assert_mirrored(mirror, catalogue(partner, tag=tag))
    assert not part.exists()


def _wait_for_part(folder: Path, process: subprocess.Popen[bytes]) -> Path:
    for _ in range(600):
        assert process.poll() is None, "the sync finished before it could be killed"
        parts = list(folder.glob("*.part")) if folder.exists() else []
        if parts and parts[0].stat().st_size > 300_000:
            return parts[0]
        time.sleep(0.05)
    pytest.fail("no partial file appeared")


def test_verify_repairs_damaged_and_missing_files(partner: Partner, tmp_path: Path) -> None:
    tag = f"verify-{uuid.uuid4().hex[:6]}"
    video, _ = ingest(partner, tmp_path, 40_000, "--title", "To damage", "--tag", tag)
    ingest(partner, tmp_path, 30_000, "--video-id", video, "--title", "x", "--label", "proxy")
    mirror = tmp_path / "mirror"
    assert run_sync(partner, mirror, "--tag", tag).code == 0
    damaged, removed = sorted((mirror / video).glob("*.mp4"))
    data = bytearray(damaged.read_bytes())
    data[1000] ^= 0xFF
    damaged.write_bytes(bytes(data))
    removed.unlink()

    verified = run_sync(partner, mirror, "--tag", tag, "--verify")
    assert verified.code == 0, (verified.events, verified.stderr)
    assert [event["file"] for event in verified.kinds("repair")] == [f"{video}/{damaged.name}"]
    assert_mirrored(mirror, catalogue(partner, tag=tag))


def test_metadata_edit_removed_rendition_and_withdrawal(partner: Partner, tmp_path: Path) -> None:
    tag = f"edit-{uuid.uuid4().hex[:6]}"
    video, _ = ingest(partner, tmp_path, 20_000, "--title", "Before", "--tag", tag)
    _, extra = ingest(partner, tmp_path, 10_000, "--video-id", video, "--title", "x")
    gone, _ = ingest(partner, tmp_path, 10_000, "--title", "To withdraw", "--tag", tag)
    mirror, deleting = tmp_path / "mirror", tmp_path / "deleting"
    assert run_sync(partner, mirror, "--tag", tag).code == 0
    assert run_sync(partner, deleting, "--tag", tag).code == 0
    inodes = {path.stat().st_ino for path in (mirror / video).glob("*.mp4")}

    with editor(partner) as api:
        etag = api.get(f"/v1/media/videos/{video}").headers["etag"]
        edited = api.patch(
            f"/v1/media/videos/{video}",
            json={"title": "After", "shot_list": "1. Wide shot"},
            headers={"If-Match": etag},
        )
        assert edited.status_code == 200, edited.text
        withdrawn = api.post(f"/v1/media/videos/{gone}/withdraw", json={"reason_code": "rights"})
        assert withdrawn.status_code == 200, withdrawn.text

    updated = run_sync(partner, mirror, "--tag", tag)
    assert updated.code == 0, (updated.events, updated.stderr)
    sidecar = json.loads((mirror / video / "video.json").read_text())
    assert (sidecar["title"], sidecar["shot_list"]) == ("After", "1. Wide shot")
    # The server names files after the title: they are renamed, not fetched again.
    assert not updated.kinds("download")
    assert len(updated.kinds("rename")) == 2
    assert {path.stat().st_ino for path in (mirror / video).glob("*.mp4")} == inodes
    assert_mirrored(mirror, catalogue(partner, tag=tag))
    assert not (mirror / gone).exists()
    withdrawal = json.loads((mirror / "withdrawn" / gone / "withdrawal.json").read_text())
    assert withdrawal["reason_code"] == "rights"
    assert list((mirror / "withdrawn" / gone).glob("*.mp4"))

    assert run_sync(partner, deleting, "--tag", tag, "--delete-withdrawn").code == 0
    assert not (deleting / gone).exists()
    assert not (deleting / "withdrawn").exists()

    with editor(partner) as api:
        dropped = api.delete(f"/v1/media/videos/{video}/renditions/{extra}")
        assert dropped.status_code in (200, 204), dropped.text
    pruned = run_sync(partner, mirror, "--tag", tag)
    assert pruned.code == 0, (pruned.events, pruned.stderr)
    assert len(pruned.kinds("remove")) == 1
    assert_mirrored(mirror, catalogue(partner, tag=tag))

    with editor(partner) as api:
        restored = api.post(f"/v1/media/videos/{gone}/restore")
        assert restored.status_code == 200, restored.text
    back = run_sync(partner, mirror, "--tag", tag)
    assert back.code == 0, (back.events, back.stderr)
    assert [event["video"] for event in back.kinds("restore")] == [gone]
    assert not back.kinds("download")
    assert not (mirror / "withdrawn" / gone).exists()
    assert_mirrored(mirror, catalogue(partner, tag=tag))


def test_a_429_storm(partner: Partner, tmp_path: Path) -> None:
    tag = f"storm-{uuid.uuid4().hex[:6]}"
    for number in range(12):
        ingest(partner, tmp_path, 5_000, "--title", f"Storm {number}", "--tag", tag)
    mirror = tmp_path / "mirror"
    stormy = run_sync(partner, mirror, "--tag", tag, "--parallel", "8")
    assert stormy.code == 0, (stormy.events, stormy.stderr)
    assert any(event["status"] == 429 for event in stormy.kinds("wait"))
    assert_mirrored(mirror, catalogue(partner, tag=tag))


LIBRARY_SCRIPT = """
import sys, time, httpx
from datetime import datetime, timedelta, UTC
from pathlib import Path
from natomedia_client import ApiError, Client
from natomedia_client.client import _Token

import os
base_url, client_id, video_id, dest = sys.argv[1:5]
secret = os.environ["NATOMEDIA_CLIENT_SECRET"]
seen = []
def hook(request):
    seen.append((request.method, request.url.path, request.headers.get("authorization", "")))
api = Client(base_url, client_id=client_id, client_secret=secret)
api._http.event_hooks["request"].append(hook)
video = api.video(video_id)
rendition = video.renditions[0]

# An expired token still cached: the server refuses it, the client asks for a new one.
old = api.access_token()
# Refused twice a second apart: the server's cached and uncached checks round differently.
deadline = time.monotonic() + 60
refusals = 0
while refusals < 2:
    assert time.monotonic() < deadline, "the token never expired"
    answer = httpx.post(
        f"{base_url}/v1/media/videos/{video_id}/renditions/{rendition.id}/download-url",
        headers={"Authorization": "Bearer " + old},
    )
    refusals = refusals + 1 if answer.status_code == 401 else 0
    time.sleep(1.1 if refusals else 0.5)
api._token = _Token(old, float("inf"))
link = api.download_url(video_id, rendition.id, fresh=True)
assert api.access_token() != old
assert [path for _, path, _ in seen].count("/v1/auth/token") == 2
print("token-renewed")

# Half the file, then the link expires: the next attempt is refused and a new link is asked for.
part = Path(dest + ".part")
with httpx.stream("GET", link.url, headers={"Range": "bytes=0-9999"}) as answer:
    assert answer.status_code == 206
    part.write_bytes(answer.read())
deadline = time.monotonic() + 120
while (status := httpx.head(link.url).status_code) != 410:
    assert status == 200 and time.monotonic() < deadline, status
    time.sleep(1)
# As if the client's clock were behind: it believes the link is still good.
later = datetime.now(UTC) + timedelta(hours=1)
api.remember_link(rendition.id, link.model_copy(update={"expires_at": later}))
before = len([s for s in seen if s[1].endswith("/download-url")])
api.download(video_id, rendition, dest, on_resume=lambda offset: print("resume", offset))
after = len([s for s in seen if s[1].endswith("/download-url")])
assert after == before + 1, (before, after)
print("link-renewed")

# The iterators follow cursors across small pages.
articles = [article.id for article in api.articles(limit=5)]
videos = [video.id for video in api.videos(limit=2)]
assert len(articles) == len(set(articles)) > 5, articles
assert len(videos) == len(set(videos)) > 2, videos
print("iterated", len(articles))

try:
    api.video("00000000-0000-0000-0000-000000000000")
except ApiError as error:
    print("error", error.status, error.code)
"""


def test_library_renews_an_expired_token_and_an_expired_link(
    partner: Partner, tmp_path: Path
) -> None:
    video, _ = ingest(partner, tmp_path, 200_000, "--title", "Library", "--tag", "library")
    dest = tmp_path / "clip.mp4"
    result = subprocess.run(
        [partner.python, "-c", LIBRARY_SCRIPT, partner.server.url, partner.client_id, video, dest],
        cwd=tmp_path,
        env=sync_env(partner),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "token-renewed"
    assert lines[1] == "resume 10000"
    assert lines[2] == "link-renewed"
    assert lines[3].startswith("iterated ")
    assert lines[4] == "error 404 not_found"
    detail = httpx.get(f"{partner.server.url}/v1/media/videos/{video}").json()
    assert sha256(dest) == detail["renditions"][0]["sha256"]


def test_usage_and_credential_errors_exit_2(partner: Partner, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    env = sync_env(partner)
    cases: list[tuple[list[str], dict[str, str], str]] = [
        (["--client-secret", "nms_x"], env, "process list"),
        ([], {**env, "NATOMEDIA_CLIENT_SECRET": "nms_wrong"}, "credentials refused"),
        ([], {k: v for k, v in env.items() if k != "NATOMEDIA_BASE_URL"}, "--base-url"),
        (["--since", "yesterday"], env, "--since"),
    ]
    for args, environment, message in cases:
        result = subprocess.run(
            [str(partner.sync), str(mirror), *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_progress_bars_on_a_terminal_and_log_lines_otherwise(
    partner: Partner, tmp_path: Path
) -> None:
    tag = f"tty-{uuid.uuid4().hex[:6]}"
    ingest(partner, tmp_path, 400_000, "--title", "On a terminal", "--tag", tag)
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [partner.sync, tmp_path / "tty", "--tag", tag, "--max-rate", "400000"],
        env={**sync_env(partner), "TERM": "xterm", "COLUMNS": "120"},
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    screen = b""
    with contextlib.suppress(OSError):  # EIO once the process has gone
        while chunk := os.read(controller, 65536):
            screen += chunk
    os.close(controller)
    assert process.wait(timeout=120) == 0, screen.decode(errors="replace")
    assert "━" in screen.decode(errors="replace")  # a rich bar

    plain = subprocess.run(
        [partner.sync, tmp_path / "plain", "--tag", tag],
        env=sync_env(partner),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert plain.returncode == 0, plain.stderr
    assert "━" not in plain.stdout + plain.stderr
    assert plain.stdout.splitlines()[-1].endswith("mirror complete")


def test_filters_notice_a_video_that_leaves_them(partner: Partner, tmp_path: Path) -> None:
    tag = f"filter-{uuid.uuid4().hex[:6]}"
    french, _ = ingest(partner, tmp_path, 5_000, "--title", "FR", "--tag", tag, "--language", "fr")
    english, _ = ingest(partner, tmp_path, 5_000, "--title", "EN", "--tag", tag, "--language", "en")
    mirror = tmp_path / "mirror"
    first = run_sync(partner, mirror, "--tag", tag, "--language", "FR")
    assert first.code == 0, (first.events, first.stderr)
    assert (mirror / french / "video.json").exists()
    assert not (mirror / english).exists()

    with editor(partner) as api:
        etag = api.get(f"/v1/media/videos/{french}").headers["etag"]
        moved = api.patch(
            f"/v1/media/videos/{french}", json={"language": "de"}, headers={"If-Match": etag}
        )
        assert moved.status_code == 200, moved.text
    second = run_sync(partner, mirror, "--tag", tag, "--language", "fr")
    assert second.code == 0, (second.events, second.stderr)
    assert [event["video"] for event in second.kinds("remove")] == [french]
    assert not (mirror / french).exists()


def test_failed_items_exit_1_and_are_retried(partner: Partner, tmp_path: Path) -> None:
    tag = f"fail-{uuid.uuid4().hex[:6]}"
    video, _ = ingest(partner, tmp_path, 5_000, "--title", "Blocked", "--tag", tag)
    name = catalogue(partner, tag=tag)[0]["renditions"][0]["filename"]
    mirror = tmp_path / "mirror"
    # A directory where the file must go: the rename into place fails.
    (mirror / video / name).mkdir(parents=True)
    failed = run_sync(partner, mirror, "--tag", tag)
    assert failed.code == 1, (failed.events, failed.stderr)
    assert [event["video"] for event in failed.kinds("failed")] == [video]
    assert failed.events[-1]["event"] == "summary"

    (mirror / video / name).rmdir()
    retried = run_sync(partner, mirror, "--tag", tag)
    assert retried.code == 0, (retried.events, retried.stderr)
    assert_mirrored(mirror, catalogue(partner, tag=tag))
