"""Per-prediction explanations: how much each input column moved one prediction away from a base
value (BigQuery ML's ``ML.EXPLAIN_PREDICT``, as one column per input column).

``explain(model, table)`` returns, per row of ``table``:

- ``predicted_<label>`` (classifiers only): the class whose score is explained, the predicted one;
- one float64 column per input column of the model (its signature, in order), named as that
  column: its attribution. A column the model does not use (say, dropped as constant) gets 0;
- ``baseline_prediction_value``: the base value the attributions start from;
- ``prediction_value``: the value explained. Attributions add up to it:
  ``baseline_prediction_value + sum(attributions) == prediction_value``.

Two estimators, chosen by the model's family:

**Trees** (boosted trees, random forests: trainers with ``contributions``) — exact tree SHAP
(Lundberg et al. 2020, LightGBM's ``pred_contrib``), path-dependent: the base value is the trees'
expected output over the training data, and ``background`` is not used. It is computed in raw score
space: the regression value; for classifiers the log-odds (the class's softmax margin for more
than two classes) of the predicted class; for a forest, the trees' mean (LightGBM's raw score of a
forest is the trees' sum). The transformed features' values are summed back to
their input column (``FeatureMatrix.source``); a feature made of several columns (a cross
``a*b``) is split equally among them. Additivity holds to floating-point precision.

**Every other family** — a sampling estimate of the interventional Shapley values over the input
columns (Štrumbelj & Kononenko 2014, "Explaining prediction models and individual predictions
with feature contributions"), of the model's raw prediction: the regression value; for
classifiers the probability of the predicted class. For each row ``x`` and each of ``samples``
draws ``m``: take a background row ``z_m`` and a random order of the columns; start from ``z_m``
and switch the columns to ``x``'s values one at a time in that order; each column is credited with
the change in the prediction at its switch. The attribution is the mean credit over the draws.
Draws come in antithetic pairs (an order, then its reverse; Mitchell et al. 2022), which lowers
the variance. The background rows are ``samples`` rows drawn without replacement from
``background`` (default: ``table`` itself, which must then have 2 rows at least; pass a sample of
the training data for the usual meaning "compared to a typical row"), cycled when fewer, and are
the same for every explained row, so the base value is the mean prediction over them, one number
for the whole table. Each draw's credits add up to ``f(x) - f(z_m)``, so additivity holds
exactly; the individual attributions are estimates whose error shrinks as
``1 / sqrt(samples)``. The cost is ``rows x samples x (columns - 1)`` predictions (batched through
the model's transform and estimator); everything is drawn from ``seed``: results reproduce.

Explanations go through the model's own transform and estimator (the prediction path without the
output formatting): what is explained is what ``Model.predict`` answers. Clustering and PCA models
have no prediction to explain and are refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from kiln.errors import DataError, TrainingError
from kiln.model._model import Model

__all__ = ["explain"]

Array = np.ndarray[Any, np.dtype[Any]]

BASELINE = "baseline_prediction_value"
PREDICTION = "prediction_value"
# composite rows evaluated by one call of the transform and estimator
_BATCH_ROWS = 200_000


def explain(
    model: Model,
    table: pa.Table,
    *,
    background: pa.Table | None = None,
    samples: int = 64,
    seed: int = 0,
) -> pa.Table:
    """Attributions per row of ``table`` and per input column of ``model``, with the base value
    and the explained value (see the module docstring for the estimators and columns)."""
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if not isinstance(table, pa.Table):
        raise DataError(f"explain takes an Arrow table, not {type(table).__name__}")
    if model.task not in ("regression", "classification"):
        raise TrainingError(
            f"{model.trainer.model_type} is a {model.task} model: it has no prediction to explain;"
            " explain works on regression and classification models"
        )
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise DataError(f"samples must be a positive integer, got {samples!r}")
    model._validate(table)
    if table.num_rows == 0:
        raise DataError("the table to explain has no rows")
    inputs = [c["name"] for c in model.signature]
    names = [*inputs, BASELINE, PREDICTION]
    predicted = model.prediction_column
    if model.task == "classification":
        names.append(predicted)
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise DataError(
            f"input column(s) {', '.join(map(repr, clash))} clash with explain's output columns; "
            "rename them before training"
        )
    table = table.select(inputs)
    if hasattr(model.trainer, "contributions"):
        phi, base, value, cls = _tree_shap(model, table, inputs)
    else:
        if background is None and table.num_rows < 2:
            raise DataError(
                f"explaining {table.num_rows} row(s) of a {model.trainer.model_type} model needs "
                "background= (a sample of the training data): the default background, the "
                "explained rows themselves, would make every attribution 0"
            )
        bg = table if background is None else background
        phi, base, value, cls = _sampling_shapley(model, table, bg, inputs, samples, seed)
    out: dict[str, pa.Array] = {}
    if cls is not None:
        classes = np.asarray(model.trainer.classes_)  # type: ignore[attr-defined]
        out[predicted] = pa.array(classes[cls])
    for j, name in enumerate(inputs):
        out[name] = pa.array(phi[:, j])
    out[BASELINE] = pa.array(base)
    out[PREDICTION] = pa.array(value)
    return pa.table(out)


# ------------------------------------------------------------------------------------------------
# trees: exact tree SHAP, summed back to the input columns


def _tree_shap(
    model: Model, table: pa.Table, inputs: list[str]
) -> tuple[Array, Array, Array, Array | None]:
    features = model.transform.transform(table)
    contributions = np.asarray(
        model.trainer.contributions(features.X),  # type: ignore[attr-defined]
        dtype=np.float64,
    )
    n = table.num_rows
    cls: Array | None = None
    if contributions.ndim == 3:  # multiclass: rows x classes x (features + 1)
        cls = contributions.sum(axis=2).argmax(axis=1)
        contributions = contributions[np.arange(n), cls, :]
    elif model.task == "classification":  # binary: the positive class's log-odds
        raw = contributions.sum(axis=1)
        cls = (raw > 0).astype(np.int64)
        # the log-odds of class 0 are minus those of class 1
        contributions = contributions * np.where(cls == 1, 1.0, -1.0)[:, None]
    per_feature, base = contributions[:, :-1], contributions[:, -1]
    phi = per_feature @ _aggregation(features.source, inputs)
    return phi, base.copy(), contributions.sum(axis=1), cls


def _aggregation(sources: list[str], inputs: list[str]) -> Array:
    """features x inputs: 1 where a feature comes from a column (split equally when several)."""
    index = {c: j for j, c in enumerate(inputs)}
    matrix = np.zeros((len(sources), len(inputs)))
    for i, source in enumerate(sources):
        if source in index:
            matrix[i, index[source]] = 1.0
            continue
        parts = [p for p in source.split("*") if p in index]
        if not parts:
            raise DataError(
                f"transformed feature {i} comes from {source!r}, which is not an input column of "
                "the model; its attribution cannot be assigned"
            )
        for p in parts:
            matrix[i, index[p]] += 1.0 / len(parts)
    return matrix


# ------------------------------------------------------------------------------------------------
# every other family: permutation-sampling Shapley values over the input columns


def _sampling_shapley(
    model: Model,
    table: pa.Table,
    background: pa.Table,
    inputs: list[str],
    samples: int,
    seed: int,
) -> tuple[Array, Array, Array, Array | None]:
    n = table.num_rows
    rng = np.random.default_rng(seed)
    bg = _background(background, table.schema, inputs, samples, rng)
    z_index = np.arange(samples) % bg.num_rows  # draw m uses background row z_index[m]

    # the columns the transform reads; the others cannot move the prediction (attribution 0)
    used = set(model.transform.input_columns)
    active = [j for j, c in enumerate(inputs) if c in used]
    d = len(active)

    f_x, proba_x = _outputs(model, table)
    cls = proba_x.argmax(axis=1) if proba_x is not None else None
    f_z, proba_z = _outputs(model, bg)
    if proba_z is not None:
        assert cls is not None
        z_values = proba_z[z_index][None, :, :]  # 1 x samples x classes
        start = np.take_along_axis(
            np.broadcast_to(z_values, (n, samples, proba_z.shape[1])), cls[:, None, None], axis=2
        )[:, :, 0]  # rows x samples: f(z_m) for each row's class
    else:
        start = np.broadcast_to(f_z[z_index][None, :], (n, samples))
    base = start.mean(axis=1)
    phi = np.zeros((n, len(inputs)))
    if n == 0 or d == 0:
        return phi, base, f_x, cls

    combined = pa.concat_tables([table, bg])
    chunk = max(1, _BATCH_ROWS // (samples * max(d - 1, 1)))
    for lo in range(0, n, chunk):
        rows = np.arange(lo, min(n, lo + chunk))
        k = len(rows)
        order = _orders(rng, k, samples, d)  # k x samples x d: positions into ``active``
        rank = np.argsort(order, axis=2)  # where each active column comes in the order
        values = np.empty((k, samples, d + 1))
        values[:, :, 0] = start[rows]
        values[:, :, d] = f_x[rows][:, None]
        if d > 1:
            steps = np.arange(1, d)  # after switching `step` columns to x's values
            x_row = rows[:, None, None]
            z_row = n + z_index[None, :, None]
            columns: dict[str, pa.ChunkedArray] = {}
            for position, j in enumerate(active):
                from_x = rank[:, :, position][:, :, None] < steps[None, None, :]
                take = np.where(from_x, x_row, z_row).reshape(-1)
                columns[inputs[j]] = combined[inputs[j]].take(pa.array(take))
            composite = pa.table(columns)  # the transform reads only the active columns
            f_c, proba_c = _outputs(model, composite)
            if proba_c is not None:
                assert cls is not None
                class_of = np.repeat(cls[rows], samples * (d - 1))
                f_c = proba_c[np.arange(len(class_of)), class_of]
            values[:, :, 1:d] = f_c.reshape(k, samples, d - 1)
        credit = np.diff(values, axis=2)  # k x samples x d: the change at each switch
        per_column = np.empty_like(credit)
        np.put_along_axis(per_column, order, credit, axis=2)
        phi[np.ix_(rows, np.asarray(active, dtype=np.int64))] = per_column.mean(axis=1)
    value = f_x if proba_x is None else proba_x[np.arange(n), cls]
    return phi, base, value, cls


def _background(
    background: pa.Table,
    schema: pa.Schema,
    inputs: list[str],
    samples: int,
    rng: np.random.Generator,
) -> pa.Table:
    if not isinstance(background, pa.Table):
        raise DataError(f"background must be an Arrow table, not {type(background).__name__}")
    missing = [c for c in inputs if c not in background.column_names]
    if missing:
        raise DataError(
            f"background is missing column(s) {', '.join(map(repr, missing))}; it needs the "
            "model's input columns (a sample of the training data)"
        )
    if background.num_rows == 0:
        raise DataError("background has no rows; pass a sample of the training data")
    picked = background.select(inputs)
    if picked.num_rows > samples:
        picked = picked.take(pa.array(np.sort(rng.choice(picked.num_rows, samples, replace=False))))
    try:
        return picked.cast(pa.schema([schema.field(c) for c in inputs]))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise DataError(
            f"background's columns do not match the explained table's types: {e}"
        ) from e


def _orders(rng: np.random.Generator, rows: int, samples: int, d: int) -> Array:
    """rows x samples x d random orders of ``range(d)``, in antithetic pairs (then reversed)."""
    half = (samples + 1) // 2
    orders = np.argsort(rng.random((rows, half, d)), axis=2)
    paired = np.concatenate([orders, orders[:, :, ::-1]], axis=1)
    return paired[:, :samples]


def _outputs(model: Model, table: pa.Table) -> tuple[Array, Array | None]:
    """The raw prediction (regression value) or, for a classifier, its class probabilities."""
    X = model.transform.transform(table).X
    if model.task == "classification":
        proba = np.asarray(model.trainer.predict_proba(X), dtype=np.float64)  # type: ignore[attr-defined]
        return proba.max(axis=1), proba
    return np.asarray(model.trainer.predict(X), dtype=np.float64), None
