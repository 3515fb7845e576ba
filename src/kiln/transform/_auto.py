"""Automatic preprocessing per model family, when the user gives no transform (BigQuery ML's).

Per column (the label and ``exclude`` left out), from one statistics pass over the table:

================  ===============================================  ==============================
column            linear, dnn, kmeans, pca                         tree (boosted trees, forests)
================  ===============================================  ==============================
INT, FLOAT        mean impute, then standard scale (z-score)       as is: NaN stays NaN (LightGBM
                                                                   handles missing values)
STRING, BOOL      one-hot, top 1000 values; missing is a category  label-encode to native
                  of its own; unseen -> all zeros (weight 0)       categorical codes; missing is
                                                                   its own code; unseen -> NaN
list<string>      multi-hot, top 1000 values                       multi-hot, top 1000 values
list<struct<      one dense column per index up to the largest     the same
 index, value>>   seen (BigQuery's one-hot / bag-of-words output)
STRUCT            each field: numbers mean-imputed and z-scored,   numbers as is, strings as
                  strings one-hot (FEATURE_CROSS, POLYNOMIAL_...)  categorical codes
TIMESTAMP, DATE   parts (epoch, year, month, day, day of week,     the same parts, not scaled
                  day of year, hour), mean-imputed and z-scored
all null or       dropped, with a TransformWarning                 dropped, with a warning
constant
BYTES, other      dropped, with a TransformWarning                 dropped, with a warning
================  ===============================================  ==============================

Decisions: the one-hot vocabulary is capped at 1000 values (Kiln's statistics keep the top 1000;
the output is a dense matrix) where BigQuery ML has no cap; values past it count as unseen.
A column is constant when it has one distinct value and no missing ones (a column with one value
and some nulls still says something: present or not).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import pyarrow as pa

from kiln.data import generate_statistics
from kiln.data._model import TOP_VALUES_KEPT
from kiln.errors import DataError
from kiln.transform._graph import TransformGraph, TransformWarning
from kiln.transform._ops import (
    IndexValues,
    Op,
    StructFields,
    _is_index_values,
    datetime_parts,
    impute,
    label_encode,
    multi_hot,
    one_hot,
    standard_scale,
)

__all__ = ["FAMILIES", "auto_transform"]

Family = Literal["linear", "dnn", "tree", "kmeans", "pca"]
FAMILIES = ("linear", "dnn", "tree", "kmeans", "pca")
AUTO_DATETIME_PARTS = ("epoch", "year", "month", "day", "dayofweek", "dayofyear", "hour")


def auto_transform(
    table: pa.Table, family: Family, *, exclude: Sequence[str] = ()
) -> TransformGraph:
    """The transform graph BigQuery ML would apply for ``family`` (see the module docstring)."""
    if family not in FAMILIES:
        raise DataError(f"unknown model family {family!r}; use one of {', '.join(FAMILIES)}")
    excluded = set(exclude)
    columns = [f for f in table.schema if f.name not in excluded]
    # BigQuery's encoded types (a kiln sql TRANSFORM's output) have no statistics: they are
    # only checked for being all null
    encoded = {f.name for f in columns if _is_index_values(f.type) or pa.types.is_struct(f.type)}
    stats = generate_statistics(
        table.select([f.name for f in columns if f.name not in encoded])
    ).dataset()
    ops: list[Op] = []
    dropped: list[str] = []
    dropped_names: set[str] = set()
    scaled = family != "tree"
    for field in columns:
        name, t = field.name, field.type
        if name in encoded:
            if table[name].null_count == table.num_rows:
                dropped.append(f"{name} (all null)")
                dropped_names.add(name)
            elif pa.types.is_struct(t):  # ML.FEATURE_CROSS, ML.POLYNOMIAL_EXPAND: each field
                ops.append(StructFields(name, scaled=scaled, top_k=TOP_VALUES_KEPT))
            else:  # ML.ONE_HOT_ENCODER & co.: dense columns of the fitted width
                ops.append(IndexValues(name))
            continue
        if pa.types.is_dictionary(t):
            t = t.value_type
        feature = stats.feature(name)
        if feature is None or feature.count == 0:
            dropped.append(f"{name} (all null)")
            dropped_names.add(name)
            continue
        distinct = (
            feature.string.unique
            if feature.string is not None
            else (
                1
                if feature.numeric is not None and feature.numeric.min == feature.numeric.max
                else 2
            )
        )
        if distinct <= 1 and feature.num_missing == 0 and feature.values_per_row is None:
            dropped.append(f"{name} (constant)")
            dropped_names.add(name)
            continue
        if pa.types.is_boolean(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
            if scaled:
                ops.append(one_hot(name, top_k=TOP_VALUES_KEPT, unknown="ignore"))
            else:
                ops.append(label_encode(name, unknown="ignore"))
        elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            if scaled:
                ops += [impute(name, "mean"), standard_scale(name)]
            # trees: the column passes through as is (NaN stays NaN)
        elif pa.types.is_timestamp(t) or pa.types.is_date(t):
            ops.append(datetime_parts(name, AUTO_DATETIME_PARTS, standardize=scaled))
        elif (pa.types.is_list(t) or pa.types.is_large_list(t)) and (
            pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)
        ):
            ops.append(multi_hot(name, top_k=TOP_VALUES_KEPT))
        else:
            dropped.append(f"{name} (type {t} has no automatic preprocessing)")
            dropped_names.add(name)
    passthrough_excluded = sorted(excluded | dropped_names)
    if dropped:
        warnings.warn(
            f"automatic preprocessing dropped: {'; '.join(dropped)}",
            TransformWarning,
            stacklevel=2,
        )
    return TransformGraph(ops, exclude=passthrough_excluded)
