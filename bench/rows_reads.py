"""Public JSON reads (news list, video detail): nginx static, bare ASGI, service, gateway."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from loadgen import Measurement
from stack import Bench


def json_rows(bench: Bench, kind: str, path: str, body: bytes) -> None:
    bare = bench.base(bench.ports.bare) + path
    static = bench.base(bench.ports.static) + path
    direct = bench.base(bench.ports.news if kind == "news" else bench.ports.media) + path
    gateway = bench.base(bench.ports.gateway) + path
    label = "GET /v1/news/articles?limit=20" if kind == "news" else "GET /v1/media/videos/{id}"
    size = f"{len(body)} B"

    def same_then_wrk(
        url: str, headers: Mapping[str, str] | None = None
    ) -> Callable[[], Measurement]:
        def run() -> Measurement:
            bench.check_same(url, body, headers)
            return bench.wrk(url, headers=headers)

        return run

    bench.measure(f"{kind}.nginx", f"{label}: nginx static, same {size}", same_then_wrk(static))
    bench.measure(
        f"{kind}.bare",
        f"{label}: bare ASGI, same bytes",
        same_then_wrk(bare),
        reference=f"{kind}.nginx",
    )
    bench.measure(
        f"{kind}.direct",
        f"{label}: service direct",
        same_then_wrk(direct),
        reference=f"{kind}.bare",
        target=(">=", 0.30),
        server=kind if kind == "news" else "media",
    )
    bench.measure(
        f"{kind}.gateway",
        f"{label}: through nginx gateway",
        same_then_wrk(gateway),
        reference=f"{kind}.direct",
        target=(">=", 0.85),
    )
    # Whoever sends a token is never served from a cache, by nginx or by the service: these
    # two rows show what proxying itself costs, which the cached rows above hide.
    bearer = {"Authorization": f"Bearer {bench.state.access_token}"}
    bench.measure(
        f"{kind}.direct-uncached",
        f"{label} with a token (never cached): service direct",
        same_then_wrk(direct, bearer),
        server=kind if kind == "news" else "media",
    )
    bench.measure(
        f"{kind}.gateway-uncached",
        f"{label} with a token (never cached): through nginx gateway",
        same_then_wrk(gateway, bearer),
        reference=f"{kind}.direct-uncached",
        target=(">=", 0.85),
    )
