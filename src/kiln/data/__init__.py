"""The data library: ingest, splits, statistics, schema, validation (TFDV's functions, on Arrow).

Pure functions on Arrow tables: no metadata, no workspace. The pipeline components that put them
on the spine live in :mod:`kiln.components`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln._lazy import lazy_exports

if TYPE_CHECKING:
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

__all__ = [
    "Bucket",
    "DatasetStatistics",
    "FeatureStatistics",
    "NumericStatistics",
    "Statistics",
    "StringStatistics",
    "TopValue",
    "ValuesPerRow",
]

_EXPORTS = {name: "kiln.data._model" for name in __all__}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
