"""Token verification alone: one read on a bench app, without and with `Security(principal)`."""

from __future__ import annotations

from harness import expect, http
from loadgen import Measurement
from stack import Bench


def token_rows(bench: Bench) -> None:
    open_url = bench.base(bench.ports.token_open) + "/v1/media/bench/read"
    protected_url = bench.base(bench.ports.token_protected) + "/v1/media/bench/read"
    bearer = {"Authorization": f"Bearer {bench.state.access_token}"}

    def open_read() -> Measurement:
        bench.check_same(open_url, bench.state.video_body)
        return bench.wrk(open_url, headers=bearer)

    def protected_read() -> Measurement:
        status, _, body = http("GET", protected_url)
        expect(status, body, 401, "protected read without a token")
        bench.check_same(protected_url, bench.state.video_body, bearer)
        return bench.wrk(protected_url, headers=bearer)

    bench.measure(
        "token.open",
        "media-style read, no auth (bench token_app, same header sent)",
        open_read,
        server="token-open",
    )
    bench.measure(
        "token.protected",
        "same read with Security(principal) (ES256 JWT, common verifier)",
        protected_read,
        reference="token.open",
        target=(">=", 0.90),
        server="token-protected",
    )
