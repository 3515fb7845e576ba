"""kiln.sql's ML.PREDICT / EVALUATE / CONFUSION_MATRIX / ROC_CURVE / TRAINING_INFO / FEATURE_INFO:
BigQuery's output columns, order and types, on real Kiln models, metrics checked against
scikit-learn."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression
from sklearn.preprocessing import StandardScaler

from kiln.errors import SqlError
from kiln.model import Model
from kiln.sql._ml_eval import (
    FUNCTIONS,
    class_column_names,
    default_thresholds,
    ml_confusion_matrix,
    ml_evaluate,
    ml_feature_info,
    ml_predict,
    ml_roc_curve,
    ml_training_info,
    ml_trial_info,
    training_summary,
)
from kiln.sql._model import SqlModel

F64 = pa.float64()
I64 = pa.int64()


def _table(bunch: Any, label: str | None = "y") -> pa.Table:
    names = [f"f{i}" for i in range(bunch.data.shape[1])]
    columns = {n: pa.array(bunch.data[:, i]) for i, n in enumerate(names)}
    if label:
        columns[label] = pa.array(bunch.target)
    return pa.table(columns)


def _split(table: pa.Table, seed: int = 0) -> tuple[pa.Table, pa.Table]:
    order = np.random.default_rng(seed).permutation(table.num_rows)
    cut = int(table.num_rows * 0.7)
    return table.take(pa.array(order[:cut])), table.take(pa.array(order[cut:]))


def _sql_model(
    model_type: str,
    train: pa.Table,
    evaluation: pa.Table | None = None,
    *,
    label: str | None = "y",
    settings: dict[str, Any] | None = None,
) -> SqlModel:
    fit_on = train if label else train.drop_columns([c for c in ("y",) if c in train.schema.names])
    model = Model.fit(fit_on, model_type=model_type, label=label, settings=settings)
    info = {"model_type": model_type, "options": {}} | training_summary(
        model, model_type, train, evaluation
    )
    model.info["sql"] = info
    return SqlModel(f"ds.{model_type}", 1, model, info)


def _names_types(table: pa.Table) -> list[tuple[str, pa.DataType]]:
    return [(f.name, f.type) for f in table.schema]


def _p1(model: SqlModel, table: pa.Table) -> np.ndarray[Any, Any]:
    probs = model.model.predict(table)["predicted_y_probs"].combine_chunks()
    flat = pc.struct_field(pc.list_flatten(probs), "prob").to_numpy()
    return np.asarray(flat).reshape(table.num_rows, -1)[:, 1]


PROBS = pa.list_(pa.struct([("label", I64), ("prob", F64)]))
CLASSIFICATION = [
    (n, F64) for n in ("precision", "recall", "accuracy", "f1_score", "log_loss", "roc_auc")
]
REGRESSION = [
    (n, F64)
    for n in (
        "mean_absolute_error",
        "mean_squared_error",
        "mean_squared_log_error",
        "median_absolute_error",
        "r2_score",
        "explained_variance",
    )
]
ROC = [
    ("threshold", F64),
    ("recall", F64),
    ("false_positive_rate", F64),
    ("true_positives", I64),
    ("false_positives", I64),
    ("true_negatives", I64),
    ("false_negatives", I64),
]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cancer() -> tuple[pa.Table, pa.Table]:
    return _split(_table(load_breast_cancer()))


@pytest.fixture(scope="module")
def binary(cancer: tuple[pa.Table, pa.Table]) -> SqlModel:
    return _sql_model("logistic_reg", *cancer)


@pytest.fixture(scope="module")
def iris() -> pa.Table:
    return _table(load_iris())


@pytest.fixture(scope="module")
def multiclass(iris: pa.Table) -> SqlModel:
    train, evaluation = _split(iris, seed=1)
    return _sql_model("boosted_tree_classifier", train, evaluation)


@pytest.fixture(scope="module")
def species(iris: pa.Table) -> SqlModel:
    names = np.array(["Iris-setosa", "Iris-versicolor", "Iris-virginica"])
    table = iris.set_column(4, "y", pa.array(names[iris["y"].to_numpy()]))
    return _sql_model("logistic_reg", table)


@pytest.fixture(scope="module")
def diabetes() -> tuple[pa.Table, pa.Table]:
    return _split(_table(load_diabetes()))


@pytest.fixture(scope="module")
def regressor(diabetes: tuple[pa.Table, pa.Table]) -> SqlModel:
    return _sql_model("linear_reg", *diabetes)


@pytest.fixture(scope="module")
def kmeans(iris: pa.Table) -> SqlModel:
    settings = {"num_clusters": 3, "early_stop": False, "max_iterations": 100}  # to convergence
    return _sql_model("kmeans", iris.drop_columns(["y"]), label=None, settings=settings)


@pytest.fixture(scope="module")
def pca(iris: pa.Table) -> SqlModel:
    return _sql_model(
        "pca", iris.drop_columns(["y"]), label=None, settings={"num_principal_components": 2}
    )


# --------------------------------------------------------------------------- ML.PREDICT


def test_functions_are_bigquerys_names() -> None:
    assert {
        "PREDICT": ml_predict,
        "EVALUATE": ml_evaluate,
        "CONFUSION_MATRIX": ml_confusion_matrix,
        "ROC_CURVE": ml_roc_curve,
        "TRAINING_INFO": ml_training_info,
        "FEATURE_INFO": ml_feature_info,
        "TRIAL_INFO": ml_trial_info,
    } == FUNCTIONS


def test_predict_binary_columns_then_inputs_zero_copy(
    binary: SqlModel, cancer: tuple[pa.Table, pa.Table]
) -> None:
    table = cancer[1]
    out = ml_predict(binary, table, {}, [])
    assert _names_types(out) == [
        ("predicted_y", I64),
        ("predicted_y_probs", PROBS),
        *_names_types(table),
    ]
    assert out.num_rows == table.num_rows
    for name in table.column_names:  # the input columns are the caller's buffers, not copies
        assert out[name].chunk(0).buffers()[1].address == table[name].chunk(0).buffers()[1].address
    p1 = _p1(binary, table)
    np.testing.assert_array_equal(out["predicted_y"].to_numpy(), (p1 > 0.5).astype(np.int64))
    first = out["predicted_y_probs"][0].as_py()
    assert [e["label"] for e in first] == [0, 1]
    assert first[1]["prob"] == pytest.approx(p1[0])
    # a good model: scikit-learn's accuracy of the predicted labels is high
    assert skm.accuracy_score(table["y"].to_numpy(), out["predicted_y"].to_numpy()) > 0.93


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.9, 1.0])
def test_predict_threshold_is_above_the_cut(
    binary: SqlModel, cancer: tuple[pa.Table, pa.Table], threshold: float
) -> None:
    table = cancer[1]
    out = ml_predict(binary, table, {"threshold": threshold}, [])
    p1 = _p1(binary, table)
    expected = (p1 > threshold).astype(np.int64)
    np.testing.assert_array_equal(out["predicted_y"].to_numpy(), expected)
    assert out.schema.field("predicted_y").type == I64
    if threshold == 1.0:
        assert out["predicted_y"].to_pylist() == [0] * table.num_rows


def test_predict_regression_matches_least_squares(
    regressor: SqlModel, diabetes: tuple[pa.Table, pa.Table]
) -> None:
    train, test = diabetes
    out = ml_predict(regressor, test, {}, [])
    assert _names_types(out) == [("predicted_y", F64), *_names_types(test)]
    features = [c for c in train.column_names if c != "y"]
    reference = LinearRegression().fit(
        np.column_stack([train[c].to_numpy() for c in features]), train["y"].to_numpy()
    )
    expected = reference.predict(np.column_stack([test[c].to_numpy() for c in features]))
    np.testing.assert_allclose(out["predicted_y"].to_numpy(), expected, rtol=1e-4, atol=1e-3)


def test_predict_kmeans(kmeans: SqlModel, iris: pa.Table) -> None:
    out = ml_predict(kmeans, iris, {}, [])
    distances = pa.list_(pa.struct([("centroid_id", I64), ("distance", F64)]))
    assert _names_types(out) == [
        ("centroid_id", I64),
        ("nearest_centroids_distance", distances),
        *_names_types(iris),
    ]
    ids = out["centroid_id"].to_numpy()
    assert set(ids.tolist()) == {1, 2, 3}
    first = out["nearest_centroids_distance"][0].as_py()
    assert first[0]["centroid_id"] == ids[0]
    assert [d["distance"] for d in first] == sorted(d["distance"] for d in first)
    # the three clusters line up with the species (adjusted Rand well above chance)
    assert skm.adjusted_rand_score(iris["y"].to_numpy(), ids) > 0.4


def test_predict_pca_components_only_unless_kept(pca: SqlModel, iris: pa.Table) -> None:
    features = iris.drop_columns(["y"])
    out = ml_predict(pca, features, {}, [])
    assert _names_types(out) == [("principal_component_1", F64), ("principal_component_2", F64)]
    kept = ml_predict(pca, features, {"KEEP_ORIGINAL_COLUMNS": True}, [])
    assert kept.column_names == [
        "principal_component_1",
        "principal_component_2",
        "f0",
        "f1",
        "f2",
        "f3",
    ]
    scaled = StandardScaler().fit_transform(np.column_stack(list(features.to_pydict().values())))
    reference = PCA(n_components=2).fit_transform(scaled)
    for i in range(2):  # same axes, up to sign
        r = np.corrcoef(out[f"principal_component_{i + 1}"].to_numpy(), reference[:, i])[0, 1]
        assert abs(r) == pytest.approx(1.0, abs=1e-6)


def test_predict_errors(
    binary: SqlModel, multiclass: SqlModel, regressor: SqlModel, iris: pa.Table
) -> None:
    table = iris
    with pytest.raises(SqlError, match=r"ML\.PREDICT needs input rows"):
        ml_predict(binary, None, {}, [])
    with pytest.raises(SqlError, match=r"does not take the setting 'horizon'.*threshold"):
        ml_predict(binary, table, {"horizon": 3}, [])
    with pytest.raises(SqlError, match=r"only supported for binary classification.*3-class"):
        ml_predict(multiclass, table, {"threshold": 0.6}, [])
    with pytest.raises(SqlError, match=r"binary classification models; .* regression"):
        ml_predict(regressor, table, {"threshold": 0.6}, [])
    with pytest.raises(SqlError, match=r"threshold must be a FLOAT64 between 0 and 1, got 1.5"):
        ml_predict(binary, table, {"threshold": 1.5}, [])
    with pytest.raises(SqlError, match="keep_original_columns is only supported for PCA"):
        ml_predict(multiclass, table, {"keep_original_columns": True}, [])
    with pytest.raises(SqlError, match="trial_id is not supported"):
        ml_predict(multiclass, table, {"trial_id": 1}, [])
    with pytest.raises(SqlError, match=r"ds\.logistic_reg: .*missing column 'f4'"):
        ml_predict(binary, table, {}, [])
    clash = table.append_column("predicted_y", pa.array([0] * table.num_rows))
    with pytest.raises(SqlError, match="input column 'predicted_y' has the name of an output"):
        ml_predict(multiclass, clash, {}, [])


# --------------------------------------------------------------------------- ML.EVALUATE


@pytest.mark.parametrize("threshold", [None, 0.3])
def test_evaluate_binary_matches_sklearn(
    binary: SqlModel, cancer: tuple[pa.Table, pa.Table], threshold: float | None
) -> None:
    table = cancer[1]
    settings = {} if threshold is None else {"threshold": threshold}
    out = ml_evaluate(binary, table, settings, [])
    assert _names_types(out) == CLASSIFICATION
    assert out.num_rows == 1
    row = out.to_pylist()[0]
    y = table["y"].to_numpy()
    p1 = _p1(binary, table)
    predicted = (p1 > (threshold or 0.5)).astype(int)
    assert row["precision"] == pytest.approx(skm.precision_score(y, predicted))
    assert row["recall"] == pytest.approx(skm.recall_score(y, predicted))
    assert row["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted))
    assert row["f1_score"] == pytest.approx(skm.f1_score(y, predicted))
    assert row["log_loss"] == pytest.approx(skm.log_loss(y, p1), rel=1e-6)
    assert row["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p1))


def test_evaluate_multiclass_macro_averages(multiclass: SqlModel, iris: pa.Table) -> None:
    out = ml_evaluate(multiclass, iris, {}, [])
    assert _names_types(out) == CLASSIFICATION
    row = out.to_pylist()[0]
    y = iris["y"].to_numpy()
    predictions = multiclass.model.predict(iris)
    predicted = predictions["predicted_y"].to_numpy()
    proba = np.asarray(
        pc.struct_field(
            pc.list_flatten(predictions["predicted_y_probs"].combine_chunks()), "prob"
        ).to_numpy()
    ).reshape(-1, 3)
    assert row["precision"] == pytest.approx(skm.precision_score(y, predicted, average="macro"))
    assert row["recall"] == pytest.approx(skm.recall_score(y, predicted, average="macro"))
    assert row["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted))
    assert row["f1_score"] == pytest.approx(skm.f1_score(y, predicted, average="macro"))
    assert row["log_loss"] == pytest.approx(skm.log_loss(y, proba), rel=1e-6)
    assert row["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr", average="macro")
    )


def test_evaluate_regression_matches_sklearn(
    regressor: SqlModel, diabetes: tuple[pa.Table, pa.Table]
) -> None:
    test = diabetes[1]
    out = ml_evaluate(regressor, test, {}, [])
    assert _names_types(out) == REGRESSION
    row = out.to_pylist()[0]
    y = test["y"].to_numpy()
    pred = regressor.model.predict(test)["predicted_y"].to_numpy()
    assert row["mean_absolute_error"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert row["mean_squared_error"] == pytest.approx(skm.mean_squared_error(y, pred))
    assert row["mean_squared_log_error"] == pytest.approx(skm.mean_squared_log_error(y, pred))
    assert row["median_absolute_error"] == pytest.approx(skm.median_absolute_error(y, pred))
    assert row["r2_score"] == pytest.approx(skm.r2_score(y, pred))
    assert row["explained_variance"] == pytest.approx(skm.explained_variance_score(y, pred))


def test_evaluate_kmeans_matches_sklearn(kmeans: SqlModel, iris: pa.Table) -> None:
    out = ml_evaluate(kmeans, iris, {}, [])
    assert _names_types(out) == [("davies_bouldin_index", F64), ("mean_squared_distance", F64)]
    row = out.to_pylist()[0]
    X = np.asarray(kmeans.model.transform.transform(iris.drop_columns(["y"])).X)
    ids = ml_predict(kmeans, iris, {}, [])["centroid_id"].to_numpy()
    centers = np.asarray(kmeans.model.trainer.centroids_)  # type: ignore[attr-defined]
    # k-means converged: each centroid is the mean of its rows, as scikit-learn assumes
    np.testing.assert_allclose(centers[0], X[ids == 1].mean(axis=0), rtol=1e-9)
    assert row["davies_bouldin_index"] == pytest.approx(skm.davies_bouldin_score(X, ids))
    expected_msd = float(((X - centers[ids - 1]) ** 2).sum(axis=1).mean())
    assert row["mean_squared_distance"] == pytest.approx(expected_msd)


def test_evaluate_pca_is_the_models_explained_variance(pca: SqlModel, iris: pa.Table) -> None:
    features = iris.drop_columns(["y"])
    out = ml_evaluate(pca, features.slice(0, 5), {}, [])
    assert _names_types(out) == [("total_explained_variance_ratio", F64)]
    scaled = StandardScaler().fit_transform(np.column_stack(list(features.to_pydict().values())))
    expected = PCA(n_components=2).fit(scaled).explained_variance_ratio_.sum()
    assert out["total_explained_variance_ratio"][0].as_py() == pytest.approx(expected)
    assert ml_evaluate(pca, None, {}, []).equals(out)


def test_evaluate_without_data_returns_the_training_evaluation(
    binary: SqlModel, regressor: SqlModel, cancer: tuple[pa.Table, pa.Table], kmeans: SqlModel
) -> None:
    stored = ml_evaluate(binary, None, {}, [])
    assert stored.equals(ml_evaluate(binary, cancer[1], {}, []))  # the evaluation split
    assert _names_types(ml_evaluate(regressor, None, {}, [])) == REGRESSION
    assert ml_evaluate(kmeans, None, {}, []).num_rows == 1
    with pytest.raises(SqlError, match=r"threshold other than 0.5 needs input data"):
        ml_evaluate(binary, None, {"threshold": 0.7}, [])


def test_evaluate_label_checks(binary: SqlModel, cancer: tuple[pa.Table, pa.Table]) -> None:
    table = cancer[1]
    with pytest.raises(SqlError, match=r"ML\.EVALUATE: the input data has no column 'y'"):
        ml_evaluate(binary, table.drop_columns(["y"]), {}, [])
    # rows with a NULL label are left out
    nulls = pa.table(
        {n: pa.array([None] * 3, table.schema.field(n).type) for n in table.column_names}
    )
    padded = pa.concat_tables([table, nulls.set_column(0, "f0", pa.array([1.0] * 3))])
    assert ml_evaluate(binary, padded, {}, []).equals(ml_evaluate(binary, table, {}, []))
    with pytest.raises(SqlError, match="no row with a non-NULL 'y'"):
        ml_evaluate(binary, nulls, {}, [])
    with pytest.raises(SqlError, match="takes no argument after"):
        ml_evaluate(binary, table, {}, [[0.5]])


# --------------------------------------------------------------------------- ML.CONFUSION_MATRIX


@pytest.mark.parametrize("threshold", [None, 0.2])
def test_confusion_matrix_binary_matches_sklearn(
    binary: SqlModel, cancer: tuple[pa.Table, pa.Table], threshold: float | None
) -> None:
    table = cancer[1]
    settings = {} if threshold is None else {"threshold": threshold}
    out = ml_confusion_matrix(binary, table, settings, [])
    assert _names_types(out) == [("expected_label", I64), ("_0", I64), ("_1", I64)]
    y = table["y"].to_numpy()
    predicted = (_p1(binary, table) > (threshold or 0.5)).astype(int)
    assert out["expected_label"].to_pylist() == [0, 1]
    matrix = np.column_stack([out["_0"].to_numpy(), out["_1"].to_numpy()])
    np.testing.assert_array_equal(matrix, skm.confusion_matrix(y, predicted))


def test_confusion_matrix_string_labels_and_stored(species: SqlModel, iris: pa.Table) -> None:
    names = np.array(["Iris-setosa", "Iris-versicolor", "Iris-virginica"])
    table = iris.set_column(4, "y", pa.array(names[iris["y"].to_numpy()]))
    out = ml_confusion_matrix(species, table, {}, [])
    assert _names_types(out) == [
        ("expected_label", pa.string()),
        ("Iris_setosa", I64),
        ("Iris_versicolor", I64),
        ("Iris_virginica", I64),
    ]
    predicted = species.model.predict(table)["predicted_y"].to_pylist()
    expected = skm.confusion_matrix(table["y"].to_pylist(), predicted, labels=list(names))
    got = np.column_stack([out[c].to_numpy() for c in out.column_names[1:]])
    np.testing.assert_array_equal(got, expected)
    assert out["expected_label"].to_pylist() == list(names)
    # trained without an evaluation split: the stored matrix is on the training rows
    assert ml_confusion_matrix(species, None, {}, []).equals(out)


def test_confusion_matrix_errors(regressor: SqlModel, multiclass: SqlModel, iris: pa.Table) -> None:
    with pytest.raises(SqlError, match=r"ML\.CONFUSION_MATRIX is only supported for class"):
        ml_confusion_matrix(regressor, None, {}, [])
    with pytest.raises(SqlError, match="threshold is only supported for binary"):
        ml_confusion_matrix(multiclass, iris, {"threshold": 0.5}, [])


def test_class_column_names_follow_bigquery() -> None:
    assert class_column_names([0, 1]) == ["_0", "_1"]
    assert class_column_names([False, True]) == ["false", "true"]
    assert class_column_names(["yes", "no way", "9lives"]) == ["yes", "no_way", "_9lives"]
    assert class_column_names([-1, 1]) == ["_1", "_1_2"]
    assert class_column_names(["a-b", "a_b", "A_B"]) == ["a_b", "a_b_2", "A_B_3"]
    assert class_column_names(["expected_label"]) == ["expected_label_2"]


# --------------------------------------------------------------------------- ML.ROC_CURVE


def test_roc_curve_default_thresholds_match_sklearn_counts(
    binary: SqlModel, cancer: tuple[pa.Table, pa.Table]
) -> None:
    table = cancer[1]
    out = ml_roc_curve(binary, table, {}, [])
    assert _names_types(out) == ROC
    p1 = _p1(binary, table)
    y = table["y"].to_numpy()
    cuts = out["threshold"].to_numpy()
    np.testing.assert_array_equal(cuts, default_thresholds(p1))
    assert np.all(np.diff(cuts) < 0)  # distinct, highest first
    assert cuts[0] == p1.max()
    assert cuts[-1] == p1.min()
    assert 2 < out.num_rows <= 101
    for row in out.to_pylist():
        tn, fp, fn, tp = skm.confusion_matrix(y, (p1 > row["threshold"]).astype(int)).ravel()
        assert (row["true_positives"], row["false_positives"]) == (tp, fp)
        assert (row["true_negatives"], row["false_negatives"]) == (tn, fn)
        assert row["recall"] == pytest.approx(tp / (tp + fn))
        assert row["false_positive_rate"] == pytest.approx(fp / (fp + tn))


def test_roc_curve_given_thresholds_and_stored(
    binary: SqlModel, cancer: tuple[pa.Table, pa.Table]
) -> None:
    table = cancer[1]
    cuts = [0.4, 0.5, 0.6]
    out = ml_roc_curve(binary, table, {}, [cuts])
    assert out["threshold"].to_pylist() == cuts
    y = table["y"].to_numpy()
    p1 = _p1(binary, table)
    assert out["recall"].to_pylist()[1] == pytest.approx(skm.recall_score(y, p1 > 0.5))
    stored = ml_roc_curve(binary, None, {}, [])
    assert stored.equals(ml_roc_curve(binary, table, {}, []))


def test_roc_curve_errors(
    binary: SqlModel, multiclass: SqlModel, regressor: SqlModel, iris: pa.Table
) -> None:
    with pytest.raises(SqlError, match=r"only supported for binary classification.*3-class"):
        ml_roc_curve(multiclass, iris, {}, [])
    with pytest.raises(SqlError, match=r"binary classification models; model ds\.linear_reg"):
        ml_roc_curve(regressor, None, {}, [])
    with pytest.raises(SqlError, match="every threshold must be a number; got 'x'"):
        ml_roc_curve(binary, iris, {}, [[0.1, "x"]])
    with pytest.raises(SqlError, match="does not take the setting 'threshold'"):
        ml_roc_curve(binary, iris, {"threshold": 0.5}, [])


# --------------------------------------------------------------------------- ML.TRAINING_INFO


def test_training_info_linear(binary: SqlModel) -> None:
    out = ml_training_info(binary, None, {}, [])
    assert _names_types(out) == [
        ("training_run", I64),
        ("iteration", I64),
        ("loss", F64),
        ("eval_loss", F64),
        ("learning_rate", F64),
        ("duration_ms", I64),
    ]
    infos = binary.model.trainer.training_info_
    assert out.num_rows == len(infos) > 1
    assert out["iteration"].to_pylist() == list(range(len(infos)))
    assert out["training_run"].to_pylist() == [0] * len(infos)
    assert out["loss"].to_pylist() == [i.loss for i in infos]
    assert out["loss"][len(infos) - 1].as_py() < out["loss"][0].as_py()
    with pytest.raises(SqlError, match=r"ML\.TRAINING_INFO takes only a model"):
        ml_training_info(binary, pa.table({"a": [1]}), {}, [])


def test_training_info_boosted_trees_have_learning_rate(multiclass: SqlModel) -> None:
    out = ml_training_info(multiclass, None, {}, [])
    assert out.column_names[-1] == "duration_ms"
    rates = set(out["learning_rate"].to_pylist())
    assert rates == {multiclass.model.trainer.get_params()["learn_rate"]}
    assert out.num_rows == len(multiclass.model.trainer.training_info_)


def test_training_info_kmeans_cluster_info(kmeans: SqlModel, iris: pa.Table) -> None:
    out = ml_training_info(kmeans, None, {}, [])
    info_type = pa.list_(
        pa.struct([("centroid_id", I64), ("cluster_radius", F64), ("cluster_size", I64)])
    )
    assert out.schema.field("cluster_info").type == info_type
    assert out.column_names[-1] == "cluster_info"
    clusters = out["cluster_info"][out.num_rows - 1].as_py()
    ids = ml_predict(kmeans, iris, {}, [])["centroid_id"].to_numpy()
    assert [c["centroid_id"] for c in clusters] == [1, 2, 3]
    assert [c["cluster_size"] for c in clusters] == np.bincount(ids)[1:].tolist()
    distance = pc.struct_field(
        pc.list_element(ml_predict(kmeans, iris, {}, [])["nearest_centroids_distance"], 0),
        "distance",
    ).to_numpy()
    assert clusters[0]["cluster_radius"] == pytest.approx(distance[ids == 1].mean())


# --------------------------------------------------------------------------- ML.FEATURE_INFO


def test_feature_info_numeric_and_categorical(diabetes: tuple[pa.Table, pa.Table]) -> None:
    train = diabetes[0]
    band = np.where(train["f0"].to_numpy() > 0, "old", "young").astype(object)
    band[:3] = None
    holes = train["f1"].to_numpy().copy()
    with_nulls = pa.array(holes, mask=np.arange(len(holes)) < 5)
    table = train.set_column(1, "f1", with_nulls).append_column("band", pa.array(band))
    model = _sql_model("linear_reg", table)
    out = ml_feature_info(model, None, {}, [])
    assert _names_types(out) == [
        ("input", pa.string()),
        ("min", F64),
        ("max", F64),
        ("mean", F64),
        ("median", F64),
        ("stddev", F64),
        ("category_count", I64),
        ("null_count", I64),
        ("dimension", I64),
    ]
    rows = {r["input"]: r for r in out.to_pylist()}
    assert list(rows) == [c for c in table.column_names if c != "y"]
    f2 = train["f2"].to_numpy()
    assert rows["f2"]["min"] == f2.min()
    assert rows["f2"]["max"] == f2.max()
    assert rows["f2"]["mean"] == pytest.approx(f2.mean())
    assert rows["f2"]["median"] == pytest.approx(np.median(f2))
    assert rows["f2"]["stddev"] == pytest.approx(np.std(f2, ddof=1))
    assert rows["f2"]["category_count"] is None
    assert rows["f2"]["dimension"] is None
    assert rows["f1"]["null_count"] == 5
    assert rows["f1"]["mean"] == pytest.approx(holes[5:].mean())
    assert rows["band"]["category_count"] == 2
    assert rows["band"]["null_count"] == 3
    assert rows["band"]["min"] is None
    with pytest.raises(SqlError, match=r"ML\.FEATURE_INFO takes only a model"):
        ml_feature_info(model, table, {}, [])


# --------------------------------------------------------------------------- stored summary


def test_training_summary_is_json_and_survives_save(
    binary: SqlModel, cancer: tuple[pa.Table, pa.Table], tmp_path: Any
) -> None:
    summary = training_summary(binary.model, "logistic_reg", *cancer)
    assert set(summary) == {"feature_info", "evaluation", "confusion_matrix", "roc_curve"}
    assert json.loads(json.dumps(summary, allow_nan=False)) == summary
    binary.model.save(tmp_path / "m")
    loaded = Model.load(tmp_path / "m")
    again = SqlModel("ds.m", 2, loaded, loaded.info["sql"])
    assert ml_evaluate(again, None, {}, []).equals(ml_evaluate(binary, None, {}, []))
    assert ml_training_info(again, None, {}, []).equals(ml_training_info(binary, None, {}, []))
    assert ml_confusion_matrix(again, None, {}, []).equals(
        ml_confusion_matrix(binary, None, {}, [])
    )
