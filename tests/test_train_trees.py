"""Boosted trees and random forests (LightGBM) and the DIY trainer, checked against scikit-learn."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split

from kiln.errors import NotFittedError, TrainingError
from kiln.train import (
    BoostedTreeClassifier,
    BoostedTreeRegressor,
    IterationInfo,
    RandomForestClassifier,
    RandomForestRegressor,
    Trainer,
    _contract,
    custom_trainer,
    get_trainer,
    trainers,
)

Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
TREES: list[type[Any]] = [
    BoostedTreeClassifier,
    BoostedTreeRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
]


@pytest.fixture(scope="module")
def cancer() -> Split:
    X, y = load_breast_cancer(return_X_y=True)
    labels = np.array(["malignant", "benign"])[y]  # string labels, kept as given
    return tuple(train_test_split(X, labels, random_state=0, stratify=labels))  # type: ignore[return-value]


@pytest.fixture(scope="module")
def diabetes() -> Split:
    X, y = load_diabetes(return_X_y=True)
    return tuple(train_test_split(X, y, random_state=0))  # type: ignore[return-value]


@pytest.fixture(scope="module")
def iris() -> Split:
    X, y = load_iris(return_X_y=True)
    return tuple(train_test_split(X, y + 10, random_state=0, stratify=y))  # type: ignore[return-value]


def _data_for(cls: type[Any], cancer: Split, diabetes: Split) -> Split:
    return cancer if cls.task == "classification" else diabetes


# -- registration ---------------------------------------------------------------------------


def test_the_four_families_are_registered_and_importing_kiln_train_stays_light() -> None:
    for cls in TREES:
        assert get_trainer(cls.model_type) is cls
        assert trainers()[cls.model_type] is cls
    code = "import sys, kiln.train; assert 'lightgbm' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- quality, against scikit-learn's HistGradientBoosting as a sanity reference ---------------


def test_boosted_classifier_on_breast_cancer(cancer: Split) -> None:
    X, X_test, y, y_test = cancer
    model = BoostedTreeClassifier().fit(X, y)
    accuracy = float((model.predict(X_test) == y_test).mean())
    reference = HistGradientBoostingClassifier(random_state=0).fit(X, y).score(X_test, y_test)
    assert accuracy >= 0.93
    assert accuracy >= reference - 0.04
    assert list(model.classes_) == ["benign", "malignant"]
    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (model.classes_[proba.argmax(axis=1)] == model.predict(X_test)).all()


def test_random_forest_classifier_on_breast_cancer(cancer: Split) -> None:
    X, X_test, y, y_test = cancer
    model = RandomForestClassifier(num_parallel_tree=30).fit(X, y)
    assert float((model.predict(X_test) == y_test).mean()) >= 0.92
    assert len(model.training_info_) == 30  # one row per tree
    assert all(row.learning_rate is None for row in model.training_info_)


@pytest.mark.parametrize("cls", [BoostedTreeRegressor, RandomForestRegressor])
def test_regressors_on_diabetes(cls: type[Any], diabetes: Split) -> None:
    X, X_test, y, y_test = diabetes
    model = cls().fit(X, y, X_eval=X_test, y_eval=y_test)
    reference = r2_score(
        y_test, HistGradientBoostingRegressor(random_state=0).fit(X, y).predict(X_test)
    )
    r2 = r2_score(y_test, model.predict(X_test))
    assert r2 > 0.1
    assert r2 >= reference - 0.15


def test_multiclass_labels_and_probability_order(iris: Split) -> None:
    X, X_test, y, y_test = iris
    model = BoostedTreeClassifier(max_iterations=10).fit(X, y)
    assert model.classes_.tolist() == [10, 11, 12]
    assert float((model.predict(X_test) == y_test).mean()) >= 0.9
    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert model.booster_.params["objective"] == "multiclass"


# -- training info and early stopping ---------------------------------------------------------


def test_training_info_has_one_row_per_iteration_with_eval_loss(cancer: Split) -> None:
    X, X_test, y, y_test = cancer
    model = BoostedTreeClassifier(max_iterations=8, early_stop=False).fit(
        X, y, X_eval=X_test, y_eval=y_test
    )
    info = model.training_info_
    assert [row.iteration for row in info] == list(range(8))
    assert all(isinstance(row, IterationInfo) for row in info)
    assert all(row.eval_loss is not None and row.eval_loss > 0 for row in info)
    assert all(row.learning_rate == 0.3 and row.duration_ms >= 0 for row in info)
    assert info[-1].loss < info[0].loss  # log loss on the training rows goes down
    without_eval = BoostedTreeClassifier(max_iterations=3, early_stop=False).fit(X, y)
    assert [row.eval_loss for row in without_eval.training_info_] == [None] * 3


def test_early_stop_on_min_rel_progress(diabetes: Split) -> None:
    X, X_test, y, y_test = diabetes
    model = BoostedTreeRegressor(max_iterations=200, min_rel_progress=0.01).fit(
        X, y, X_eval=X_test, y_eval=y_test
    )
    rounds = len(model.training_info_)
    assert 1 < rounds < 200
    assert model.booster_.num_trees() == rounds
    last, before = model.training_info_[-1], model.training_info_[-2]
    assert last.eval_loss is not None
    assert before.eval_loss is not None
    assert before.eval_loss - last.eval_loss < 0.01 * before.eval_loss
    full = BoostedTreeRegressor(max_iterations=40, early_stop=False).fit(
        X, y, X_eval=X_test, y_eval=y_test
    )
    assert len(full.training_info_) == 40


def test_dart_trains_every_round(cancer: Split) -> None:
    X, X_test, y, y_test = cancer
    model = BoostedTreeClassifier(booster_type="dart", dropout=0.1, max_iterations=6).fit(X, y)
    assert len(model.training_info_) == 6
    assert model.booster_.params["boosting"] == "dart"
    assert float((model.predict(X_test) == y_test).mean()) >= 0.9


# -- saving, loading, explaining --------------------------------------------------------------


@pytest.mark.parametrize("cls", TREES)
def test_save_load_gives_identical_predictions(
    cls: type[Any], cancer: Split, diabetes: Split, tmp_path: Path
) -> None:
    X, X_test, y, _ = _data_for(cls, cancer, diabetes)
    settings = {"num_parallel_tree": 10} if "forest" in cls.model_type else {"max_iterations": 5}
    model = cls(**settings).fit(X, y)
    saved = model.save(tmp_path)
    assert (tmp_path / "model.txt").read_text().startswith("tree")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.txt"]
    saved = json.loads(json.dumps(saved))  # what the artifact stores: JSON
    loaded = get_trainer(saved["model_type"]).load(tmp_path, saved)
    np.testing.assert_array_equal(loaded.predict(X_test), model.predict(X_test))
    np.testing.assert_array_equal(loaded.contributions(X_test), model.contributions(X_test))
    np.testing.assert_array_equal(loaded.feature_importance_, model.feature_importance_)
    assert loaded.get_params() == model.get_params()
    assert loaded.training_info_ == model.training_info_


@pytest.mark.parametrize("cls", TREES)
def test_contributions_sum_to_the_raw_prediction(
    cls: type[Any], cancer: Split, diabetes: Split
) -> None:
    X, X_test, y, _ = _data_for(cls, cancer, diabetes)
    settings = {"num_parallel_tree": 10} if "forest" in cls.model_type else {"max_iterations": 5}
    model = cls(**settings).fit(X, y)
    contributions = model.contributions(X_test)
    assert contributions.shape == (len(X_test), X.shape[1] + 1)
    raw = model.booster_.predict(X_test, raw_score=True)
    if "forest" in cls.model_type:  # LightGBM sums a forest's trees; the forest averages them
        raw = raw / model.booster_.current_iteration()
    np.testing.assert_allclose(contributions.sum(axis=1), raw, rtol=1e-6, atol=1e-6)
    if cls.model_type == "random_forest_regressor":
        np.testing.assert_allclose(contributions.sum(axis=1), model.predict(X_test), rtol=1e-6)


def test_multiclass_contributions_are_rows_by_classes_by_features(iris: Split) -> None:
    X, X_test, y, _ = iris
    model = BoostedTreeClassifier(max_iterations=4).fit(X, y)
    contributions = model.contributions(X_test)
    assert contributions.shape == (len(X_test), 3, X.shape[1] + 1)
    raw = model.booster_.predict(X_test, raw_score=True)
    np.testing.assert_allclose(contributions.sum(axis=2), raw, rtol=1e-6, atol=1e-6)


def test_feature_importance_is_gain(cancer: Split) -> None:
    X, _, y, _ = cancer
    model = BoostedTreeClassifier(max_iterations=5).fit(X, y)
    assert model.feature_importance_.shape == (X.shape[1],)
    assert (model.feature_importance_ >= 0).all()
    assert model.feature_importance_.sum() > 0


# -- inputs: categories, missing values, weights ------------------------------------------------


def test_categorical_columns_are_split_as_categories(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    code = rng.integers(0, 12, size=600)
    noise = rng.normal(size=600)
    y = np.isin(code, [1, 4, 7, 10]).astype(int)  # not monotone in the code
    X = np.column_stack([code, noise]).astype(float)
    model = BoostedTreeClassifier(max_iterations=5, max_tree_depth=2).fit(X, y, categorical=[0])
    assert float((model.predict(X) == y).mean()) == 1.0
    trees = model.booster_.dump_model()["tree_info"]
    assert trees[0]["tree_structure"]["decision_type"] == "=="
    saved = model.save(tmp_path)
    loaded = BoostedTreeClassifier.load(tmp_path, saved)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_missing_values_are_handled_natively(cancer: Split) -> None:
    X, X_test, y, y_test = cancer
    X = X.copy()
    X[::3, 0] = np.nan
    X_test = X_test.copy()
    X_test[::2, 1] = np.nan
    model = BoostedTreeClassifier(max_iterations=10).fit(X, y)
    assert float((model.predict(X_test) == y_test).mean()) >= 0.9


def test_sample_and_class_weights_shift_predictions(cancer: Split) -> None:
    X, X_test, y, _ = cancer

    def share_malignant(model: Trainer) -> float:
        return float((model.predict(X_test) == "malignant").mean())

    plain = share_malignant(BoostedTreeClassifier(max_iterations=5).fit(X, y))
    favoured = share_malignant(
        BoostedTreeClassifier(max_iterations=5, class_weights={"malignant": 50.0}).fit(X, y)
    )
    weighted = share_malignant(
        BoostedTreeClassifier(max_iterations=5).fit(
            X, y, sample_weight=np.where(y == "malignant", 50.0, 1.0)
        )
    )
    assert favoured > plain
    assert weighted > plain
    balanced = BoostedTreeClassifier(max_iterations=5, auto_class_weights=True).fit(X, y)
    assert 0.0 < share_malignant(balanced) < 1.0


# -- settings and errors ------------------------------------------------------------------------


# BigQuery ML's documented defaults, checked against the reference pages (read 2026-11-26):
# https://docs.cloud.google.com/bigquery/docs/reference/standard-sql/bigqueryml-syntax-create-boosted-tree
# https://docs.cloud.google.com/bigquery/docs/reference/standard-sql/bigqueryml-syntax-create-random-forest
BOOSTED_DEFAULTS: dict[str, Any] = {
    "booster_type": "GBTREE",
    "dart_normalize_type": "TREE",
    "num_parallel_tree": 1,
    "max_tree_depth": 6,
    "dropout": 0.0,
    "l1_reg": 0.0,
    "l2_reg": 1.0,
    "learn_rate": 0.3,
    "tree_method": "AUTO",
    "min_tree_child_weight": 1,
    "colsample_bytree": 1.0,
    "colsample_bylevel": 1.0,
    "colsample_bynode": 1.0,
    "min_split_loss": 0.0,
    "subsample": 1.0,
    "auto_class_weights": False,
    "class_weights": None,
    "enable_global_explain": False,
    "early_stop": True,
    "min_rel_progress": 0.01,
    "max_iterations": 20,
}
FOREST_DEFAULTS: dict[str, Any] = {
    "num_parallel_tree": 100,
    "max_tree_depth": 15,
    "l1_reg": 0.0,
    "l2_reg": 1.0,
    "tree_method": "AUTO",
    "min_tree_child_weight": 1,
    "colsample_bytree": 1.0,
    "colsample_bylevel": 1.0,
    "colsample_bynode": 0.8,
    "min_split_loss": 0.0,
    "subsample": 0.8,
    "auto_class_weights": False,
    "class_weights": None,
    "enable_global_explain": False,
    "early_stop": True,
    "min_rel_progress": 0.01,
}
KILN_DEFAULTS: dict[str, Any] = {
    "num_leaves": None,
    "min_data_in_leaf": 1,
    "max_bin": 255,
    "cat_smooth": 10.0,
    "min_data_per_group": 100,
    "max_cat_threshold": 32,
    "num_threads": 1,
    "seed": 0,
}


@pytest.mark.parametrize(
    ("cls", "documented"),
    [
        (BoostedTreeClassifier, {**BOOSTED_DEFAULTS, **KILN_DEFAULTS, "early_stop_rounds": None}),
        (RandomForestClassifier, {**FOREST_DEFAULTS, **KILN_DEFAULTS}),
    ],
)
def test_every_default_is_bigquery_mls_or_kilns_documented_one(
    cls: type[Any], documented: dict[str, Any]
) -> None:
    params = cls().get_params()
    assert params == documented  # every option, and no undocumented one
    integers = ["num_parallel_tree", "max_tree_depth", "min_data_in_leaf", "max_bin"]
    integers += ["min_data_per_group", "max_cat_threshold", "num_threads", "seed"]
    assert all(type(params[name]) is int for name in integers)
    assert type(params["cat_smooth"]) is float


def test_defaults_are_bigquery_mls() -> None:
    boosted = BoostedTreeRegressor().get_params()
    assert {k: boosted[k] for k in ("max_iterations", "learn_rate", "max_tree_depth")} == {
        "max_iterations": 20,
        "learn_rate": 0.3,
        "max_tree_depth": 6,
    }
    assert "class_weights" not in boosted
    forest = RandomForestRegressor().get_params()
    assert forest["num_parallel_tree"] == 100
    assert forest["subsample"] == 0.8
    assert forest["colsample_bynode"] == 0.8
    assert "class_weights" not in forest
    assert "early_stop_rounds" not in forest  # boosted trees only
    assert BoostedTreeRegressor(**BoostedTreeRegressor().get_params()).get_params() == (
        BoostedTreeRegressor().get_params()
    )


def test_num_threads_and_determinism_reach_lightgbm(cancer: Split) -> None:
    X, _, y, _ = cancer
    default = BoostedTreeClassifier(max_iterations=2).fit(X, y)
    assert default.booster_.params["num_threads"] == 1
    assert default.booster_.params["deterministic"] is True
    two = BoostedTreeClassifier(max_iterations=2, num_threads=2).fit(X, y)
    assert two.booster_.params["num_threads"] == 2
    params = (
        BoostedTreeClassifier(
            max_iterations=2, subsample=0.5, colsample_bytree=0.7, l1_reg=0.1, min_split_loss=0.2
        )
        .fit(X, y)
        .booster_.params
    )
    assert params["bagging_fraction"] == 0.5
    assert params["bagging_freq"] == 1
    assert params["feature_fraction"] == 0.7
    assert params["lambda_l1"] == 0.1
    assert params["min_gain_to_split"] == 0.2
    assert params["learning_rate"] == 0.3
    assert params["max_depth"] == 6


@pytest.mark.parametrize(
    ("cls", "settings", "option"),
    [
        (BoostedTreeClassifier, {"learn_rate": 0}, "learn_rate"),
        (BoostedTreeClassifier, {"subsample": 1.5}, "subsample"),
        (BoostedTreeClassifier, {"booster_type": "forest"}, "booster_type"),
        (BoostedTreeRegressor, {"max_tree_depth": 0}, "max_tree_depth"),
        (BoostedTreeRegressor, {"max_iterations": 2.5}, "max_iterations"),
        (BoostedTreeRegressor, {"num_parallel_tree": 4}, "num_parallel_tree"),
        (BoostedTreeRegressor, {"num_threads": 0}, "num_threads"),
        (BoostedTreeRegressor, {"tree_method": "gpu"}, "tree_method"),
        (BoostedTreeRegressor, {"auto_class_weights": True}, "auto_class_weights"),
        (BoostedTreeClassifier, {"early_stop": "yes"}, "early_stop"),
        (BoostedTreeClassifier, {"class_weights": {"a": -1}}, "class_weights"),
        (RandomForestClassifier, {"num_parallel_tree": 1}, "num_parallel_tree"),
        (RandomForestRegressor, {"subsample": 1.0}, "subsample"),
        # the ranges BigQuery ML documents
        (RandomForestRegressor, {"subsample": 1.0, "colsample_bytree": 0.5}, "subsample"),
        (RandomForestRegressor, {"subsample": 0.0}, "subsample"),
        (RandomForestRegressor, {"max_tree_depth": 0}, "max_tree_depth"),
        (BoostedTreeRegressor, {"max_tree_depth": 21}, "max_tree_depth"),
        (BoostedTreeRegressor, {"dropout": 1.5}, "dropout"),
        (BoostedTreeRegressor, {"min_tree_child_weight": -1}, "min_tree_child_weight"),
        (BoostedTreeRegressor, {"colsample_bynode": 1.1}, "colsample_bynode"),
        (BoostedTreeRegressor, {"l2_reg": -0.5}, "l2_reg"),
        (BoostedTreeRegressor, {"dart_normalize_type": "sum"}, "dart_normalize_type"),
        # Kiln's own LightGBM settings
        (BoostedTreeRegressor, {"num_leaves": 1}, "num_leaves"),
        (RandomForestRegressor, {"num_leaves": 131073}, "num_leaves"),
        (BoostedTreeRegressor, {"num_leaves": 8.0}, "num_leaves"),
        (BoostedTreeRegressor, {"min_data_in_leaf": 0}, "min_data_in_leaf"),
        (BoostedTreeRegressor, {"early_stop_rounds": 0}, "early_stop_rounds"),
        (BoostedTreeRegressor, {"early_stop_rounds": True}, "early_stop_rounds"),
        (BoostedTreeRegressor, {"max_bin": 1}, "max_bin"),
        (RandomForestRegressor, {"max_bin": 65536}, "max_bin"),
        (BoostedTreeRegressor, {"cat_smooth": -1.0}, "cat_smooth"),
        (BoostedTreeRegressor, {"cat_smooth": float("inf")}, "cat_smooth"),
        (BoostedTreeRegressor, {"min_data_per_group": 0}, "min_data_per_group"),
        (RandomForestClassifier, {"max_cat_threshold": 0}, "max_cat_threshold"),
        (
            BoostedTreeClassifier,
            {"booster_type": "DART", "early_stop_rounds": 5},
            "early_stop_rounds does not apply to booster_type DART",
        ),
    ],
)
def test_bad_settings_name_the_option(
    cls: type[Any], settings: dict[str, Any], option: str
) -> None:
    with pytest.raises(TrainingError, match=option):
        cls(**settings)


def test_bad_data_is_a_training_error(cancer: Split, diabetes: Split) -> None:
    X, X_test, y, _ = cancer
    with pytest.raises(TrainingError, match="single class"):
        BoostedTreeClassifier().fit(X, np.full(len(X), "benign"))
    with pytest.raises(TrainingError, match="missing"):
        BoostedTreeRegressor().fit(X, np.where(np.arange(len(X)) == 3, np.nan, 1.0))
    with pytest.raises(TrainingError, match="not seen"):
        BoostedTreeClassifier().fit(X, y, X_eval=X_test[:2], y_eval=np.array(["benign", "other"]))
    with pytest.raises(TrainingError, match="class_weights"):
        BoostedTreeClassifier(class_weights={"cancer": 2.0}).fit(X, y)
    with pytest.raises(TrainingError, match="categorical"):
        BoostedTreeClassifier().fit(X, y, categorical=[99])
    with pytest.raises(TrainingError, match="infinite"):
        BoostedTreeClassifier().fit(np.where(X > 1e3, np.inf, X), y)
    model = BoostedTreeClassifier(max_iterations=2).fit(X, y)
    with pytest.raises(TrainingError, match="features"):
        model.predict(X_test[:, :5])
    with pytest.raises(TrainingError, match="single class"):
        model.fit(X, np.full(len(X), "benign"))
    with pytest.raises(NotFittedError):  # a failed fit leaves the trainer unfitted
        model.predict(X_test)


@pytest.mark.parametrize("cls", TREES)
def test_not_fitted(cls: type[Any], tmp_path: Path) -> None:
    model = cls()
    with pytest.raises(NotFittedError, match="fit"):
        model.predict(np.zeros((1, 3)))
    with pytest.raises(NotFittedError):
        model.contributions(np.zeros((1, 3)))
    with pytest.raises(NotFittedError):
        model.save(tmp_path)


# -- Kiln's own LightGBM settings ---------------------------------------------------------------


def _trees(model: Any) -> list[dict[str, Any]]:
    return list(model.booster_.dump_model()["tree_info"])


def _leaves(node: dict[str, Any]) -> list[dict[str, Any]]:
    if "leaf_value" in node:
        return [node]
    return _leaves(node["left_child"]) + _leaves(node["right_child"])


def test_native_settings_reach_lightgbm(cancer: Split) -> None:
    X, _, y, _ = cancer
    settings: dict[str, Any] = {
        "num_leaves": 5,
        "min_data_in_leaf": 7,
        "max_bin": 63,
        "cat_smooth": 2.5,
        "min_data_per_group": 20,
        "max_cat_threshold": 4,
    }
    families: list[tuple[type[Any], dict[str, Any]]] = [
        (BoostedTreeClassifier, {"max_iterations": 3}),
        (RandomForestClassifier, {"num_parallel_tree": 3}),
    ]
    for cls, rounds in families:
        model = cls(**settings, **rounds).fit(X, y)
        assert {k: model.booster_.params[k] for k in settings} == settings
        for tree in _trees(model):
            assert tree["num_leaves"] <= 5
            assert all(leaf["leaf_count"] >= 7 for leaf in _leaves(tree["tree_structure"]))


def test_num_leaves_left_unset_keeps_the_depth_rule(cancer: Split) -> None:
    X, _, y, _ = cancer
    assert (
        BoostedTreeClassifier(max_iterations=1, max_tree_depth=3)
        .fit(X, y)
        .booster_.params["num_leaves"]
        == 2**3
    )
    few = BoostedTreeClassifier(max_iterations=1).fit(X[:40], y[:40])
    assert few.booster_.params["num_leaves"] == 40  # 2 ** 6 capped at the row count
    given = BoostedTreeClassifier(max_iterations=1, num_leaves=100).fit(X[:40], y[:40])
    assert given.booster_.params["num_leaves"] == 100  # as is


@pytest.mark.parametrize(
    ("settings", "max_bin"),
    [
        ({}, 255),
        ({"tree_method": "EXACT"}, 1023),  # max_bin left at 255: EXACT raises it
        ({"tree_method": "EXACT", "max_bin": 63}, 63),  # set: used as is
        ({"tree_method": "HIST", "max_bin": 1023}, 1023),
    ],
)
def test_max_bin_and_tree_method_exact(
    diabetes: Split, settings: dict[str, Any], max_bin: int
) -> None:
    X, _, y, _ = diabetes
    model = BoostedTreeRegressor(max_iterations=1, **settings).fit(X, y)
    assert model.booster_.params["max_bin"] == max_bin
    assert model.get_params()["max_bin"] == settings.get("max_bin", 255)


def test_max_cat_threshold_limits_the_categories_of_a_split() -> None:
    rng = np.random.default_rng(0)
    code = rng.integers(0, 12, size=2000)
    y = np.isin(code, [1, 4, 7, 10]).astype(int)
    X = np.column_stack([code, rng.normal(size=2000)]).astype(float)

    def widest_split(**settings: Any) -> int:
        model = BoostedTreeClassifier(max_iterations=3, max_tree_depth=2, **settings)
        model.fit(X, y, categorical=[0])
        widths = [0]
        for tree in _trees(model):
            stack = [tree["tree_structure"]]
            while stack:
                node = stack.pop()
                if "leaf_value" in node:
                    continue
                if node["decision_type"] == "==":
                    widths.append(len(str(node["threshold"]).split("||")))
                stack += [node["left_child"], node["right_child"]]
        return max(widths)

    assert widest_split() >= 2
    assert widest_split(max_cat_threshold=1) == 1


def test_early_stop_rounds_keeps_the_best_iteration(diabetes: Split, tmp_path: Path) -> None:
    X, X_test, y, y_test = diabetes
    model = BoostedTreeRegressor(max_iterations=200, early_stop_rounds=4).fit(
        X, y, X_eval=X_test, y_eval=y_test
    )
    losses = [row.eval_loss for row in model.training_info_]
    assert all(loss is not None for loss in losses)
    best = int(np.argmin(np.asarray(losses, dtype=float)))
    assert model.best_iteration_ == best
    assert len(losses) == best + 1 + 4 < 200  # stopped 4 rounds without improvement
    assert [row.iteration for row in model.training_info_] == list(range(len(losses)))
    assert model.booster_.current_iteration() == best + 1  # only the trees up to the best
    # the kept model is the one trained for best + 1 rounds
    plain = BoostedTreeRegressor(max_iterations=best + 1, early_stop=False).fit(X, y)
    np.testing.assert_allclose(model.predict(X_test), plain.predict(X_test))
    mse = float(np.mean((model.predict(X_test) - y_test) ** 2))
    assert mse == pytest.approx(losses[best])  # LightGBM's l2 on the eval set is the MSE
    saved = json.loads(json.dumps(model.save(tmp_path)))
    assert saved["best_iteration"] == best
    loaded = BoostedTreeRegressor.load(tmp_path, saved)
    assert loaded.best_iteration_ == best
    assert loaded.get_params()["early_stop_rounds"] == 4
    assert loaded.training_info_ == model.training_info_
    np.testing.assert_array_equal(loaded.predict(X_test), model.predict(X_test))


def test_early_stop_rounds_trims_to_the_best_even_without_stopping(cancer: Split) -> None:
    X, X_test, y, y_test = cancer
    model = BoostedTreeClassifier(max_iterations=30, learn_rate=1.0, early_stop_rounds=100)
    model.fit(X, y, X_eval=X_test, y_eval=y_test)
    losses = np.asarray([row.eval_loss for row in model.training_info_], dtype=float)
    assert len(losses) == 30  # never stopped: min_rel_progress is not applied either
    assert model.best_iteration_ == int(np.argmin(losses)) < 29  # learn_rate 1 overfits
    assert model.booster_.current_iteration() == model.best_iteration_ + 1
    p = model.predict_proba(X_test)[:, list(model.classes_).index("malignant")]
    truth = (y_test == "malignant").astype(float)
    log_loss = -np.mean(truth * np.log(p) + (1 - truth) * np.log(1 - p))
    assert log_loss == pytest.approx(losses[model.best_iteration_], rel=1e-6)


def test_best_iteration_is_the_last_round_without_early_stop_rounds(
    cancer: Split, diabetes: Split
) -> None:
    X, _, y, _ = cancer
    model = BoostedTreeClassifier(max_iterations=5, early_stop=False).fit(X, y)
    assert model.best_iteration_ == 4
    forest = RandomForestRegressor(num_parallel_tree=6).fit(diabetes[0], diabetes[2])
    assert forest.best_iteration_ == 5


def test_early_stop_rounds_needs_an_eval_set(cancer: Split) -> None:
    X, _, y, _ = cancer
    model = BoostedTreeClassifier(early_stop_rounds=3)
    with pytest.raises(TrainingError, match="early_stop_rounds needs an eval set"):
        model.fit(X, y)
    with pytest.raises(NotFittedError):
        model.predict(X)


@pytest.mark.parametrize("cls", TREES)
def test_native_settings_pass_the_trainer_contract(
    cls: type[Any], cancer: Split, diabetes: Split
) -> None:
    from kiln.testing import check_trainer

    X, _, y, _ = _data_for(cls, cancer, diabetes)
    settings: dict[str, Any] = {
        "num_leaves": 6,
        "min_data_in_leaf": 3,
        "max_bin": 31,
        "cat_smooth": 1.0,
        "min_data_per_group": 10,
        "max_cat_threshold": 8,
    }
    settings |= {"num_parallel_tree": 5} if "forest" in cls.model_type else {"max_iterations": 5}
    check_trainer(cls(**settings), X, y)
    assert cls(**cls(**settings).get_params()).get_params() == cls(**settings).get_params()


def test_model_fit_takes_the_native_settings(tmp_path: Path) -> None:
    import pyarrow as pa

    from kiln.model import Model

    rng = np.random.default_rng(1)
    n = 600
    x = rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    label = np.where(x + (colour == "red") + rng.normal(scale=0.5, size=n) > 0.5, "yes", "no")
    table = pa.table({"x": x, "colour": colour, "label": label})
    settings = {
        "max_iterations": 100,
        "num_leaves": 4,
        "min_data_in_leaf": 5,
        "early_stop_rounds": 3,
        "max_bin": 127,
        "cat_smooth": 5.0,
        "min_data_per_group": 50,
        "max_cat_threshold": 16,
    }
    model = Model.fit(
        table.slice(0, 450),
        model_type="boosted_tree_classifier",
        label="label",
        settings=settings,
        eval_table=table.slice(450),
    )
    trainer: Any = model.trainer
    assert {k: trainer.get_params()[k] for k in settings} == settings
    assert trainer.booster_.current_iteration() == trainer.best_iteration_ + 1
    loaded = Model.load(model.save(tmp_path / "model"))
    assert loaded.trainer.get_params() == trainer.get_params()
    assert loaded.trainer.best_iteration_ == trainer.best_iteration_  # type: ignore[attr-defined]
    assert loaded.predict(table).equals(model.predict(table))
    with pytest.raises(TrainingError, match="early_stop_rounds needs an eval set"):
        Model.fit(table, model_type="boosted_tree_classifier", label="label", settings=settings)


# -- the DIY option ----------------------------------------------------------------------------


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """DIY trainers registered by a test vanish after it (other tests enumerate trainers())."""
    trainers()
    monkeypatch.setattr(_contract, "_TRAINERS", dict(_contract._TRAINERS))


def _ols_fit(X: np.ndarray, y: np.ndarray, ridge: float = 0.0, sample_weight: Any = None) -> Any:
    w = np.ones(len(X)) if sample_weight is None else sample_weight
    A = np.column_stack([X, np.ones(len(X))]) * np.sqrt(w)[:, None]
    coef = np.linalg.solve(A.T @ A + ridge * np.eye(A.shape[1]), A.T @ (y * np.sqrt(w)))
    return {"coef": coef}


def _ols_predict(state: Any, X: np.ndarray) -> np.ndarray:
    return np.column_stack([X, np.ones(len(X))]) @ state["coef"]


def _ols_save(state: Any, folder: Path) -> dict[str, Any]:
    np.save(folder / "coef.npy", state["coef"], allow_pickle=False)
    return {"file": "coef.npy"}


def _ols_load(folder: Path, saved: Any) -> Any:
    return {"coef": np.load(folder / saved["file"], allow_pickle=False)}


@pytest.mark.usefixtures("registry")
def test_a_diy_trainer_is_registered_and_used_through_get_trainer(
    diabetes: Split, tmp_path: Path
) -> None:
    X, X_test, y, y_test = diabetes
    made = custom_trainer(
        "diy_ols",
        "regression",
        fit=_ols_fit,
        predict=_ols_predict,
        save=_ols_save,
        load=_ols_load,
        defaults={"ridge": 0.0},
    )
    cls = get_trainer("DIY_OLS")
    assert cls is made
    assert cls.task == "regression"
    assert issubclass(cls, Trainer)
    model = cls(ridge=1e-6).fit(X, y, sample_weight=np.ones(len(X)))
    assert model.get_params() == {"ridge": 1e-6}
    assert r2_score(y_test, model.predict(X_test)) > 0.3
    saved = json.loads(json.dumps(model.save(tmp_path)))
    loaded = get_trainer(saved["model_type"]).load(tmp_path, saved)
    np.testing.assert_array_equal(loaded.predict(X_test), model.predict(X_test))
    with pytest.raises(TrainingError, match="alpha"):
        cls(alpha=1.0)
    with pytest.raises(NotFittedError):
        cls().predict(X_test)


@pytest.mark.usefixtures("registry")
def test_a_diy_trainer_cannot_take_a_built_in_name() -> None:
    with pytest.raises(TrainingError, match="taken"):
        custom_trainer(
            "boosted_tree_regressor",
            "regression",
            fit=_ols_fit,
            predict=_ols_predict,
            save=_ols_save,
            load=_ols_load,
        )
    with pytest.raises(TrainingError, match="model_type"):
        custom_trainer(
            "Bad Name",
            "regression",
            fit=_ols_fit,
            predict=_ols_predict,
            save=_ols_save,
            load=_ols_load,
        )
