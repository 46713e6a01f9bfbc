"""Accounts: `/me`, logins in turns with fastapi-users, and `/healthz` during a login storm."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from harness import EMAIL, PASSWORD, Turn, expect, http
from loadgen import Measurement, parse_probe, prober_command, wrk_command, wrk_script
from stack import Bench


def auth_rows(bench: Bench) -> None:
    auth = bench.base(bench.ports.auth)
    peer = bench.base(bench.ports.peer)

    def our_me() -> Measurement:
        bench.login()
        bearer = {"Authorization": f"Bearer {bench.state.access_token}"}
        status, _, body = http("GET", f"{auth}/v1/auth/me", headers=bearer)
        expect(status, body, 200, "GET /v1/auth/me")
        return bench.wrk(f"{auth}/v1/auth/me", headers=bearer)

    def peer_me() -> Measurement:
        bench.start_peer()
        bearer = {"Authorization": f"Bearer {bench.state.peer_token}"}
        status, _, body = http("GET", f"{peer}/users/me", headers=bearer)
        expect(status, body, 200, "peer GET /users/me")
        return bench.wrk(f"{peer}/users/me", headers=bearer)

    bench.measure("me.peer", "fastapi-users GET /users/me (peer)", peer_me, server="peer")
    bench.measure(
        "me.ours",
        "GET /v1/auth/me",
        our_me,
        reference="me.peer",
        target=(">=", 5.0),
        server="auth",
    )

    ours_script = wrk_script(
        bench.work / "login-ours.lua",
        method="POST",
        body=json.dumps({"email": EMAIL, "password": PASSWORD}),
        headers={"Content-Type": "application/json"},
    )
    peer_script = wrk_script(
        bench.work / "login-peer.lua",
        method="POST",
        body=urllib.parse.urlencode({"username": EMAIL, "password": PASSWORD}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    connections = bench.options.login_connections

    def peer_login(duration: float) -> Measurement:
        bench.start_peer()
        return bench.wrk(
            f"{peer}/auth/jwt/login",
            script=peer_script,
            connections=connections,
            duration=duration,
        )

    def our_login(duration: float) -> Measurement:
        return bench.wrk(
            f"{auth}/v1/auth/login",
            script=ours_script,
            connections=connections,
            duration=duration,
        )

    cost = bench.argon2
    argon = f"Argon2id m={cost['memory_cost']} t={cost['time_cost']} p={cost['parallelism']}"
    bench.measure_in_turns(
        [
            Turn("login.peer", f"fastapi-users login (peer), {argon}", peer_login, "peer"),
            Turn(
                "login.ours",
                f"POST /v1/auth/login, {argon}",
                our_login,
                "auth",
                reference="login.peer",
                # A guard, not a goal: both logins are one Argon2id hash, so equal is the limit.
                target=(">=", 0.9),
            ),
        ],
        rounds=bench.options.login_rounds,
    )

    def storm(
        health_url: str, login_url: str, script: Path, *, peer: bool
    ) -> Callable[[], Measurement]:
        def run() -> Measurement:
            if peer:
                bench.start_peer()
            duration = bench.options.login_duration
            storm_argv = wrk_command(
                login_url,
                duration=duration + 1,
                threads=bench.options.threads,
                connections=bench.options.login_connections,
                script=script,
            )
            stormer = subprocess.Popen(
                [*bench.pinning.client, *storm_argv],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                time.sleep(0.5)
                probe = subprocess.run(
                    [
                        *bench.pinning.client,
                        *prober_command(health_url, duration=duration, interval_ms=10),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=duration + 60,
                    check=True,
                )
                out, _ = stormer.communicate(timeout=duration + 120)
            finally:
                if stormer.poll() is None:
                    stormer.kill()
                    stormer.wait()
            from loadgen import parse_wrk

            logins = parse_wrk(out)
            result = parse_probe(probe.stdout)
            note = f"{logins.requests_per_s:.1f} logins/s meanwhile"
            if logins.errors:
                note += f" ({logins.detail})"
            return Measurement(
                requests_per_s=result.requests_per_s,
                p50_ms=result.p50_ms,
                p99_ms=result.p99_ms,
                bytes_per_s=0.0,
                requests=result.requests,
                errors=result.errors + logins.errors,
                detail="; ".join(filter(None, [result.detail, note])),
            )

        return run

    bench.measure(
        "storm.peer",
        f"peer /healthz while {bench.options.login_connections} connections log in",
        storm(f"{peer}/healthz", f"{peer}/auth/jwt/login", peer_script, peer=True),
        metric="p99",
    )
    bench.measure(
        "storm.ours",
        f"auth /healthz while {bench.options.login_connections} connections log in",
        storm(f"{auth}/healthz", f"{auth}/v1/auth/login", ours_script, peer=False),
        reference="storm.peer",
        metric="p99",
        target=("p99<", 50.0),
        server="auth",
    )
