"""ML.WEIGHTS, ML.CENTROIDS, ML.EXPLAIN_PREDICT, ML.GLOBAL_EXPLAIN, ML.DETECT_ANOMALIES,
ML.PRINCIPAL_COMPONENTS and ML.PRINCIPAL_COMPONENT_INFO on models trained for real (scikit-learn's
diabetes, breast_cancer and iris), checked against independent computations."""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from kiln.errors import SqlError
from kiln.model import Model
from kiln.sql._ml_inspect import (
    ATTRIBUTIONS,
    CATEGORY_VALUES,
    CATEGORY_WEIGHTS,
    FUNCTIONS,
    anomaly_summary,
    global_explain_summary,
)
from kiln.sql._model import SqlModel


def _sklearn(name: str, label: str = "y") -> pa.Table:
    from sklearn import datasets

    data = getattr(datasets, f"load_{name}")()
    columns = {str(n).replace(" ", "_"): data.data[:, i] for i, n in enumerate(data.feature_names)}
    target = data.target
    if name == "iris":
        target = np.asarray(data.target_names)[target]
    columns[label] = target
    return pa.table(columns)


def _sql_model(
    table: pa.Table,
    model_type: str,
    label: str | None = "y",
    *,
    settings: dict[str, Any] | None = None,
    global_explain: bool = False,
    anomaly: bool = False,
) -> SqlModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = Model.fit(table, model_type=model_type, label=label, settings=settings)
    info: dict[str, Any] = {"model_type": model_type, "options": {}}
    if global_explain:
        info["global_explain"] = global_explain_summary(m, model_type, table)
    if anomaly:
        info["anomaly"] = anomaly_summary(m, model_type, table)
    json.dumps(info)  # stored in the manifest: plain JSON
    m.info["sql"] = info
    return SqlModel("ds.m", 1, m, info)


def _schema(table: pa.Table) -> list[tuple[str, pa.DataType]]:
    return [(f.name, f.type) for f in table.schema]


def _mixed(n: int = 300) -> pa.Table:
    """Two numerical columns, a string column and a label linear in them (plus noise)."""
    rng = np.random.default_rng(7)
    a = rng.normal(10.0, 3.0, n)
    b = rng.normal(-2.0, 0.5, n)
    city = rng.choice(["Paris", "Lyon", "Nice"], n)
    effect = {"Paris": 4.0, "Lyon": -1.0, "Nice": 0.0}
    y = 2.0 * a - 3.0 * b + np.array([effect[c] for c in city]) + rng.normal(0, 0.1, n)
    return pa.table({"a": a, "b": b, "city": city, "y": y})


@pytest.fixture(scope="module")
def mixed_linear() -> SqlModel:
    return _sql_model(_mixed(), "linear_reg", global_explain=True)


@pytest.fixture(scope="module")
def iris_logistic() -> SqlModel:
    return _sql_model(_sklearn("iris"), "logistic_reg", global_explain=True)


# ------------------------------------------------------------------------------------------------
# ML.WEIGHTS


def test_weights_linear_reg_match_least_squares_on_the_raw_scale(mixed_linear: SqlModel) -> None:
    table = _mixed()
    out = FUNCTIONS["WEIGHTS"](mixed_linear, None, {}, [])
    assert _schema(out) == [
        ("processed_input", pa.string()),
        ("weight", pa.float64()),
        ("category_weights", CATEGORY_WEIGHTS),
    ]
    rows = {r["processed_input"]: r for r in out.to_pylist()}
    assert list(rows) == ["a", "b", "city", "__INTERCEPT__"]
    # independent: least squares on the raw columns plus a 0/1 column per city, no intercept
    city = np.asarray(table["city"].to_pylist())
    cities = sorted(set(city))
    A = np.column_stack(
        [table["a"].to_numpy(), table["b"].to_numpy()] + [(city == c) * 1.0 for c in cities]
    )
    coef = np.linalg.lstsq(A, table["y"].to_numpy(), rcond=None)[0]
    assert rows["a"]["weight"] == pytest.approx(coef[0], rel=1e-6)
    assert rows["b"]["weight"] == pytest.approx(coef[1], rel=1e-6)
    assert rows["a"]["category_weights"] == []
    assert rows["city"]["weight"] is None
    got = {d["category"]: d["weight"] for d in rows["city"]["category_weights"]}
    assert sorted(got) == cities
    # intercept + category weight is identified (the one-hot columns sum to 1)
    for i, c in enumerate(cities):
        assert rows["__INTERCEPT__"]["weight"] + got[c] == pytest.approx(coef[2 + i], rel=1e-6)
    # and the weights on the raw scale predict what the model predicts
    predicted = mixed_linear.model.predict(table)["predicted_y"].to_numpy()
    by_hand = (
        rows["__INTERCEPT__"]["weight"]
        + rows["a"]["weight"] * table["a"].to_numpy()
        + rows["b"]["weight"] * table["b"].to_numpy()
        + np.array([got[c] for c in city])
    )
    np.testing.assert_allclose(by_hand, predicted, rtol=1e-9, atol=1e-9)


def test_weights_standardize_are_the_weights_on_z_scores(mixed_linear: SqlModel) -> None:
    table = _mixed()
    raw = {
        r["processed_input"]: r
        for r in FUNCTIONS["WEIGHTS"](mixed_linear, None, {}, []).to_pylist()
    }
    std = {
        r["processed_input"]: r
        for r in FUNCTIONS["WEIGHTS"](mixed_linear, None, {"standardize": True}, []).to_pylist()
    }
    for column in ("a", "b"):
        x = table[column].to_numpy()
        assert std[column]["weight"] == pytest.approx(raw[column]["weight"] * x.std(), rel=1e-9)
    shift = sum(raw[c]["weight"] * table[c].to_numpy().mean() for c in ("a", "b"))
    assert std["__INTERCEPT__"]["weight"] == pytest.approx(
        raw["__INTERCEPT__"]["weight"] + shift, rel=1e-9
    )
    assert std["city"]["category_weights"] == raw["city"]["category_weights"]


def test_weights_multiclass_logistic_reg_one_row_per_class_and_input(
    iris_logistic: SqlModel,
) -> None:
    table = _sklearn("iris")
    out = FUNCTIONS["WEIGHTS"](iris_logistic, None, {}, [])
    assert _schema(out) == [
        ("processed_input", pa.string()),
        ("weight", pa.float64()),
        ("category_weights", CATEGORY_WEIGHTS),
        ("class_label", pa.string()),
    ]
    classes = ["setosa", "versicolor", "virginica"]
    assert out.num_rows == (4 + 1) * 3
    trainer: Any = iris_logistic.model.trainer
    inputs = [c for c in table.column_names if c != "y"]
    X = np.column_stack([table[c].to_numpy() for c in inputs])
    mean, std = X.mean(axis=0), X.std(axis=0)
    for r in out.to_pylist():
        k = classes.index(r["class_label"])
        if r["processed_input"] == "__INTERCEPT__":
            expected = trainer.intercept_[k] - (trainer.coef_[:, k] * mean / std).sum()
        else:
            j = inputs.index(r["processed_input"])
            expected = trainer.coef_[j, k] / std[j]
        assert r["weight"] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_weights_binary_logistic_reg_has_no_class_label() -> None:
    model = _sql_model(_sklearn("breast_cancer"), "logistic_reg")
    out = FUNCTIONS["WEIGHTS"](model, None, {"standardize": True}, [])
    assert "class_label" not in out.column_names
    trainer: Any = model.model.trainer
    np.testing.assert_allclose(out["weight"].to_numpy()[:-1], trainer.coef_, rtol=1e-12)
    assert out["weight"][out.num_rows - 1].as_py() == pytest.approx(trainer.intercept_)


# ------------------------------------------------------------------------------------------------
# ML.CENTROIDS


def test_centroids_are_the_trainer_centroids_on_the_raw_scale() -> None:
    table = _mixed().drop_columns(["y"])
    model = _sql_model(table, "kmeans", None, settings={"num_clusters": 3})
    out = FUNCTIONS["CENTROIDS"](model, None, {}, [])
    assert _schema(out) == [
        ("centroid_id", pa.int64()),
        ("feature", pa.string()),
        ("numerical_value", pa.float64()),
        ("categorical_value", CATEGORY_VALUES),
        ("geography_value", pa.string()),
    ]
    assert out.num_rows == 3 * 3
    # independent: each cluster's mean of the raw columns, and its share of each city
    labels = model.model.predict(table)["centroid_id"].to_numpy()
    city = np.asarray(table["city"].to_pylist())
    for r in out.to_pylist():
        members = labels == r["centroid_id"]
        if r["feature"] == "city":
            assert r["numerical_value"] is None
            shares = {d["category"]: d["value"] for d in r["categorical_value"]}
            for c, share in shares.items():
                assert share == pytest.approx((city[members] == c).mean(), abs=1e-9)
        else:
            mean = table[r["feature"]].to_numpy()[members].mean()
            assert r["numerical_value"] == pytest.approx(mean, rel=1e-9)
            assert r["categorical_value"] == []
            assert r["geography_value"] is None
    standardized = FUNCTIONS["CENTROIDS"](model, None, {"standardize": True}, []).to_pylist()
    for r in standardized:
        if r["feature"] == "a":
            a = table["a"].to_numpy()
            mean = a[labels == r["centroid_id"]].mean()
            assert r["numerical_value"] == pytest.approx((mean - a.mean()) / a.std(), rel=1e-9)


# ------------------------------------------------------------------------------------------------
# ML.EXPLAIN_PREDICT


def _check_explained(out: pa.Table, inputs: list[str], top_k: int) -> None:
    rows = out.to_pylist()
    for r in rows:
        assert len(r["top_feature_attributions"]) == min(top_k, len(inputs))
        sizes = [abs(d["attribution"]) for d in r["top_feature_attributions"]]
        assert sizes == sorted(sizes, reverse=True)
        assert r["approximation_error"] == pytest.approx(0.0, abs=1e-9)


def test_explain_predict_linear_reg_is_weight_times_distance_to_the_mean(
    mixed_linear: SqlModel,
) -> None:
    table = _mixed()
    rows = table.slice(0, 20)
    out = FUNCTIONS["EXPLAIN_PREDICT"](mixed_linear, rows, {"top_k_features": 3}, [])
    assert _schema(out)[:5] == [
        ("predicted_y", pa.float64()),
        ("top_feature_attributions", ATTRIBUTIONS),
        ("baseline_prediction_value", pa.float64()),
        ("prediction_value", pa.float64()),
        ("approximation_error", pa.float64()),
    ]
    assert out.column_names[5:] == table.column_names  # the input columns pass through
    weights = {
        r["processed_input"]: r["weight"]
        for r in FUNCTIONS["WEIGHTS"](mixed_linear, None, {}, []).to_pylist()
    }
    _check_explained(out, ["a", "b", "city"], 3)
    for i, r in enumerate(out.to_pylist()):
        attributions = {d["feature"]: d["attribution"] for d in r["top_feature_attributions"]}
        for column in ("a", "b"):
            distance = rows[column][i].as_py() - table[column].to_numpy().mean()
            expected = weights[column] * distance
            assert attributions[column] == pytest.approx(expected, rel=1e-7, abs=1e-9)
        total = r["baseline_prediction_value"] + sum(attributions.values())
        assert total == pytest.approx(r["predicted_y"], rel=1e-9)
        assert r["prediction_value"] == pytest.approx(r["predicted_y"], rel=1e-12)


def test_explain_predict_boosted_trees_are_additive_tree_shap() -> None:
    table = _sklearn("breast_cancer")
    model = _sql_model(
        table, "boosted_tree_classifier", settings={"max_iterations": 10, "num_parallel_tree": 1}
    )
    rows = table.slice(0, 30)
    out = FUNCTIONS["EXPLAIN_PREDICT"](model, rows, {"top_k_features": 40}, [])
    assert _schema(out)[:6] == [
        ("predicted_y", pa.int64()),
        ("probability", pa.float64()),
        ("top_feature_attributions", ATTRIBUTIONS),
        ("baseline_prediction_value", pa.float64()),
        ("prediction_value", pa.float64()),
        ("approximation_error", pa.float64()),
    ]
    inputs = [c for c in table.column_names if c != "y"]
    _check_explained(out, inputs, 40)
    trainer: Any = model.model.trainer
    X = np.column_stack([rows[c].to_numpy() for c in inputs])
    raw = trainer.booster_.predict(X, raw_score=True)  # independent: LightGBM's log-odds
    p = 1.0 / (1.0 + np.exp(-raw))
    for i, r in enumerate(out.to_pylist()):
        sign = 1.0 if r["predicted_y"] == 1 else -1.0
        assert r["prediction_value"] == pytest.approx(sign * raw[i], rel=1e-9)
        assert r["probability"] == pytest.approx(max(p[i], 1 - p[i]), rel=1e-9)
        total = r["baseline_prediction_value"] + sum(
            d["attribution"] for d in r["top_feature_attributions"]
        )
        assert total == pytest.approx(r["prediction_value"], abs=1e-9)
    # a threshold above every probability makes class 0 the explained one, signs flipped
    high = FUNCTIONS["EXPLAIN_PREDICT"](model, rows, {"threshold": 1.0}, []).to_pylist()
    assert {r["predicted_y"] for r in high} == {0}
    for i, r in enumerate(high):
        assert r["prediction_value"] == pytest.approx(-raw[i], rel=1e-9)


def test_explain_predict_multiclass_logistic_explains_the_predicted_class(
    iris_logistic: SqlModel,
) -> None:
    rows = _sklearn("iris").take(pa.array([0, 60, 120]))
    out = FUNCTIONS["EXPLAIN_PREDICT"](iris_logistic, rows, {}, []).to_pylist()
    proba = iris_logistic.model.predict(rows)["predicted_y_probs"].to_pylist()
    for r, probs in zip(out, proba, strict=True):
        best = max(probs, key=lambda d: d["prob"])
        assert r["predicted_y"] == best["label"]
        assert r["probability"] == pytest.approx(best["prob"], rel=1e-12)
        assert r["approximation_error"] == pytest.approx(0.0, abs=1e-9)
    assert [r["predicted_y"] for r in out] == ["setosa", "versicolor", "virginica"]


# ------------------------------------------------------------------------------------------------
# ML.GLOBAL_EXPLAIN


def test_global_explain_is_the_mean_absolute_attribution(mixed_linear: SqlModel) -> None:
    table = _mixed()
    out = FUNCTIONS["GLOBAL_EXPLAIN"](mixed_linear, None, {}, [])
    assert _schema(out) == [("feature", pa.string()), ("attribution", pa.float64())]
    got = dict(zip(out["feature"].to_pylist(), out["attribution"].to_pylist(), strict=True))
    assert out["attribution"].to_pylist() == sorted(got.values(), reverse=True)
    weights = {
        r["processed_input"]: r["weight"]
        for r in FUNCTIONS["WEIGHTS"](mixed_linear, None, {}, []).to_pylist()
    }
    for column in ("a", "b"):
        x = table[column].to_numpy()
        expected = np.abs(weights[column] * (x - x.mean())).mean()
        assert got[column] == pytest.approx(expected, rel=1e-7)
    with pytest.raises(SqlError, match="class_level_explain applies to classification"):
        FUNCTIONS["GLOBAL_EXPLAIN"](mixed_linear, None, {"class_level_explain": True}, [])


def test_global_explain_class_level(iris_logistic: SqlModel) -> None:
    out = FUNCTIONS["GLOBAL_EXPLAIN"](iris_logistic, None, {"class_level_explain": True}, [])
    assert _schema(out) == [
        ("class_label", pa.string()),
        ("feature", pa.string()),
        ("attribution", pa.float64()),
    ]
    assert out.num_rows == 3 * 4
    table = _sklearn("iris")
    trainer: Any = iris_logistic.model.trainer
    inputs = [c for c in table.column_names if c != "y"]
    X = np.column_stack([table[c].to_numpy() for c in inputs])
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    for r in out.to_pylist():
        k = list(trainer.classes_).index(r["class_label"])
        j = inputs.index(r["feature"])
        assert r["attribution"] == pytest.approx(np.abs(Z[:, j] * trainer.coef_[j, k]).mean())


def test_global_explain_needs_enable_global_explain() -> None:
    model = _sql_model(_sklearn("iris"), "logistic_reg")
    with pytest.raises(SqlError, match="enable_global_explain = TRUE"):
        FUNCTIONS["GLOBAL_EXPLAIN"](model, None, {}, [])


# ------------------------------------------------------------------------------------------------
# ML.DETECT_ANOMALIES


@pytest.mark.parametrize("model_type", ["kmeans", "pca"])
def test_detect_anomalies_flags_the_contamination_share_of_the_training_rows(
    model_type: str,
) -> None:
    table = _sklearn("diabetes").drop_columns(["y"])
    settings = {"num_clusters": 4} if model_type == "kmeans" else {"num_principal_components": 3}
    model = _sql_model(table, model_type, None, settings=settings, anomaly=True)
    out = FUNCTIONS["DETECT_ANOMALIES"](model, table, {"contamination": 0.1}, [])
    score = "normalized_distance" if model_type == "kmeans" else "mean_squared_error"
    head = [("is_anomaly", pa.bool_()), (score, pa.float64())]
    if model_type == "kmeans":
        head.append(("centroid_id", pa.int64()))
    assert _schema(out)[: len(head)] == head
    assert out.column_names[len(head) :] == table.column_names
    flagged = out["is_anomaly"].to_numpy(zero_copy_only=False)
    assert abs(flagged.mean() - 0.1) <= 1.0 / table.num_rows
    scores = out[score].to_numpy()
    assert scores[flagged].min() > scores[~flagged].max()  # the largest scores are flagged
    X = np.column_stack([table[c].to_numpy() for c in table.column_names])
    Z = (X - X.mean(axis=0)) / X.std(axis=0)  # Kiln's automatic preprocessing, by hand
    trainer: Any = model.model.trainer
    if model_type == "pca":  # independent: reconstruction from the leading right singular vectors
        Zs = (Z - Z.mean(axis=0)) / Z.std(axis=0)
        V = np.linalg.svd(Zs, full_matrices=False)[2][:3]
        residual = Zs - Zs @ V.T @ V
        np.testing.assert_allclose(scores, (residual**2).mean(axis=1), rtol=1e-6, atol=1e-12)
    else:
        d = np.linalg.norm(Z[:, None, :] - trainer.centroids_[None, :, :], axis=2)
        nearest = d.argmin(axis=1)
        scale = np.array([np.sqrt((d[nearest == c, c] ** 2).mean()) for c in range(4)])
        np.testing.assert_allclose(scores, (d / scale).min(axis=1), rtol=1e-9)
    none = FUNCTIONS["DETECT_ANOMALIES"](model, table, {"contamination": 0.0}, [])
    assert not any(none["is_anomaly"].to_pylist())


def test_detect_anomalies_needs_contamination_and_rows() -> None:
    table = _sklearn("diabetes").drop_columns(["y"])
    model = _sql_model(table, "pca", None, settings={"num_principal_components": 2}, anomaly=True)
    with pytest.raises(SqlError, match="contamination"):
        FUNCTIONS["DETECT_ANOMALIES"](model, table, {}, [])
    with pytest.raises(SqlError, match=r"contamination must be in \[0, 0.5\]"):
        FUNCTIONS["DETECT_ANOMALIES"](model, table, {"contamination": 0.7}, [])
    with pytest.raises(SqlError, match="needs the rows to check"):
        FUNCTIONS["DETECT_ANOMALIES"](model, None, {"contamination": 0.1}, [])
    with pytest.raises(SqlError, match="missing column 'bmi'"):
        FUNCTIONS["DETECT_ANOMALIES"](
            model, table.drop_columns(["bmi"]), {"contamination": 0.1}, []
        )


# ------------------------------------------------------------------------------------------------
# ML.PRINCIPAL_COMPONENTS, ML.PRINCIPAL_COMPONENT_INFO


def test_principal_components_and_info_match_numpy_svd() -> None:
    table = _sklearn("diabetes").drop_columns(["y"])
    model = _sql_model(table, "pca", None, settings={"num_principal_components": 4})
    out = FUNCTIONS["PRINCIPAL_COMPONENTS"](model, None, {}, [])
    assert _schema(out) == [
        ("principal_component_id", pa.int64()),
        ("feature", pa.string()),
        ("numerical_value", pa.float64()),
        ("categorical_value", CATEGORY_VALUES),
    ]
    X = np.column_stack([table[c].to_numpy() for c in table.column_names])
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    _, s, Vt = np.linalg.svd(Z, full_matrices=False)
    for r in out.to_pylist():
        i, j = r["principal_component_id"] - 1, table.column_names.index(r["feature"])
        sign = np.sign(Vt[i, np.abs(Vt[i]).argmax()])
        assert r["numerical_value"] == pytest.approx(sign * Vt[i, j], abs=1e-9)
    info = FUNCTIONS["PRINCIPAL_COMPONENT_INFO"](model, None, {}, [])
    assert _schema(info) == [
        ("principal_component_id", pa.int64()),
        ("eigenvalue", pa.float64()),
        ("explained_variance_ratio", pa.float64()),
        ("cumulative_explained_variance_ratio", pa.float64()),
    ]
    ratio = s**2 / (s**2).sum()
    assert info["principal_component_id"].to_pylist() == [1, 2, 3, 4]
    np.testing.assert_allclose(info["eigenvalue"].to_numpy(), s[:4] ** 2 / (len(X) - 1))
    np.testing.assert_allclose(info["explained_variance_ratio"].to_numpy(), ratio[:4])
    np.testing.assert_allclose(
        info["cumulative_explained_variance_ratio"].to_numpy(), np.cumsum(ratio)[:4]
    )


# ------------------------------------------------------------------------------------------------
# errors worded like BigQuery's


def test_wrong_model_type_unknown_setting_and_missing_input(mixed_linear: SqlModel) -> None:
    with pytest.raises(SqlError, match=r"ML\.CENTROIDS is only supported for k-means models"):
        FUNCTIONS["CENTROIDS"](mixed_linear, None, {}, [])
    with pytest.raises(SqlError, match=r"ML\.PRINCIPAL_COMPONENTS is only supported for PCA"):
        FUNCTIONS["PRINCIPAL_COMPONENTS"](mixed_linear, None, {}, [])
    with pytest.raises(SqlError, match=r"ML\.DETECT_ANOMALIES is only supported for k-means"):
        FUNCTIONS["DETECT_ANOMALIES"](mixed_linear, _mixed(), {"contamination": 0.1}, [])
    with pytest.raises(
        SqlError, match="does not take setting 'standardise'; it takes: standardize"
    ):
        FUNCTIONS["WEIGHTS"](mixed_linear, None, {"standardise": True}, [])
    with pytest.raises(SqlError, match="standardize must be TRUE or FALSE"):
        FUNCTIONS["WEIGHTS"](mixed_linear, None, {"standardize": 1}, [])
    with pytest.raises(SqlError, match=r"ML\.EXPLAIN_PREDICT needs input data"):
        FUNCTIONS["EXPLAIN_PREDICT"](mixed_linear, None, {}, [])
    with pytest.raises(SqlError, match="threshold applies to binary classification"):
        FUNCTIONS["EXPLAIN_PREDICT"](mixed_linear, _mixed(), {"threshold": 0.3}, [])
    kmeans = _sql_model(_mixed().drop_columns(["y"]), "kmeans", None)
    with pytest.raises(SqlError, match=r"ML\.WEIGHTS is only supported for linear and logistic"):
        FUNCTIONS["WEIGHTS"](kmeans, None, {}, [])
    with pytest.raises(SqlError, match=r"ML\.EXPLAIN_PREDICT is only supported for regression"):
        FUNCTIONS["EXPLAIN_PREDICT"](kmeans, _mixed(), {}, [])
