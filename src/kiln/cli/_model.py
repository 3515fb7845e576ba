"""``kiln evaluate`` and ``kiln compare``: a saved model folder against data, from the shell.

They need no workspace: they read a model folder and a data file and write files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

if TYPE_CHECKING:
    import pyarrow as pa

    from kiln.model import EvaluationResult, Model

__all__ = ["compare", "evaluate"]


_META = ("threshold", "positive_class")  # shown only when set


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


def _load(path: Path | str) -> Model:
    """A model folder, or a registry URI (``models:/NAME@ALIAS``, ``models:/NAME/VERSION``)."""
    from kiln.errors import DataError
    from kiln.model import Model

    if str(path).startswith("models:"):
        from kiln.registry import load_model

        return load_model(str(path))
    path = Path(path)
    if not path.exists():
        raise DataError(f"model folder {path} does not exist; pass the folder Model.save wrote")
    if not path.is_dir():
        raise DataError(f"{path} is not a folder; pass a model folder")
    return Model.load(path)


def _read(data: str) -> pa.Table:
    from kiln.data import read_table

    return read_table(data)


def _metrics_table(result: EvaluationResult) -> RichTable:
    base = result.baseline_metrics
    deltas = result.deltas()
    t = RichTable(box=None, header_style="bold")
    t.add_column("metric")
    t.add_column("value", justify="right")
    if base is not None:
        t.add_column("baseline", justify="right")
        t.add_column("change", justify="right")
    for name, value in result.metrics.items():
        if name == "task" or isinstance(value, dict | list) or (value is None and name in _META):
            continue
        cells = [escape(name), _fmt(value)]
        if base is not None:
            delta = deltas.get(name)
            cells += [_fmt(base.get(name)), "" if delta is None else f"{delta:+.4g}"]
        t.add_row(*cells)
    return t


def evaluate(
    model_dir: Path,
    data: str,
    *,
    baseline: Path | None,
    slice_by: list[str],
    thresholds: list[str],
    max_changes: list[str],
    check_slices: bool,
    html: Path | None,
    out: Path | None,
    importance: bool,
    console: Console,
) -> int:
    """Evaluate; the exit code: 0 blessed (or nothing to check), 1 not blessed."""
    from kiln.model import evaluate_model, evaluation_html
    from kiln.model._evaluate import parse_threshold

    checks = [parse_threshold(s) for s in thresholds]
    checks += [parse_threshold(s, change=True) for s in max_changes]
    model = _load(model_dir)
    base = _load(baseline) if baseline is not None else None
    table = _read(data)
    result = evaluate_model(
        model,
        table,
        slice_by=slice_by,
        baseline=base,
        thresholds=checks,
        importance=importance or html is not None,
        check_slices=check_slices,
    )
    if out is not None:
        out.write_text(json.dumps(result.to_dict(), indent=1), encoding="utf-8")
    if html is not None:
        html.write_text(
            evaluation_html(result, title=f"Kiln evaluation: {model_dir.name} on {data}"),
            encoding="utf-8",
        )
    what = f"{result.model_type} ({result.task})"
    rows = result.metrics.get("num_examples")
    console.print(f"{escape(what)} on {escape(data)}: {_fmt(rows)} rows")
    console.print(_metrics_table(result))
    for note in result.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    if result.slices:
        console.print(f"{len(result.slices)} slice(s) by {escape(', '.join(slice_by))}")
    blessing = result.blessing
    blessed = blessing is None or blessing.blessed
    if blessing is not None:
        colour = "green" if blessed else "red bold"
        first, *reasons = blessing.reasons
        console.print(f"[{colour}]{escape(first)}[/]")
        for reason in reasons:
            console.print(f"  {escape(reason)}")
    for label, path in (("metrics", out), ("report", html)):
        if path:
            console.print(f"{label}: {path}")
    return 0 if blessed else 1


def compare(
    model_a: Path, model_b: Path, data: str, *, rows: int, out: Path | None, console: Console
) -> None:
    from kiln.model import compare_models

    a, b = _load(model_a), _load(model_b)
    result = compare_models(a, b, _read(data), rows=rows)
    if out is not None:
        out.write_text(json.dumps(result.to_dict(), indent=1, default=str), encoding="utf-8")
    console.print(
        f"A: {escape(str(model_a))}   B: {escape(str(model_b))}   "
        f"{result.task} of {escape(result.label)} on {_fmt(result.num_examples)} rows"
    )
    t = RichTable(box=None, header_style="bold")
    for column in ("metric", "A", "B", "B − A"):
        t.add_column(column, justify="left" if column == "metric" else "right")
    t.add_row(
        result.metric,
        _fmt(result.metric_a),
        _fmt(result.metric_b),
        f"{result.difference:+.4g}",
    )
    console.print(t)
    for test in result.tests:
        console.print(
            f"{escape(test['name'])}: statistic {_fmt(test['statistic'])}, "
            f"p-value {test['p_value']:.4g}"
        )
    console.print(
        f"disagreements: {result.disagreements:,} of {result.num_examples:,} rows "
        f"({result.disagreement_rate:.1%}; {escape(result.disagreement_definition)})"
    )
    if result.examples.num_rows:
        console.print(_rows_table(result.examples, "where they disagree"))
    if result.rows.num_rows:
        console.print(_rows_table(result.rows, "side by side"))
    if out:
        console.print(f"comparison: {out}")


def _rows_table(table: pa.Table, title: str) -> RichTable:
    t = RichTable(title=title, box=None, header_style="bold", title_justify="left")
    for name in table.column_names:
        t.add_column(escape(name), overflow="fold")
    for row in table.to_pylist():
        t.add_row(*(escape(_fmt(v)) for v in row.values()))
    return t
