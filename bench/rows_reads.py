"""Public JSON reads (news list, video detail): nginx static, bare ASGI, service, gateway."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from harness import expect, http
from loadgen import Measurement
from stack import Bench


def json_rows(bench: Bench, kind: str, path: str, body: bytes) -> None:
    bare = bench.base(bench.ports.bare) + path
    static = bench.base(bench.ports.static) + path
    direct = bench.base(bench.ports.news if kind == "news" else bench.ports.media) + path
    gateway = bench.base(bench.ports.gateway) + path
    label = "GET /v1/news/articles?limit=20" if kind == "news" else "GET /v1/media/videos/{id}"
    size = f"{len(body)} B"
    beside = "through nginx gateway (on the load generator's core)"

    def wrk(url: str, headers: Mapping[str, str] | None, beside_client: bool) -> Measurement:
        if not beside_client:
            return bench.wrk(url, headers=headers)
        with bench.gateway_beside_client():
            return bench.wrk(url, headers=headers)

    def same_then_wrk(
        url: str, headers: Mapping[str, str] | None = None, *, beside_client: bool = False
    ) -> Callable[[], Measurement]:
        def run() -> Measurement:
            bench.check_same(url, body, headers)
            return wrk(url, headers, beside_client)

        return run

    def ok_then_wrk(
        url: str, headers: Mapping[str, str], *, beside_client: bool = False
    ) -> Callable[[], Measurement]:
        # Editors also see drafts: their page may differ from the public one.
        def run() -> Measurement:
            status, _, answer = http("GET", url, headers=headers)
            expect(status, answer, 200, url)
            return wrk(url, headers, beside_client)

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
        f"{label}: {beside}",
        same_then_wrk(gateway, beside_client=True),
        reference=f"{kind}.direct",
        target=(">=", 0.85),
    )
    # A reader's token (no editor scope) gets exactly the anonymous answer, from the service's
    # copy; nginx cannot verify tokens, so it passes such reads on.
    reader = {"Authorization": f"Bearer {bench.state.access_token}"}
    bench.measure(
        f"{kind}.direct-reader",
        f"{label} with a reader's token: service direct",
        same_then_wrk(direct, reader),
        reference=f"{kind}.direct",
        target=(">=", 0.70),
        server=kind if kind == "news" else "media",
    )
    bench.measure(
        f"{kind}.gateway-reader",
        f"{label} with a reader's token: {beside}",
        same_then_wrk(gateway, reader, beside_client=True),
        reference=f"{kind}.direct-reader",
        target=(">=", 0.85),
    )
    # The same read with nginx sharing the service's core: what the hop costs that core.
    bench.measure(
        f"{kind}.gateway-reader-shared",
        f"{label} with a reader's token: through nginx gateway on the service's core",
        same_then_wrk(gateway, reader),
        reference=f"{kind}.direct-reader",
    )
    # An editor is never served from a cache, by nginx or by the service: these two rows show
    # the uncached path and what proxying itself costs, which the cached rows above hide.
    editor = {"Authorization": f"Bearer {bench.state.editor_token}"}
    bench.measure(
        f"{kind}.direct-editor",
        f"{label} with an editor's token (never cached): service direct",
        ok_then_wrk(direct, editor),
        server=kind if kind == "news" else "media",
    )
    bench.measure(
        f"{kind}.gateway-editor",
        f"{label} with an editor's token (never cached): {beside}",
        ok_then_wrk(gateway, editor, beside_client=True),
        reference=f"{kind}.direct-editor",
        target=(">=", 0.85),
    )
