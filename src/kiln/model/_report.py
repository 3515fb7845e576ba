"""A self-contained HTML evaluation report: :func:`evaluation_html`.

One page with the blessing verdict and its reasons, the metrics table (with the baseline and the
change when there is one), and pictures drawn as inline SVG: the training curve (loss and
eval_loss per iteration), ROC and precision-recall curves, the confusion matrix as a heatmap, the
residual histogram (regression), permutation importance bars, and the sliced metrics table.

Like :func:`kiln.data.statistics_html` it needs nothing but itself: inline CSS, no script, no
external reference of any kind (no CDN, font or image URL), so it works offline and can be
stored as an artifact. Every name and value is HTML-escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

from kiln.model._evaluate import EvaluationResult

__all__ = ["evaluation_html"]

# Okabe-Ito: distinguishable with the common colour-vision deficiencies, legible on white.
_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
_W, _H = 360, 240  # a line chart, margins included
_ML, _MR, _MT, _MB = 46, 12, 12, 30


_META = ("threshold", "positive_class")  # shown only when set


def _esc(value: object) -> str:
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return html.escape(text, quote=True)


def _num(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool) or not isinstance(x, int | float):
        return _esc(x)
    if isinstance(x, int):
        return f"{x:,}"
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == 0:
        return "0"
    a = abs(x)
    text = f"{x:,.0f}" if a >= 1e4 else f"{x:.4g}" if a >= 1e-4 else f"{x:.2e}"
    return text.replace("-", "−")


def _svg(width: int, height: int, label: str, body: Sequence[str]) -> str:
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_esc(label)}"><title>{_esc(label)}</title>{"".join(body)}</svg>'
    )


def _figure(caption: str, svg: str) -> str:
    return f"<figure>{svg}<figcaption>{_esc(caption)}</figcaption></figure>"


def _line_chart(
    label: str,
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    *,
    x_name: str,
    y_name: str,
    unit_square: bool = False,
    diagonal: bool = False,
    legend: str = "top right",
) -> str:
    """Lines through ``(x, y)`` points, one colour per series, with axes and a legend."""
    xs = [x for _, sx, _ in series for x in sx if math.isfinite(x)]
    ys = [y for _, _, sy in series for y in sy if math.isfinite(y)]
    if not xs or not ys:
        return '<p class="muted">no points to draw</p>'
    if unit_square:
        x0, x1, y0, y1 = 0.0, 1.0, 0.0, 1.0
    else:
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        if x1 == x0:
            x1 = x0 + 1.0
        if y1 == y0:
            y1 = y0 + 1.0
        pad = (y1 - y0) * 0.05
        y0, y1 = (y0 - pad if y0 < 0 or y0 - pad >= 0 else 0.0), y1 + pad
    pw, ph = _W - _ML - _MR, _H - _MT - _MB

    def px(x: float) -> float:
        return _ML + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return _MT + ph - (y - y0) / (y1 - y0) * ph

    body = [
        f'<rect x="{_ML}" y="{_MT}" width="{pw}" height="{ph}" class="frame"/>',
        f'<text x="{_ML + pw / 2}" y="{_H - 4}" class="axis" text-anchor="middle">'
        f"{_esc(x_name)}</text>",
        f'<text x="10" y="{_MT + ph / 2}" class="axis" text-anchor="middle" '
        f'transform="rotate(-90 10 {_MT + ph / 2})">{_esc(y_name)}</text>',
    ]
    for value, anchor in ((x0, "start"), (x1, "end")):
        body.append(
            f'<text x="{px(value):.1f}" y="{_MT + ph + 12}" class="tick" '
            f'text-anchor="{anchor}">{_num(value)}</text>'
        )
    for value in (y0, y1):
        body.append(
            f'<text x="{_ML - 3}" y="{py(value) + 4:.1f}" class="tick" text-anchor="end">'
            f"{_num(value)}</text>"
        )
    if diagonal:
        body.append(
            f'<line x1="{px(0):.1f}" y1="{py(0):.1f}" x2="{px(1):.1f}" y2="{py(1):.1f}" '
            'class="chance"/>'
        )
    for i, (name, sx, sy) in enumerate(series):
        colour = _PALETTE[i % len(_PALETTE)]
        points = " ".join(
            f"{px(x):.1f},{py(y):.1f}"
            for x, y in zip(sx, sy, strict=False)
            if math.isfinite(x) and math.isfinite(y)
        )
        body.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.8"/>'
        )
        if legend.startswith("top"):
            ly = _MT + 12 + 13 * i
        else:
            ly = _MT + ph - 6 - 13 * (len(series) - 1 - i)
        lx = _ML + pw - 110 if legend.endswith("right") else _ML + 8
        body.append(
            f'<rect x="{lx}" y="{ly - 8}" width="9" height="9" fill="{colour}"/>'
            f'<text x="{lx + 13}" y="{ly}" class="tick">{_esc(str(name)[:18])}</text>'
        )
    return _svg(_W, _H, label, body)


# ---------------------------------------------------------------------- sections


def _metrics_table(result: EvaluationResult) -> str:
    base = result.baseline_metrics
    deltas = result.deltas()
    head = "<tr><th>metric</th><th>value</th>"
    if base is not None:
        head += "<th>baseline</th><th>change</th>"
    rows = [head + "</tr>"]
    for name, value in result.metrics.items():
        if name == "task" or isinstance(value, dict | list) or (value is None and name in _META):
            continue
        row = f"<tr><td>{_esc(name)}</td><td class='n'>{_num(value)}</td>"
        if base is not None:
            delta = deltas.get(name)
            sign = "" if delta is None else ("+" if delta > 0 else "")
            row += (
                f"<td class='n'>{_num(base.get(name))}</td>"
                f"<td class='n'>{'' if delta is None else sign + _num(delta)}</td>"
            )
        rows.append(row + "</tr>")
    return f"<table>{''.join(rows)}</table>"


def _blessing(result: EvaluationResult) -> str:
    if result.blessing is None:
        return ""
    ok = result.blessing.blessed
    verdict = "BLESSED" if ok else "NOT BLESSED"
    reasons = "".join(f"<li>{_esc(r)}</li>" for r in result.blessing.reasons)
    return (
        f'<section><h2>Blessing</h2><p class="verdict {"ok" if ok else "bad"}">{verdict}</p>'
        f"<ul>{reasons}</ul></section>"
    )


def _training_curve(result: EvaluationResult) -> str:
    info = result.training_info
    if len(info) < 2:
        if info:
            row = info[0]
            return (
                "<p>one training step: loss "
                f"{_num(row.get('loss'))}, eval_loss {_num(row.get('eval_loss'))}</p>"
            )
        return '<p class="muted">the model records no training info</p>'
    iters = [float(r["iteration"]) for r in info]
    series = [("loss", iters, [float(r["loss"]) for r in info])]
    evals = [
        (float(r["iteration"]), r["eval_loss"]) for r in info if r.get("eval_loss") is not None
    ]
    if evals:
        series.append(("eval_loss", [x for x, _ in evals], [float(y) for _, y in evals]))
    return _figure(
        "loss per iteration (ML.TRAINING_INFO)",
        _line_chart("training curve", series, x_name="iteration", y_name="loss"),
    )


def _curves(result: EvaluationResult) -> str:
    roc = result.metrics.get("roc_curve") or []
    pr = result.metrics.get("pr_curve") or []
    parts = []
    if roc:
        series = [(c["class"], c["false_positive_rate"], c["recall"]) for c in roc]
        auc = result.metrics.get("roc_auc")
        parts.append(
            _figure(
                f"ROC curve (roc_auc {_num(auc)})",
                _line_chart(
                    "ROC curve",
                    series,
                    x_name="false positive rate",
                    y_name="true positive rate",
                    unit_square=True,
                    diagonal=True,
                    legend="bottom right",
                ),
            )
        )
    if pr:
        series = [(c["class"], c["recall"], c["precision"]) for c in pr]
        parts.append(
            _figure(
                f"precision-recall curve (pr_auc {_num(result.metrics.get('pr_auc'))})",
                _line_chart(
                    "precision-recall curve",
                    series,
                    x_name="recall",
                    y_name="precision",
                    unit_square=True,
                    legend="bottom left",
                ),
            )
        )
    return "".join(parts)


def _confusion(result: EvaluationResult) -> str:
    cm = result.metrics.get("confusion_matrix")
    if not cm:
        return ""
    labels = [str(v) for v in cm["labels"]]
    matrix = cm["matrix"]
    k = len(labels)
    cell = max(24, min(60, 360 // max(k, 1)))
    left, top = 90, 40
    width, height = left + cell * k + 10, top + cell * k + 10
    body = [
        f'<text x="{left + cell * k / 2}" y="12" class="axis" text-anchor="middle">'
        "predicted class</text>",
        f'<text x="10" y="{top + cell * k / 2}" class="axis" text-anchor="middle" '
        f'transform="rotate(-90 10 {top + cell * k / 2})">true class</text>',
    ]
    for j, name in enumerate(labels):
        body.append(
            f'<text x="{left + cell * j + cell / 2}" y="{top - 6}" class="tick" '
            f'text-anchor="middle">{_esc(name[:10])}</text>'
        )
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        body.append(
            f'<text x="{left - 4}" y="{top + cell * i + cell / 2 + 4}" class="tick" '
            f'text-anchor="end">{_esc(labels[i][:12])}</text>'
        )
        for j, count in enumerate(row):
            share = count / total
            fill = f"rgba(0,114,178,{0.08 + 0.92 * share:.3f})"
            ink = "#fff" if share > 0.5 else "#222"
            x, y = left + cell * j, top + cell * i
            body.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" '
                f'stroke="#fff"><title>true {_esc(labels[i])}, predicted {_esc(labels[j])}: '
                f"{_num(count)} ({share:.1%} of the row)</title></rect>"
                f'<text x="{x + cell / 2}" y="{y + cell / 2 + 4}" style="fill:{ink}" '
                f'class="tick" text-anchor="middle">{_num(count)}</text>'
            )
    return _figure(
        "confusion matrix (shade: share of the true class's rows)",
        _svg(width, height, "confusion matrix", body),
    )


def _residuals(result: EvaluationResult) -> str:
    residuals = result.metrics.get("residuals")
    if not residuals:
        return ""
    edges = residuals["histogram"]["edges"]
    counts = residuals["histogram"]["counts"]
    top = max(counts) or 1
    pw, ph = _W - _ML - _MR, _H - _MT - _MB
    bar = pw / len(counts)
    body = [f'<rect x="{_ML}" y="{_MT}" width="{pw}" height="{ph}" class="frame"/>']
    for i, count in enumerate(counts):
        h = ph * count / top
        body.append(
            f'<rect x="{_ML + bar * i + 0.5:.1f}" y="{_MT + ph - h:.1f}" width="{bar - 1:.1f}" '
            f'height="{h:.1f}" fill="{_PALETTE[0]}"><title>{_num(edges[i])} to '
            f"{_num(edges[i + 1])}: {count}</title></rect>"
        )
    body += [
        f'<text x="{_ML}" y="{_MT + ph + 12}" class="tick">{_num(edges[0])}</text>',
        f'<text x="{_ML + pw}" y="{_MT + ph + 12}" class="tick" text-anchor="end">'
        f"{_num(edges[-1])}</text>",
        f'<text x="{_ML + pw / 2}" y="{_H - 4}" class="axis" text-anchor="middle">'
        "residual (y_true − y_pred)</text>",
        f'<text x="{_ML - 3}" y="{_MT + 8}" class="tick" text-anchor="end">{top}</text>',
    ]
    return _figure(
        f"residuals: mean {_num(residuals['mean'])}, std {_num(residuals['std'])}",
        _svg(_W, _H, "residual histogram", body),
    )


def _importance(result: EvaluationResult) -> str:
    imp = result.importance
    if not imp or not imp.get("features"):
        return ""
    rows = imp["features"]
    top = max((abs(r["importance_mean"]) for r in rows), default=0.0) or 1.0
    label_w, bar_w, row_h = 140, 260, 18
    width, height = label_w + bar_w + 80, row_h * len(rows) + 6
    body = []
    for i, r in enumerate(rows):
        value = float(r["importance_mean"])
        w = bar_w * max(value, 0.0) / top
        y = 3 + row_h * i
        body.append(
            f'<text x="{label_w - 4}" y="{y + 12}" class="tick" text-anchor="end">'
            f"{_esc(str(r['feature'])[:22])}</text>"
            f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 5}" '
            f'fill="{_PALETTE[2]}"><title>{_esc(r["feature"])}: {_num(value)} ± '
            f"{_num(r['importance_std'])}</title></rect>"
            f'<text x="{label_w + w + 4:.1f}" y="{y + 12}" class="tick">{_num(value)}</text>'
        )
    caption = (
        f"permutation importance: increase of {imp['metric']} when the column is shuffled "
        f"({imp['n_repeats']} repeats, {_num(imp['num_examples'])} rows)"
    )
    return _figure(caption, _svg(width, height, "permutation importance", body))


def _slices(result: EvaluationResult) -> str:
    if not result.slices:
        return ""
    skip = {"slice", "task", "notes", "error", "threshold", "positive_class", "num_clusters"}
    names = [k for k in result.slices[0] if k not in skip]
    for entry in result.slices:
        names += [k for k in entry if k not in skip and k not in names]
    head = "<tr><th>slice</th>" + "".join(f"<th>{_esc(n)}</th>" for n in names) + "</tr>"
    rows = [head]
    for entry in result.slices:
        where = ", ".join(f"{k}={v}" for k, v in entry.get("slice", {}).items())
        if "error" in entry:
            cells = f"<td colspan='{len(names)}' class='muted'>{_esc(entry['error'])}</td>"
        else:
            cells = "".join(f"<td class='n'>{_num(entry.get(n))}</td>" for n in names)
        rows.append(f"<tr><td>{_esc(where)}</td>{cells}</tr>")
    return f"<section><h2>Slices</h2><table>{''.join(rows)}</table></section>"


_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#222}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#888}.verdict{font-weight:bold;font-size:16px}.ok{color:#009E73}.bad{color:#D55E00}
figure{display:inline-block;margin:8px 16px 8px 0;vertical-align:top}
figcaption{font-size:12px;color:#555}
svg .frame{fill:none;stroke:#ccc}svg .chance{stroke:#bbb;stroke-dasharray:4 3}
svg .tick{font-size:10px;fill:#444}svg .axis{font-size:11px;fill:#222}
"""


def evaluation_html(result: EvaluationResult, *, title: str = "Kiln evaluation") -> str:
    """The evaluation ``result`` as one self-contained HTML page (inline SVG, no external refs)."""
    pictures = [_curves(result), _confusion(result), _residuals(result)]
    notes = result.notes + list(result.metrics.get("notes") or [])
    subtitle = f"{result.model_type} ({result.task})" + (
        f", label {result.label}" if result.label else ""
    )
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1><p class='muted'>{_esc(subtitle)}</p>",
        _blessing(result),
        f"<section><h2>Metrics</h2>{_metrics_table(result)}</section>",
    ]
    if notes:
        parts.append("<ul class='muted'>" + "".join(f"<li>{_esc(n)}</li>" for n in notes) + "</ul>")
    if any(pictures):
        parts.append(f"<section><h2>Quality</h2>{''.join(pictures)}</section>")
    parts.append(f"<section><h2>Training</h2>{_training_curve(result)}</section>")
    importance = _importance(result)
    if importance:
        parts.append(f"<section><h2>Feature importance</h2>{importance}</section>")
    parts.append(_slices(result))
    parts.append("</body></html>")
    return "".join(parts)
