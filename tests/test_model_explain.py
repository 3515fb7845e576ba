"""Per-prediction explanations: tree SHAP for trees (exact, additive in raw score space) and the
seeded permutation-sampling Shapley estimate for the other families (additive by construction,
and close to the exact Shapley values computed by brute force)."""

from __future__ import annotations

import importlib.resources
import itertools
import math
import warnings
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from kiln.errors import DataError, TrainingError
from kiln.model import Model, explain
from kiln.model._explain import _aggregation

Array = np.ndarray[Any, np.dtype[Any]]


@pytest.fixture(scope="module")
def penguins() -> pa.Table:
    src = importlib.resources.files("palmerpenguins") / "data/penguins.csv"
    with src.open("rb") as f:
        t = pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(null_values=["NA"]))
    return t.filter(pc.and_(pc.is_valid(t["body_mass_g"]), pc.is_valid(t["sex"])))


def _fit(table: pa.Table, model_type: str, label: str, **settings: Any) -> Model:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the automatic preprocessing's notices
        return Model.fit(table, model_type=model_type, label=label, settings=settings)


def _inputs(model: Model) -> list[str]:
    return [c["name"] for c in model.signature]


def _attributions(model: Model, explained: pa.Table) -> Array:
    return np.column_stack([explained[c].to_numpy() for c in _inputs(model)])


def _additive(model: Model, explained: pa.Table) -> Array:
    """baseline + sum of attributions, per row."""
    return (
        _attributions(model, explained).sum(axis=1)
        + explained["baseline_prediction_value"].to_numpy()
    )


# -- trees: exact tree SHAP ------------------------------------------------------------------------

TREES = [
    ("boosted_tree_regressor", "body_mass_g"),
    ("random_forest_regressor", "body_mass_g"),
    ("boosted_tree_classifier", "sex"),  # two classes
    ("boosted_tree_classifier", "species"),  # three
    ("random_forest_classifier", "species"),
]


@pytest.mark.parametrize(("model_type", "label"), TREES)
def test_tree_attributions_add_up_to_the_raw_score_exactly(
    penguins: pa.Table, model_type: str, label: str
) -> None:
    model = _fit(penguins, model_type, label)
    explained = explain(model, penguins)
    assert explained.num_rows == penguins.num_rows
    assert explained.column_names[-2:] == ["baseline_prediction_value", "prediction_value"]
    value = explained["prediction_value"].to_numpy()
    np.testing.assert_allclose(_additive(model, explained), value, rtol=1e-9, atol=1e-9)

    # ... and the value explained is the model's own raw score (LightGBM's, independently)
    booster = model.trainer.booster_  # type: ignore[attr-defined]
    X = model.transform.transform(penguins).X
    raw = np.asarray(booster.predict(X, raw_score=True))
    if "forest" in model_type:
        raw = raw / booster.current_iteration()  # a forest predicts the trees' mean
    predicted = model.predict(penguins)
    if model.task == "regression":
        np.testing.assert_allclose(value, raw, rtol=1e-9)
        np.testing.assert_allclose(value, predicted[f"predicted_{label}"].to_numpy(), rtol=1e-9)
        return
    classes = list(model.trainer.classes_)  # type: ignore[attr-defined]
    assert explained[f"predicted_{label}"].equals(predicted[f"predicted_{label}"])
    codes = np.array([classes.index(c) for c in explained[f"predicted_{label}"].to_pylist()])
    if raw.ndim == 1:  # binary: the log-odds of the predicted class
        expected = np.where(codes == 1, raw, -raw)
    else:
        expected = raw[np.arange(len(codes)), codes]
    np.testing.assert_allclose(value, expected, rtol=1e-9, atol=1e-9)


def test_tree_attributions_are_per_input_column_and_zero_for_unused_ones(
    penguins: pa.Table,
) -> None:
    table = penguins.append_column("constant", pa.array([1.0] * penguins.num_rows))
    model = _fit(table, "boosted_tree_regressor", "body_mass_g")
    explained = explain(model, table)
    assert _inputs(model) == [c for c in table.column_names if c != "body_mass_g"]
    assert explained.column_names[: len(_inputs(model))] == _inputs(model)
    assert explained["constant"].to_numpy().tolist() == [0.0] * table.num_rows
    # the label and extra columns in the explained table are ignored
    again = explain(model, table.append_column("extra", pa.array(["x"] * table.num_rows)))
    assert again.equals(explained)
    # a feature model explains the same on a single row as within a batch
    one = explain(model, table.slice(3, 1))
    np.testing.assert_allclose(
        _attributions(model, one)[0], _attributions(model, explained)[3], rtol=1e-9
    )


def test_features_from_several_columns_are_split_equally_among_them() -> None:
    matrix = _aggregation(["a", "b", "a*b", "a"], ["a", "b", "c"])
    np.testing.assert_array_equal(
        matrix, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]]
    )
    with pytest.raises(DataError, match="not an input column"):
        _aggregation(["zzz"], ["a"])


# -- other families: permutation-sampling Shapley ------------------------------------------------


def test_linear_regression_sampling_is_exact_and_additive(penguins: pa.Table) -> None:
    """For an additive model every permutation credits a column with the same change, so the
    estimate is the exact Shapley value: coef * (x - mean over the background), per column."""
    model = _fit(penguins, "linear_reg", "body_mass_g")
    background = penguins.slice(0, 32)
    explained = explain(model, penguins, background=background, samples=64, seed=3)
    value = explained["prediction_value"].to_numpy()
    predicted = model.predict(penguins)["predicted_body_mass_g"].to_numpy()
    np.testing.assert_allclose(value, predicted, rtol=1e-12)
    np.testing.assert_allclose(_additive(model, explained), value, rtol=1e-9)

    features = model.transform.transform(penguins)
    X_bg = model.transform.transform(background).X
    coef = model.trainer.coef_  # type: ignore[attr-defined]
    per_feature = (features.X - X_bg.mean(axis=0)) * coef
    expected = per_feature @ _aggregation(features.source, _inputs(model))
    np.testing.assert_allclose(_attributions(model, explained), expected, rtol=1e-7, atol=1e-7)
    base = explained["baseline_prediction_value"].to_numpy()
    assert np.ptp(base) == 0  # one base value for the whole table
    np.testing.assert_allclose(
        base[0], model.predict(background)["predicted_body_mass_g"].to_numpy().mean(), rtol=1e-12
    )


def _exact_shapley(model: Model, row: pa.Table, background: pa.Table, cls: int) -> Array:
    """Interventional Shapley values of one row by brute force over every coalition."""
    inputs = _inputs(model)
    d = len(inputs)

    def v(coalition: tuple[int, ...]) -> float:
        columns = {
            c: (
                pa.array([row[c][0].as_py()] * background.num_rows, type=row.schema.field(c).type)
                if j in coalition
                else background[c]
            )
            for j, c in enumerate(inputs)
        }
        X = model.transform.transform(pa.table(columns)).X
        return float(model.trainer.predict_proba(X)[:, cls].mean())  # type: ignore[attr-defined]

    values = {s: v(s) for r in range(d + 1) for s in itertools.combinations(range(d), r)}
    phi = np.zeros(d)
    for j in range(d):
        for s, value in values.items():
            if j in s:
                continue
            with_j = tuple(sorted((*s, j)))
            weight = math.factorial(len(s)) * math.factorial(d - len(s) - 1) / math.factorial(d)
            phi[j] += weight * (values[with_j] - value)
    return phi


def test_sampling_converges_to_the_exact_shapley_values(penguins: pa.Table) -> None:
    table = penguins.select(["bill_length_mm", "flipper_length_mm", "island", "sex", "species"])
    model = _fit(table, "logistic_reg", "species")
    background = table.slice(0, 16)
    rows = table.take([0, 150, 300])
    explained = explain(model, rows, background=background, samples=512, seed=0)
    value = explained["prediction_value"].to_numpy()
    np.testing.assert_allclose(_additive(model, explained), value, rtol=1e-9, atol=1e-12)
    probs = model.predict(rows)["predicted_species_probs"].to_pylist()
    np.testing.assert_allclose(value, [max(p["prob"] for p in r) for r in probs], rtol=1e-12)
    classes = list(model.trainer.classes_)  # type: ignore[attr-defined]
    for i, name in enumerate(explained["predicted_species"].to_pylist()):
        exact = _exact_shapley(model, rows.slice(i, 1), background, classes.index(name))
        np.testing.assert_allclose(_attributions(model, explained)[i], exact, atol=0.02)


def test_sampling_is_seeded(penguins: pa.Table) -> None:
    model = _fit(penguins, "logistic_reg", "sex")
    rows = penguins.slice(0, 20)
    first = explain(model, rows, samples=16, seed=7)
    assert explain(model, rows, samples=16, seed=7).equals(first)
    other = explain(model, rows, samples=16, seed=8)
    assert not np.allclose(_attributions(model, other), _attributions(model, first))
    # the default background is the explained table itself; additivity holds whatever the seed
    for explained in (first, other):
        np.testing.assert_allclose(
            _additive(model, explained), explained["prediction_value"].to_numpy(), atol=1e-12
        )


def test_an_unused_column_gets_zero_from_sampling_too(penguins: pa.Table) -> None:
    table = penguins.append_column("constant", pa.array(["same"] * penguins.num_rows))
    model = _fit(table, "logistic_reg", "species")
    explained = explain(model, table.slice(0, 10), samples=8)
    assert explained["constant"].to_pylist() == [0.0] * 10


# -- refusals ------------------------------------------------------------------------------------


def test_bad_requests_are_clear_errors(penguins: pa.Table) -> None:
    model = _fit(penguins, "linear_reg", "body_mass_g")
    with pytest.raises(DataError, match="missing column 'island'"):
        explain(model, penguins.drop_columns(["island"]))
    with pytest.raises(DataError, match="the table to explain has no rows"):
        explain(model, penguins.slice(0, 0))
    with pytest.raises(DataError, match="samples must be a positive integer"):
        explain(model, penguins, samples=0)
    with pytest.raises(DataError, match="background is missing column"):
        explain(model, penguins, background=penguins.drop_columns(["island"]))
    with pytest.raises(DataError, match="background has no rows"):
        explain(model, penguins, background=penguins.slice(0, 0))
    with pytest.raises(DataError, match=r"explaining 1 row\(s\) of a linear_reg model needs back"):
        explain(model, penguins.slice(0, 1))
    one = explain(model, penguins.slice(0, 1), background=penguins)
    assert one.num_rows == 1
    kmeans = Model.fit(
        penguins.select(["bill_length_mm", "flipper_length_mm"]),
        model_type="kmeans",
        settings={"num_clusters": 2},
    )
    with pytest.raises(TrainingError, match="clustering model: it has no prediction to explain"):
        explain(kmeans, penguins)
