"""The transform library: analyzers fitted over the whole training data, then applied row by row
identically in training, batch prediction and serving (TensorFlow Transform's idea, on Arrow).

Pure functions on Arrow tables: no metadata, no workspace. ``TransformGraph(ops).fit(table)``
gives a :class:`FittedTransform` whose ``transform(table)`` returns a :class:`FeatureMatrix`;
:func:`auto_transform` builds BigQuery ML's automatic preprocessing for a model family.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln._lazy import lazy_exports

if TYPE_CHECKING:
    from kiln.transform._auto import FAMILIES, auto_transform
    from kiln.transform._graph import (
        FeatureMatrix,
        FittedTransform,
        OneHotFeatures,
        StackedTransform,
        TransformGraph,
        TransformWarning,
    )
    from kiln.transform._ops import (
        Op,
        bag_of_words,
        bucketize,
        clip,
        datetime_parts,
        feature_cross,
        hash_bucketize,
        impute,
        index_values,
        label_encode,
        log1p,
        max_abs_scale,
        min_max_scale,
        multi_hot,
        ngrams,
        one_hot,
        polynomial_expand,
        quantile_bucketize,
        robust_scale,
        stable_hash,
        standard_scale,
        struct_fields,
    )
    from kiln.transform._sql import SqlSelect, SqlThenTransform

__all__ = [
    "FAMILIES",
    "FeatureMatrix",
    "FittedTransform",
    "OneHotFeatures",
    "Op",
    "SqlSelect",
    "SqlThenTransform",
    "StackedTransform",
    "TransformGraph",
    "TransformWarning",
    "auto_transform",
    "bag_of_words",
    "bucketize",
    "clip",
    "datetime_parts",
    "feature_cross",
    "hash_bucketize",
    "impute",
    "index_values",
    "label_encode",
    "log1p",
    "max_abs_scale",
    "min_max_scale",
    "multi_hot",
    "ngrams",
    "one_hot",
    "polynomial_expand",
    "quantile_bucketize",
    "robust_scale",
    "stable_hash",
    "standard_scale",
    "struct_fields",
]

_EXPORTS = {name: "kiln.transform._ops" for name in __all__}
_EXPORTS["FAMILIES"] = "kiln.transform._auto"
_EXPORTS["auto_transform"] = "kiln.transform._auto"
_EXPORTS["FeatureMatrix"] = "kiln.transform._graph"
_EXPORTS["FittedTransform"] = "kiln.transform._graph"
_EXPORTS["OneHotFeatures"] = "kiln.transform._graph"
_EXPORTS["StackedTransform"] = "kiln.transform._graph"
_EXPORTS["TransformGraph"] = "kiln.transform._graph"
_EXPORTS["TransformWarning"] = "kiln.transform._graph"
_EXPORTS["SqlSelect"] = "kiln.transform._sql"
_EXPORTS["SqlThenTransform"] = "kiln.transform._sql"
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
