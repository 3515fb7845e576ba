"""A self-contained HTML statistics report, in the spirit of Facets Overview.

``statistics_html`` draws one table of numeric features and one of categorical features, a row
per feature with its summary numbers and an inline SVG chart: an equal-width histogram (or, by a
toggle, the deciles) for numeric features, the ten most frequent values for categorical ones.
Given ``compare``, every split of both statistics is drawn side by side in its own colour, and
``drift`` scores (computed by the caller) are shown and used to order the features.

The page needs nothing but itself: CSS and the few lines of script (re-sorting rows) are inline,
fonts are the reader's own, and there is no external reference of any kind, so it works offline
and can be attached to a mail or stored as an artifact. Every name and value is HTML-escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from kiln.data._model import Bucket, DatasetStatistics, FeatureStatistics, Statistics

__all__ = ["statistics_html"]

# Okabe-Ito: distinguishable with the common colour-vision deficiencies, legible on white.
_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
_TOP_VALUES_CHARTED = 10
_MISSING_HIGH = 0.05  # missing fraction drawn in bold red at or above this (any > 0 is red)
_CHART_W = 260
_PLOT_H = 60
_AXIS_H = 13
_LABEL_W = 92  # categorical charts: room for the value labels
_PCT_W = 40  # categorical charts: room for the percentage after the bars


@dataclass(frozen=True)
class _Series:
    label: str
    colour: str
    data: DatasetStatistics


# ---------------------------------------------------------------------- formatting


def _esc(value: object) -> str:
    """HTML-escaped text; lone surrogates (undecodable bytes) become visible escapes."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return html.escape(text, quote=True)


def _show_value(value: str, limit: int = 0) -> str:
    """A string value as a reader should see it: controls made visible, optionally shortened."""
    if value == "":
        return '""'
    shown = "".join(c if c.isprintable() or c == " " else f"\\x{ord(c):02x}" for c in value)
    if limit and len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    return shown


def _num(x: float | None) -> str:
    """3 significant digits, thousands separators for large values, ``–`` for none."""
    if x is None:
        return "–"
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == 0:
        return "0"
    a = abs(x)
    if 1000 <= a < 1e15:
        text = f"{round(x):,}"
    elif 1e-4 <= a < 1e15:
        text = f"{x:.3g}"
    else:
        text = f"{x:.2e}"
    return text.replace("-", "−")


def _int(n: int) -> str:
    return f"{n:,}"


def _pct(fraction: float | None) -> str:
    if fraction is None:
        return "–"
    if fraction == 0:
        return "0%"
    if fraction == 1:
        return "100%"
    if fraction < 0.001:
        return "<0.1%"
    if fraction > 0.999:
        return ">99.9%"
    return f"{fraction * 100:.1f}%"


def _missing(f: FeatureStatistics) -> float | None:
    total = f.count + f.num_missing
    return f.num_missing / total if total else None


# ---------------------------------------------------------------------- charts


def _svg(width: int, height: int, label: str, body: Sequence[str]) -> str:
    return (
        f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{_esc(label)}">{"".join(body)}</svg>'
    )


def _no_data(text: str = "no data") -> str:
    return f'<span class="muted">{_esc(text)}</span>'


def _finite(buckets: Sequence[Bucket]) -> list[Bucket]:
    return [b for b in buckets if math.isfinite(b.low) and math.isfinite(b.high)]


@dataclass(frozen=True)
class _XScale:
    lo: float
    hi: float
    x0: float
    x1: float

    def __call__(self, v: float) -> float:
        return self.x0 + (v - self.lo) / (self.hi - self.lo) * (self.x1 - self.x0)


def _scale(lows: Sequence[float], highs: Sequence[float], x0: float, x1: float) -> _XScale:
    lo, hi = min(lows), max(highs)
    if hi <= lo:  # one distinct value: give it some room either side
        pad = abs(lo) * 0.05 or 0.5
        lo, hi = lo - pad, hi + pad
    return _XScale(lo, hi, x0, x1)


def _axis(scale: _XScale, y: float) -> str:
    return (
        f'<line class="axis" x1="{scale.x0}" y1="{y}" x2="{scale.x1}" y2="{y}"/>'
        f'<text class="tick" x="{scale.x0}" y="{y + _AXIS_H - 2}">{_esc(_num(scale.lo))}</text>'
        f'<text class="tick" x="{scale.x1}" y="{y + _AXIS_H - 2}" text-anchor="end">'
        f"{_esc(_num(scale.hi))}</text>"
    )


def _histogram_svg(name: str, per_series: Sequence[tuple[_Series, Sequence[Bucket]]]) -> str:
    """Equal-width histogram bars, placed by value; one bar per series within each bucket.

    Bar heights are the bucket's share of its series' total, so that splits of different sizes
    compare; within a series they are proportional to the bucket counts.
    """
    drawn = [(i, s, _finite(bs)) for i, (s, bs) in enumerate(per_series)]
    drawn = [(i, s, bs) for i, s, bs in drawn if bs]
    if not drawn:
        return _no_data()
    lows = [b.low for *_, bs in drawn for b in bs]
    scale = _scale(lows, [b.high for *_, bs in drawn for b in bs], 1, _CHART_W - 1)
    shares: list[list[float]] = []
    for *_, bs in drawn:
        total = sum(b.count for b in bs)
        shares.append([b.count / total if total else 0.0 for b in bs])
    peak = max((v for row in shares for v in row), default=0.0) or 1.0
    n = len(per_series)
    body: list[str] = []
    for (index, series, bs), row in zip(drawn, shares, strict=True):
        for b, share in zip(bs, row, strict=True):
            left, right = scale(b.low), scale(b.high)
            width = max(right - left, 4.0)
            if right - left < 4.0:  # a bucket of one value: a thin bar, centred on it
                left = (left + right) / 2 - 2.0
            sub = width / n
            gap = 0.6 if sub > 3 else 0.0
            h = share / peak * _PLOT_H
            body.append(
                f'<rect class="bar" data-series="{index}" x="{left + sub * index:.2f}" '
                f'y="{_PLOT_H - h + 1:.2f}" width="{sub - gap:.2f}" height="{h:.2f}" '
                f'fill="{series.colour}"><title>{_esc(series.label)}: [{_esc(_num(b.low))}, '
                f"{_esc(_num(b.high))}] {_esc(_num(b.count))} ({_esc(_pct(share))})</title></rect>"
            )
    body.append(_axis(scale, _PLOT_H + 1))
    return _svg(_CHART_W, _PLOT_H + 1 + _AXIS_H, f"histogram of {name}", body)


def _quantiles_svg(name: str, per_series: Sequence[tuple[_Series, Sequence[Bucket]]]) -> str:
    """The decile boundaries of each series as marks on one value axis (median emphasised)."""
    points: list[tuple[_Series, int, list[float]]] = []
    for index, (series, buckets) in enumerate(per_series):
        bs = _finite(buckets)
        if bs:
            points.append((series, index, [b.low for b in bs] + [bs[-1].high]))
    if not points:
        return _no_data("no quantiles")
    scale = _scale([p[0] for *_, p in points], [p[-1] for *_, p in points], 5, 255)
    row_h = 16
    height = row_h * len(per_series) + 4
    body: list[str] = []
    for series, index, values in points:
        y = 10 + row_h * index
        body.append(
            f'<line x1="{scale(values[0]):.2f}" y1="{y}" x2="{scale(values[-1]):.2f}" y2="{y}" '
            f'stroke="{series.colour}" stroke-width="2"/>'
        )
        middle = len(values) // 2
        for i, v in enumerate(values):
            r = 4.5 if i == middle else 2.8
            body.append(
                f'<circle class="q" data-series="{index}" cx="{scale(v):.2f}" cy="{y}" r="{r}" '
                f'fill="{series.colour}" stroke="#fff" stroke-width="0.8">'
                f"<title>{_esc(series.label)}: q{i}/{len(values) - 1} = {_esc(_num(v))}</title>"
                "</circle>"
            )
    body.append(_axis(scale, height))
    return _svg(_CHART_W, height + _AXIS_H, f"deciles of {name}", body)


def _top_values_svg(name: str, feats: Sequence[tuple[_Series, FeatureStatistics | None]]) -> str:
    """Horizontal bars for the most frequent values, one bar per series for each value."""
    order: list[str] = []
    shares: list[dict[str, float]] = []
    for _, f in feats:
        got: dict[str, float] = {}
        if f is not None and f.string is not None:
            tops = sorted(f.string.top_values, key=lambda t: -t.count)
            total = f.count or sum(t.count for t in tops) or 1
            for t in tops:
                got.setdefault(t.value, t.count / total)
            order.extend(t.value for t in tops[:_TOP_VALUES_CHARTED] if t.value not in order)
        shares.append(got)
    values = order[:_TOP_VALUES_CHARTED]
    if not values:
        return _no_data()
    n = len(feats)
    bar_h = 9 if n == 1 else 6
    row_h = bar_h * n + 4
    plot_w = _CHART_W - _LABEL_W - _PCT_W
    peak = max((s.get(v, 0.0) for s in shares for v in values), default=0.0) or 1.0
    body: list[str] = []
    for r, value in enumerate(values):
        top = r * row_h + 2
        body.append(
            f'<text class="vlabel" x="{_LABEL_W - 4}" y="{top + row_h / 2 + 2:.1f}" '
            f'text-anchor="end"><title>{_esc(_show_value(value))}</title>'
            f"{_esc(_show_value(value, 14))}</text>"
        )
        for index, (series, _) in enumerate(feats):
            share = shares[index].get(value, 0.0)
            w = share / peak * plot_w
            body.append(
                f'<rect class="bar" data-series="{index}" x="{_LABEL_W}" '
                f'y="{top + index * bar_h:.1f}" width="{w:.2f}" height="{bar_h - 1}" '
                f'fill="{series.colour}"><title>{_esc(series.label)}: '
                f"{_esc(_show_value(value))} {_esc(_pct(share))}</title></rect>"
            )
        first = shares[0].get(value)
        if first is not None:
            body.append(
                f'<text class="tick" x="{_LABEL_W + plot_w + 3}" '
                f'y="{top + row_h / 2 + 2:.1f}">{_esc(_pct(first))}</text>'
            )
    return _svg(_CHART_W, row_h * len(values) + 2, f"top values of {name}", body)


# ---------------------------------------------------------------------- tables


def _stack(
    feats: Sequence[tuple[_Series, FeatureStatistics | None]],
    cell: Callable[[FeatureStatistics], str],
) -> str:
    """One line per series in a table cell."""
    lines = []
    for _, f in feats:
        lines.append(f"<div>{cell(f) if f is not None else _no_data('absent')}</div>")
    return "".join(lines)


def _missing_cell(f: FeatureStatistics) -> str:
    m = _missing(f)
    cls = "" if not m else ' class="bad strong"' if m >= _MISSING_HIGH else ' class="bad"'
    tip = f"{_int(f.num_missing)} of {_int(f.count + f.num_missing)} rows"
    return f'<span{cls} title="{_esc(tip)}">{_esc(_pct(m))}</span>'


def _series_cell(feats: Sequence[tuple[_Series, FeatureStatistics | None]]) -> str:
    return "".join(
        f'<div><span class="swatch" style="background:{s.colour}"></span>{_esc(s.label)}</div>'
        for s, _ in feats
    )


def _name_cell(name: str, feats: Sequence[tuple[_Series, FeatureStatistics | None]]) -> str:
    present = [f for _, f in feats if f is not None]
    kinds = sorted({f.type for f in present})
    notes: list[str] = []
    for f in present[:1]:
        if f.values_per_row is not None:
            v = f.values_per_row
            notes.append(f"{_int(v.min)}–{_int(v.max)} values/row, avg {_num(v.avg)}")
        if f.numeric is not None:
            odd = [
                (f.numeric.num_nan, "NaN"),
                (f.numeric.num_pos_inf, "+∞"),
                (f.numeric.num_neg_inf, "−∞"),
            ]
            notes.extend(f"{_int(k)} {what}" for k, what in odd if k)
        if f.string is not None and f.string.invalid_utf8:
            notes.append(f"{_int(f.string.invalid_utf8)} invalid UTF-8")
    return (
        f'<th scope="row" class="fname">{_esc(name)}'
        f'<div class="type">{_esc(" / ".join(kinds))}</div>'
        + "".join(f'<div class="note">{_esc(n)}</div>' for n in notes)
        + "</th>"
    )


def _drift_cell(score: float | None) -> str:
    if score is None:
        return '<td class="num muted">–</td>'
    w = max(0.0, min(score, 1.0)) * 40 if math.isfinite(score) else 40
    return (
        f'<td class="num drift"><strong>{_esc(_num(score))}</strong>'
        f'<span class="dbar"><span style="width:{w:.1f}px"></span></span></td>'
    )


def _row(
    name: str,
    feats: Sequence[tuple[_Series, FeatureStatistics | None]],
    cells: Sequence[str],
    chart: str,
    drift: Mapping[str, float] | None,
) -> str:
    present = [f for _, f in feats if f is not None]
    missing = max((_missing(f) or 0.0 for f in present), default=0.0)
    score = drift.get(name) if drift is not None else None
    sort_drift = -1.0 if score is None or math.isnan(score) else min(score, 1e300)
    parts = [
        f'<tr data-name="{_esc(name)}" data-drift="{sort_drift!r}" data-missing="{missing!r}">',
        _name_cell(name, feats),
    ]
    if drift is not None:
        parts.append(_drift_cell(score))
    if len(feats) > 1:
        parts.append(f'<td class="series">{_series_cell(feats)}</td>')
    parts.extend(f'<td class="num">{c}</td>' for c in cells)
    parts.append(f'<td class="chartcell">{chart}</td></tr>')
    return "".join(parts)


def _numeric_row(
    name: str,
    feats: Sequence[tuple[_Series, FeatureStatistics | None]],
    drift: Mapping[str, float] | None,
) -> str:
    def stat(get: Callable[[FeatureStatistics], float | None]) -> str:
        return _stack(feats, lambda f: _esc(_num(get(f))) if f.numeric is not None else "–")

    def zeros(f: FeatureStatistics) -> str:
        if f.numeric is None or not f.count:
            return "–"
        return _esc(_pct(f.numeric.num_zeros / f.count))

    cells = [
        _stack(feats, lambda f: _esc(_int(f.count))),
        _stack(feats, _missing_cell),
        stat(lambda f: f.numeric.mean if f.numeric else None),
        stat(lambda f: f.numeric.std_dev if f.numeric else None),
        _stack(feats, zeros),
        stat(lambda f: f.numeric.min if f.numeric else None),
        stat(lambda f: f.numeric.median if f.numeric else None),
        stat(lambda f: f.numeric.max if f.numeric else None),
    ]
    hist = [(s, f.numeric.histogram if f and f.numeric else []) for s, f in feats]
    quant = [(s, f.numeric.quantiles if f and f.numeric else []) for s, f in feats]
    chart = (
        f'<div class="chart-std">{_histogram_svg(name, hist)}</div>'
        f'<div class="chart-q">{_quantiles_svg(name, quant)}</div>'
    )
    return _row(name, feats, cells, chart, drift)


def _categorical_row(
    name: str,
    feats: Sequence[tuple[_Series, FeatureStatistics | None]],
    drift: Mapping[str, float] | None,
) -> str:
    def top(f: FeatureStatistics) -> tuple[str, int] | None:
        if f.string is None or not f.string.top_values:
            return None
        t = max(f.string.top_values, key=lambda t: t.count)
        return t.value, t.count

    def top_value(f: FeatureStatistics) -> str:
        t = top(f)
        if t is None:
            return "–"
        return f'<span title="{_esc(_show_value(t[0]))}">{_esc(_show_value(t[0], 24))}</span>'

    def top_freq(f: FeatureStatistics) -> str:
        t = top(f)
        if t is None:
            return "–"
        share = f" ({_pct(t[1] / f.count)})" if f.count else ""
        return _esc(f"{_int(t[1])}{share}")

    cells = [
        _stack(feats, lambda f: _esc(_int(f.count))),
        _stack(feats, _missing_cell),
        _stack(feats, lambda f: _esc(_int(f.string.unique)) if f.string else "–"),
        _stack(feats, top_value),
        _stack(feats, top_freq),
        _stack(feats, lambda f: _esc(_num(f.string.avg_length)) if f.string else "–"),
    ]
    return _row(name, feats, cells, _top_values_svg(name, feats), drift)


def _is_categorical(present: Sequence[FeatureStatistics]) -> bool:
    if any(f.string is not None for f in present):
        return True
    if any(f.numeric is not None for f in present):
        return False
    return any(f.type in ("STRING", "BYTES") for f in present)


def _table(
    caption: str,
    columns: Sequence[str],
    rows: Sequence[str],
    *,
    multi: bool,
    drift_label: str | None,
    toolbar: str = "",
) -> str:
    if not rows:
        return ""
    head = ['<th scope="col">feature</th>']
    if drift_label is not None:
        head.append(f'<th scope="col" class="num">{_esc(drift_label)}</th>')
    if multi:
        head.append('<th scope="col">dataset</th>')
    head.extend(f'<th scope="col" class="num">{_esc(c)}</th>' for c in columns)
    head.append(f'<th scope="col" class="chartcell">chart{toolbar}</th>')
    return (
        f'<section><h2>{_esc(caption)} <span class="muted">({len(rows)})</span></h2>'
        f"<table><thead><tr>{''.join(head)}</tr></thead>"
        f'<tbody class="features">{"".join(rows)}</tbody></table></section>'
    )


# ---------------------------------------------------------------------- the page


def _labelled(stats: Statistics, compare: Statistics | None) -> list[_Series]:
    datasets = list(stats.datasets) + (list(compare.datasets) if compare is not None else [])
    first = len(stats.datasets)
    labels: list[str] = []
    for i, d in enumerate(datasets):
        label = d.name or f"dataset {i + 1}"
        if label in labels:
            label = f"{label} (compare)" if i >= first else f"{label} ({i + 1})"
        while label in labels:
            label = f"{label}′"
        labels.append(label)
    return [
        _Series(label, _PALETTE[i % len(_PALETTE)], d)
        for i, (label, d) in enumerate(zip(labels, datasets, strict=True))
    ]


def _order(names: Sequence[str], drift: Mapping[str, float] | None) -> list[str]:
    def by_name(n: str) -> tuple[str, str]:
        return (n.casefold(), n)

    if drift is None:
        return sorted(names, key=by_name)

    def by_drift(n: str) -> tuple[int, float, str, str]:
        score = drift.get(n)
        if score is None or math.isnan(score):
            return (1, 0.0, *by_name(n))
        return (0, -score, *by_name(n))

    return sorted(names, key=by_drift)


def statistics_html(
    stats: Statistics,
    *,
    compare: Statistics | None = None,
    drift: Mapping[str, float] | None = None,
    title: str = "Kiln statistics",
) -> str:
    """A self-contained HTML page showing ``stats`` (and ``compare`` beside it, if given).

    Every split in ``stats`` and then in ``compare`` is drawn in its own colour. ``drift`` maps a
    feature name to its drift score (L-infinity distance for categorical features, Jensen-Shannon
    divergence for numeric ones); when given, the score is shown on each row and rows are ordered
    by it, highest first (otherwise by name). The page has no external reference of any kind.
    """
    series = _labelled(stats, compare)
    names: list[str] = []
    for s in series:
        names.extend(f.name for f in s.data.features if f.name not in names)
    numeric_rows: list[str] = []
    categorical_rows: list[str] = []
    for name in _order(names, drift):
        feats = [(s, s.data.feature(name)) for s in series]
        present = [f for _, f in feats if f is not None]
        if _is_categorical(present):
            categorical_rows.append(_categorical_row(name, feats, drift))
        else:
            numeric_rows.append(_numeric_row(name, feats, drift))
    multi = len(series) > 1
    toggle = (
        '<span class="toggle" role="group" aria-label="numeric chart">'
        '<label for="chart-std">histogram</label><label for="chart-q">quantiles</label></span>'
    )
    numeric = _table(
        "Numeric features",
        ["count", "missing", "mean", "std dev", "zeros", "min", "median", "max"],
        numeric_rows,
        multi=multi,
        drift_label="drift (JS)" if drift is not None else None,
        toolbar=toggle,
    )
    categorical = _table(
        "Categorical features",
        ["count", "missing", "unique", "top value", "freq top", "avg length"],
        categorical_rows,
        multi=multi,
        drift_label="drift (L∞)" if drift is not None else None,
    )
    return _page(title, series, numeric + categorical, drift is not None)


def _header(series: Sequence[_Series]) -> str:
    if not series:
        return '<p class="muted">These statistics hold no dataset.</p>'
    chips = "".join(
        f'<li><span class="swatch" style="background:{s.colour}"></span>'
        f"<strong>{_esc(s.label)}</strong> "
        f'<span class="muted">{_esc(_int(s.data.num_examples))} examples · '
        f"{_esc(_int(len(s.data.features)))} features</span></li>"
        for s in series
    )
    return f'<ul class="legend">{chips}</ul>'


def _page(title: str, series: Sequence[_Series], tables: str, with_drift: bool) -> str:
    options = ['<option value="name">name</option>', '<option value="missing">missing</option>']
    if with_drift:
        options.insert(0, '<option value="drift" selected>drift</option>')
    controls = (
        '<div class="controls"><label>sort features by '
        f'<select id="sort">{"".join(options)}</select></label></div>'
        if tables
        else ""
    )
    if series and not tables:
        tables = '<p class="muted">No features.</p>'
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
        '<input type="radio" name="chart" id="chart-std" class="sr" checked>'
        '<input type="radio" name="chart" id="chart-q" class="sr">'
        f"<header><h1>{_esc(title)}</h1>{_header(series)}{controls}</header>"
        f"<main>{tables}</main><script>{_JS}</script></body></html>\n"
    )


_CSS = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#fff;--head:#f6f8fa;--bad:#b42318}
*{box-sizing:border-box}
body{margin:0;padding:16px 24px;color:var(--fg);background:var(--bg);
 font:13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
h1{font-size:20px;margin:0 0 8px}
h2{font-size:15px;margin:20px 0 6px}
.muted{color:var(--muted)}
.legend{list-style:none;margin:0 0 8px;padding:0;display:flex;flex-wrap:wrap;gap:6px 20px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;
 vertical-align:-1px}
.controls{margin:4px 0}
select{font:inherit}
table{border-collapse:collapse;width:100%}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top;text-align:left}
thead th{position:sticky;top:0;background:var(--head);font-weight:600;white-space:nowrap;
 border-bottom:2px solid var(--line);z-index:1}
tbody tr:hover{background:#f9fafb}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.fname{font-weight:600;word-break:break-word;max-width:220px}
.type,.note{font-weight:400;font-size:11px;color:var(--muted)}
.series{white-space:nowrap}
.bad{color:var(--bad)}
.strong{font-weight:700;background:#fdecea;padding:0 3px;border-radius:3px}
.drift strong{display:block}
.dbar{display:inline-block;width:40px;height:4px;background:#eaeef2;border-radius:2px}
.dbar span{display:block;height:4px;background:var(--bad);border-radius:2px}
.chartcell{width:276px}
.chart{display:block}
.chart .axis{stroke:#8c959f;stroke-width:1}
.chart .tick,.chart .vlabel{font-size:10px;fill:var(--muted)}
.chart .vlabel{fill:var(--fg)}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
.toggle{margin-left:10px;font-weight:400}
.toggle label{cursor:pointer;padding:1px 7px;border:1px solid var(--line);background:#fff}
.toggle label:first-child{border-radius:4px 0 0 4px}
.toggle label:last-child{border-radius:0 4px 4px 0;border-left:0}
#chart-std:checked~main label[for=chart-std],#chart-q:checked~main label[for=chart-q]{
 background:#0969da;color:#fff;border-color:#0969da}
#chart-std:focus-visible~main label[for=chart-std],#chart-q:focus-visible~main label[for=chart-q]{
 outline:2px solid #0969da;outline-offset:1px}
.chart-q{display:none}
#chart-q:checked~main .chart-q{display:block}
#chart-q:checked~main .chart-std{display:none}
"""

_JS = """
(function () {
  var sel = document.getElementById("sort");
  if (!sel) return;
  sel.addEventListener("change", function () {
    var key = sel.value;
    document.querySelectorAll("tbody.features").forEach(function (body) {
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var byName = a.dataset.name.localeCompare(b.dataset.name);
        if (key === "name") return byName;
        return (parseFloat(b.dataset[key]) - parseFloat(a.dataset[key])) || byName;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
})();
"""
