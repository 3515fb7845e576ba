"""Validation: statistics against a schema, and against baseline statistics for drift and skew.

Anomalies carry TFDV's type names (``tensorflow_metadata``'s ``AnomalyInfo.Type``) and, as TFDV
reports them, one anomaly per feature that lists every reason found for it. Every anomaly is an
``ERROR``, TFDV's default severity.

Distances, the way TFDV computes them:

- **L-infinity** (categorical features): the top-value counts of each side are normalised to sum to
  1 separately; the distance is the largest absolute difference over the union of values.
- **Jensen-Shannon divergence** (numeric features): the equal-width histograms are brought to common
  boundaries (the union of both sides' boundaries; a bucket's count is spread uniformly over the new
  buckets it covers), zero-width buckets become point masses matched by value, each side is
  normalised, and ``JSD = (KL(P||M) + KL(Q||M)) / 2`` with ``M = (P + Q) / 2`` in base 2, capped at
  1. NaN and each infinity get a bucket of their own on both sides (TFDV's tests: identical data
  with NaNs has divergence 0). For string features both sides' top values are compared instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kiln.data._model import Bucket, DatasetStatistics, FeatureStatistics, Statistics
from kiln.data._schema import NUMERIC_TYPES, Comparator, FeatureSchema, Schema
from kiln.errors import DataError

__all__ = ["Anomaly", "jensen_shannon_divergence", "linf_distance", "validate_statistics"]

Severity = Literal["ERROR", "WARNING"]
Mode = Literal["drift", "skew"]


@dataclass
class Anomaly:
    """What is wrong with one feature: every reason's TFDV type, and a description to read.

    ``value`` and ``threshold`` are the measurement behind the anomaly where there is one (a
    distance and its limit, an observed minimum and the schema's bound, a fraction present...).
    """

    feature: str
    types: list[str]
    short_description: str
    description: str
    severity: Severity = "ERROR"
    value: float | None = None
    threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "types": list(self.types),
            "short_description": self.short_description,
            "description": self.description,
            "severity": self.severity,
            "value": self.value,
            "threshold": self.threshold,
        }


@dataclass
class _Reason:
    type: str
    short: str
    long: str
    value: float | None = None
    threshold: float | None = None
    measured: bool = field(default=False)


# -- distances --------------------------------------------------------------------------------


def linf_distance(
    current: FeatureStatistics | Mapping[str, float],
    baseline: FeatureStatistics | Mapping[str, float],
) -> float:
    """L-infinity distance between the normalised value counts of two categorical features."""
    return _linf(_counts(current), _counts(baseline))[1]


def _counts(x: FeatureStatistics | Mapping[str, float]) -> dict[str, float]:
    if isinstance(x, FeatureStatistics):
        if x.string is None:
            return {}
        return {t.value: float(t.count) for t in x.string.top_values}
    return {str(k): float(v) for k, v in x.items()}


def _normalise(counts: Mapping[str, float]) -> dict[str, float]:
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total else dict(counts)


def _linf(a: Mapping[str, float], b: Mapping[str, float]) -> tuple[str, float]:
    """The value with the largest normalised difference, and that difference (ties: last value in
    sorted order, as TFDV iterates an ordered map)."""
    pa, pb = _normalise(a), _normalise(b)
    best = ("", 0.0)
    for key in sorted(set(pa) | set(pb)):
        diff = abs(pa.get(key, 0.0) - pb.get(key, 0.0))
        if diff >= best[1]:
            best = (key, diff)
    return best


def drift_scores(current: DatasetStatistics, baseline: DatasetStatistics) -> dict[str, float]:
    """Per feature in both: the L-infinity distance of the value frequencies (strings), or the
    Jensen-Shannon divergence of the histograms (numbers), as TFDV's drift comparators measure
    them, without needing comparators in a schema."""
    scores: dict[str, float] = {}
    for feature in current.features:
        other = baseline.feature(feature.name)
        if other is None:
            continue
        if feature.string is not None and other.string is not None:
            scores[feature.name] = linf_distance(feature, other)
        elif feature.numeric is not None and other.numeric is not None:
            scores[feature.name] = jensen_shannon_divergence(feature, other)
    return scores


def jensen_shannon_divergence(
    current: FeatureStatistics | Sequence[Bucket],
    baseline: FeatureStatistics | Sequence[Bucket],
) -> float:
    """Approximate Jensen-Shannon divergence (base 2, in [0, 1]) between two features' histograms.

    Features with top values on both sides (strings) are compared on those values instead.
    Raises :class:`DataError` when either side has nothing to compare (no histogram, no values).
    """
    if isinstance(current, FeatureStatistics) and isinstance(baseline, FeatureStatistics):
        ca, cb = _counts(current), _counts(baseline)
        if ca and cb:
            return _jsd_counts(ca, cb)
    p, q = _aligned(_histogram(current), _histogram(baseline))
    return _jsd(p, q)


@dataclass
class _Hist:
    buckets: list[Bucket]
    num_nan: float = 0.0
    num_pos_inf: float = 0.0
    num_neg_inf: float = 0.0


def _histogram(x: FeatureStatistics | Sequence[Bucket]) -> _Hist:
    if not isinstance(x, FeatureStatistics):
        return _Hist(list(x))
    n = x.numeric
    if n is None:
        raise DataError(
            f"feature {x.name!r} ({x.type}) has no numeric histogram: the Jensen-Shannon "
            "divergence needs a numeric feature on both sides (use infinity_norm for categories)"
        )
    return _Hist(list(n.histogram), n.num_nan, n.num_pos_inf, n.num_neg_inf)


def _aligned(h1: _Hist, h2: _Hist) -> tuple[list[float], list[float]]:
    """Both histograms on common buckets: ranges, then point masses, then NaN and infinities."""
    ranges1, points1, inf1 = _strip(h1.buckets)
    ranges2, points2, inf2 = _strip(h2.buckets)
    bounds = sorted({v for b in (*ranges1, *ranges2) for v in (b.low, b.high)})
    p = _rebucket(ranges1, bounds)
    q = _rebucket(ranges2, bounds)
    for point in sorted(set(points1) | set(points2)):
        p.append(points1.get(point, 0.0))
        q.append(points2.get(point, 0.0))
    extra = (
        (h1.num_nan, h2.num_nan),
        (h1.num_pos_inf + inf1, h2.num_pos_inf + inf2),
        (h1.num_neg_inf, h2.num_neg_inf),
    )
    for a, b in extra:
        if a or b:
            p.append(float(a))
            q.append(float(b))
    return p, q


def _strip(buckets: Sequence[Bucket]) -> tuple[list[Bucket], dict[float, float], float]:
    """Buckets with a width, zero-width buckets by value, and the mass of infinite-bound buckets."""
    ranges: list[Bucket] = []
    points: dict[float, float] = {}
    infinite = 0.0
    for b in buckets:
        if not (math.isfinite(b.low) and math.isfinite(b.high)):
            infinite += b.count
        elif b.low == b.high:
            points[b.low] = points.get(b.low, 0.0) + b.count
        else:
            ranges.append(b)
    return ranges, points, infinite


def _rebucket(buckets: Sequence[Bucket], bounds: Sequence[float]) -> list[float]:
    """Counts on the buckets ``bounds`` defines, each old bucket spread uniformly over its width."""
    out = [0.0] * max(len(bounds) - 1, 0)
    for b in buckets:
        width = b.high - b.low
        for i in range(len(out)):
            lo, hi = bounds[i], bounds[i + 1]
            if lo >= b.low and hi <= b.high:
                out[i] += b.count * (hi - lo) / width
    return out


def _jsd(p: Sequence[float], q: Sequence[float]) -> float:
    sp, sq = sum(p), sum(q)
    if sp <= 0 or sq <= 0:
        raise DataError("cannot compute the Jensen-Shannon divergence of an empty histogram")
    total = 0.0
    for a, b in zip(p, q, strict=True):
        pa, qb = a / sp, b / sq
        m = (pa + qb) / 2
        if pa > 0:
            total += pa * math.log2(pa / m)
        if qb > 0:
            total += qb * math.log2(qb / m)
    return min(max(total / 2, 0.0), 1.0)


def _jsd_counts(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    keys = sorted(set(a) | set(b))
    return _jsd([a.get(k, 0.0) for k in keys], [b.get(k, 0.0) for k in keys])


# -- validation -------------------------------------------------------------------------------


def validate_statistics(
    stats: DatasetStatistics | Statistics,
    schema: Schema,
    *,
    baseline: DatasetStatistics | Statistics | None = None,
    mode: Mode = "drift",
    environment: str | None = None,
) -> list[Anomaly]:
    """The anomalies of ``stats`` against ``schema``, one per feature, in schema order.

    With ``baseline``, features with a ``drift_comparator`` (``mode="drift"``: baseline is the
    previous span) or a ``skew_comparator`` (``mode="skew"``: ``stats`` are the training
    statistics and ``baseline`` the serving ones, as TFDV has them) are also compared to it.
    ``environment`` (e.g. ``"SERVING"``) skips the features the schema says are not in it.
    """
    current = stats.dataset() if isinstance(stats, Statistics) else stats
    control = baseline.dataset() if isinstance(baseline, Statistics) else baseline
    if mode not in ("drift", "skew"):
        raise DataError(f"mode must be 'drift' or 'skew', not {mode!r}")
    known = schema.environments()
    if environment is not None and environment not in known:
        raise DataError(
            f"environment {environment!r} is not in the schema; it knows: "
            f"{', '.join(known) or 'none (set default_environments)'}"
        )
    by_name = {f.name: f for f in current.features}
    anomalies: list[Anomaly] = []
    for fs in schema.features:
        if not fs.in_env(environment, schema.default_environments):
            continue
        reasons = _check_feature(fs, by_name.get(fs.name), current, control, mode)
        if reasons:
            anomalies.append(_anomaly(fs.name, reasons))
    in_schema = {f.name for f in schema.features}
    for f in current.features:
        if f.name not in in_schema:
            anomalies.append(
                _anomaly(
                    f.name,
                    [
                        _Reason(
                            "SCHEMA_NEW_COLUMN",
                            "New column",
                            "New column (column in data but not in schema)",
                        )
                    ],
                )
            )
    return anomalies


def _anomaly(feature: str, reasons: list[_Reason]) -> Anomaly:
    # With several reasons, value and threshold are a distance's where there is one, else the
    # first measured reason's (the description carries every reason's numbers).
    measured = sorted(
        (r for r in reasons if r.measured), key=lambda r: not r.type.startswith("COMPARATOR_")
    )
    chosen = measured[0] if measured else None
    if len(reasons) == 1:
        short, long = reasons[0].short, reasons[0].long
    else:
        short = "Multiple errors"
        long = " ".join(r.long for r in reasons)
    return Anomaly(
        feature=feature,
        types=[r.type for r in reasons],
        short_description=short,
        description=long,
        value=chosen.value if chosen else None,
        threshold=chosen.threshold if chosen else None,
    )


def _measured(type_: str, short: str, long: str, value: float, threshold: float) -> _Reason:
    return _Reason(type_, short, long, float(value), float(threshold), measured=True)


def _check_feature(
    fs: FeatureSchema,
    f: FeatureStatistics | None,
    dataset: DatasetStatistics,
    control: DatasetStatistics | None,
    mode: Mode,
) -> list[_Reason]:
    if f is None:
        if fs.is_required():
            return [
                _Reason("SCHEMA_MISSING_COLUMN", "Column dropped", "Column is completely missing")
            ]
        return []
    reasons = _check_type(fs, f)
    type_ok = not reasons
    reasons += _check_presence(fs, f, dataset)
    reasons += _check_value_count(fs, f)
    if type_ok:
        reasons += _check_domain(fs, f)
        reasons += _check_range(fs, f)
        reasons += _check_float_values(fs, f)
    if control is not None:
        comparator = fs.drift_comparator if mode == "drift" else fs.skew_comparator
        if comparator is not None and not comparator.is_empty():
            reasons += _compare(fs, f, control.feature(fs.name), comparator, mode)
    return reasons


_TYPE_MISMATCH: dict[tuple[str, str], tuple[str, str]] = {
    # (schema type, data type): (TFDV anomaly type, what it means)
    ("FLOAT", "STRING"): ("FLOAT_TYPE_STRING_NOT_FLOAT", "strings where floats were expected"),
    ("FLOAT", "BYTES"): ("FLOAT_TYPE_NOT_FLOAT", "bytes where floats were expected"),
    ("FLOAT", "BOOL"): ("FLOAT_TYPE_NOT_FLOAT", "booleans where floats were expected"),
    ("INT", "STRING"): ("INT_TYPE_NOT_INT_STRING", "strings where integers were expected"),
    ("INT", "FLOAT"): ("INT_TYPE_INT_EXPECTED", "floats where integers were expected"),
    ("INT", "BYTES"): ("INT_TYPE_INT_EXPECTED", "bytes where integers were expected"),
    ("STRING", "INT"): ("STRING_TYPE_NOW_INT", "integers where strings were expected"),
    ("STRING", "FLOAT"): ("STRING_TYPE_NOW_FLOAT", "floats where strings were expected"),
    ("BOOL", "STRING"): ("BOOL_TYPE_STRING_NOT_INT", "strings where booleans were expected"),
    ("BOOL", "FLOAT"): ("BOOL_TYPE_FLOAT_NOT_INT", "floats where booleans were expected"),
}
# Data of these types is accepted for these schema types (a widening nothing downstream minds).
_COMPATIBLE = {("FLOAT", "INT"), ("INT", "BOOL")}


def _check_type(fs: FeatureSchema, f: FeatureStatistics) -> list[_Reason]:
    if f.type == fs.type or (fs.type, f.type) in _COMPATIBLE:
        return []
    if (fs.type, f.type) == ("BOOL", "INT"):
        return _bool_as_int(f)
    if fs.type == "STRING" and fs.domain is not None and f.type in ("INT", "FLOAT"):
        enum_type = "ENUM_TYPE_INT_NOT_STRING" if f.type == "INT" else "ENUM_TYPE_FLOAT_NOT_STRING"
        return [
            _Reason(
                enum_type,
                "Unexpected data type",
                f"Expected STRING values from the domain, but the data holds {f.type} values.",
            )
        ]
    type_, meaning = _TYPE_MISMATCH.get(
        (fs.type, f.type), ("UNEXPECTED_DATA_TYPE", f"{f.type} where {fs.type} was expected")
    )
    detail = ""
    if f.type == "STRING" and fs.type in NUMERIC_TYPES and f.string is not None:
        bad = [t.value for t in f.string.top_values if not _parses(t.value, fs.type)][:5]
        if bad:
            detail = " Values that do not parse: " + ", ".join(repr(v) for v in bad) + "."
        else:  # every string is a number: TFDV's *_STRING_NOT_* types do not apply
            type_ = "UNEXPECTED_DATA_TYPE"
            meaning = f"numbers written as strings where {fs.type} was expected"
    return [
        _Reason(
            type_,
            "Unexpected data type",
            f"Expected data of type {fs.type} but got {f.type}: {meaning}.{detail}",
        )
    ]


def _bool_as_int(f: FeatureStatistics) -> list[_Reason]:
    n = f.numeric
    if n is None:
        return []
    out: list[_Reason] = []
    if n.min is not None and n.min < 0:
        out.append(
            _measured(
                "BOOL_TYPE_SMALL_INT",
                "Non-boolean values",
                f"Integers smaller than 0 (min {n.min:g}) where booleans were expected.",
                n.min,
                0,
            )
        )
    if n.max is not None and n.max > 1:
        out.append(
            _measured(
                "BOOL_TYPE_BIG_INT",
                "Non-boolean values",
                f"Integers larger than 1 (max {n.max:g}) where booleans were expected.",
                n.max,
                1,
            )
        )
    return out


def _parses(text: str, type_: str) -> bool:
    try:
        if type_ == "INT":
            int(text)
        else:
            float(text)
    except ValueError:
        return False
    return True


def _check_presence(
    fs: FeatureSchema, f: FeatureStatistics, dataset: DatasetStatistics
) -> list[_Reason]:
    out: list[_Reason] = []
    p = fs.presence
    if p.min_count is not None and f.count < p.min_count:
        out.append(
            _measured(
                "FEATURE_TYPE_LOW_NUMBER_PRESENT",
                "Column dropped",
                f"The feature was present in fewer examples than expected: {f.count}, "
                f"expected at least {p.min_count}.",
                f.count,
                p.min_count,
            )
        )
    if p.min_fraction is not None:
        total = dataset.num_examples or (f.count + f.num_missing)
        fraction = 1.0 if f.num_missing == 0 else (f.count / total if total else None)
        if fraction is not None and fraction < p.min_fraction:
            if p.min_fraction == 1.0:
                long = (
                    f"The feature was expected everywhere, but was missing in "
                    f"{f.num_missing} examples."
                )
            else:
                long = (
                    f"The feature was present in fewer examples than expected: "
                    f"{fraction:.6g} of examples, expected at least {p.min_fraction:g}."
                )
            out.append(
                _measured(
                    "FEATURE_TYPE_LOW_FRACTION_PRESENT",
                    "Column dropped",
                    long,
                    fraction,
                    p.min_fraction,
                )
            )
    return out


def _check_value_count(fs: FeatureSchema, f: FeatureStatistics) -> list[_Reason]:
    vc = fs.value_count
    if vc is None or f.count == 0:
        return []
    lo, hi = (f.values_per_row.min, f.values_per_row.max) if f.values_per_row else (1, 1)
    out: list[_Reason] = []
    if vc.min is not None and lo < vc.min:
        out.append(
            _measured(
                "FEATURE_TYPE_LOW_NUMBER_VALUES",
                "Missing values",
                f"Some examples have fewer values than expected: {lo}, expected at least {vc.min}.",
                lo,
                vc.min,
            )
        )
    if vc.max is not None and hi > vc.max:
        out.append(
            _measured(
                "FEATURE_TYPE_HIGH_NUMBER_VALUES",
                "Superfluous values",
                f"Some examples have more values than expected: {hi}, expected at most {vc.max}.",
                hi,
                vc.max,
            )
        )
    return out


def _check_domain(fs: FeatureSchema, f: FeatureStatistics) -> list[_Reason]:
    if fs.domain is None or f.string is None:
        return []
    allowed = set(fs.domain)
    tops = f.string.top_values
    total = sum(t.count for t in tops)
    unexpected = [t for t in tops if t.value not in allowed]
    if not unexpected:
        return []
    off = sum(t.count for t in unexpected)
    fraction = off / total if total else 0.0
    shown = ", ".join(
        f"{t.value} (~{100 * t.count / total:.0f}%)" if total else t.value for t in unexpected[:10]
    )
    more = f" and {len(unexpected) - 10} more" if len(unexpected) > 10 else ""
    return [
        _measured(
            "ENUM_TYPE_UNEXPECTED_STRING_VALUES",
            "Unexpected string values",
            f"Examples contain values missing from the schema: {shown}{more}.",
            fraction,
            0.0,
        )
    ]


def _check_range(fs: FeatureSchema, f: FeatureStatistics) -> list[_Reason]:
    r, n = fs.range, f.numeric
    if r is None or n is None or fs.type not in NUMERIC_TYPES:
        return []
    is_int = fs.type == "INT"
    small = "INT_TYPE_SMALL_INT" if is_int else "FLOAT_TYPE_SMALL_FLOAT"
    big = "INT_TYPE_BIG_INT" if is_int else "FLOAT_TYPE_BIG_FLOAT"
    short = ("Integer" if is_int else "Float") + " out of range"
    out: list[_Reason] = []
    low, high = n.min, n.max  # as the statistics have them; infinities are FLOAT_TYPE_HAS_INF
    if r.min is not None and low is not None and low < r.min:
        out.append(
            _measured(
                small,
                short,
                f"Unexpectedly low values: {low:g} < {r.min:g} (the schema's range.min).",
                low,
                r.min,
            )
        )
    if r.max is not None and high is not None and high > r.max:
        out.append(
            _measured(
                big,
                short,
                f"Unexpectedly high values: {high:g} > {r.max:g} (the schema's range.max).",
                high,
                r.max,
            )
        )
    return out


def _check_float_values(fs: FeatureSchema, f: FeatureStatistics) -> list[_Reason]:
    n = f.numeric
    if n is None or fs.type != "FLOAT":
        return []
    out: list[_Reason] = []
    if fs.disallow_nan and n.num_nan > 0:
        out.append(
            _measured(
                "FLOAT_TYPE_HAS_NAN",
                "Invalid values",
                f"Float feature has NaN values ({n.num_nan} of them).",
                n.num_nan,
                0,
            )
        )
    infs = n.num_pos_inf + n.num_neg_inf
    if fs.disallow_inf and infs > 0:
        out.append(
            _measured(
                "FLOAT_TYPE_HAS_INF",
                "Invalid values",
                f"Float feature has Inf values ({infs} of them).",
                infs,
                0,
            )
        )
    return out


def _compare(
    fs: FeatureSchema,
    f: FeatureStatistics,
    base: FeatureStatistics | None,
    comparator: Comparator,
    mode: Mode,
) -> list[_Reason]:
    treatment, control = ("current", "previous") if mode == "drift" else ("training", "serving")
    if base is None:
        return [
            _Reason(
                "COMPARATOR_CONTROL_DATA_MISSING",
                f"{control} data missing",
                f"{control} data is missing.",
            )
        ]
    out: list[_Reason] = []
    if comparator.infinity_norm is not None:
        key, dist = _linf(_counts(f), _counts(base))
        t = comparator.infinity_norm
        if dist > t:
            out.append(
                _measured(
                    "COMPARATOR_L_INFTY_HIGH",
                    f"High Linfty distance between {treatment} and {control}",
                    f"The Linfty distance between {treatment} and {control} is {dist:.6g} (up "
                    f"to six significant digits), above the threshold {t:.6g}. The feature value "
                    f"with maximum difference is: {key}",
                    dist,
                    t,
                )
            )
    if comparator.jensen_shannon_divergence is not None:
        t = comparator.jensen_shannon_divergence
        try:
            jsd = jensen_shannon_divergence(f, base)
        except DataError:
            jsd = None  # TFDV logs and skips: nothing to compare on one side
        if jsd is not None and jsd > t:
            out.append(
                _measured(
                    "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH",
                    f"High approximate Jensen-Shannon divergence between {treatment} and {control}",
                    f"The approximate Jensen-Shannon divergence between {treatment} and "
                    f"{control} is {jsd:.6g} (up to six significant digits), above the "
                    f"threshold {t:.6g}.",
                    jsd,
                    t,
                )
            )
    return out
