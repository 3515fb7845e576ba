"""The ``ML.*`` table functions that look inside a model: ``ML.WEIGHTS``, ``ML.CENTROIDS``,
``ML.EXPLAIN_PREDICT``, ``ML.GLOBAL_EXPLAIN``, ``ML.DETECT_ANOMALIES``,
``ML.PRINCIPAL_COMPONENTS`` and ``ML.PRINCIPAL_COMPONENT_INFO``, with BigQuery ML's output columns
(names, order and types).

Every function is ``fn(model, table, settings, extra) -> pa.Table``: ``table`` the input rows
(None when the call has none), ``settings`` the ``STRUCT(...)`` options (lower-cased names),
``extra`` any other constant argument (none of these functions takes one). The settings each
function takes are declared once, in :data:`SETTINGS`; anything else is a :class:`SqlError`.

Scales. Kiln's automatic preprocessing z-scores numerical columns (``standard_scale``) before a
linear model or k-means sees them, as BigQuery ML does. ``standardize => FALSE`` (the default)
reports weights and centroids on the raw input scale, undoing that scaling (a weight ``w`` on
``(x - mean) / std`` is ``w / std`` on ``x``; the intercept takes ``- sum(w * mean / std)``);
``standardize => TRUE`` reports them on the z-scored features. One-hot categories are not
scaled in either case. A feature that no ``standard_scale`` produced (a TRANSFORM of the user's)
is reported as the model sees it in both modes.

Attributions (``ML.EXPLAIN_PREDICT``, ``ML.GLOBAL_EXPLAIN``) are per input column: a one-hot
block is summed back to its column, a cross ``a*b`` split equally between its columns.

- linear_reg, logistic_reg: exact. Attribution = weight x z-scored value (so ``w x (x - mean)``
  on the raw scale, the training mean the baseline; a category's attribution is its weight);
  ``baseline_prediction_value`` is the intercept; ``prediction_value`` the raw score: the
  regression value, or the log-odds (softmax score for more than two classes) of the
  predicted class.
- boosted trees and random forests: exact tree SHAP (LightGBM's ``pred_contrib``), in the same
  raw-score space; the baseline is the trees' expected value over the training data.
- every other model (dnn, ensembles): Kiln's sampling Shapley estimate of the predicted
  class's probability (or the regression value), the input rows themselves the background
  (:func:`kiln.model.explain`).

Additivity holds in every case: ``baseline + sum(all attributions) = prediction_value``;
``approximation_error`` is what is left, 0 up to rounding.

Anomalies (``ML.DETECT_ANOMALIES``). k-means: a row's distance to each centroid (in the model's
distance type, standardised space) divided by that centroid's scale, the root mean square
distance of its training rows; ``normalized_distance`` is the smallest, ``centroid_id`` the
centroid it belongs to. PCA: ``mean_squared_error`` of the row's reconstruction from the kept
components, in the model's scaled feature space. A row is an anomaly when its score is above the
``1 - contamination`` quantile of the training rows' scores, which :func:`anomaly_summary`
computes at training (stored as ``model.info["sql"]["anomaly"]``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from kiln.errors import DataError, KilnError, SqlError
from kiln.model import Model
from kiln.model._explain import _aggregation, explain
from kiln.sql._model import SqlModel
from kiln.transform._ops import MISSING_NAME, StandardScale

__all__ = [
    "FUNCTIONS",
    "SETTINGS",
    "anomaly_summary",
    "global_explain_summary",
    "ml_centroids",
    "ml_detect_anomalies",
    "ml_explain_predict",
    "ml_global_explain",
    "ml_principal_component_info",
    "ml_principal_components",
    "ml_weights",
]

Array = np.ndarray[Any, np.dtype[Any]]

CATEGORY_WEIGHTS = pa.list_(pa.struct([("category", pa.string()), ("weight", pa.float64())]))
CATEGORY_VALUES = pa.list_(pa.struct([("category", pa.string()), ("value", pa.float64())]))
ATTRIBUTIONS = pa.list_(pa.struct([("feature", pa.string()), ("attribution", pa.float64())]))
INTERCEPT = "__INTERCEPT__"

# setting -> (accepted Python types, what to say it must be); one table for every function
_BOOL = ((bool,), "TRUE or FALSE")
_INT = ((int,), "an INT64")
_FLOAT = ((int, float), "a FLOAT64")
SETTINGS: dict[str, dict[str, tuple[tuple[type, ...], str]]] = {
    "WEIGHTS": {"standardize": _BOOL},
    "CENTROIDS": {"standardize": _BOOL},
    "EXPLAIN_PREDICT": {
        "top_k_features": _INT,
        "threshold": _FLOAT,
        # accepted for compatibility; Kiln's attributions are exact or sampled, never these
        "integrated_gradients_num_steps": _INT,
        "num_integral_steps": _INT,
        "approx_feature_contrib": _BOOL,
    },
    "GLOBAL_EXPLAIN": {"class_level_explain": _BOOL},
    "DETECT_ANOMALIES": {"contamination": _FLOAT},
    "PRINCIPAL_COMPONENTS": {},
    "PRINCIPAL_COMPONENT_INFO": {},
}
DEFAULT_TOP_K_FEATURES = 5
# training rows used for the stored summaries (a seeded sample of larger tables)
GLOBAL_EXPLAIN_ROWS = 10_000
GLOBAL_EXPLAIN_SAMPLED_ROWS = 500  # models explained by sampling: rows x 64 x columns predictions
ANOMALY_SCORES_KEPT = 10_001  # all training scores up to this many, else this many quantiles

_LINEAR = ("linear_reg", "logistic_reg")


# ------------------------------------------------------------------------------------------------
# checks shared by every function


def _check(
    function: str,
    model: SqlModel,
    settings: dict[str, Any],
    extra: list[Any],
    *,
    types: tuple[str, ...] | None = None,
    kinds: str = "",
) -> dict[str, Any]:
    name = f"ML.{function}"
    if types is not None and model.model_type not in types:
        raise SqlError(
            f"{name} is only supported for {kinds} models; model {model.name} is a "
            f"{model.model_type} model"
        )
    if extra:
        raise SqlError(f"{name} takes no argument besides the model, the data and a STRUCT")
    allowed = SETTINGS[function]
    out: dict[str, Any] = {}
    for key, value in (settings or {}).items():
        key = key.lower()
        if key not in allowed:
            takes = ", ".join(allowed) or "no setting"
            raise SqlError(f"{name} does not take setting {key!r}; it takes: {takes}")
        accepted, must = allowed[key]
        wrong_bool = isinstance(value, bool) and bool not in accepted
        if value is None or wrong_bool or not isinstance(value, accepted):
            raise SqlError(f"{name}: setting {key} must be {must}, got {value!r}")
        out[key] = value
    return out


def _input(function: str, model: SqlModel, table: pa.Table | None) -> pa.Table:
    if table is None:
        raise SqlError(
            f"ML.{function} needs input data: pass TABLE `dataset.table` or a (SELECT ...) query "
            f"after MODEL {model.name}"
        )
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    try:
        model.model._validate(table)
    except DataError as e:
        raise SqlError(f"ML.{function} with model {model.name}: {e}") from e
    return table


def _passthrough(out: dict[str, Any], table: pa.Table, function: str) -> pa.Table:
    clash = [c for c in table.column_names if c in out]
    if clash:
        raise SqlError(
            f"ML.{function}: input column(s) {', '.join(map(repr, clash))} have the name of an "
            "output column; rename them in the query (SELECT ... AS ...)"
        )
    for c in table.column_names:
        out[c] = table[c]
    return pa.table(out)


def _trainer(model: SqlModel) -> Any:
    """The fitted trainer, its learned attributes (``coef_``, ``centroids_``...) looked up."""
    return model.model.trainer


# ------------------------------------------------------------------------------------------------
# features: where each comes from and how it was scaled


class _Features:
    """The model's transformed features: names, source columns, which are one-hot categories
    (and of which value), and the standard scaling (mean, std) of the z-scored numerical ones."""

    def __init__(self, model: Model, sample: pa.Table | None = None) -> None:
        if sample is None:
            sample = _empty_input(model)
        fm = model.transform.transform(sample)
        self.names = fm.names
        self.sources = fm.source
        self.category: list[str | bool | None] = []  # False: not a category
        for name, source in zip(fm.names, fm.source, strict=True):
            prefix = f"{source}="
            if name.startswith(prefix):
                value = name[len(prefix) :]
                self.category.append(None if value == MISSING_NAME else value)
            else:
                self.category.append(False)
        scalers: dict[str, tuple[float, float]] = {}
        for op, state in zip(model.transform.ops, model.transform.states, strict=True):
            if isinstance(op, StandardScale):
                scalers[op.column] = (float(state["mean"]), float(state["scale"]))
            elif op.rewrites:
                for c in op.inputs():
                    scalers.pop(c, None)  # rewritten after scaling: no longer z = (x - m) / s
        n = len(fm.names)
        self.mean = np.zeros(n)
        self.scale = np.ones(n)
        for j, (name, source) in enumerate(zip(fm.names, fm.source, strict=True)):
            if name == source and source in scalers:
                self.mean[j], self.scale[j] = scalers[source]

    def is_category(self, j: int) -> bool:
        return self.category[j] is not False

    def groups(self) -> list[tuple[str, list[int]]]:
        """(output name, feature indices): a numerical feature alone, a column's categories
        together, in feature order."""
        out: list[tuple[str, list[int]]] = []
        seen: dict[str, int] = {}
        for j, (name, source) in enumerate(zip(self.names, self.sources, strict=True)):
            if self.is_category(j):
                if source in seen:
                    out[seen[source]][1].append(j)
                    continue
                seen[source] = len(out)
                out.append((source, [j]))
            else:
                out.append((name, [j]))
        return out


def _empty_input(model: Model) -> pa.Table:
    """One row of nulls with the model's input signature: enough for the feature metadata."""
    columns = {}
    for c in model.signature:
        try:
            t = pa.type_for_alias(c["type"])
        except (ValueError, KeyError):
            t = pa.string() if "string" in c["type"] else pa.float64()
        columns[c["name"]] = pa.nulls(1, type=t)
    return pa.table(columns)


def _features(model: Model) -> _Features:
    try:
        return _Features(model)
    except (KilnError, pa.ArrowException, ValueError, TypeError):
        return _Features(model, _null_safe_input(model))


def _null_safe_input(model: Model) -> pa.Table:
    """A row that every transform accepts (a column whose type has no alias: as a string)."""
    return pa.table({c["name"]: pa.array(["0"]) for c in model.signature})


# ------------------------------------------------------------------------------------------------
# ML.WEIGHTS


def ml_weights(
    model: SqlModel, table: pa.Table | None, settings: dict[str, Any], extra: list[Any]
) -> pa.Table:
    """``processed_input``, ``weight``, ``category_weights`` (and ``class_label`` for a
    multiclass logistic_reg: one row per class and input), the ``__INTERCEPT__`` row last."""
    s = _check(
        "WEIGHTS", model, settings, extra, types=_LINEAR, kinds="linear and logistic regression"
    )
    standardize = bool(s.get("standardize", False))
    trainer: Any = model.model.trainer
    W = np.asarray(trainer.coef_, dtype=np.float64)
    W = W[:, None] if W.ndim == 1 else W
    b = np.atleast_1d(np.asarray(trainer.intercept_, dtype=np.float64))
    feats = _features(model.model)
    if not standardize:
        W = W / feats.scale[:, None]  # per unit of the raw column
        b = b - feats.mean @ W  # the z-scores' zero is the training mean
    multiclass = W.shape[1] > 1
    labels = [str(v) for v in trainer.classes_] if multiclass else [None]
    rows: dict[str, list[Any]] = {"processed_input": [], "weight": [], "category_weights": []}
    if multiclass:
        rows["class_label"] = []

    def add(name: str, weight: float | None, categories: list[dict[str, Any]], c: int) -> None:
        rows["processed_input"].append(name)
        rows["weight"].append(weight)
        rows["category_weights"].append(categories)
        if multiclass:
            rows["class_label"].append(labels[c])

    for name, index in feats.groups():
        for c in range(W.shape[1]):
            if feats.is_category(index[0]):
                cats = [{"category": feats.category[j], "weight": float(W[j, c])} for j in index]
                add(name, None, cats, c)
            else:
                add(name, float(W[index[0], c]), [], c)
    if trainer.fit_intercept:
        for c in range(W.shape[1]):
            add(INTERCEPT, float(b[c]), [], c)
    schema = [
        ("processed_input", pa.string()),
        ("weight", pa.float64()),
        ("category_weights", CATEGORY_WEIGHTS),
    ]
    if multiclass:
        schema.append(("class_label", pa.string()))
    return pa.table(rows, schema=pa.schema(schema))


# ------------------------------------------------------------------------------------------------
# ML.CENTROIDS, ML.PRINCIPAL_COMPONENTS, ML.PRINCIPAL_COMPONENT_INFO


def _by_feature(
    id_name: str, ids: list[int], matrix: Array, feats: _Features, *, geography: bool
) -> pa.Table:
    """One row per (id, input): numerical_value or categorical_value (rows of ``matrix`` are
    the ids', columns the features)."""
    rows: dict[str, list[Any]] = {
        id_name: [],
        "feature": [],
        "numerical_value": [],
        "categorical_value": [],
    }
    for i, ident in enumerate(ids):
        for name, index in feats.groups():
            rows[id_name].append(ident)
            rows["feature"].append(name)
            if feats.is_category(index[0]):
                rows["numerical_value"].append(None)
                rows["categorical_value"].append(
                    [{"category": feats.category[j], "value": float(matrix[i, j])} for j in index]
                )
            else:
                rows["numerical_value"].append(float(matrix[i, index[0]]))
                rows["categorical_value"].append([])
    schema = [
        (id_name, pa.int64()),
        ("feature", pa.string()),
        ("numerical_value", pa.float64()),
        ("categorical_value", CATEGORY_VALUES),
    ]
    if geography:
        rows["geography_value"] = [None] * len(rows[id_name])
        schema.append(("geography_value", pa.string()))
    return pa.table(rows, schema=pa.schema(schema))


def ml_centroids(
    model: SqlModel, table: pa.Table | None, settings: dict[str, Any], extra: list[Any]
) -> pa.Table:
    """``centroid_id``, ``feature``, ``numerical_value``, ``categorical_value`` (a category's
    share of the centroid), ``geography_value`` (always NULL: Kiln has no GEOGRAPHY)."""
    s = _check("CENTROIDS", model, settings, extra, types=("kmeans",), kinds="k-means")
    standardize = bool(s.get("standardize", False))
    trainer: Any = model.model.trainer
    centroids = np.asarray(trainer.centroids_, dtype=np.float64)  # in the features' units
    feats = _features(model.model)
    if not standardize:
        centroids = centroids * feats.scale + feats.mean
    ids = list(range(1, centroids.shape[0] + 1))
    return _by_feature("centroid_id", ids, centroids, feats, geography=True)


def ml_principal_components(
    model: SqlModel, table: pa.Table | None, settings: dict[str, Any], extra: list[Any]
) -> pa.Table:
    """``principal_component_id`` (from 1), ``feature``, ``numerical_value`` (the loading),
    ``categorical_value`` (a loading per category)."""
    _check("PRINCIPAL_COMPONENTS", model, settings, extra, types=("pca",), kinds="PCA")
    components = np.asarray(_trainer(model).components_, dtype=np.float64)
    ids = list(range(1, components.shape[0] + 1))
    feats = _features(model.model)
    return _by_feature("principal_component_id", ids, components, feats, geography=False)


def ml_principal_component_info(
    model: SqlModel, table: pa.Table | None, settings: dict[str, Any], extra: list[Any]
) -> pa.Table:
    """``principal_component_id``, ``eigenvalue``, ``explained_variance_ratio``,
    ``cumulative_explained_variance_ratio``."""
    _check("PRINCIPAL_COMPONENT_INFO", model, settings, extra, types=("pca",), kinds="PCA")
    trainer: Any = model.model.trainer
    eigen = np.asarray(trainer.explained_variance_, dtype=np.float64)
    ratio = np.asarray(trainer.explained_variance_ratio_, dtype=np.float64)
    return pa.table(
        {
            "principal_component_id": pa.array(np.arange(1, len(eigen) + 1), pa.int64()),
            "eigenvalue": pa.array(eigen, pa.float64()),
            "explained_variance_ratio": pa.array(ratio, pa.float64()),
            "cumulative_explained_variance_ratio": pa.array(np.cumsum(ratio), pa.float64()),
        }
    )


# ------------------------------------------------------------------------------------------------
# attributions


class _Explained:
    """Per row: attributions per input column, base value, explained value; for classifiers
    the explained (predicted) class and every class's probability."""

    def __init__(
        self,
        phi: Array,
        base: Array,
        value: Array,
        cls: Array | None = None,
        proba: Array | None = None,
    ) -> None:
        self.phi, self.base, self.value, self.cls, self.proba = phi, base, value, cls, proba


def _predicted_class(proba: Array, threshold: float | None) -> Array:
    if proba.shape[1] == 2 and threshold is not None:
        return (proba[:, 1] > threshold).astype(np.int64)
    result: Array = proba.argmax(axis=1)
    return result


def _attributions(
    model: Model, table: pa.Table, *, threshold: float | None = None, per_class: bool = False
) -> _Explained | list[_Explained]:
    """Attributions of ``table``'s rows toward the predicted class (or, with ``per_class``, one
    :class:`_Explained` per class of a classifier: toward that class, for every row)."""
    inputs = [c["name"] for c in model.signature]
    trainer = model.trainer
    classifier = model.task == "classification"
    fm = model.transform.transform(table)
    n = table.num_rows
    to_inputs = _aggregation(fm.source, inputs)
    proba = (
        np.asarray(trainer.predict_proba(fm.X), dtype=np.float64)  # type: ignore[attr-defined]
        if classifier
        else None
    )
    cls = _predicted_class(proba, threshold) if proba is not None else None
    linear = trainer.model_type in _LINEAR
    if linear or hasattr(trainer, "contributions"):
        if linear:
            W = np.asarray(trainer.coef_, dtype=np.float64)  # type: ignore[attr-defined]
            W = W[:, None] if W.ndim == 1 else W
            b = np.atleast_1d(np.asarray(trainer.intercept_, dtype=np.float64))  # type: ignore[attr-defined]
            # rows x outputs x (features + 1): each feature's part, then the intercept
            parts = np.concatenate(
                [fm.X[:, None, :] * W.T[None, :, :], np.broadcast_to(b, (n, len(b)))[:, :, None]],
                axis=2,
            )
        else:
            parts = np.asarray(trainer.contributions(fm.X), dtype=np.float64)  # type: ignore[attr-defined]
            parts = parts[:, None, :] if parts.ndim == 2 else parts
        if parts.shape[1] == 1 and classifier:  # binary: class 1's log-odds; class 0's: minus
            parts = np.concatenate([-parts, parts], axis=1)

        def toward(c: Array) -> _Explained:
            chosen = parts[np.arange(n), c, :]
            return _Explained(
                chosen[:, :-1] @ to_inputs, chosen[:, -1].copy(), chosen.sum(axis=1), cls, proba
            )

        if per_class:
            return [toward(np.full(n, k)) for k in range(parts.shape[1])]
        return toward(cls if cls is not None else np.zeros(n, dtype=np.int64))
    # every other family: Kiln's sampling Shapley values (the predicted class's probability)
    if n < 2:
        raise SqlError(
            f"explaining a {trainer.model_type} model needs at least 2 input rows (they are the "
            "background the attributions are measured against); pass more rows"
        )
    table = table.select(inputs)
    result = explain(model, table)
    phi = np.column_stack([result[c].to_numpy() for c in inputs])
    base = result["baseline_prediction_value"].to_numpy().copy()
    value = result["prediction_value"].to_numpy().copy()
    if proba is not None and cls is not None:
        chosen = proba.argmax(axis=1)
        flip = chosen != cls  # a binary threshold chose the other class: p(other) = 1 - p
        phi[flip] = -phi[flip]
        base[flip] = 1.0 - base[flip]
        value[flip] = 1.0 - value[flip]
    if per_class and proba is not None:
        # the sampling estimate explains one class per row: each class is explained on the
        # rows predicted as it
        return [
            _Explained(phi[cls == k], base[cls == k], value[cls == k], cls, proba)
            for k in range(proba.shape[1])
        ]
    return _Explained(phi, base, value, cls, proba)


# ------------------------------------------------------------------------------------------------
# ML.EXPLAIN_PREDICT


def ml_explain_predict(
    model: SqlModel, table: pa.Table | None, settings: dict[str, Any], extra: list[Any]
) -> pa.Table:
    """ML.PREDICT's label column (and ``probability`` for classifiers), then
    ``top_feature_attributions``, ``baseline_prediction_value``, ``prediction_value``,
    ``approximation_error``, then the input columns."""
    supervised = model.model.task in ("regression", "classification")
    s = _check(
        "EXPLAIN_PREDICT",
        model,
        settings,
        extra,
        types=(model.model_type,) if supervised else (),
        kinds="regression and classification",
    )
    top_k = int(s.get("top_k_features", DEFAULT_TOP_K_FEATURES))
    if top_k < 1:
        raise SqlError(f"ML.EXPLAIN_PREDICT: top_k_features must be at least 1, got {top_k}")
    threshold = s.get("threshold")
    if threshold is not None:
        threshold = float(threshold)
        binary = model.model.task == "classification" and len(_trainer(model).classes_) == 2
        if not binary:
            raise SqlError(
                "ML.EXPLAIN_PREDICT: threshold applies to binary classification models only; "
                f"model {model.name} is not one"
            )
        if not 0.0 <= threshold <= 1.0:
            raise SqlError(f"ML.EXPLAIN_PREDICT: threshold must be in [0, 1], got {threshold}")
    table = _input("EXPLAIN_PREDICT", model, table)
    m: Model = model.model
    ex = _attributions(m, table, threshold=threshold)
    assert isinstance(ex, _Explained)
    inputs = [c["name"] for c in m.signature]
    label = m.prediction_column
    out: dict[str, Any] = {}
    if ex.cls is not None and ex.proba is not None:
        classes = m._class_labels
        out[label] = classes.take(pa.array(ex.cls))
        out["probability"] = pa.array(ex.proba[np.arange(len(ex.cls)), ex.cls], pa.float64())
    else:
        out[label] = pa.array(np.asarray(m.trainer.predict(m.transform.transform(table).X), float))
    out["top_feature_attributions"] = _top_attributions(ex.phi, inputs, top_k)
    out["baseline_prediction_value"] = pa.array(ex.base, pa.float64())
    out["prediction_value"] = pa.array(ex.value, pa.float64())
    error = np.abs(ex.value - ex.base - ex.phi.sum(axis=1))
    out["approximation_error"] = pa.array(error, pa.float64())
    return _passthrough(out, table, "EXPLAIN_PREDICT")


def _top_attributions(phi: Array, inputs: list[str], top_k: int) -> pa.Array:
    """Per row, the ``top_k`` largest attributions by absolute value (ties: input order)."""
    n, d = phi.shape
    k = min(top_k, d)
    order = np.argsort(-np.abs(phi), axis=1, kind="stable")[:, :k]
    names = pa.array(inputs, pa.string()).take(pa.array(order.ravel()))
    values = pa.array(np.take_along_axis(phi, order, axis=1).ravel(), pa.float64())
    structs = pa.StructArray.from_arrays([names, values], names=["feature", "attribution"])
    offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, structs).cast(ATTRIBUTIONS)


# ------------------------------------------------------------------------------------------------
# ML.GLOBAL_EXPLAIN


def _sample(table: pa.Table, rows: int) -> pa.Table:
    if table.num_rows <= rows:
        return table
    picked = np.sort(np.random.default_rng(0).choice(table.num_rows, rows, replace=False))
    return table.take(pa.array(picked))


def global_explain_summary(model: Model, model_type: str, train: pa.Table) -> list[dict[str, Any]]:
    """What ``ML.GLOBAL_EXPLAIN`` returns, computed once over the training data (a seeded sample
    of :data:`GLOBAL_EXPLAIN_ROWS` rows when larger): per input column the mean absolute
    attribution toward each row's predicted class (``class_label`` None), and for classifiers
    the same toward each class (``class_label`` that class, as a string). JSON-able rows, sorted
    by attribution, largest first; stored as ``model.info["sql"]["global_explain"]``."""
    if model.task not in ("regression", "classification"):
        raise SqlError(
            f"enable_global_explain applies to regression and classification models, not "
            f"{model_type}"
        )
    linear = model.trainer.model_type in _LINEAR or hasattr(model.trainer, "contributions")
    rows = GLOBAL_EXPLAIN_ROWS if linear else GLOBAL_EXPLAIN_SAMPLED_ROWS
    train = _sample(train, rows)
    inputs = [c["name"] for c in model.signature]
    out: list[dict[str, Any]] = []

    def add(label: str | None, ex: _Explained) -> None:
        mean = np.abs(ex.phi).mean(axis=0) if len(ex.phi) else np.zeros(len(inputs))
        ranked = sorted(zip(inputs, mean.tolist(), strict=True), key=lambda p: -p[1])
        out.extend({"class_label": label, "feature": f, "attribution": a} for f, a in ranked)

    overall = _attributions(model, train)
    assert isinstance(overall, _Explained)
    add(None, overall)
    if model.task == "classification":
        per_class = _attributions(model, train, per_class=True)
        assert isinstance(per_class, list)
        for label, ex in zip(model.trainer.classes_, per_class, strict=True):  # type: ignore[attr-defined]
            add(str(label), ex)
    return out


def ml_global_explain(
    model: SqlModel, table: pa.Table | None, settings: dict[str, Any], extra: list[Any]
) -> pa.Table:
    """``feature``, ``attribution`` (mean absolute attribution over the training data), largest
    first; with ``class_level_explain``: ``class_label`` first, one row per class and input."""
    s = _check("GLOBAL_EXPLAIN", model, settings, extra)
    stored = model.info.get("global_explain")
    if stored is None:
        raise SqlError(
            f"ML.GLOBAL_EXPLAIN needs a model created with OPTIONS(enable_global_explain = TRUE);"
            f" model {model.name} was not: recreate it with that option"
        )
    if table is not None:
        raise SqlError("ML.GLOBAL_EXPLAIN takes no input data: it explains the training data")
    by_class = bool(s.get("class_level_explain", False))
    if by_class and model.model.task != "classification":
        raise SqlError(
            f"ML.GLOBAL_EXPLAIN: class_level_explain applies to classification models; model "
            f"{model.name} is a {model.model_type} model"
        )
    rows = [r for r in stored if (r.get("class_label") is not None) == by_class]
    columns: dict[str, pa.Array] = {}
    if by_class:
        columns["class_label"] = pa.array([r["class_label"] for r in rows], pa.string())
    columns["feature"] = pa.array([r["feature"] for r in rows], pa.string())
    columns["attribution"] = pa.array([float(r["attribution"]) for r in rows], pa.float64())
    return pa.table(columns)


# ------------------------------------------------------------------------------------------------
# ML.DETECT_ANOMALIES


def _kmeans_distances(model: Model, table: pa.Table) -> Array:
    X = model.transform.transform(table).X
    return np.asarray(model.trainer.transform(X), dtype=np.float64)  # type: ignore[attr-defined]


def _pca_errors(model: Model, table: pa.Table) -> Array:
    trainer: Any = model.trainer
    X = model.transform.transform(table).X
    Z = (X - trainer.means_) / trainer.scales_
    C = np.asarray(trainer.components_, dtype=np.float64)
    residual = Z - (Z @ C.T) @ C
    result: Array = (residual * residual).mean(axis=1)
    return result


def _kmeans_scores(distances: Array, scales: Array) -> tuple[Array, Array]:
    normalized = distances / scales
    centroid = normalized.argmin(axis=1)
    return normalized[np.arange(len(centroid)), centroid], centroid


def anomaly_summary(model: Model, model_type: str, train: pa.Table) -> dict[str, Any]:
    """What ``ML.DETECT_ANOMALIES`` needs from the training data, JSON-able (stored as
    ``model.info["sql"]["anomaly"]``): the sorted training scores (or, past
    :data:`ANOMALY_SCORES_KEPT` rows, that many evenly spaced quantiles of them), and for
    k-means each centroid's scale."""
    mt = model.trainer.model_type
    if mt == "kmeans":
        distances = _kmeans_distances(model, train)
        nearest = distances.argmin(axis=1)
        k = distances.shape[1]
        own = distances[np.arange(len(nearest)), nearest]
        overall = float(np.sqrt(np.mean(own**2))) or 1.0
        scales = np.array(
            [
                float(np.sqrt(np.mean(own[nearest == c] ** 2))) if (nearest == c).any() else 0.0
                for c in range(k)
            ]
        )
        scales = np.where(scales > 0, scales, overall)
        scores, _ = _kmeans_scores(distances, scales)
        summary: dict[str, Any] = {"scales": scales.tolist()}
    elif mt == "pca":
        scores = _pca_errors(model, train)
        summary = {}
    else:
        raise SqlError(
            f"ML.DETECT_ANOMALIES is only supported for k-means and PCA models, not {model_type}"
        )
    scores = np.sort(scores)
    if len(scores) > ANOMALY_SCORES_KEPT:
        scores = np.quantile(scores, np.linspace(0.0, 1.0, ANOMALY_SCORES_KEPT))
    summary.update({"model_type": mt, "training_rows": int(train.num_rows)})
    summary["scores"] = scores.tolist()
    return summary


def ml_detect_anomalies(
    model: SqlModel, table: pa.Table | None, settings: dict[str, Any], extra: list[Any]
) -> pa.Table:
    """``is_anomaly``, then ``normalized_distance`` and ``centroid_id`` (k-means) or
    ``mean_squared_error`` (PCA), then the input columns."""
    s = _check(
        "DETECT_ANOMALIES", model, settings, extra, types=("kmeans", "pca"), kinds="k-means and PCA"
    )
    if "contamination" not in s:
        raise SqlError(
            f"ML.DETECT_ANOMALIES with {model.model_type} model {model.name} needs "
            "STRUCT(<fraction> AS contamination), a value in [0, 0.5]"
        )
    contamination = float(s["contamination"])
    if not 0.0 <= contamination <= 0.5:
        raise SqlError(
            f"ML.DETECT_ANOMALIES: contamination must be in [0, 0.5], got {contamination}"
        )
    summary = model.info.get("anomaly")
    if summary is None:
        raise SqlError(
            f"model {model.name} holds no training scores for anomaly detection (it was created "
            "before kiln sql stored them); recreate it with CREATE OR REPLACE MODEL"
        )
    if table is None:
        raise SqlError(
            "ML.DETECT_ANOMALIES needs the rows to check: pass TABLE `dataset.table` or a "
            f"(SELECT ...) query after the STRUCT; model {model.name} does not keep its "
            "training rows"
        )
    table = _input("DETECT_ANOMALIES", model, table)
    training = np.asarray(summary["scores"], dtype=np.float64)
    cut = float(np.quantile(training, 1.0 - contamination)) if contamination > 0 else np.inf
    out: dict[str, Any] = {}
    m: Model = model.model
    if model.model_type == "kmeans":
        scores, centroid = _kmeans_scores(
            _kmeans_distances(m, table), np.asarray(summary["scales"], dtype=np.float64)
        )
        out["is_anomaly"] = pa.array(scores > cut, pa.bool_())
        out["normalized_distance"] = pa.array(scores, pa.float64())
        out["centroid_id"] = pa.array(centroid + 1, pa.int64())
    else:
        scores = _pca_errors(m, table)
        out["is_anomaly"] = pa.array(scores > cut, pa.bool_())
        out["mean_squared_error"] = pa.array(scores, pa.float64())
    return _passthrough(out, table, "DETECT_ANOMALIES")


FUNCTIONS: dict[str, Callable[[SqlModel, pa.Table | None, dict[str, Any], list[Any]], pa.Table]] = {
    "WEIGHTS": ml_weights,
    "CENTROIDS": ml_centroids,
    "EXPLAIN_PREDICT": ml_explain_predict,
    "GLOBAL_EXPLAIN": ml_global_explain,
    "DETECT_ANOMALIES": ml_detect_anomalies,
    "PRINCIPAL_COMPONENTS": ml_principal_components,
    "PRINCIPAL_COMPONENT_INFO": ml_principal_component_info,
}
