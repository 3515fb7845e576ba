"""Hello, Kiln: read the Palmer penguins, summarise them per species, and write an HTML report.

Four components doing real work on a real table (the penguins CSV that ships inside the
``palmerpenguins`` package):

    read_penguins ─► clean ─┬─► summarise ─┐
                            └──────────────┴─► report

Run it with ``kiln run examples/hello_pipeline.py`` (``make demo`` does), change a parameter with
``--param min_body_mass_g=3500``, and see why each step hit or missed the cache with
``--explain-cache``.
"""

from __future__ import annotations

import html
import importlib.resources
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from kiln import InputPath, Metrics, Report, Table, component, pipeline

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


@component
def read_penguins(path: InputPath = "") -> Table:
    """The penguins table: ``path`` when given, else the CSV shipped with palmerpenguins.

    ``path`` is an InputPath: editing the file reruns this step although its name is unchanged.
    """
    source = (
        Path(path) if path else importlib.resources.files("palmerpenguins") / "data/penguins.csv"
    )
    with source.open("rb") as f:
        table = pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(null_values=["NA", ""]))
    print(f"read {table.num_rows} rows, {table.num_columns} columns from {source}")
    return Table(table)


@component
def clean(table: Table, min_body_mass_g: float = 0.0) -> Table:
    """Drop rows with a missing measurement or a body mass under the threshold."""
    t: pa.Table = table.read()
    keep = pc.greater_equal(t["body_mass_g"], min_body_mass_g)
    for column in NUMERIC:
        keep = pc.and_kleene(keep, pc.is_valid(t[column]))
    cleaned = t.filter(pc.fill_null(keep, False))
    print(f"kept {cleaned.num_rows} of {t.num_rows} rows")
    return Table(cleaned)


@component
def summarise(table: Table, group_by: str = "species") -> Metrics:
    """Count and mean of every measurement per group."""
    t: pa.Table = table.read()
    if group_by not in t.column_names:
        raise ValueError(f"no column {group_by!r}; the table has {', '.join(t.column_names)}")
    aggs = [(group_by, "count")] + [(c, "mean") for c in NUMERIC]
    grouped = t.group_by(group_by).aggregate(aggs).sort_by(group_by)
    groups = {
        str(row[group_by]): {
            "count": row[f"{group_by}_count"],
            **{c: round(row[f"{c}_mean"], 2) for c in NUMERIC},
        }
        for row in grouped.to_pylist()
    }
    return Metrics({"rows": t.num_rows, "group_by": group_by, "groups": groups})


@component
def report(table: Table, summary: Metrics) -> Report:
    """A self-contained HTML page: per-group means and a bar per group count."""
    s = summary.read()
    t: pa.Table = table.read()
    largest = max(g["count"] for g in s["groups"].values())
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{g['count']}"
        f"<div class='bar' style='width:{200 * g['count'] // largest}px'></div></td>"
        + "".join(f"<td>{g[c]}</td>" for c in NUMERIC)
        + "</tr>"
        for name, g in s["groups"].items()
    )
    head = "".join(f"<th>{html.escape(c)}</th>" for c in NUMERIC)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Penguins</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:4px 10px;text-align:right}}
.bar{{background:#c0562f;height:8px}}</style></head><body>
<h1>Penguins by {html.escape(s["group_by"])}</h1>
<p>{s["rows"]} rows with every measurement, {t.num_columns} columns.</p>
<table><tr><th>{html.escape(s["group_by"])}</th><th>count</th>{head}</tr>{rows}</table>
</body></html>"""
    return Report(page)


@pipeline(name="hello")
def hello(path: str = "", min_body_mass_g: float = 0.0, group_by: str = "species") -> None:
    raw = read_penguins(path=path)
    cleaned = clean(raw.output, min_body_mass_g=min_body_mass_g)
    summary = summarise(cleaned.output, group_by=group_by)
    report(cleaned.output, summary.output)
