"""kiln.evaluate: every metric against scikit-learn's, slices, blessing, permutation importance."""

from __future__ import annotations

import functools
import json
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.preprocessing import label_binarize

from kiln.errors import DataError, TrainingError
from kiln.evaluate import (
    MAX_CURVE_POINTS,
    Blessing,
    MetricThreshold,
    bless,
    classification_metrics,
    clustering_metrics,
    permutation_importance,
    regression_metrics,
    sliced_metrics,
)

TOL = 1e-9


def _binary(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.35 * y + rng.uniform(0, 0.65, n), 0, 1).round(2)  # ties on purpose
    return y, p


def _multiclass(n: int = 500, k: int = 4, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.2
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


# --------------------------------------------------------------------------- classification


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_binary_metrics_match_sklearn(weighted: bool, threshold: float) -> None:
    y, p = _binary()
    w = np.random.default_rng(5).uniform(0.1, 3.0, y.size) if weighted else None
    m = classification_metrics(y, p, classes=[0, 1], threshold=threshold, sample_weight=w)
    pred = (p >= threshold).astype(int)
    prec, rec, f1, _ = skm.precision_recall_fscore_support(
        y, pred, average="binary", sample_weight=w, zero_division=0
    )
    assert m["precision"] == pytest.approx(prec, abs=TOL)
    assert m["recall"] == pytest.approx(rec, abs=TOL)
    assert m["f1_score"] == pytest.approx(f1, abs=TOL)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred, sample_weight=w), abs=TOL)
    proba = np.column_stack([1 - p, p])
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba, sample_weight=w), abs=TOL)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p, sample_weight=w), abs=TOL)
    ap = skm.average_precision_score(y, p, sample_weight=w)
    assert m["pr_auc"] == pytest.approx(ap, abs=TOL)
    cm = skm.confusion_matrix(y, pred, sample_weight=w)
    np.testing.assert_allclose(m["confusion_matrix"]["matrix"], cm, atol=TOL)
    assert m["confusion_matrix"]["labels"] == [0, 1]
    assert m["threshold"] == threshold
    per = skm.precision_recall_fscore_support(y, pred, sample_weight=w, zero_division=0)
    for i, row in enumerate(m["per_class"]):
        assert row["precision"] == pytest.approx(per[0][i], abs=TOL)
        assert row["recall"] == pytest.approx(per[1][i], abs=TOL)
        assert row["f1_score"] == pytest.approx(per[2][i], abs=TOL)
        assert row["support"] == pytest.approx(per[3][i] if w is None else w[y == i].sum())
    json.dumps(m)  # JSON-ready: no NumPy scalars, no infinities


def test_multiclass_metrics_are_macro_like_bigquery() -> None:
    y, proba = _multiclass()
    classes = [0, 1, 2, 3]
    m = classification_metrics(y, proba, classes=classes)
    pred = proba.argmax(axis=1)
    prec, rec, f1, _ = skm.precision_recall_fscore_support(
        y, pred, average="macro", zero_division=0
    )
    assert m["precision"] == pytest.approx(prec, abs=TOL)
    assert m["recall"] == pytest.approx(rec, abs=TOL)
    assert m["f1_score"] == pytest.approx(f1, abs=TOL)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=TOL)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba), abs=TOL)
    auc = skm.roc_auc_score(y, proba, multi_class="ovr", average="macro")
    assert m["roc_auc"] == pytest.approx(auc, abs=TOL)
    ap = skm.average_precision_score(label_binarize(y, classes=classes), proba, average="macro")
    assert m["pr_auc"] == pytest.approx(ap, abs=TOL)
    assert m["confusion_matrix"]["matrix"] == skm.confusion_matrix(y, pred).tolist()
    assert m["threshold"] is None
    assert len(m["roc_curve"]) == len(m["pr_curve"]) == 4
    assert m["calibration"]["of"] == "confidence of the top class"


def test_multiclass_weighted_matches_sklearn() -> None:
    y, proba = _multiclass(seed=3)
    w = np.random.default_rng(2).uniform(0.5, 2.0, y.size)
    m = classification_metrics(y, proba, classes=[0, 1, 2, 3], sample_weight=w)
    auc = skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", sample_weight=w)
    assert m["roc_auc"] == pytest.approx(auc, abs=TOL)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba, sample_weight=w), abs=TOL)
    pred = proba.argmax(axis=1)
    f1 = skm.f1_score(y, pred, average="macro", sample_weight=w, zero_division=0)
    assert m["f1_score"] == pytest.approx(f1, abs=TOL)


def test_string_labels_and_label_predictions() -> None:
    y = np.array(["cat", "dog", "bird", "dog", "cat", "bird", "dog"])
    pred = np.array(["cat", "dog", "dog", "dog", "bird", "bird", "cat"])
    classes = ["bird", "cat", "dog"]
    m = classification_metrics(y, pred, classes=classes)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=TOL)
    prec, rec, f1, _ = skm.precision_recall_fscore_support(
        y, pred, labels=classes, average="macro", zero_division=0
    )
    assert (m["precision"], m["recall"], m["f1_score"]) == pytest.approx((prec, rec, f1))
    assert m["confusion_matrix"]["matrix"] == skm.confusion_matrix(y, pred, labels=classes).tolist()
    assert m["log_loss"] is None
    assert m["roc_auc"] is None
    assert m["calibration"] is None
    assert any("labels, not probabilities" in note for note in m["notes"])


def test_string_binary_with_probabilities_positive_is_second_class() -> None:
    y = np.array(["no", "yes", "yes", "no", "yes", "no"])
    p_yes = np.array([0.2, 0.8, 0.4, 0.6, 0.9, 0.1])
    m = classification_metrics(y, p_yes, classes=["no", "yes"])
    assert m["positive_class"] == "yes"
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y == "yes", p_yes), abs=TOL)
    pred = np.where(p_yes >= 0.5, "yes", "no")
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred, pos_label="yes"), abs=TOL)


def test_inputs_from_arrow_and_polars() -> None:
    y, p = _binary(50)
    m = classification_metrics(pa.array(y), pl.Series(p), classes=[0, 1])
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=TOL)


def test_curves_are_thinned_and_match_sklearn_when_small() -> None:
    y, p = _binary(30)
    m = classification_metrics(y, p, classes=[0, 1])
    fpr, tpr, _ = skm.roc_curve(y, p, drop_intermediate=False)
    (roc,) = m["roc_curve"]
    np.testing.assert_allclose(roc["false_positive_rate"], fpr, atol=TOL)
    np.testing.assert_allclose(roc["recall"], tpr, atol=TOL)
    assert roc["thresholds"][0] is None
    precision, recall, _ = skm.precision_recall_curve(y, p)
    (pr,) = m["pr_curve"]
    np.testing.assert_allclose(pr["precision"], precision[::-1], atol=TOL)
    np.testing.assert_allclose(pr["recall"], recall[::-1], atol=TOL)

    rng = np.random.default_rng(0)
    big_y = rng.integers(0, 2, 5000)
    big = classification_metrics(big_y, rng.uniform(size=5000), classes=[0, 1])
    for curve in (big["roc_curve"][0], big["pr_curve"][0]):
        assert len(curve["recall"]) <= MAX_CURVE_POINTS
        assert len(curve["thresholds"]) == len(curve["recall"])
    assert big["roc_curve"][0]["recall"][0] == 0.0
    assert big["roc_curve"][0]["recall"][-1] == 1.0


def test_calibration_matches_sklearn_calibration_curve() -> None:
    y, p = _binary(1000, seed=4)
    cal = classification_metrics(y, p, classes=[0, 1])["calibration"]
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    filled = [b for b in cal["bins"] if b["count"] > 0]
    assert len(cal["bins"]) == 10
    np.testing.assert_allclose([b["fraction_positive"] for b in filled], prob_true, atol=TOL)
    np.testing.assert_allclose([b["mean_predicted"] for b in filled], prob_pred, atol=TOL)
    assert sum(b["count"] for b in cal["bins"]) == 1000
    assert 0.0 <= cal["expected_calibration_error"] <= 1.0


def test_single_class_in_y_true_gives_none_auc_with_note() -> None:
    m = classification_metrics([1, 1, 1], [0.9, 0.4, 0.7], classes=[0, 1])
    assert m["roc_auc"] is None
    assert any("single class" in note for note in m["notes"])
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["pr_auc"] == pytest.approx(1.0)

    y, proba = _multiclass(60, k=3)
    proba_missing = proba[y != 2]
    m = classification_metrics(y[y != 2], proba_missing, classes=[0, 1, 2])
    mask = y != 2
    auc01 = [skm.roc_auc_score(y[mask] == c, proba[mask][:, c]) for c in (0, 1)]
    assert m["roc_auc"] == pytest.approx(np.mean(auc01), abs=TOL)
    assert m["per_class"][2]["roc_auc"] is None
    assert any("macro average is over the others" in note for note in m["notes"])


@pytest.mark.parametrize(
    ("y", "pred", "match"),
    [
        ([], [], "empty"),
        ([0, 1], [0.5, np.nan], "NaN"),
        ([0, 1, 1], [0.5, 0.2], "2 rows but y_true has 3"),
        ([0, 2], [0.5, 0.2], "not one of the classes"),
        ([0, 1], [1.5, 0.2], r"\[0, 1\]"),
        ([0, 1], [[0.5, 0.6], [0.2, 0.8]], "sum to"),
    ],
)
def test_bad_classification_input_is_a_clear_data_error(y: Any, pred: Any, match: str) -> None:
    with pytest.raises(DataError, match=match):
        classification_metrics(np.asarray(y), np.asarray(pred, dtype=float), classes=[0, 1])


def test_bad_weights_and_classes() -> None:
    with pytest.raises(DataError, match="negative"):
        classification_metrics([0, 1], [0.1, 0.9], classes=[0, 1], sample_weight=[1, -1])
    with pytest.raises(DataError, match="at least two"):
        classification_metrics([0, 0], [0, 0], classes=[0])


# --------------------------------------------------------------------------- regression


def test_regression_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.gamma(2.0, 3.0, 300)
    pred = np.clip(y + rng.normal(0, 1.5, 300), 0, None)
    m = regression_metrics(y, pred)
    assert m["mean_absolute_error"] == pytest.approx(skm.mean_absolute_error(y, pred), abs=TOL)
    assert m["mean_squared_error"] == pytest.approx(skm.mean_squared_error(y, pred), abs=TOL)
    rmse = skm.root_mean_squared_error(y, pred)
    assert m["root_mean_squared_error"] == pytest.approx(rmse, abs=TOL)
    msle = skm.mean_squared_log_error(y, pred)
    assert m["mean_squared_log_error"] == pytest.approx(msle, abs=TOL)
    medae = skm.median_absolute_error(y, pred)
    assert m["median_absolute_error"] == pytest.approx(medae, abs=TOL)
    assert m["r2_score"] == pytest.approx(skm.r2_score(y, pred), abs=TOL)
    ev = skm.explained_variance_score(y, pred)
    assert m["explained_variance"] == pytest.approx(ev, abs=TOL)
    res = m["residuals"]
    assert res["quantiles"]["0.5"] == pytest.approx(np.median(y - pred), abs=TOL)
    assert sum(res["histogram"]["counts"]) == 300
    assert len(res["histogram"]["edges"]) == len(res["histogram"]["counts"]) + 1
    json.dumps(m)


def test_regression_degenerate_inputs() -> None:
    m = regression_metrics([-1.0, 2.0, 3.0], [0.0, 2.0, 3.5])
    assert m["mean_squared_log_error"] is None
    assert m["notes"]
    constant = regression_metrics([2.0, 2.0, 2.0], [2.0, 2.0, 2.0])
    assert constant["r2_score"] == skm.r2_score([2.0, 2.0, 2.0], [2.0, 2.0, 2.0]) == 1.0
    off = regression_metrics([2.0, 2.0], [1.0, 3.0])
    assert off["r2_score"] == skm.r2_score([2.0, 2.0], [1.0, 3.0])
    with pytest.raises(DataError, match="empty"):
        regression_metrics([], [])
    with pytest.raises(DataError, match="y_pred holds 1 NaN"):
        regression_metrics([1.0, 2.0], [1.0, float("nan")])


# --------------------------------------------------------------------------- clustering


def _blobs(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 0.0], [0.0, 6.0, 3.0]])
    labels = rng.integers(0, 3, n)
    return centers[labels] + rng.normal(size=(n, 3)), labels, centers


def test_clustering_metrics_match_sklearn() -> None:
    x, labels, _ = _blobs()
    m = clustering_metrics(x, labels)
    db = skm.davies_bouldin_score(x, labels)
    assert m["davies_bouldin_index"] == pytest.approx(db, abs=TOL)
    assert m["silhouette_score"] == pytest.approx(skm.silhouette_score(x, labels), abs=TOL)
    means = np.stack([x[labels == c].mean(axis=0) for c in range(3)])
    msd = ((x - means[labels]) ** 2).sum(axis=1).mean()
    assert m["mean_squared_distance"] == pytest.approx(msd, abs=TOL)
    assert [c["num_examples"] for c in m["cluster_sizes"]] == np.bincount(labels).tolist()
    json.dumps(m)


def test_clustering_with_string_labels_and_singletons() -> None:
    x = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [9.0, 0.0]])
    labels = np.array(["a", "a", "b", "c"])
    m = clustering_metrics(x, labels)
    assert m["silhouette_score"] == pytest.approx(skm.silhouette_score(x, labels), abs=TOL)
    assert m["davies_bouldin_index"] == pytest.approx(skm.davies_bouldin_score(x, labels))


def test_clustering_with_centroids_and_sampling() -> None:
    x, labels, centers = _blobs(600)
    m = clustering_metrics(x, labels, centers, sample_size=200, seed=3)
    msd = ((x - centers[labels]) ** 2).sum(axis=1).mean()
    assert m["mean_squared_distance"] == pytest.approx(msd, abs=TOL)
    full = skm.silhouette_score(x, labels)
    assert m["silhouette_score"] == pytest.approx(full, abs=0.05)
    assert any("seeded sample of 200" in note for note in m["notes"])
    again = clustering_metrics(x, labels, centers, sample_size=200, seed=3)
    assert again["silhouette_score"] == m["silhouette_score"]
    one = clustering_metrics(x, np.zeros(600, dtype=int))
    assert one["silhouette_score"] is None
    assert one["davies_bouldin_index"] is None
    with pytest.raises(DataError, match="index the 3 centroids"):
        clustering_metrics(x, labels + 1, centers)
    with pytest.raises(DataError, match="empty"):
        clustering_metrics(np.empty((0, 3)), np.empty(0))


# --------------------------------------------------------------------------- slices


def test_sliced_metrics_overall_first_then_values() -> None:
    y, p = _binary(200)
    rng = np.random.default_rng(9)
    country = rng.choice(["fr", "de", "us"], 200).tolist()
    country[3] = None
    device = rng.choice(["mobile", "desktop"], 200)
    table = pa.table({"country": country, "device": device})
    fn = functools.partial(classification_metrics, classes=[0, 1])
    result = sliced_metrics(table, y, p, slice_by=["country", ["country", "device"]], metric_fn=fn)
    assert result[0]["slice"] == {}
    assert result[0]["num_examples"] == 200
    assert result[0]["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=TOL)
    by_country = [r for r in result if list(r["slice"]) == ["country"]]
    assert [r["slice"]["country"] for r in by_country] == ["de", "fr", "us", None]
    for r in by_country:
        mask = np.array([c == r["slice"]["country"] for c in country])
        assert r["num_examples"] == mask.sum()
        if r["num_examples"] > 1:
            assert r["accuracy"] == pytest.approx(
                skm.accuracy_score(y[mask], p[mask] >= 0.5), abs=TOL
            )
    crosses = [r for r in result if list(r["slice"]) == ["country", "device"]]
    assert sum(r["num_examples"] for r in crosses) == 200
    # A one-row slice with a single class still gets metrics (roc_auc None), not a crash.
    assert next(r for r in by_country if r["slice"]["country"] is None)["roc_auc"] is None


def test_sliced_metrics_from_polars_and_mapping_and_errors() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([1.5, 2.0, 2.5, 4.0])
    frame = pl.DataFrame({"g": [1, 1, 2, 2]})
    result = sliced_metrics(frame, y, pred, slice_by=["g"], metric_fn=regression_metrics)
    assert [(r["slice"], r["num_examples"]) for r in result] == [
        ({}, 4),
        ({"g": 1}, 2),
        ({"g": 2}, 2),
    ]
    assert result[1]["mean_absolute_error"] == pytest.approx(0.25)
    with pytest.raises(DataError, match="'h' is not in the evaluation data"):
        sliced_metrics({"g": [1, 1, 2, 2]}, y, pred, slice_by=["h"], metric_fn=regression_metrics)
    with pytest.raises(DataError, match="bucketize"):
        sliced_metrics(
            {"g": [1, 2, 3, 4]}, y, pred, slice_by=["g"], metric_fn=regression_metrics, max_values=3
        )

    def picky(t: Any, p: Any) -> dict[str, Any]:
        if len(t) < 3:
            raise DataError("too few rows")
        return {"n": len(t)}

    result = sliced_metrics({"g": [1, 1, 1, 2]}, y, pred, slice_by=["g"], metric_fn=picky)
    assert result[1]["n"] == 3
    assert result[2]["error"] == "too few rows"


# --------------------------------------------------------------------------- blessing


def test_value_thresholds_without_baseline_bless_the_first_model() -> None:
    blessing = bless({"roc_auc": 0.91}, [MetricThreshold("roc_auc", lower_bound=0.8)])
    assert isinstance(blessing, Blessing)
    assert blessing.blessed
    assert "roc_auc 0.91 >= lower bound 0.8: ok" in blessing.reasons
    change = [MetricThreshold("roc_auc", lower_bound=0.8, change_absolute=0.01)]
    first = bless({"roc_auc": 0.91}, change)
    assert first.blessed
    assert any("no baseline model" in r for r in first.reasons)
    assert [c.passed for c in first.checks] == [True, None]
    failing = bless({"roc_auc": 0.7}, change)
    assert not failing.blessed
    assert "roc_auc 0.7 < lower bound 0.8: not blessed" in failing.reasons


def test_absolute_change_against_baseline() -> None:
    t = [MetricThreshold("roc_auc", change_absolute=0.01)]
    worse = bless({"roc_auc": 0.88}, t, baseline_metrics={"roc_auc": 0.90})
    assert not worse.blessed
    assert (
        "roc_auc 0.88 is 0.02 below the baseline 0.9 (allowed change 0.01): not blessed"
        in worse.reasons
    )
    slightly = bless({"roc_auc": 0.895}, t, baseline_metrics={"roc_auc": 0.90})
    assert slightly.blessed
    better = bless({"roc_auc": 0.93}, t, baseline_metrics={"roc_auc": 0.90})
    assert better.blessed
    assert "above the baseline" in better.reasons[1]
    must_improve = [MetricThreshold("roc_auc", change_absolute=-0.05)]
    assert not bless({"roc_auc": 0.93}, must_improve, baseline_metrics={"roc_auc": 0.9}).blessed


def test_relative_change_and_lower_is_better_metrics() -> None:
    t = [
        MetricThreshold("log_loss", upper_bound=0.5, change_relative=0.05, higher_is_better=False),
    ]
    ok = bless({"log_loss": 0.41}, t, baseline_metrics={"log_loss": 0.40})
    assert ok.blessed  # 2.5% worse, 5% allowed
    assert "log_loss 0.41 <= upper bound 0.5: ok" in ok.reasons
    assert any("2.50% above the baseline 0.4" in r for r in ok.reasons)
    bad = bless({"log_loss": 0.45}, t, baseline_metrics={"log_loss": 0.40})
    assert not bad.blessed  # 12.5% worse
    assert any("12.50% above the baseline" in r and "not blessed" in r for r in bad.reasons)
    improved = bless({"log_loss": 0.30}, t, baseline_metrics={"log_loss": 0.40})
    assert improved.blessed
    too_high = bless({"log_loss": 0.6}, t, baseline_metrics={"log_loss": 0.7})
    assert not too_high.blessed  # better than the baseline, but above the bound
    assert bad.reasons[0] == "not blessed: 1 passed, 1 failed, 0 skipped"


def test_missing_metric_fails_and_missing_baseline_metric_skips() -> None:
    t = [MetricThreshold("roc_auc", lower_bound=0.5, change_absolute=0.0)]
    missing = bless({"roc_auc": None}, t, baseline_metrics={"roc_auc": 0.8})
    assert not missing.blessed
    assert "missing from the candidate" in missing.reasons[1]
    skipped = bless({"roc_auc": 0.8}, t, baseline_metrics={"accuracy": 0.8})
    assert skipped.blessed
    assert "missing from the baseline" in skipped.reasons[2]
    json.dumps(skipped.to_dict())


def test_bless_checks_slices() -> None:
    slices = [
        {"slice": {}, "num_examples": 10, "accuracy": 0.9},
        {"slice": {"country": "fr"}, "num_examples": 5, "accuracy": 0.95},
        {"slice": {"country": "de"}, "num_examples": 5, "accuracy": 0.6},
        {"slice": {"country": "us"}, "num_examples": 1, "error": "too few rows"},
    ]
    base = [{"slice": {"country": "de"}, "accuracy": 0.7}]
    t = [MetricThreshold("accuracy", lower_bound=0.5, change_absolute=0.05)]
    result = bless(
        {"accuracy": 0.9},
        t,
        baseline_metrics={"accuracy": 0.88},
        slices=slices,
        baseline_slices=base,
    )
    assert not result.blessed
    assert any(r.startswith("[country=de] accuracy 0.6 is 0.1 below") for r in result.reasons)
    assert any("[country=us] metrics failed" in r for r in result.reasons)
    fr = [c for c in result.checks if c.slice == {"country": "fr"}]
    assert [c.passed for c in fr] == [True, None]  # fr has no baseline slice: change skipped


def test_threshold_settings_are_validated() -> None:
    with pytest.raises(TrainingError, match="sets no limit"):
        MetricThreshold("roc_auc")
    with pytest.raises(TrainingError, match="above upper_bound"):
        MetricThreshold("roc_auc", lower_bound=0.9, upper_bound=0.8)
    assert bless({"x": 1.0}, []).blessed


# --------------------------------------------------------------------------- importance


def _linear_problem(n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    y = 3.0 * x[:, 0] + 0.5 * x[:, 2] + rng.normal(0, 0.1, n)
    return x, y


def test_permutation_importance_ranks_informative_feature_first() -> None:
    x, y = _linear_problem()

    def predict(data: np.ndarray) -> np.ndarray:
        return 3.0 * data[:, 0] + 0.5 * data[:, 2]

    def r2(t: np.ndarray, p: np.ndarray) -> float:
        return float(regression_metrics(t, p)["r2_score"])

    result = permutation_importance(predict, x, y, r2, n_repeats=3, seed=0)
    ranked = [f["feature"] for f in result["features"]]
    assert ranked == ["0", "2", "1"]
    assert result["features"][-1]["importance_mean"] == 0.0  # the model ignores feature 1
    assert result["metric_value"] == pytest.approx(r2(y, predict(x)))
    again = permutation_importance(predict, x, y, r2, n_repeats=3, seed=0)
    assert again == result


@pytest.mark.parametrize("kind", ["arrow", "polars", "mapping"])
def test_permutation_importance_on_tables_and_lower_is_better(kind: str) -> None:
    x, y = _linear_problem(200)
    columns = {"signal": x[:, 0], "noise": x[:, 1]}
    data: Any = {
        "arrow": pa.table(columns),
        "polars": pl.DataFrame(columns),
        "mapping": columns,
    }[kind]

    def predict(table: Any) -> np.ndarray:
        return 3.0 * np.asarray(table["signal"])

    def mse(t: np.ndarray, p: np.ndarray) -> float:
        return float(np.mean((t - p) ** 2))

    result = permutation_importance(predict, data, y, mse, n_repeats=2, higher_is_better=False)
    assert [f["feature"] for f in result["features"]] == ["signal", "noise"]
    assert result["features"][0]["importance_mean"] > 1.0
    with pytest.raises(DataError, match="not columns of X"):
        permutation_importance(predict, data, y, mse, features=["nope"])


# --------------------------------------------------------------------------- package


def test_multiclass_string_labels_with_probabilities_and_slices() -> None:
    y_codes, proba = _multiclass(300, k=3, seed=7)
    classes = ["bird", "cat", "dog"]
    y = np.asarray(classes)[y_codes]
    m = classification_metrics(y, proba, classes=classes)
    auc = skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes)
    assert m["roc_auc"] == pytest.approx(auc, abs=TOL)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=classes), abs=TOL)
    assert [row["class"] for row in m["per_class"]] == classes
    group = np.where(np.arange(300) % 2 == 0, "even", "odd")
    fn = functools.partial(classification_metrics, classes=classes)
    result = sliced_metrics({"group": group}, y, proba, slice_by=["group"], metric_fn=fn)
    assert [r["num_examples"] for r in result] == [300, 150, 150]
    even = group == "even"
    acc = skm.accuracy_score(y[even], np.asarray(classes)[proba[even].argmax(axis=1)])
    assert result[1]["accuracy"] == pytest.approx(acc, abs=TOL)


def test_package_exports_lazily_and_src_has_no_sklearn() -> None:
    import pathlib

    import kiln.evaluate

    assert set(kiln.evaluate.__all__) <= set(dir(kiln.evaluate))
    with pytest.raises(AttributeError):
        _ = kiln.evaluate.no_such_name
    root = pathlib.Path(kiln.evaluate.__file__).parent
    for module in root.glob("*.py"):
        assert "sklearn" not in module.read_text(encoding="utf-8"), module
