"""``kiln stats``, ``kiln schema infer`` and ``kiln validate``: the data library from the shell.

They need no workspace: they read files and write files, like TFDV's functions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

if TYPE_CHECKING:
    from kiln.data import Anomaly, DatasetStatistics, Statistics

__all__ = ["describe", "infer", "load_statistics", "validate"]


def _is_statistics_file(path: Path) -> bool:
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    with path.open("rb") as f:
        return b"kiln.statistics" in f.read(256)


def load_statistics(source: str) -> Statistics:
    """Statistics of DATA (any source ``read_table`` reads), or a statistics JSON file as is."""
    from kiln.data import Statistics, generate_statistics, iter_batches

    path = Path(source)
    if _is_statistics_file(path):
        return Statistics.read(path)
    name = path.name if path.name else "data"
    # One process on the whole machine: one thread per core, never more.
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    stats = generate_statistics(iter_batches(source), name=name, threads=threads)
    return Statistics([stats.dataset()])


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"


def describe(
    data: str, *, out: Path | None, html: Path | None, compare: str | None, console: Console
) -> None:
    from kiln.data import statistics_html

    stats = load_statistics(data)
    other = load_statistics(compare) if compare else None
    current = stats.dataset()
    from kiln.data import drift_scores

    drift = drift_scores(current, other.dataset()) if other else None
    if out:
        stats.write(out)
    if html:
        html.write_text(
            statistics_html(stats, compare=other, drift=drift, title=f"Kiln statistics: {data}"),
            encoding="utf-8",
        )
    t = RichTable(title=f"{escape(current.name)}: {current.num_examples:,} rows", box=None)
    for col in ("feature", "type", "missing", "mean / top value", "std dev / unique", "drift"):
        t.add_column(col, overflow="fold")
    for f in current.features:
        total = f.count + f.num_missing
        missing = f"{f.num_missing / total:.1%}" if total else ""
        if f.numeric is not None:
            a, b = _fmt(f.numeric.mean), _fmt(f.numeric.std_dev)
        elif f.string is not None:
            top = f.string.top_values[0].value if f.string.top_values else ""
            a, b = escape(top[:30]), f"{f.string.unique:,}"
        else:
            a = b = ""
        score = drift.get(f.name) if drift else None
        t.add_row(escape(f.name), f.type, missing, a, b, _fmt(score))
    console.print(t)
    for label, path in (("statistics", out), ("report", html)):
        if path:
            console.print(f"{label}: {path}")


def infer(data: str, *, out: Path, infer_ranges: bool, console: Console) -> None:
    from kiln.data import infer_schema, write_schema

    schema = infer_schema(load_statistics(data).dataset(), infer_ranges=infer_ranges)
    write_schema(schema, out)
    console.print(f"schema with {len(schema.features)} features: {out}")


def validate(
    data: str,
    *,
    schema_path: Path,
    baseline: str | None,
    mode: str,
    environment: str | None,
    as_json: bool,
    console: Console,
) -> int:
    """Validate; the exit code: 0 no anomalies, 1 anomalies."""
    from kiln.data import read_schema, validate_statistics

    schema = read_schema(schema_path)
    stats = load_statistics(data).dataset()
    base = load_statistics(baseline).dataset() if baseline else None
    found = validate_statistics(
        stats,
        schema,
        baseline=base,
        mode="skew" if mode == "skew" else "drift",
        environment=environment,
    )
    if as_json:
        print(json.dumps({"anomalies": [a.to_dict() for a in found]}, indent=1))  # noqa: T201
    else:
        _print_anomalies(found, stats, console)
    return 1 if found else 0


def _print_anomalies(found: list[Anomaly], stats: DatasetStatistics, console: Console) -> None:
    if not found:
        console.print(
            f"[green]no anomalies[/] in {escape(stats.name)} ({stats.num_examples:,} rows)"
        )
        return
    t = RichTable(box=None, header_style="bold")
    for col in ("feature", "anomaly", "severity", "value", "threshold", "description"):
        t.add_column(col, overflow="fold")
    for a in found:
        t.add_row(
            escape(a.feature),
            ", ".join(a.types),
            a.severity,
            _fmt(a.value),
            _fmt(a.threshold),
            escape(a.description),
        )
    console.print(f"[red bold]{len(found)} anomalies[/] in {escape(stats.name)}")
    console.print(t)
