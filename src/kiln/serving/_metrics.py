"""Request counters and latency histograms per model and version, in Prometheus' text format."""

from __future__ import annotations

from bisect import bisect_left

__all__ = ["BUCKETS", "Metrics"]

# seconds: from the model's own cost (tens of microseconds) to a slow batch
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


class _Series:
    __slots__ = ("buckets", "count", "errors", "rows", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.count = 0
        self.errors = 0
        self.rows = 0
        self.sum = 0.0


class Metrics:
    """Counts every request by (model, version, protocol, status code); latency per model."""

    def __init__(self) -> None:
        self._codes: dict[tuple[str, str, str, int], int] = {}
        self._series: dict[tuple[str, str], _Series] = {}

    def observe(
        self, model: str, version: str, protocol: str, code: int, seconds: float, rows: int
    ) -> None:
        key = (model, version, protocol, code)
        self._codes[key] = self._codes.get(key, 0) + 1
        series = self._series.get((model, version))
        if series is None:
            series = self._series[(model, version)] = _Series()
        series.count += 1
        series.sum += seconds
        series.buckets[bisect_left(BUCKETS, seconds)] += 1
        if code >= 400:
            series.errors += 1
        else:
            series.rows += rows

    def render(self) -> str:
        out = [
            "# HELP kiln_requests_total Requests by model, version, protocol and HTTP status.",
            "# TYPE kiln_requests_total counter",
        ]
        for (model, version, protocol, code), n in sorted(self._codes.items()):
            out.append(
                f'kiln_requests_total{{model="{_esc(model)}",version="{_esc(version)}",'
                f'protocol="{protocol}",code="{code}"}} {n}'
            )
        out += [
            "# HELP kiln_request_errors_total Requests answered with a 4xx or 5xx status.",
            "# TYPE kiln_request_errors_total counter",
        ]
        for (model, version), s in sorted(self._series.items()):
            out.append(f"kiln_request_errors_total{_labels(model, version)} {s.errors}")
        out += [
            "# HELP kiln_predicted_rows_total Rows predicted.",
            "# TYPE kiln_predicted_rows_total counter",
        ]
        for (model, version), s in sorted(self._series.items()):
            out.append(f"kiln_predicted_rows_total{_labels(model, version)} {s.rows}")
        out += [
            "# HELP kiln_request_duration_seconds Time from a complete request to its answer.",
            "# TYPE kiln_request_duration_seconds histogram",
        ]
        for (model, version), s in sorted(self._series.items()):
            base = f'model="{_esc(model)}",version="{_esc(version)}"'
            cumulative = 0
            for bound, n in zip((*BUCKETS, float("inf")), s.buckets, strict=True):
                cumulative += n
                le = "+Inf" if bound == float("inf") else repr(bound)
                out.append(f'kiln_request_duration_seconds_bucket{{{base},le="{le}"}} {cumulative}')
            out.append(f"kiln_request_duration_seconds_sum{{{base}}} {s.sum!r}")
            out.append(f"kiln_request_duration_seconds_count{{{base}}} {s.count}")
        return "\n".join(out) + "\n"


def _labels(model: str, version: str) -> str:
    return f'{{model="{_esc(model)}",version="{_esc(version)}"}}'


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
