"""What a `make bench` run prepares before its rows: data, services, nginx, an account, the file."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

from harness import (
    BENCH_DIR,
    EDITOR_EMAIL,
    EMAIL,
    GIB,
    NEWS_PATH,
    PASSWORD,
    PROJECT_PYTHON,
    ROOT,
    Harness,
    expect,
    find_tool,
    free_port,
    http,
)
from processes import clean_env, wait_http

NATOMEDIA = (str(PROJECT_PYTHON), "-m", "services.gateway.cli")


class Bench(Harness):
    """A harness with the product's stack started and its data in place."""

    # ----------------------------------------------------------------- setup
    def setup(self) -> None:
        from services.auth.config import AuthSettings
        from services.gateway.mail_sink import MailSink

        if self.work.exists():
            shutil.rmtree(self.work)
        self.data.mkdir(parents=True)
        if self.options.database == "postgresql":
            self.postgres('DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self.postgres('CREATE DATABASE "{name}"')
        sink = MailSink("127.0.0.1", free_port(), self.work / "mail")
        sink.start()
        self.sink = sink
        defaults = AuthSettings()
        self.argon2 = {
            "memory_cost": defaults.argon2_memory_cost,
            "time_cost": defaults.argon2_rounds,
            "parallelism": defaults.argon2_parallelism,
        }
        self.prepare_file()
        self.step("migrate, seed, ingest", self.prepare_data)

        services = {
            "auth": (self.ports.auth, self.service_env()),
            "news": (self.ports.news, self.service_env()),
            "media": (self.ports.media, self.service_env(MEDIA_ACCEL_REDIRECT="true")),
            "media-stream": (
                self.ports.media_stream,
                self.service_env(MEDIA_ACCEL_REDIRECT="false"),
            ),
        }
        for name, (port, env) in services.items():
            module = name.split("-")[0]
            self.uvicorn(name, f"services.{module}.app:create_app", port, env, factory=True)
        started = time.monotonic()
        for name, (port, _) in services.items():
            self.ready(name, f"{self.base(port)}/healthz")
        print(f"[bench] start services: {time.monotonic() - started:.1f} s", flush=True)

        self.step("fetch bodies", self.fetch_bodies)
        self.step("start bare and token apps", self.start_bare_and_token_app)
        self.step("start nginx", self.start_nginx)
        self.step("create account", self.create_account)
        self.step("ingest and sign the file", self.locate_download)

    def step(self, name: str, action: Callable[[], object]) -> None:
        started = time.monotonic()
        action()
        print(f"[bench] {name}: {time.monotonic() - started:.1f} s", flush=True)

    def prepare_file(self) -> None:
        size = self.options.file_size
        self.state.file_label = (
            f"{size / GIB:g} GiB" if size >= GIB else f"{size / 1024**2:g} MiB"
        ) + " sparse file"
        path = self.work / "bench-video.mp4"
        with path.open("wb") as handle:
            handle.truncate(size)
        self.big_file = path

    def fetch_bodies(self) -> None:
        status, _, body = http("GET", self.base(self.ports.news) + NEWS_PATH)
        expect(status, body, 200, "news page")
        self.state.news_body = body
        status, _, listing = http("GET", self.base(self.ports.media) + "/v1/media/videos?limit=1")
        expect(status, listing, 200, "video list")
        items = json.loads(listing)["items"]
        if not items:
            raise RuntimeError("the media catalogue is empty after seeding")
        self.state.video_path = f"/v1/media/videos/{items[0]['id']}"
        status, _, body = http("GET", self.base(self.ports.media) + self.state.video_path)
        expect(status, body, 200, "video detail")
        self.state.video_body = body

    def start_bare_and_token_app(self) -> None:
        static = self.work / "static"
        manifest = {}
        for path, body in (
            (NEWS_PATH.split("?")[0], self.state.news_body),
            (self.state.video_path, self.state.video_body),
        ):
            target = static / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
            manifest[path] = str(target)
        (self.work / "bare-manifest.json").write_text(json.dumps(manifest))
        bare_env = clean_env({"BENCH_BARE_MANIFEST": str(self.work / "bare-manifest.json")})
        self.uvicorn("bare", "bare_app:app", self.ports.bare, bare_env, factory=False)
        token_apps = {"open": self.ports.token_open, "protected": self.ports.token_protected}
        for route, port in token_apps.items():
            env = self.service_env(
                BENCH_TOKEN_APP_BODY=manifest[self.state.video_path], BENCH_TOKEN_APP_ROUTE=route
            )
            self.uvicorn(f"token-{route}", "token_app:create_app", port, env, factory=True)
        self.ready("bare", self.base(self.ports.bare) + "/")
        for route, port in token_apps.items():
            self.ready(f"token-{route}", self.base(port) + "/healthz")

    def storage_dir(self) -> Path:
        from services.media.config import MediaSettings

        return MediaSettings(NATOMEDIA_DATA_DIR=str(self.data)).resolved_storage_dir.resolve()

    def start_nginx(self) -> None:
        from services.gateway.nginx.config import local_config, render
        from services.media.config import MediaSettings

        nginx = find_tool("nginx") or "nginx"
        static_work = self.work / "nginx-static"
        static_work.mkdir(parents=True, exist_ok=True)
        values = {
            "USER_LINE": "user root;" if os.geteuid() == 0 else "",
            "WORK": str(static_work),
            "STATIC_ROOT": str((self.work / "static").resolve()),
            "STORAGE_DIR": str(self.storage_dir()),
            "STATIC_PORT": str(self.ports.static),
        }
        config = (BENCH_DIR / "nginx" / "static.conf.template").read_text()
        for name, value in values.items():
            config = config.replace(f"@{name}@", value)
        (static_work / "nginx.conf").write_text(config)
        static = self.group.start(
            "nginx-static",
            [nginx, "-p", str(static_work), "-c", str(static_work / "nginx.conf")],
            clean_env({}),
        )
        self.servers["nginx-static"] = static

        # The product's gateway exactly as `natomedia stack` renders it, upstreams on our ports.
        gateway_work = self.work / "nginx-gateway"
        gateway_config = local_config(
            port=self.ports.gateway,
            upstreams={
                "auth": [f"127.0.0.1:{self.ports.auth}"],
                "media": [f"127.0.0.1:{self.ports.media}"],
                "news": [f"127.0.0.1:{self.ports.news}"],
            },
            media_root=self.storage_dir(),
            run_dir=gateway_work,
            accel_prefix=MediaSettings(NATOMEDIA_DATA_DIR=str(self.data)).accel_prefix,
        )
        Path(gateway_config.temp_dir).mkdir(parents=True, exist_ok=True)
        (gateway_work / "nginx.conf").write_text(render(gateway_config))
        self.state.gateway_source = (
            "services/gateway/nginx/gateway.conf.template rendered by local_config() "
            "(as `natomedia stack`), 1 worker, access log on"
        )
        gateway = self.group.start(
            "nginx-gateway",
            [
                nginx,
                "-p",
                str(gateway_work),
                "-c",
                str(gateway_work / "nginx.conf"),
                "-e",
                gateway_config.error_log,
                "-g",
                "daemon off;",
            ],
            clean_env({}),
        )
        self.servers["nginx-gateway"] = gateway
        wait_http(self.base(self.ports.static) + "/", static)
        wait_http(self.base(self.ports.gateway) + "/v1/news/healthz", gateway)

    @contextlib.contextmanager
    def gateway_beside_client(self) -> Iterator[None]:
        """The gateway's nginx on the load generator's core for the rows inside.

        The server core stands for what the service is given; a production gateway runs on CPU
        of its own (its own container or host), so a row that asks what the hop costs a read
        must not charge nginx to the service's core. On two cores the only other place is next
        to wrk, which has room for it (bench/README.md, "Placement"). The file rows keep the
        gateway beside the static nginx they are compared with.
        """
        gateway = self.servers["nginx-gateway"]
        gateway.move_to(self.pinning.client)
        try:
            yield
        finally:
            gateway.move_to(self.pinning.server)

    def create_account(self) -> None:
        self.register(EMAIL)
        self.login()
        # An editor too: editors are never served from a cache, so their reads take the
        # uncached path the reader's rows no longer show.
        self.register(EDITOR_EMAIL)
        completed = subprocess.run(
            [*NATOMEDIA, "users", "grant-role", EDITOR_EMAIL, "editor"],
            env=self.service_env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"grant-role failed:\n{completed.stdout}\n{completed.stderr}")
        status, _, body = http(
            "POST",
            f"{self.base(self.ports.auth)}/v1/auth/login",
            json_body={"email": EDITOR_EMAIL, "password": PASSWORD},
        )
        expect(status, body, 200, "editor login")
        self.state.editor_token = json.loads(body)["access_token"]

    def register(self, email: str) -> None:
        auth = self.base(self.ports.auth)
        status, _, body = http(
            "POST", f"{auth}/v1/auth/register", json_body={"email": email, "password": PASSWORD}
        )
        expect(status, body, 202, "register")
        deadline = time.monotonic() + 30
        code = None
        while code is None and time.monotonic() < deadline:
            mails = self.sink.to(email)  # type: ignore[attr-defined]
            code = next((mail.code for mail in mails if mail.code), None)
            time.sleep(0.1)
        if code is None:
            raise RuntimeError("no verification code arrived at the mail sink within 30 s")
        status, _, body = http(
            "POST", f"{auth}/v1/auth/verify", json_body={"email": email, "code": code}
        )
        expect(status, body, 200, "verify")

    def login(self) -> None:
        status, _, body = http(
            "POST",
            f"{self.base(self.ports.auth)}/v1/auth/login",
            json_body={"email": EMAIL, "password": PASSWORD},
        )
        expect(status, body, 200, "login")
        self.state.access_token = json.loads(body)["access_token"]

    def prepare_data(self) -> None:
        completed = subprocess.run(
            [
                str(PROJECT_PYTHON),
                str(BENCH_DIR / "prepare_data.py"),
                str(self.big_file),
                "--title",
                "Bench sparse file",
            ],
            env=self.service_env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"prepare_data failed:\n{completed.stdout}\n{completed.stderr}")
        found = dict(re.findall(r"^(video|rendition) (\S+)", completed.stdout, re.M))
        if set(found) != {"video", "rendition"}:
            raise RuntimeError(f"ingest printed no ids:\n{completed.stdout}")
        self.ingested = (found["video"], found["rendition"])
        # The copy in storage is what is served; the source is not needed any more.
        self.big_file.unlink()

    def locate_download(self) -> None:
        media = self.base(self.ports.media)
        video_id, rendition_id = self.ingested
        status, _, body = http(
            "POST",
            f"{media}/v1/media/videos/{video_id}/renditions/{rendition_id}/download-url",
            headers={"Authorization": f"Bearer {self.state.access_token}"},
        )
        expect(status, body, 200, "download url")
        url = urllib.parse.urlsplit(json.loads(body)["url"])
        self.state.download_path = f"{url.path}?{url.query}" if url.query else url.path
        storage = self.storage_dir()
        stored = [
            path
            for path in storage.rglob(f"*{rendition_id}*")
            if path.is_file() and path.stat().st_size == self.options.file_size
        ]
        if not stored:
            raise RuntimeError(f"no stored file for rendition {rendition_id} under {storage}")
        self.state.direct_file_path = "/direct-media/" + stored[0].relative_to(storage).as_posix()
