"""The data library: ingest, splits, statistics, schema, validation (TFDV's functions, on Arrow).

Pure functions on Arrow tables: no metadata, no workspace. The pipeline components that put them
on the spine live in :mod:`kiln.components`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln._lazy import lazy_exports

if TYPE_CHECKING:
    from kiln.data._ingest import (
        DEFAULT_NULL_VALUES,
        FORMATS,
        iter_batches,
        read_sql,
        read_table,
    )
    from kiln.data._model import (
        Bucket,
        DatasetStatistics,
        FeatureStatistics,
        NumericStatistics,
        Statistics,
        StringStatistics,
        TopValue,
        ValuesPerRow,
    )
    from kiln.data._report import statistics_html
    from kiln.data._schema import (
        Comparator,
        FeatureSchema,
        Presence,
        Range,
        Schema,
        ValueCount,
        infer_schema,
        read_schema,
        write_schema,
    )
    from kiln.data._split import DEFAULT_RATIOS, split_by_time, split_hashes, split_table
    from kiln.data._stats import (
        StatisticsAccumulator,
        generate_split_statistics,
        generate_statistics,
    )
    from kiln.data._validate import (
        Anomaly,
        drift_scores,
        jensen_shannon_divergence,
        linf_distance,
        validate_statistics,
    )

__all__ = [
    "DEFAULT_NULL_VALUES",
    "DEFAULT_RATIOS",
    "FORMATS",
    "Anomaly",
    "Bucket",
    "Comparator",
    "DatasetStatistics",
    "FeatureSchema",
    "FeatureStatistics",
    "NumericStatistics",
    "Presence",
    "Range",
    "Schema",
    "Statistics",
    "StatisticsAccumulator",
    "StringStatistics",
    "TopValue",
    "ValueCount",
    "ValuesPerRow",
    "drift_scores",
    "generate_split_statistics",
    "generate_statistics",
    "infer_schema",
    "iter_batches",
    "jensen_shannon_divergence",
    "linf_distance",
    "read_schema",
    "read_sql",
    "read_table",
    "split_by_time",
    "split_hashes",
    "split_table",
    "statistics_html",
    "validate_statistics",
    "write_schema",
]

_EXPORTS = {name: "kiln.data._model" for name in __all__}
_EXPORTS["statistics_html"] = "kiln.data._report"
_EXPORTS["StatisticsAccumulator"] = "kiln.data._stats"
_EXPORTS["generate_split_statistics"] = "kiln.data._stats"
_EXPORTS["generate_statistics"] = "kiln.data._stats"
_EXPORTS["Comparator"] = "kiln.data._schema"
_EXPORTS["FeatureSchema"] = "kiln.data._schema"
_EXPORTS["Presence"] = "kiln.data._schema"
_EXPORTS["Range"] = "kiln.data._schema"
_EXPORTS["Schema"] = "kiln.data._schema"
_EXPORTS["ValueCount"] = "kiln.data._schema"
_EXPORTS["infer_schema"] = "kiln.data._schema"
_EXPORTS["read_schema"] = "kiln.data._schema"
_EXPORTS["write_schema"] = "kiln.data._schema"
_EXPORTS["Anomaly"] = "kiln.data._validate"
_EXPORTS["jensen_shannon_divergence"] = "kiln.data._validate"
_EXPORTS["linf_distance"] = "kiln.data._validate"
_EXPORTS["drift_scores"] = "kiln.data._validate"
_EXPORTS["validate_statistics"] = "kiln.data._validate"
_EXPORTS["DEFAULT_NULL_VALUES"] = "kiln.data._ingest"
_EXPORTS["FORMATS"] = "kiln.data._ingest"
_EXPORTS["iter_batches"] = "kiln.data._ingest"
_EXPORTS["read_sql"] = "kiln.data._ingest"
_EXPORTS["read_table"] = "kiln.data._ingest"
_EXPORTS["DEFAULT_RATIOS"] = "kiln.data._split"
_EXPORTS["split_by_time"] = "kiln.data._split"
_EXPORTS["split_hashes"] = "kiln.data._split"
_EXPORTS["split_table"] = "kiln.data._split"
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
