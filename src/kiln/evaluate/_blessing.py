"""Model validation: thresholds on metric values and on change against a baseline (TFMA-style).

A candidate model is *blessed* when every check passes. A :class:`MetricThreshold` holds up to
four checks on one metric:

- ``lower_bound`` / ``upper_bound``: the candidate's value must be ``>= lower_bound`` and
  ``<= upper_bound``;
- ``change_absolute``: how much worse than the baseline the candidate may be, in the metric's
  units; ``change_relative``: the same as a fraction of ``|baseline|`` (0.01 is 1%). "Worse"
  means lower when ``higher_is_better`` (accuracy, roc_auc) and higher otherwise (log_loss,
  mean_squared_error). A negative value demands an improvement of at least that much; 0 means
  "no worse than the baseline".

Without a baseline (the first model) change checks are skipped and the value checks decide. A
metric the candidate does not report (or reports as ``None``, like ``roc_auc`` on one class)
fails its checks: a missing number never blesses a model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from kiln.errors import TrainingError

__all__ = ["Blessing", "Check", "MetricThreshold", "bless"]

CheckKind = Literal["lower_bound", "upper_bound", "change_absolute", "change_relative"]


def _num(value: float) -> str:
    return f"{value:.4g}"


@dataclass(frozen=True)
class MetricThreshold:
    """The checks on one metric; at least one of the four limits must be set."""

    metric: str
    lower_bound: float | None = None
    upper_bound: float | None = None
    change_absolute: float | None = None
    change_relative: float | None = None
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        limits = (self.lower_bound, self.upper_bound, self.change_absolute, self.change_relative)
        if not self.metric:
            raise TrainingError("MetricThreshold needs a metric name, like 'roc_auc'")
        if all(limit is None for limit in limits):
            raise TrainingError(
                f"MetricThreshold({self.metric!r}) sets no limit; set lower_bound, upper_bound, "
                "change_absolute or change_relative"
            )
        for name, limit in zip(
            ("lower_bound", "upper_bound", "change_absolute", "change_relative"),
            limits,
            strict=True,
        ):
            if limit is not None and not math.isfinite(limit):
                raise TrainingError(f"MetricThreshold({self.metric!r}).{name} must be finite")
        if (
            self.lower_bound is not None
            and self.upper_bound is not None
            and self.lower_bound > self.upper_bound
        ):
            raise TrainingError(
                f"MetricThreshold({self.metric!r}) has lower_bound {self.lower_bound} above "
                f"upper_bound {self.upper_bound}: no value can pass"
            )


@dataclass(frozen=True)
class Check:
    """One check of one metric on one slice; ``passed`` is ``None`` when it was skipped."""

    metric: str
    kind: CheckKind
    slice: dict[str, Any]
    value: float | None
    limit: float
    baseline: float | None
    passed: bool | None
    reason: str


@dataclass(frozen=True)
class Blessing:
    """The decision: ``blessed`` when no check failed; ``reasons`` says why, a line per check."""

    blessed: bool
    reasons: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, for the Blessing artifact."""
        return asdict(self)


def _value(metrics: Mapping[str, Any] | None, name: str) -> float | None:
    if metrics is None:
        return None
    value = metrics.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def _prefix(slice_: Mapping[str, Any]) -> str:
    if not slice_:
        return ""
    return "[" + ", ".join(f"{k}={v}" for k, v in slice_.items()) + "] "


def _check_metric(
    threshold: MetricThreshold,
    candidate: Mapping[str, Any],
    baseline: Mapping[str, Any] | None,
    slice_: dict[str, Any],
) -> list[Check]:
    name = threshold.metric
    where = _prefix(slice_)
    value = _value(candidate, name)
    base = _value(baseline, name)
    checks: list[Check] = []

    def add(kind: CheckKind, limit: float, passed: bool | None, reason: str) -> None:
        checks.append(Check(name, kind, dict(slice_), value, limit, base, passed, where + reason))

    every: tuple[tuple[CheckKind, float | None], ...] = (
        ("lower_bound", threshold.lower_bound),
        ("upper_bound", threshold.upper_bound),
        ("change_absolute", threshold.change_absolute),
        ("change_relative", threshold.change_relative),
    )
    limits = [(kind, limit) for kind, limit in every if limit is not None]
    if value is None:
        for kind, limit in limits:
            add(kind, limit, False, f"{name} is missing from the candidate's metrics: not blessed")
        return checks

    for kind, limit in limits:
        if kind == "lower_bound":
            ok = value >= limit
            op = ">=" if ok else "<"
            add(
                kind,
                limit,
                ok,
                f"{name} {_num(value)} {op} lower bound {_num(limit)}: "
                + ("ok" if ok else "not blessed"),
            )
        elif kind == "upper_bound":
            ok = value <= limit
            op = "<=" if ok else ">"
            add(
                kind,
                limit,
                ok,
                f"{name} {_num(value)} {op} upper bound {_num(limit)}: "
                + ("ok" if ok else "not blessed"),
            )
        elif baseline is None:
            add(kind, limit, None, f"{name}: no baseline model, {kind} check skipped")
        elif base is None:
            add(
                kind,
                limit,
                None,
                f"{name} is missing from the baseline's metrics: {kind} check skipped",
            )
        else:
            # How much worse the candidate is (negative: better).
            worse = base - value if threshold.higher_is_better else value - base
            diff = value - base
            direction = "above" if diff > 0 else "below" if diff < 0 else "equal to"
            how = f"{name} {_num(value)} is "
            if kind == "change_absolute":
                ok = worse <= limit
                how += "" if diff == 0 else f"{_num(abs(diff))} "
                allowed = f"allowed change {_num(limit)}"
            else:
                if base == 0.0:
                    ok = worse <= 0.0
                    rel = "" if diff == 0 else "infinitely "
                else:
                    ok = worse / abs(base) <= limit
                    rel = "" if diff == 0 else f"{abs(diff) / abs(base):.2%} "
                how += rel
                allowed = f"allowed relative change {limit:.2%}"
            add(
                kind,
                limit,
                ok,
                f"{how}{direction} the baseline {_num(base)} ({allowed}): "
                + ("ok" if ok else "not blessed"),
            )
    return checks


def _slice_key(slice_: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((str(k), repr(v)) for k, v in slice_.items()))


def bless(
    candidate_metrics: Mapping[str, Any],
    thresholds: Sequence[MetricThreshold],
    *,
    baseline_metrics: Mapping[str, Any] | None = None,
    slices: Sequence[Mapping[str, Any]] | None = None,
    baseline_slices: Sequence[Mapping[str, Any]] | None = None,
    slice_thresholds: Sequence[MetricThreshold] | None = None,
) -> Blessing:
    """Check ``candidate_metrics`` against ``thresholds``; blessed when no check fails.

    ``baseline_metrics`` are the metrics of the model in production on the same data; without
    them only the value bounds are checked, so the first model is blessed when it meets them.
    ``slices`` (the candidate's :func:`~kiln.evaluate.sliced_metrics` output) adds the checks
    of ``slice_thresholds`` (default: ``thresholds``) on every slice, comparing with the slice
    of equal key in ``baseline_slices``; the overall slice ``{}`` in ``slices`` is skipped, as
    ``candidate_metrics`` covers it, and so are slices whose metrics failed (``"error"``), with
    a note in ``reasons``.
    """
    checks: list[Check] = []
    notes: list[str] = []
    for threshold in thresholds:
        checks += _check_metric(threshold, candidate_metrics, baseline_metrics, {})
    if slices:
        by_key = {_slice_key(s.get("slice", {})): s for s in baseline_slices or ()}
        for entry in slices:
            slice_ = dict(entry.get("slice", {}))
            if not slice_:
                continue
            if "error" in entry:
                notes.append(
                    f"{_prefix(slice_)}metrics failed, slice not checked: {entry['error']}"
                )
                continue
            base = by_key.get(_slice_key(slice_)) if baseline_slices is not None else None
            if baseline_slices is not None and base is None:
                base = {}
            for threshold in thresholds if slice_thresholds is None else slice_thresholds:
                checks += _check_metric(threshold, entry, base, slice_)
    blessed = all(check.passed is not False for check in checks)
    passed = sum(check.passed is True for check in checks)
    failed = sum(check.passed is False for check in checks)
    skipped = len(checks) - passed - failed
    counts = f"{passed} passed, {failed} failed, {skipped} skipped"
    if not checks:
        verdict = "blessed: no thresholds to check"
    else:
        verdict = f"{'blessed' if blessed else 'not blessed'}: {counts}"
    return Blessing(blessed, [verdict, *(c.reason for c in checks), *notes], checks)
