"""`bench/results-scale.md` and `bench/results-scale.png`: one table per engine, targets beside.

Each table has a line per measurement and a column per size; the verdict judges the largest
size measured (the targets of issue 20 are stated for 100,000 rows), and "before" quotes the
issue's own measurements of the code before the work on scale.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scale_data import QUERIES
from scale_measure import Latency

ENGINES = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}
SERVICES = {"news": "news", "video": "video"}
IMPORTS = {
    "news": "`natomedia news import` (articles)",
    "media": "`natomedia media import` (videos)",
}
TOKEN_READS = {"news-list": "news list (`?limit=20`)", "video-detail": "video detail"}
PAGES = (1, 5)
MILLISECOND_TICKS = (1, 2, 5, 10, 20, 30, 50, 80, 100, 200, 500, 1000, 2000, 5000)
COLOURS = ("tab:blue", "tab:cyan", "tab:red", "tab:orange", "tab:green", "tab:olive")

# Per engine: one size's values (key -> value).
Values = Mapping[str, Any]
BySize = Mapping[int, Values]


@dataclass(frozen=True)
class Line:
    label: str
    cell: Callable[[BySize, int], str]
    target: str = ""
    # True met, False missed, None not judged; given every size's values and the size judged.
    verdict: Callable[[BySize, int], bool | None] | None = None
    before: str = "-"


def _number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def _get(by_size: BySize, rows: int, key: str) -> Any:
    return by_size.get(rows, {}).get(key)


def _float_cell(key: str, digits: int = 0) -> Callable[[BySize, int], str]:
    def cell(by_size: BySize, rows: int) -> str:
        value = _get(by_size, rows, key)
        if isinstance(value, str):
            return value
        return _number(value, digits)

    return cell


def _at_most(key: str, bound: float) -> Callable[[BySize, int], bool | None]:
    def verdict(by_size: BySize, rows: int) -> bool | None:
        value = _get(by_size, rows, key)
        return None if not isinstance(value, float | int) else value <= bound

    return verdict


def _at_least(key: str, bound: float) -> Callable[[BySize, int], bool | None]:
    def verdict(by_size: BySize, rows: int) -> bool | None:
        value = _get(by_size, rows, key)
        return None if not isinstance(value, float | int) else value >= bound

    return verdict


def _previous(by_size: BySize, rows: int) -> int | None:
    smaller = [size for size in by_size if size < rows]
    return max(smaller) if smaller else None


def _growth(key: str) -> Callable[[BySize, int], float | None]:
    """time(rows) / time(previous size), scaled to a tenfold step."""

    def growth(by_size: BySize, rows: int) -> float | None:
        previous = _previous(by_size, rows)
        if previous is None:
            return None
        now, before = _get(by_size, rows, key), _get(by_size, previous, key)
        if not isinstance(now, float) or not isinstance(before, float) or before <= 0:
            return None
        import math

        step = rows / previous
        # A tenfold step compares as it is; another step is brought to ten with its own power.
        return float((now / before) ** (math.log(10) / math.log(step)))

    return growth


def import_lines(service: str, engine: str) -> list[Line]:
    prefix = f"import.{service}"
    name = IMPORTS[service]
    growth = _growth(f"{prefix}.seconds")
    before_seconds = {
        ("news", "postgresql"): "100k: crashes (`slug IN` over 32,767 arguments); 30k: 117 s",
        ("news", "sqlite"): "100k: did not finish in 17 min (quadratic)",
    }.get((service, engine), "-")

    def counted(by_size: BySize, rows: int) -> str:
        value = _get(by_size, rows, f"{prefix}.counted")
        if value is None:
            return _get(by_size, rows, f"{prefix}.error") or "-"
        reported, stored = value
        return f"{_number(reported)} / {_number(stored)}"

    def counted_ok(by_size: BySize, rows: int) -> bool | None:
        value = _get(by_size, rows, f"{prefix}.counted")
        return None if value is None else value == (rows, rows)

    def seconds_verdict(by_size: BySize, rows: int) -> bool | None:
        value = _get(by_size, rows, f"{prefix}.seconds")
        if not isinstance(value, float):
            return None
        # The target is 100 s for 100,000 rows; a smaller run is held to the same rate.
        return value <= 100 * rows / 100_000

    def growth_cell(by_size: BySize, rows: int) -> str:
        value = growth(by_size, rows)
        return "-" if value is None else f"{value:.1f}"

    def growth_verdict(by_size: BySize, rows: int) -> bool | None:
        value = growth(by_size, rows)
        return None if value is None else value <= 12

    return [
        Line(
            f"{name}: seconds",
            _float_cell(f"{prefix}.seconds", 1),
            "≤ 100 s at 100k",
            seconds_verdict,
            before_seconds,
        ),
        Line(
            f"{name}: rows/s",
            _float_cell(f"{prefix}.rate"),
            "≥ 1,000",
            _at_least(f"{prefix}.rate", 1000),
            "30k: 257" if (service, engine) == ("news", "postgresql") else "-",
        ),
        Line(
            f"{name}: time for 10x the rows, against the size before",
            growth_cell,
            "≤ 12x (linear: 10x)",
            growth_verdict,
            "quadratic" if (service, engine) == ("news", "sqlite") else "-",
        ),
        Line(
            f"{name}: peak RSS MB",
            _float_cell(f"{prefix}.rss"),
            "≤ 400 MB",
            _at_most(f"{prefix}.rss", 400),
            "30k: 280 MB" if (service, engine) == ("news", "postgresql") else "-",
        ),
        Line(f"{name}: rows reported / in the database", counted, "= rows", counted_ok),
    ]


def _latency_cell(key: str) -> Callable[[BySize, int], str]:
    def cell(by_size: BySize, rows: int) -> str:
        value = _get(by_size, rows, key)
        if isinstance(value, Latency):
            return f"{_ms(value.median_ms)} / {_ms(value.p95_ms)}"
        return value if isinstance(value, str) else "-"

    return cell


def _search_verdict(key: str, engine: str) -> Callable[[BySize, int], bool | None]:
    def verdict(by_size: BySize, rows: int) -> bool | None:
        value = _get(by_size, rows, key)
        if not isinstance(value, Latency):
            return None
        if engine == "postgresql":
            return value.median_ms <= 30 and value.p95_ms <= 80
        return value.median_ms <= 50

    return verdict


SEARCH_BEFORE = {
    ("postgresql", "news", "common", 1): "30k: 446 ms",
    ("postgresql", "news", "common", 5): "30k: 700 ms (deeper pages)",
    ("postgresql", "news", "rare", 1): "30k: 290 ms",
    ("postgresql", "news", "three words", 1): "30k: 493 ms (`nato allies council`)",
    ("sqlite", "video", "rare", 1): "100k: 826 ms (a word matching nothing)",
}


def search_lines(engine: str) -> list[Line]:
    target = "median ≤ 30, p95 ≤ 80 ms" if engine == "postgresql" else "median ≤ 50 ms"
    lines = []
    for service in SERVICES:
        for kind, query in QUERIES.items():
            for page in PAGES:
                key = f"search.{service}.{kind}.{page}"
                lines.append(
                    Line(
                        f"{service} search `{query}` ({kind}), page {page}: median / p95 ms",
                        _latency_cell(key),
                        target,
                        _search_verdict(key, engine),
                        SEARCH_BEFORE.get((engine, service, kind, page), "-"),
                    )
                )
    return lines


def ranking_lines() -> list[Line]:
    lines = []
    for service in SERVICES:
        for kind, query in QUERIES.items():
            key = f"exact.{service}.{kind}"

            def cell(by_size: BySize, rows: int, key: str = key) -> str:
                value = _get(by_size, rows, key)
                if value is None:
                    return "-"
                verdict, matches = value
                return f"{verdict} ({_number(matches)} matches)" if matches is not None else verdict

            def verdict(by_size: BySize, rows: int, key: str = key) -> bool | None:
                value = _get(by_size, rows, key)
                if value is None or value[1] is None or value[1] > 10_000:
                    return None  # above 10,000 matches a bounded candidate set may rank
                return bool(value[0] == "same")

            lines.append(
                Line(
                    f"{service} search `{query}`: first page against exact ranking",
                    cell,
                    "same up to 10,000 matches; above: reported",
                    verdict,
                )
            )
    return lines


def list_lines() -> list[Line]:
    lines = []
    for service in SERVICES:
        path = "/v1/news/articles" if service == "news" else "/v1/media/videos"
        lines.append(
            Line(
                f"{service} list `{path}?limit=100`, first page: median / p95 ms",
                _latency_cell(f"list.{service}.first"),
                "keep (issue: fine)",
                None,
                "video, 100k: 8 ms" if service == "video" else "-",
            )
        )

        def deep(by_size: BySize, rows: int, service: str = service) -> str:
            page = _get(by_size, rows, f"list.{service}.deep_page")
            text = _latency_cell(f"list.{service}.deep")(by_size, rows)
            return f"{text} (page {page})" if page else text

        lines.append(
            Line(
                f"{service} list, deep keyset page (page 50, or the last): median / p95 ms",
                deep,
                "keep (issue: fine)",
                None,
                "video, 100k: 18 ms at page 50" if service == "video" else "-",
            )
        )
    return lines


TOKEN_BEFORE = {
    ("postgresql", "news-list"): "181 vs 8,476 req/s: 0.02",
    ("sqlite", "news-list"): "162 vs 8,519 req/s: 0.02",
    ("postgresql", "video-detail"): "609 vs 9,221 req/s: 0.07",
}


def token_lines(engine: str) -> list[Line]:
    lines = []
    for read, name in TOKEN_READS.items():
        prefix = f"token.{read}"

        def cell(by_size: BySize, rows: int, prefix: str = prefix) -> str:
            anonymous = _get(by_size, rows, f"{prefix}.anonymous")
            token = _get(by_size, rows, f"{prefix}.token")
            if isinstance(anonymous, str) or isinstance(token, str):
                return anonymous if isinstance(anonymous, str) else str(token)
            if anonymous is None or token is None:
                return "-"
            return f"{token:,.0f} vs {anonymous:,.0f}: {token / anonymous:.2f}"

        def verdict(by_size: BySize, rows: int, prefix: str = prefix) -> bool | None:
            anonymous = _get(by_size, rows, f"{prefix}.anonymous")
            token = _get(by_size, rows, f"{prefix}.token")
            if not isinstance(anonymous, float) or not isinstance(token, float) or not anonymous:
                return None
            return token / anonymous >= 0.7

        lines.append(
            Line(
                f"{name} direct, req/s with a reader's token vs anonymous: ratio",
                cell,
                "≥ 0.7x",
                verdict,
                TOKEN_BEFORE.get((engine, read), "-"),
            )
        )
    return lines


def engine_lines(engine: str) -> list[Line]:
    return [
        *import_lines("news", engine),
        *import_lines("media", engine),
        *search_lines(engine),
        *ranking_lines(),
        *list_lines(),
        *token_lines(engine),
    ]


def _verdict_text(line: Line, by_size: BySize, rows: int) -> str:
    if line.verdict is None:
        return ""
    met = line.verdict(by_size, rows)
    if met is None:
        return ""
    return "met" if met else "**missed**"


def render_engine(engine: str, by_size: BySize) -> list[str]:
    sizes = sorted(by_size)
    largest = sizes[-1] if sizes else 0
    header = ["measurement", *(f"{size:,} rows" for size in sizes), "target", "verdict", "before"]
    lines = [
        f"## {ENGINES[engine]}",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
    ]
    for line in engine_lines(engine):
        cells = [
            line.label,
            *(line.cell(by_size, size).replace("|", "/") for size in sizes),
            line.target,
            _verdict_text(line, by_size, largest),
            line.before,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    notes: list[str] = []
    for size in sizes:
        for note in by_size[size].get("notes", []):
            if note not in notes:
                notes.append(note)
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return [*lines, ""]


def write_markdown(
    path: Path,
    results: Mapping[str, BySize],
    settings: Mapping[str, str],
    machine: Mapping[str, str],
    picture: Path | None,
) -> str:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# Scale results",
        "",
        f"Measured {stamp} by `make bench-scale` (bench/scale.py): each size imported into fresh "
        "databases on each engine, then read through the services (uvicorn, one process each, "
        "direct, no gateway). Latencies are of sequential requests, one at a time, with the "
        "services' public cache off (a search is timed, not a cached copy); the token rows run "
        "wrk with the cache as configured by default. The verdict judges the largest size "
        'measured: the targets (issue 20) are stated for 100,000 rows. "before" quotes the '
        "issue's measurements of the code before the work on scale.",
        "",
    ]
    if picture is not None:
        parts += [f"![search latency against rows]({picture.name})", ""]
    for engine, by_size in results.items():
        parts += render_engine(engine, by_size)
    parts += ["## Run", "", *(f"- {name}: {value}" for name, value in settings.items()), ""]
    parts += ["## Machine", "", *(f"- {name}: {value}" for name, value in machine.items()), ""]
    text = "\n".join(parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def labels(engines: Sequence[str]) -> list[str]:
    """Every measurement's label, per engine: what a complete report holds."""
    return [line.label for engine in engines for line in engine_lines(engine)]


def draw(path: Path, results: Mapping[str, BySize]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    engines = list(results)
    figure, axes = plt.subplots(
        1, len(engines), figsize=(7 * len(engines), 5.5), squeeze=False, sharey=True
    )
    for axis, engine in zip(axes[0], engines, strict=True):
        by_size = results[engine]
        sizes = sorted(by_size)
        for service in SERVICES:
            for kind, query in QUERIES.items():
                for page in PAGES:
                    key = f"search.{service}.{kind}.{page}"
                    points = [
                        (size, by_size[size][key].median_ms)
                        for size in sizes
                        if isinstance(by_size[size].get(key), Latency)
                    ]
                    if not points:
                        continue
                    # One colour per query and page; news solid, video dashed.
                    colour = COLOURS[list(QUERIES).index(kind) * len(PAGES) + PAGES.index(page)]
                    axis.plot(
                        *zip(*points, strict=True),
                        "-" if service == "news" else "--",
                        color=colour,
                        marker="o" if page == 1 else "s",
                        label=f"{service} `{query}` page {page}",
                    )
        target = 30 if engine == "postgresql" else 50
        axis.axhline(target, color="red", linewidth=1, linestyle=":", label=f"target {target} ms")
        axis.set_xscale("log")
        axis.set_yscale("log")
        plain = ticker.FuncFormatter(lambda value, _: f"{value:,.0f}")
        axis.xaxis.set_major_formatter(plain)
        axis.yaxis.set_major_formatter(plain)
        axis.yaxis.set_major_locator(ticker.FixedLocator(MILLISECOND_TICKS))
        axis.yaxis.set_minor_formatter(ticker.NullFormatter())
        axis.set_xlabel("rows (articles, videos)")
        axis.set_title(f"{ENGINES[engine]}: search median latency")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    axes[0][0].set_ylabel("median ms (sequential requests)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
