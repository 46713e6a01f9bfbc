"""The results table: one row per measurement, each with its ratio to its reference."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadgen import Measurement

COLUMNS = (
    "#",
    "measurement",
    "req/s",
    "MB/s",
    "p50 ms",
    "p99 ms",
    "reference",
    "ratio",
    "target",
    "errors",
    "notes",
)


@dataclass
class Row:
    key: str
    label: str
    reference: str | None
    metric: str = "rps"  # what the ratio compares: rps, mbps, or p99 (lower is better)
    target: tuple[str, float] | None = None
    measurement: Measurement | None = None
    status: str = "not run"

    def value(self) -> float | None:
        m = self.measurement
        if m is None:
            return None
        if self.metric == "rps":
            return m.requests_per_s
        if self.metric == "mbps":
            return m.bytes_per_s / 1e6
        return m.p99_ms


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _latency(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:,.0f}"


def ratio(row: Row, rows: Mapping[str, Row]) -> float | None:
    if row.reference is None or row.reference not in rows:
        return None
    mine, theirs = row.value(), rows[row.reference].value()
    if mine is None or not theirs:
        return None
    return mine / theirs


def verdict(row: Row, rows: Mapping[str, Row]) -> str:
    if row.target is None:
        return ""
    kind, bound = row.target
    if kind == "p99<":
        text = f"p99 < {bound:g} ms"
        p99 = row.measurement.p99_ms if row.measurement else None
        met = None if p99 is None else p99 < bound
    else:
        text = f"{kind} {bound:g}"
        value = ratio(row, rows)
        met = None if value is None else value >= bound
    if met is None:
        return text
    return f"{text} {'met' if met else '**missed**'}"


def render_table(rows: Sequence[Row]) -> str:
    by_key = {row.key: row for row in rows}
    numbers = {row.key: index for index, row in enumerate(rows, 1)}
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "| " + " | ".join("---" for _ in COLUMNS) + " |",
    ]
    for index, row in enumerate(rows, 1):
        m = row.measurement
        value = ratio(row, by_key)
        reference = f"#{numbers[row.reference]}" if row.reference in numbers else "-"
        if row.reference and row.metric == "p99":
            reference += " (p99)"
        if m is None or row.status != "ok":
            errors = row.status
        else:
            errors = str(m.errors) if m.errors else "0"
        cells = [
            str(index),
            row.label,
            _number(m.requests_per_s, 0 if m and m.requests_per_s >= 100 else 1) if m else "-",
            _number(m.bytes_per_s / 1e6, 0) if m and m.bytes_per_s else "-",
            _latency(m.p50_ms) if m else "-",
            _latency(m.p99_ms) if m else "-",
            reference,
            f"{value:.2f}" if value is not None else "-",
            verdict(row, by_key),
            errors,
            (m.detail if m else "").replace("|", "/"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rows_as_json(rows: Sequence[Row]) -> list[dict[str, object]]:
    by_key = {row.key: row for row in rows}
    result: list[dict[str, object]] = []
    for row in rows:
        m = row.measurement
        result.append(
            {
                "key": row.key,
                "label": row.label,
                "reference": row.reference,
                "metric": row.metric,
                "status": row.status,
                "requests_per_s": m.requests_per_s if m else None,
                "mb_per_s": m.bytes_per_s / 1e6 if m else None,
                "p50_ms": m.p50_ms if m else None,
                "p99_ms": m.p99_ms if m else None,
                "requests": m.requests if m else 0,
                "errors": m.errors if m else None,
                "detail": m.detail if m else "",
                "ratio": ratio(row, by_key),
                "target": verdict(row, by_key),
            }
        )
    return result


def write_results(
    path: Path,
    table: str,
    machine: Mapping[str, str],
    settings: Mapping[str, str],
    *,
    engine: str,
) -> str:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"# Bench results ({engine})",
        "",
        f"Measured {stamp} by `make bench` (bench/run.py) on {engine}: every service and the"
        " peer store in it. Ratios compare rows of this run only;"
        " `ratio` is this row over its reference (for p99 rows, lower is better).",
        "",
        table,
        "",
        "## Run",
        "",
        *(f"- {name}: {value}" for name, value in settings.items()),
        "",
        "## Machine",
        "",
        *(f"- {name}: {value}" for name, value in machine.items()),
        "",
    ]
    text = "\n".join(parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text
