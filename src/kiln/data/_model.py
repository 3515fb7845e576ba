"""The statistics data model: what Kiln computes per feature, and its JSON format.

The JSON format (a ``Statistics`` artifact's ``statistics.json``, or ``kiln stats --out``)::

    {"format": "kiln.statistics", "version": 1,
     "datasets": [                                   # one entry per dataset split
       {"name": "train", "num_examples": 1000,
        "features": [
          {"name": "age", "type": "INT",             # INT FLOAT STRING BOOL DATETIME BYTES
           "count": 990, "num_missing": 10,          # rows with / without a value
           "values_per_row": null,                   # list columns: {"min", "max", "avg"}
           "numeric": {"mean", "std_dev", "num_zeros", "min", "median", "max",
                       "num_nan", "num_pos_inf", "num_neg_inf",
                       "histogram": [{"low", "high", "count"}] * 10,   # equal width
                       "quantiles": [{"low", "high", "count"}] * 10},  # equal mass
           "string": null},
          {"name": "city", "type": "STRING", "count": 1000, "num_missing": 0,
           "values_per_row": null, "numeric": null,
           "string": {"unique": 31,                  # distinct count (HLL sketch)
                      "top_values": [{"value": "Paris", "count": 120}, ...],  # up to 1000
                      "avg_length": 6.2, "invalid_utf8": 0}}]}]}

Numeric statistics exclude NaN and infinities from mean, std dev, median, histograms and
quantiles (they are counted apart), as TFDV does. Counts are floats only where TFDV has them as
such (bucket counts, which can be fractional for quantile buckets).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kiln.errors import DataError

__all__ = [
    "FORMAT",
    "Bucket",
    "DatasetStatistics",
    "FeatureStatistics",
    "FeatureType",
    "NumericStatistics",
    "Statistics",
    "StringStatistics",
    "TopValue",
    "ValuesPerRow",
]

FORMAT = "kiln.statistics"
FORMAT_VERSION = 1
FeatureType = str  # "INT" | "FLOAT" | "STRING" | "BOOL" | "DATETIME" | "BYTES"
TOP_VALUES_KEPT = 1000
TOP_VALUES_SHOWN = 20
BUCKETS = 10


@dataclass
class Bucket:
    low: float
    high: float
    count: float


@dataclass
class NumericStatistics:
    mean: float | None
    std_dev: float | None
    num_zeros: int
    min: float | None
    median: float | None
    max: float | None
    num_nan: int = 0
    num_pos_inf: int = 0
    num_neg_inf: int = 0
    histogram: list[Bucket] = field(default_factory=list)
    quantiles: list[Bucket] = field(default_factory=list)


@dataclass
class TopValue:
    value: str
    count: int


@dataclass
class StringStatistics:
    unique: int
    top_values: list[TopValue] = field(default_factory=list)
    avg_length: float | None = None
    invalid_utf8: int = 0


@dataclass
class ValuesPerRow:
    min: int
    max: int
    avg: float


@dataclass
class FeatureStatistics:
    name: str
    type: FeatureType
    count: int
    num_missing: int
    values_per_row: ValuesPerRow | None = None
    numeric: NumericStatistics | None = None
    string: StringStatistics | None = None

    @property
    def fraction_present(self) -> float:
        total = self.count + self.num_missing
        return self.count / total if total else 0.0


@dataclass
class DatasetStatistics:
    name: str
    num_examples: int
    features: list[FeatureStatistics] = field(default_factory=list)

    def feature(self, name: str) -> FeatureStatistics | None:
        return next((f for f in self.features if f.name == name), None)


@dataclass
class Statistics:
    """Statistics of one or more dataset splits, in Kiln's documented JSON format."""

    datasets: list[DatasetStatistics] = field(default_factory=list)

    def dataset(self, name: str | None = None) -> DatasetStatistics:
        """The split called ``name`` (the only or first one when not given)."""
        if not self.datasets:
            raise DataError("these statistics hold no dataset")
        if name is None:
            return self.datasets[0]
        for d in self.datasets:
            if d.name == name:
                return d
        names = ", ".join(d.name for d in self.datasets)
        raise DataError(f"no split {name!r} in these statistics; they have: {names}")

    def to_json(self) -> str:
        body = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "datasets": [asdict(d) for d in self.datasets],
        }
        return json.dumps(body, indent=1, allow_nan=False)

    def write(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def from_json(cls, text: str, *, source: str = "statistics") -> Statistics:
        try:
            body = json.loads(text)
            if body.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} file (format: {body.get('format')!r})")
            if int(body.get("version", 0)) > FORMAT_VERSION:
                raise ValueError(
                    f"format version {body['version']} is newer than this Kiln reads "
                    f"({FORMAT_VERSION}); upgrade Kiln"
                )
            return cls([_dataset(d) for d in body["datasets"]])
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise DataError(f"{source}: not valid Kiln statistics JSON: {e}") from e

    @classmethod
    def read(cls, path: Path) -> Statistics:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise DataError(f"{path}: cannot read statistics ({e.strerror})") from e
        return cls.from_json(text, source=str(path))


def _buckets(items: list[dict[str, Any]]) -> list[Bucket]:
    return [Bucket(**b) for b in items]


def _feature(d: dict[str, Any]) -> FeatureStatistics:
    numeric = d.get("numeric")
    string = d.get("string")
    vpr = d.get("values_per_row")
    return FeatureStatistics(
        name=d["name"],
        type=d["type"],
        count=d["count"],
        num_missing=d["num_missing"],
        values_per_row=ValuesPerRow(**vpr) if vpr else None,
        numeric=NumericStatistics(
            **{
                **numeric,
                "histogram": _buckets(numeric.get("histogram", [])),
                "quantiles": _buckets(numeric.get("quantiles", [])),
            }
        )
        if numeric
        else None,
        string=StringStatistics(
            **{**string, "top_values": [TopValue(**t) for t in string.get("top_values", [])]}
        )
        if string
        else None,
    )


def _dataset(d: dict[str, Any]) -> DatasetStatistics:
    return DatasetStatistics(
        name=d["name"],
        num_examples=d["num_examples"],
        features=[_feature(f) for f in d["features"]],
    )
