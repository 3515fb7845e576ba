"""``ML.PREDICT``, ``ML.EVALUATE``, ``ML.CONFUSION_MATRIX``, ``ML.ROC_CURVE``, ``ML.TRAINING_INFO``
and ``ML.FEATURE_INFO``: BigQuery ML's table functions over a Kiln model, as Arrow tables.

Every function has one signature, ``fn(model, table, settings, extra) -> pa.Table``: ``table`` is
the input rows (``None`` when the statement gave none), ``settings`` the ``STRUCT(...)`` options
with lower-case names, ``extra`` the other constant arguments (``ML.ROC_CURVE``'s thresholds).
:data:`FUNCTIONS` maps BigQuery's names to them. Output columns, their order and their types are
BigQuery's; metrics come from :mod:`kiln.evaluate` (nothing is re-implemented here).

Without input rows, ``ML.EVALUATE``, ``ML.CONFUSION_MATRIX`` and ``ML.ROC_CURVE`` return what
:func:`training_summary` computed at ``CREATE MODEL`` on the evaluation split (or on the training
data when there was none, as BigQuery does), kept in ``model.info``.

Binary classifiers: the positive class is the second of the model's classes in sorted order
(``1`` over ``0``, ``true`` over ``false``, ``"yes"`` over ``"no"``); a row is predicted positive
when its probability is *above* ``threshold`` (0.5 unless given).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kiln.errors import KilnError, SqlError
from kiln.evaluate import classification_metrics, regression_metrics

if TYPE_CHECKING:
    from kiln.model import Model
    from kiln.sql._model import SqlModel

__all__ = [
    "FUNCTIONS",
    "ml_confusion_matrix",
    "ml_evaluate",
    "ml_feature_info",
    "ml_predict",
    "ml_roc_curve",
    "ml_training_info",
    "training_summary",
]

TableFunction = Callable[["SqlModel", pa.Table | None, dict[str, Any], list[Any]], pa.Table]
FloatArray = np.ndarray[Any, np.dtype[np.float64]]

# --------------------------------------------------------------------------- output schemas

REGRESSION_METRICS = (
    "mean_absolute_error",
    "mean_squared_error",
    "mean_squared_log_error",
    "median_absolute_error",
    "r2_score",
    "explained_variance",
)
CLASSIFICATION_METRICS = ("precision", "recall", "accuracy", "f1_score", "log_loss", "roc_auc")
CLUSTERING_METRICS = ("davies_bouldin_index", "mean_squared_distance")
PCA_METRICS = ("total_explained_variance_ratio",)

ROC_SCHEMA = pa.schema(
    [
        ("threshold", pa.float64()),
        ("recall", pa.float64()),
        ("false_positive_rate", pa.float64()),
        ("true_positives", pa.int64()),
        ("false_positives", pa.int64()),
        ("true_negatives", pa.int64()),
        ("false_negatives", pa.int64()),
    ]
)
CLUSTER_INFO_TYPE = pa.list_(
    pa.struct(
        [
            ("centroid_id", pa.int64()),
            ("cluster_radius", pa.float64()),
            ("cluster_size", pa.int64()),
        ]
    )
)
TRAINING_INFO_SCHEMA = pa.schema(
    [
        ("training_run", pa.int64()),
        ("iteration", pa.int64()),
        ("loss", pa.float64()),
        ("eval_loss", pa.float64()),
        ("learning_rate", pa.float64()),
        ("duration_ms", pa.int64()),
    ]
)
FEATURE_INFO_SCHEMA = pa.schema(
    [
        ("input", pa.string()),
        ("min", pa.float64()),
        ("max", pa.float64()),
        ("mean", pa.float64()),
        ("median", pa.float64()),
        ("stddev", pa.float64()),
        ("category_count", pa.int64()),
        ("null_count", pa.int64()),
        ("dimension", pa.int64()),
    ]
)

ROC_DEFAULT_PERCENTILES = 101
"""Without a thresholds array, ``ML.ROC_CURVE`` cuts at the 0th..100th percentiles of the
positive-class probability (the distinct values, highest first)."""


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class _Setting:
    kind: str  # "probability" | "bool"
    what: str


_SETTING_KINDS = {
    "threshold": _Setting("probability", "a FLOAT64 between 0 and 1"),
    "keep_original_columns": _Setting("bool", "a BOOL"),
}

# The STRUCT fields each function accepts: the one place settings are declared.
_ACCEPTS: dict[str, tuple[str, ...]] = {
    "PREDICT": ("threshold", "keep_original_columns"),
    "EVALUATE": ("threshold",),
    "CONFUSION_MATRIX": ("threshold",),
    "ROC_CURVE": (),
    "TRAINING_INFO": (),
    "FEATURE_INFO": (),
    "TRIAL_INFO": (),
}


def _settings(function: str, model: SqlModel, settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` checked against :data:`_ACCEPTS` (names lower-cased), values typed."""
    accepted = _ACCEPTS[function]
    out: dict[str, Any] = {}
    for raw_name, value in settings.items():
        name = raw_name.lower()
        if name == "trial_id":
            raise SqlError(
                f"ML.{function}: trial_id is not supported: model {model.name} has a single "
                "trial (Kiln keeps the best trial of hyperparameter tuning as the model); "
                "remove trial_id"
            )
        if name not in accepted:
            allowed = ", ".join(accepted) if accepted else "none"
            raise SqlError(
                f"ML.{function} does not take the setting {raw_name!r}; the settings it takes: "
                f"{allowed}"
            )
        spec = _SETTING_KINDS[name]
        if value is None:
            continue
        if spec.kind == "bool":
            if not isinstance(value, bool):
                raise SqlError(f"ML.{function}: {name} must be {spec.what}, got {value!r}")
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or not 0.0 <= float(value) <= 1.0 or math.isnan(float(value)):
                raise SqlError(f"ML.{function}: {name} must be {spec.what}, got {value!r}")
            value = float(value)
        out[name] = value
    if "threshold" in out and not _is_binary(model.model):
        raise SqlError(
            f"ML.{function}: threshold is only supported for binary classification models; "
            f"model {model.name} is {_kind_words(model)}. Remove the threshold"
        )
    if "keep_original_columns" in out and model.model.task != "dimensionality_reduction":
        raise SqlError(
            f"ML.{function}: keep_original_columns is only supported for PCA models; model "
            f"{model.name} is {_kind_words(model)} and always returns its input columns"
        )
    return out


def _no_extra(function: str, extra: list[Any]) -> None:
    if extra:
        raise SqlError(
            f"ML.{function} takes no argument after the model, input and STRUCT settings; got "
            f"{len(extra)} more"
        )


def _needs_no_table(function: str, table: pa.Table | None) -> None:
    if table is not None:
        raise SqlError(
            f"ML.{function} takes only a model: ML.{function}(MODEL `dataset.model`); remove "
            "the input table or query"
        )


# --------------------------------------------------------------------------- model kinds


def _classes(model: Model) -> list[Any]:
    classes = getattr(model.trainer, "classes_", None)
    if classes is None:
        return []
    return [c.item() if isinstance(c, np.generic) else c for c in classes]


def _is_binary(model: Model) -> bool:
    return model.task == "classification" and len(_classes(model)) == 2


def _kind_words(model: SqlModel) -> str:
    task = model.model.task
    if task == "classification":
        k = len(_classes(model.model))
        kind = "a binary classification" if k == 2 else f"a {k}-class classification"
    else:
        kind = {
            "regression": "a regression",
            "clustering": "a k-means",
            "dimensionality_reduction": "a PCA",
        }.get(task, f"a {task}")
    return f"{kind} model ({model.model_type.upper()})"


def _label_type(model: Model) -> pa.DataType:
    return pa.array(_classes(model)).type


# --------------------------------------------------------------------------- ML.PREDICT


def _model_predict(model: SqlModel, function: str, table: pa.Table) -> pa.Table:
    """``Model.predict`` with its errors named for the SQL statement."""
    try:
        return model.model.predict(table)
    except KilnError as e:
        if isinstance(e, SqlError):
            raise
        raise SqlError(f"ML.{function} with model {model.name}: {e}") from e


def _positive_probability(model: Model, predictions: pa.Table) -> FloatArray:
    """The positive class's probability per row, from ``predicted_<label>_probs``."""
    column = predictions[f"{model.prediction_column}_probs"]
    k = len(_classes(model))
    parts = [
        np.asarray(
            pc.struct_field(pc.list_flatten(chunk), "prob").to_numpy(zero_copy_only=False),
            dtype=np.float64,
        ).reshape(-1, k)
        for chunk in column.chunks
    ]
    probabilities = np.concatenate(parts) if parts else np.empty((0, k))
    return np.ascontiguousarray(probabilities[:, 1])


def _probability_matrix(model: Model, predictions: pa.Table) -> FloatArray:
    column = predictions[f"{model.prediction_column}_probs"].combine_chunks()
    k = len(_classes(model))
    probs = pc.struct_field(pc.list_flatten(column), "prob").to_numpy(zero_copy_only=False)
    return np.asarray(probs, dtype=np.float64).reshape(len(predictions), k)


def _above(probability: FloatArray, threshold: float) -> np.ndarray[Any, np.dtype[np.bool_]]:
    result: np.ndarray[Any, np.dtype[np.bool_]] = probability > threshold
    return result


def _thresholded(model: Model, predictions: pa.Table, threshold: float) -> pa.Table:
    """``predictions`` with the predicted label of a binary model re-cut at ``threshold``."""
    name = model.prediction_column
    positive = _above(_positive_probability(model, predictions), threshold)
    labels = pa.array(_classes(model), type=predictions.schema.field(name).type)
    column = labels.take(pa.array(positive.astype(np.int64)))
    index = predictions.schema.get_field_index(name)
    return predictions.set_column(index, name, column)


def ml_predict(
    model: SqlModel, table: pa.Table | None, settings: dict[str, Any], extra: list[Any]
) -> pa.Table:
    """``ML.PREDICT``: the prediction columns, then every input column as it came in.

    Classifiers: ``predicted_<label>`` and ``predicted_<label>_probs``
    (``ARRAY<STRUCT<label, prob FLOAT64>>``); binary ones honour ``threshold``. Regressors:
    ``predicted_<label>`` (FLOAT64). K-means: ``centroid_id`` (INT64) and
    ``nearest_centroids_distance`` (``ARRAY<STRUCT<centroid_id INT64, distance FLOAT64>>``). PCA:
    ``principal_component_1`` .. ``_n`` (FLOAT64), and the input columns only with
    ``keep_original_columns`` (BigQuery's default for PCA is false). The input columns are
    appended without copying.
    """
    options = _settings("PREDICT", model, settings)
    _no_extra("PREDICT", extra)
    if table is None:
        raise SqlError(
            "ML.PREDICT needs input rows: ML.PREDICT(MODEL `dataset.model`, TABLE `dataset.t`) "
            "or ML.PREDICT(MODEL `dataset.model`, (SELECT ...))"
        )
    predictions = _model_predict(model, "PREDICT", table)
    threshold = options.get("threshold")
    if threshold is not None and threshold != 0.5:
        # (at 0.5 the model's own argmax already is "above 0.5": a tie goes to classes[0])
        predictions = _thresholded(model.model, predictions, threshold)
    if model.model.task == "dimensionality_reduction" and not options.get(
        "keep_original_columns", False
    ):
        return predictions
    clashes = [name for name in table.column_names if name in set(predictions.column_names)]
    if clashes:
        raise SqlError(
            f"ML.PREDICT with model {model.name}: input column {clashes[0]!r} has the name of "
            "an output column of the model; rename it in the input (SELECT * EXCEPT "
            f"({clashes[0]}), {clashes[0]} AS other_name ...)"
        )
    columns = list(predictions.columns) + list(table.columns)
    fields = list(predictions.schema) + list(table.schema)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


# --------------------------------------------------------------------------- evaluation data


def _labelled(model: SqlModel, function: str, table: pa.Table) -> pa.Table:
    """``table`` with rows of a null label dropped; an error when the label column is missing."""
    label = model.label
    if not label:
        return table
    if label not in table.column_names:
        raise SqlError(
            f"ML.{function}: the input data has no column {label!r}, the label of model "
            f"{model.name}; its columns: {', '.join(table.column_names)}. Add {label!r} to "
            "the input"
        )
    if table[label].null_count:
        table = table.filter(pc.is_valid(table[label]))
    if table.num_rows == 0:
        raise SqlError(
            f"ML.{function}: the input data has no row with a non-NULL {label!r} to evaluate on"
        )
    return table


def _truth(table: pa.Table, label: str) -> np.ndarray[Any, Any]:
    column = table[label]
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return np.asarray(column.to_numpy())


def _metric_error(model: SqlModel, function: str, e: KilnError) -> SqlError:
    return SqlError(f"ML.{function} with model {model.name}: {e}")


def _evaluate_rows(model: SqlModel, table: pa.Table, threshold: float) -> list[dict[str, Any]]:
    """One row of ``ML.EVALUATE``'s metrics on ``table`` (labelled already)."""
    inner = model.model
    task = inner.task
    if task == "dimensionality_reduction":
        ratios = np.asarray(getattr(inner.trainer, "explained_variance_ratio_", []))
        return [{"total_explained_variance_ratio": float(ratios.sum())}]
    if task == "clustering":
        from kiln.model import evaluate_model

        try:
            metrics = evaluate_model(inner, table, importance=False).metrics
        except KilnError as e:
            raise _metric_error(model, "EVALUATE", e) from e
        return [{name: _number(metrics.get(name)) for name in CLUSTERING_METRICS}]
    assert inner.label is not None
    predictions = _model_predict(model, "EVALUATE", table)
    truth = _truth(table, inner.label)
    try:
        if task == "regression":
            values = predictions[inner.prediction_column].to_numpy()
            metrics = regression_metrics(np.asarray(truth, dtype=np.float64), values)
            return [{name: _number(metrics.get(name)) for name in REGRESSION_METRICS}]
        classes = _classes(inner)
        if len(classes) == 2:
            p, cut = _strictly_above(_positive_probability(inner, predictions), threshold)
            metrics = classification_metrics(truth, p, classes=classes, threshold=cut)
        else:
            proba = _probability_matrix(inner, predictions)
            metrics = classification_metrics(truth, proba, classes=classes)
    except KilnError as e:
        raise _metric_error(model, "EVALUATE", e) from e
    return [{name: _number(metrics.get(name)) for name in CLASSIFICATION_METRICS}]


def _strictly_above(p: FloatArray, threshold: float) -> tuple[FloatArray, float]:
    """``(p', t')`` such that ``p' >= t'`` (the metric functions' rule) is ``p > threshold``
    (BigQuery's), ranks and log loss unchanged."""
    if threshold < 1.0:
        return p, float(np.nextafter(threshold, np.inf))
    return np.minimum(p, np.nextafter(1.0, 0.0)), 1.0


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _evaluation_schema(model: Model) -> pa.Schema:
    names = {
        "regression": REGRESSION_METRICS,
        "classification": CLASSIFICATION_METRICS,
        "clustering": CLUSTERING_METRICS,
        "dimensionality_reduction": PCA_METRICS,
    }.get(model.task, ())
    return pa.schema([(name, pa.float64()) for name in names])


def _stored(model: SqlModel, key: str, function: str) -> list[dict[str, Any]]:
    rows = model.info.get(key)
    if rows is None:
        rows = (model.model.info.get("sql") or {}).get(key)
    if rows is None:
        raise SqlError(
            f"ML.{function}: model {model.name} has no {key.replace('_', ' ')} kept from "
            f"training (it was created without one); pass the data: ML.{function}(MODEL "
            f"`{model.name}`, TABLE `dataset.table`)"
        )
    return list(rows)


def _no_threshold_without_data(function: str, model: SqlModel, options: dict[str, Any]) -> None:
    if options.get("threshold", 0.5) != 0.5:
        raise SqlError(
            f"ML.{function}: a threshold other than 0.5 needs input data; the metrics kept for "
            f"model {model.name} from training are at 0.5. Pass the evaluation data: "
            f"ML.{function}(MODEL `{model.name}`, TABLE `dataset.table`, STRUCT(... AS "
            "threshold))"
        )


def ml_evaluate(
    model: SqlModel, table: pa.Table | None, settings: dict[str, Any], extra: list[Any]
) -> pa.Table:
    """``ML.EVALUATE``: one row of metrics, all FLOAT64.

    Regressors: mean_absolute_error, mean_squared_error, mean_squared_log_error (NULL when a
    value is negative), median_absolute_error, r2_score, explained_variance. Classifiers:
    precision, recall, accuracy, f1_score, log_loss, roc_auc (binary: of the positive class at
    ``threshold``; more classes: macro averages, accuracy micro). K-means: davies_bouldin_index,
    mean_squared_distance. PCA: total_explained_variance_ratio (the model's, whatever the rows).
    Without input rows: the row computed at training.
    """
    options = _settings("EVALUATE", model, settings)
    _no_extra("EVALUATE", extra)
    schema = _evaluation_schema(model.model)
    if table is None:
        _no_threshold_without_data("EVALUATE", model, options)
        return pa.Table.from_pylist(_stored(model, "evaluation", "EVALUATE"), schema=schema)
    rows = _evaluate_rows(model, _labelled(model, "EVALUATE", table), options.get("threshold", 0.5))
    return pa.Table.from_pylist(rows, schema=schema)


# --------------------------------------------------------------------------- confusion matrix

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def class_column_names(classes: Sequence[Any]) -> list[str]:
    """Column names for class labels, as BigQuery makes them: a label that is a valid column
    name is kept; otherwise each character outside ``[A-Za-z0-9_]`` becomes ``_`` and a leading
    digit gets a ``_`` before it (``0`` -> ``_0``, ``Iris-setosa`` -> ``Iris_setosa``); a name
    that is then taken (names compare case-insensitively) gets ``_2``, ``_3``..."""
    names: list[str] = []
    taken = {"expected_label"}
    for label in classes:
        text = ("true" if label else "false") if isinstance(label, bool) else str(label)
        name = text if _NAME.fullmatch(text) else re.sub(r"[^A-Za-z0-9_]", "_", text)
        if not name or not (name[0].isalpha() or name[0] == "_"):
            name = "_" + name
        unique, n = name, 1
        while unique.lower() in taken:
            n += 1
            unique = f"{name}_{n}"
        taken.add(unique.lower())
        names.append(unique)
    return names


def _confusion_schema(model: Model, label_type: pa.DataType) -> pa.Schema:
    names = class_column_names(_classes(model))
    return pa.schema([("expected_label", label_type), *((n, pa.int64()) for n in names)])


def _predicted_labels(model: SqlModel, table: pa.Table, threshold: float) -> pa.ChunkedArray:
    inner = model.model
    predictions = _model_predict(model, "CONFUSION_MATRIX", table)
    if _is_binary(inner) and threshold != 0.5:
        predictions = _thresholded(inner, predictions, threshold)
    column: pa.ChunkedArray = predictions[inner.prediction_column]
    return column


def _confusion_rows(model: SqlModel, table: pa.Table, threshold: float) -> pa.Table:
    inner = model.model
    assert inner.label is not None
    expected = table[inner.label]
    if pa.types.is_dictionary(expected.type):
        expected = expected.cast(expected.type.value_type)
    predicted = _predicted_labels(model, table, threshold)
    schema = _confusion_schema(inner, expected.type)
    classes = _classes(inner)
    try:
        predicted = predicted.cast(expected.type)
        lookup = pa.array(classes).cast(expected.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise SqlError(
            f"ML.CONFUSION_MATRIX with model {model.name}: the label column {inner.label!r} is "
            f"{expected.type}, which does not hold the model's classes {classes!r}"
        ) from e
    positions = pc.index_in(predicted, value_set=lookup)
    groups = (
        pa.table({"e": expected, "p": positions})
        .group_by(["e", "p"])
        .aggregate([([], "count_all")])
    )
    expected_values = groups["e"].to_pylist()
    known = {v: i for i, v in enumerate(lookup.to_pylist())}
    # Expected labels ascending (the model's classes are sorted); any the model does not know
    # come after its classes.
    labels = sorted(set(expected_values), key=lambda v: (v not in known, known.get(v, 0), v))
    row_of = {v: i for i, v in enumerate(labels)}
    matrix = np.zeros((len(labels), len(classes)), dtype=np.int64)
    for value, column, n in zip(  # one per (expected, predicted) pair, not per input row
        expected_values, groups["p"].to_pylist(), groups["count_all"].to_pylist(), strict=True
    ):
        matrix[row_of[value], column] += n
    arrays = [
        pa.array(labels, type=expected.type),
        *(pa.array(matrix[:, c]) for c in range(len(classes))),
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _check_classifier(function: str, model: SqlModel, *, binary: bool = False) -> None:
    if model.model.task != "classification" or (binary and not _is_binary(model.model)):
        which = "binary classification" if binary else "classification"
        raise SqlError(
            f"ML.{function} is only supported for {which} models; model {model.name} is "
            f"{_kind_words(model)}"
        )


def ml_confusion_matrix(
    model: SqlModel, table: pa.Table | None, settings: dict[str, Any], extra: list[Any]
) -> pa.Table:
    """``ML.CONFUSION_MATRIX``: ``expected_label`` (the input label column's type), then one
    INT64 column per class of the model in ascending order, named by
    :func:`class_column_names`; one row per expected label found in the data, ascending."""
    _check_classifier("CONFUSION_MATRIX", model)
    options = _settings("CONFUSION_MATRIX", model, settings)
    _no_extra("CONFUSION_MATRIX", extra)
    if table is None:
        _no_threshold_without_data("CONFUSION_MATRIX", model, options)
        rows = _stored(model, "confusion_matrix", "CONFUSION_MATRIX")
        schema = _confusion_schema(model.model, _label_type(model.model))
        return pa.Table.from_pylist(rows, schema=schema)
    labelled = _labelled(model, "CONFUSION_MATRIX", table)
    return _confusion_rows(model, labelled, options.get("threshold", 0.5))


# --------------------------------------------------------------------------- ROC curve


def _roc_table(truth_positive: np.ndarray[Any, Any], p: FloatArray, cuts: FloatArray) -> pa.Table:
    """Counts at each threshold in ``cuts``; a row is predicted positive when ``p > cut``."""
    positives = np.sort(p[truth_positive])
    negatives = np.sort(p[~truth_positive])
    tp = positives.size - np.searchsorted(positives, cuts, side="right")
    fp = negatives.size - np.searchsorted(negatives, cuts, side="right")
    fn = positives.size - tp
    tn = negatives.size - fp
    recall = np.divide(tp, positives.size, out=np.full(cuts.size, np.nan), where=positives.size > 0)
    fpr = np.divide(fp, negatives.size, out=np.full(cuts.size, np.nan), where=negatives.size > 0)
    arrays = [
        pa.array(cuts, pa.float64()),
        pa.array(recall, pa.float64(), from_pandas=True),
        pa.array(fpr, pa.float64(), from_pandas=True),
        *(pa.array(x.astype(np.int64)) for x in (tp, fp, tn, fn)),
    ]
    return pa.Table.from_arrays(arrays, schema=ROC_SCHEMA)


def default_thresholds(p: FloatArray) -> FloatArray:
    """The 0th..100th percentiles of ``p``, distinct, highest first."""
    if p.size == 0:
        return np.empty(0)
    cuts = np.unique(np.quantile(p, np.linspace(0.0, 1.0, ROC_DEFAULT_PERCENTILES)))
    result: FloatArray = cuts[::-1].copy()
    return result


def _thresholds_argument(extra: list[Any]) -> FloatArray | None:
    if not extra:
        return None
    if len(extra) > 1:
        raise SqlError(
            "ML.ROC_CURVE takes one array of thresholds after the input, e.g. "
            f"GENERATE_ARRAY(0.4, 0.6, 0.01); got {len(extra)} arguments"
        )
    values = extra[0]
    if isinstance(values, pa.Array | pa.ChunkedArray):
        values = values.to_pylist()
    if not isinstance(values, list | tuple | np.ndarray):
        raise SqlError(
            "ML.ROC_CURVE: the thresholds must be an ARRAY<FLOAT64>, e.g. GENERATE_ARRAY(0.4, "
            f"0.6, 0.01); got {values!r}"
        )
    cuts: list[float] = []
    for value in values:
        ok = isinstance(value, int | float | np.number) and not isinstance(value, bool)
        if not ok or math.isnan(float(value)):
            raise SqlError(
                f"ML.ROC_CURVE: every threshold must be a number; got {value!r} in the array"
            )
        cuts.append(float(value))
    return np.asarray(cuts, dtype=np.float64)


def _roc_rows(model: SqlModel, table: pa.Table, cuts: FloatArray | None) -> pa.Table:
    inner = model.model
    assert inner.label is not None
    predictions = _model_predict(model, "ROC_CURVE", table)
    p = _positive_probability(inner, predictions)
    classes = _classes(inner)
    truth = _truth(table, inner.label)
    try:
        positive = np.asarray(truth == np.asarray([classes[1]], dtype=truth.dtype)[0])
    except (TypeError, ValueError):
        positive = np.asarray([t == classes[1] for t in truth.tolist()])
    return _roc_table(positive, p, default_thresholds(p) if cuts is None else cuts)


def ml_roc_curve(
    model: SqlModel, table: pa.Table | None, settings: dict[str, Any], extra: list[Any]
) -> pa.Table:
    """``ML.ROC_CURVE``: threshold, recall, false_positive_rate (FLOAT64), true_positives,
    false_positives, true_negatives, false_negatives (INT64), one row per threshold: those given
    (``extra[0]``, in their order), else :func:`default_thresholds` of the predictions."""
    _check_classifier("ROC_CURVE", model, binary=True)
    _settings("ROC_CURVE", model, settings)
    cuts = _thresholds_argument(extra)
    if table is None:
        if cuts is not None:
            raise SqlError(
                "ML.ROC_CURVE with a thresholds array needs input data: ML.ROC_CURVE(MODEL "
                f"`{model.name}`, TABLE `dataset.table`, GENERATE_ARRAY(...))"
            )
        rows = _stored(model, "roc_curve", "ROC_CURVE")
        return pa.Table.from_pylist(rows, schema=ROC_SCHEMA)
    return _roc_rows(model, _labelled(model, "ROC_CURVE", table), cuts)


# --------------------------------------------------------------------------- training info


def ml_training_info(
    model: SqlModel, table: pa.Table | None, settings: dict[str, Any], extra: list[Any]
) -> pa.Table:
    """``ML.TRAINING_INFO``: training_run, iteration, loss, eval_loss, learning_rate,
    duration_ms, one row per iteration (ascending), from the trainer's ``training_info_``.
    K-means adds ``cluster_info`` (``ARRAY<STRUCT<centroid_id, cluster_radius,
    cluster_size>>``), filled on the last iteration (the clusters of the final model)."""
    _needs_no_table("TRAINING_INFO", table)
    _settings("TRAINING_INFO", model, settings)
    _no_extra("TRAINING_INFO", extra)
    infos = list(getattr(model.model.trainer, "training_info_", []) or [])
    columns: dict[str, Any] = {
        "training_run": [0] * len(infos),
        "iteration": [int(i.iteration) for i in infos],
        "loss": [_number(i.loss) for i in infos],
        "eval_loss": [_number(i.eval_loss) for i in infos],
        "learning_rate": [_number(i.learning_rate) for i in infos],
        "duration_ms": [int(i.duration_ms) for i in infos],
    }
    schema = TRAINING_INFO_SCHEMA
    if model.model.task == "clustering":
        clusters = model.info.get("cluster_info")
        if clusters is None:
            clusters = (model.model.info.get("sql") or {}).get("cluster_info")
        cells: list[Any] = [None] * len(infos)
        if infos and clusters is not None:
            cells[-1] = clusters
        columns["cluster_info"] = cells
        schema = schema.append(pa.field("cluster_info", CLUSTER_INFO_TYPE))
    return pa.table(columns, schema=schema)


# --------------------------------------------------------------------------- feature info


def ml_feature_info(
    model: SqlModel, table: pa.Table | None, settings: dict[str, Any], extra: list[Any]
) -> pa.Table:
    """``ML.FEATURE_INFO``: input, min, max, mean, median, stddev (FLOAT64, NULL for
    non-numeric inputs), category_count (INT64, NULL for non-categorical), null_count (INT64),
    dimension (INT64, NULL but for ARRAY<STRUCT> inputs), computed at training time."""
    _needs_no_table("FEATURE_INFO", table)
    _settings("FEATURE_INFO", model, settings)
    _no_extra("FEATURE_INFO", extra)
    rows = _stored(model, "feature_info", "FEATURE_INFO")
    return pa.Table.from_pylist(rows, schema=FEATURE_INFO_SCHEMA)


def _is_numeric(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


def _is_categorical(t: pa.DataType) -> bool:
    # BigQuery ML one-hot encodes BOOL, STRING, BYTES, DATE, DATETIME and TIME columns
    return bool(
        pa.types.is_boolean(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_date(t)
        or pa.types.is_time(t)
        or (pa.types.is_timestamp(t) and t.tz is None)
        or pa.types.is_dictionary(t)
    )


def feature_info_rows(table: pa.Table, label: str | None) -> list[dict[str, Any]]:
    """``ML.FEATURE_INFO``'s rows for every column of ``table`` but ``label``.

    ``stddev`` is the sample standard deviation (BigQuery's ``STDDEV``), ``median`` exact;
    ``dimension`` of an ``ARRAY<STRUCT>`` column is its longest array."""
    rows: list[dict[str, Any]] = []
    for field in table.schema:
        if field.name == label:
            continue
        column = table[field.name]
        row: dict[str, Any] = {
            "input": field.name,
            "min": None,
            "max": None,
            "mean": None,
            "median": None,
            "stddev": None,
            "category_count": None,
            "null_count": int(column.null_count),
            "dimension": None,
        }
        t = field.type
        if _is_numeric(t):
            values = column.cast(pa.float64()).drop_null().to_numpy()
            values = values[~np.isnan(values)]
            if values.size:
                row |= {
                    "min": float(values.min()),
                    "max": float(values.max()),
                    "mean": float(values.mean()),
                    "median": float(np.median(values)),
                    "stddev": float(values.std(ddof=1)) if values.size > 1 else None,
                }
        elif _is_categorical(t):
            row["category_count"] = int(pc.count_distinct(column, mode="only_valid").as_py())
        elif (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_struct(
            t.value_type
        ):
            lengths = pc.list_value_length(column).drop_null()
            row["dimension"] = int(pc.max(lengths).as_py() or 0) if len(lengths) else 0
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- at CREATE MODEL


def _cluster_info(model: Model, table: pa.Table) -> list[dict[str, Any]]:
    predictions = model.predict(table)
    ids = predictions["centroid_id"].to_numpy() - 1
    nearest = pc.list_element(predictions["nearest_centroids_distance"], 0)
    distance = pc.struct_field(nearest, "distance").to_numpy()
    k = int(np.asarray(model.trainer.centroids_).shape[0])  # type: ignore[attr-defined]
    sizes = np.bincount(ids, minlength=k)
    radius = np.bincount(ids, weights=distance, minlength=k)
    return [
        {
            "centroid_id": i + 1,
            "cluster_radius": float(radius[i] / sizes[i]) if sizes[i] else None,
            "cluster_size": int(sizes[i]),
        }
        for i in range(k)
    ]


def training_summary(
    model: Model, model_type: str, train: pa.Table, eval: pa.Table | None
) -> dict[str, Any]:
    """What the ``ML.*`` functions return without input rows, computed once at CREATE MODEL.

    ``train`` and ``eval`` are the tables the model was fit on (after TRANSFORM, label
    included). Returns a JSON-able dict: ``feature_info`` (over ``train``), ``evaluation`` (one
    ML.EVALUATE row on ``eval``, or on ``train`` when there is no evaluation split, as BigQuery
    does), and for classifiers ``confusion_matrix``, for binary ones ``roc_curve`` (default
    thresholds), for k-means ``cluster_info`` (ML.TRAINING_INFO's last row).
    """
    from kiln.sql._model import SqlModel

    sql = SqlModel(f"<{model_type}>", 0, model, {"model_type": model_type})
    data = eval if eval is not None and eval.num_rows else train
    summary: dict[str, Any] = {"feature_info": feature_info_rows(train, model.label)}
    labelled = _labelled(sql, "EVALUATE", data)
    summary["evaluation"] = _evaluate_rows(sql, labelled, 0.5)
    if model.task == "classification":
        matrix = _confusion_rows(sql, labelled, 0.5)
        summary["confusion_matrix"] = matrix.cast(
            _confusion_schema(model, _label_type(model))
        ).to_pylist()
        if _is_binary(model):
            summary["roc_curve"] = [
                {k: _number(v) if isinstance(v, float) else v for k, v in row.items()}
                for row in _roc_rows(sql, labelled, None).to_pylist()
            ]
    if model.task == "clustering":
        summary["cluster_info"] = _cluster_info(model, train)
    return summary


def ml_trial_info(
    model: SqlModel, table: pa.Table | None, settings: dict[str, Any], extra: list[Any]
) -> pa.Table:
    """``ML.TRIAL_INFO``: one row per hyperparameter-tuning trial (trial_id, hyperparameters,
    hparam_tuning_evaluation_metrics, training_loss, eval_loss, status, error_message,
    is_optimal), as CREATE MODEL stored them."""
    from kiln.sql._train import TRIAL_INFO_SCHEMA

    _needs_no_table("TRIAL_INFO", table)
    _settings("TRIAL_INFO", model, settings)
    _no_extra("TRIAL_INFO", extra)
    trials = model.info.get("trials")
    if trials is None:
        raise SqlError(
            f"ML.TRIAL_INFO: model {model.name} was not trained with hyperparameter tuning; "
            "create it with OPTIONS(num_trials=N, ...) greater than 1"
        )
    return pa.Table.from_pylist(list(trials), schema=TRIAL_INFO_SCHEMA)


FUNCTIONS: dict[str, TableFunction] = {
    "PREDICT": ml_predict,
    "EVALUATE": ml_evaluate,
    "CONFUSION_MATRIX": ml_confusion_matrix,
    "ROC_CURVE": ml_roc_curve,
    "TRAINING_INFO": ml_training_info,
    "FEATURE_INFO": ml_feature_info,
    "TRIAL_INFO": ml_trial_info,
}
"""BigQuery's function names (after ``ML.``) -> the table functions."""
