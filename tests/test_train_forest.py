"""Kiln's tree walker (kiln.train._forest, kiln.train._treewalk) against LightGBM's own predictor:
the raw scores must be the very doubles LightGBM adds, for every kind of split and every awkward
value a row can hold."""

from __future__ import annotations

from typing import Any

import lightgbm
import numpy as np
import pytest

from kiln.train import _forest, get_trainer
from kiln.train._forest import CompiledForest, compiled_forest

pytestmark = pytest.mark.skipif(
    _forest._treewalk is None, reason="Kiln was built without its tree walker (no C compiler)"
)

ROWS = 1500


def _data(seed: int = 0, categories: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Four numerical columns (one with NaN, one often exactly 0) and two categorical codes."""
    rng = np.random.default_rng(seed)
    X = np.column_stack(
        [
            rng.normal(size=ROWS),
            np.where(rng.random(ROWS) < 0.2, np.nan, rng.normal(size=ROWS)),
            np.where(rng.random(ROWS) < 0.3, 0.0, rng.normal(size=ROWS)),
            rng.uniform(-3, 3, size=ROWS),
            rng.integers(0, categories, size=ROWS).astype(float),
            rng.integers(0, 5, size=ROWS).astype(float),
        ]
    )
    signal = X[:, 0] + np.nan_to_num(X[:, 1]) + np.sin(X[:, 4]) * 2 + (X[:, 5] == 3) - X[:, 2]
    return X, signal + rng.normal(scale=0.3, size=ROWS)


def _booster(params: dict[str, Any], X: np.ndarray, y: np.ndarray, rounds: int = 40) -> Any:
    base = {"verbose": -1, "num_threads": 1, "min_data_in_leaf": 5, "min_data_per_group": 5}
    data = lightgbm.Dataset(X, y, categorical_feature=[4, 5], params={"verbose": -1})
    return lightgbm.train({**base, **params}, data, num_boost_round=rounds)


def _awkward(X: np.ndarray) -> np.ndarray:
    """The rows, then rows holding what a walker gets wrong first: NaN everywhere, exact and tiny
    zeros (LightGBM reads |v| <= 1e-35 as 0), negative, fractional, unseen and huge categories."""
    odd = np.array(
        [
            [np.nan] * 6,
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [1e-36, -1e-36, 1e-36, -1e-40, 0.0, 1.0],
            [-0.0, 1e-35, -1e-35, 2e-35, -0.5, 2.7],
            [5.0, -5.0, np.inf, -np.inf, -1.0, -7.0],
            [0.1, 0.2, 0.3, 0.4, 1e6, 3e9],
            [0.1, 0.2, 0.3, 0.4, 39.999, np.nan],
            [0.1, np.nan, 0.3, 0.4, 1000.0, 4.0],
        ]
    )
    return np.vstack([X, odd, X[:37]])


def _same(booster: Any, X: np.ndarray) -> None:
    forest = CompiledForest(booster.model_to_string())
    raw = forest.raw(X)
    expected = booster.predict(X, raw_score=True, num_threads=1).reshape(raw.shape)
    np.testing.assert_array_equal(raw, expected)
    got, want = forest.predict(X), booster.predict(X, num_threads=1)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "params",
    [
        {"objective": "regression"},
        {"objective": "regression", "num_leaves": 63, "max_depth": 12},
        {"objective": "regression", "zero_as_missing": True},
        {"objective": "regression", "use_missing": False},
        {"objective": "regression", "boosting": "dart", "drop_rate": 0.3},
        {"objective": "regression", "boosting": "rf", "bagging_fraction": 0.7, "bagging_freq": 1},
        {"objective": "regression", "max_cat_to_onehot": 64},  # one-vs-rest categorical splits
    ],
    ids=["plain", "deep", "zero-as-missing", "no-missing", "dart", "random-forest", "one-hot"],
)
def test_regression_walks_as_lightgbm(params: dict[str, Any]) -> None:
    X, y = _data()
    booster = _booster(params, X, y)
    _same(booster, _awkward(X))
    _same(booster, np.nan_to_num(X))  # blocks without NaN: the walk without the NaN test
    flags = CompiledForest(booster.model_to_string())._arrays[4]
    assert bool((flags & _forest.ZERO_MISSING).any()) == bool(params.get("zero_as_missing"))


def test_binary_and_multiclass_walk_as_lightgbm() -> None:
    X, y = _data(seed=1)
    _same(_booster({"objective": "binary"}, X, y > np.median(y)), _awkward(X))
    _same(_booster({"objective": "binary", "sigmoid": 0.7}, X, y > 0.5), _awkward(X))
    classes = np.digitize(y, np.quantile(y, [0.25, 0.5, 0.75]))
    _same(_booster({"objective": "multiclass", "num_class": 4}, X, classes), _awkward(X))


def test_categorical_splits_walk_the_same_as_tests_or_in_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A categorical split is a per-row test where its set recurs, decided in place where it does
    not; both must give LightGBM's numbers. Many categories: bitsets several words long."""
    X, y = _data(seed=2, categories=300)
    booster = _booster({"objective": "regression", "max_cat_threshold": 128}, X, y, rounds=60)
    rows = _awkward(X)
    kinds = []
    for at_least in (1, 2, 10**9):  # every split a test; the default; every split in place
        monkeypatch.setattr(_forest, "TEST_MIN_SPLITS", at_least)
        _same(booster, rows)
        arrays = CompiledForest(booster.model_to_string())._arrays
        kinds.append((arrays[11].size, int((arrays[4] & _forest.CATEGORICAL != 0).sum())))
    (tests, in_place), _, (no_tests, all_in_place) = kinds
    assert tests > 0  # every categorical split a test
    assert in_place == 0
    assert no_tests == 0  # every one decided in place
    assert all_in_place > 0


def test_single_leaf_trees_and_one_row() -> None:
    X, y = _data(seed=3)
    stumps = _booster({"objective": "regression", "min_data_in_leaf": ROWS}, X, y, rounds=3)
    assert CompiledForest(stumps.model_to_string())._arrays[8].max() == 0  # every depth 0
    _same(stumps, X[:5])
    booster = _booster({"objective": "binary"}, X, y > 0)
    for i in range(4):
        _same(booster, _awkward(X)[-45 + i : -44 + i])  # one row, each of them
    _same(booster, X[:0])


def test_threads_split_the_rows_without_changing_a_number() -> None:
    X, y = _data(seed=4)
    booster = _booster({"objective": "multiclass", "num_class": 3}, X, (y > 0) + (y > 1))
    rows = np.vstack([X] * 6)  # 9,000 rows: two threads' worth
    forest = CompiledForest(booster.model_to_string())
    np.testing.assert_array_equal(forest.raw(rows, threads=2), forest.raw(rows, threads=1))
    np.testing.assert_array_equal(forest.raw(rows[:, :].astype(np.float32)), forest.raw(rows))


def test_linear_trees_and_other_objectives_stay_with_lightgbm() -> None:
    X, y = _data(seed=5)
    numeric = X[:, :4].copy()
    linear = lightgbm.train(
        {"objective": "regression", "linear_tree": True, "verbose": -1, "num_threads": 1},
        lightgbm.Dataset(np.nan_to_num(numeric), y),
        num_boost_round=5,
    )
    assert compiled_forest(linear) is None
    poisson = _booster({"objective": "poisson"}, X, np.abs(y))
    assert compiled_forest(poisson) is None
    assert compiled_forest(_booster({"objective": "regression"}, X, y)) is not None


def test_a_trainer_predicts_through_the_walker_or_lightgbm_alike(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X, y = _data(seed=6)
    trainer = get_trainer("boosted_tree_classifier")(max_iterations=30)
    trainer.fit(X, np.where(y > 0, "yes", "no"), categorical=[4, 5])
    assert compiled_forest(trainer.booster_) is not None
    rows = np.nan_to_num(_awkward(X), nan=np.nan, posinf=1e300, neginf=-1e300)  # (inf refused)
    walked, one = trainer.predict_proba(rows), trainer.predict_proba(rows[:1])
    monkeypatch.setattr(_forest, "_treewalk", None)  # as built without a C compiler
    assert compiled_forest(trainer.booster_) is None
    np.testing.assert_array_equal(trainer.predict_proba(rows), walked)
    np.testing.assert_array_equal(trainer.predict_proba(rows[:1]), one)


def test_the_forest_refuses_arrays_that_point_outside() -> None:
    X, y = _data(seed=7)
    forest = CompiledForest(_booster({"objective": "regression"}, X, y).model_to_string())
    arrays = forest._arrays
    walker = _forest._treewalk
    assert walker is not None
    bad_feature = [a.copy() for a in arrays]
    bad_feature[0][0] = forest.width + arrays[11].size  # past the row and its tests
    with pytest.raises(ValueError, match="node 0 points outside"):
        walker.Forest(forest.width, forest.outputs, *bad_feature)
    bad_child = [a.copy() for a in arrays]
    bad_child[2][-1] = arrays[0].size
    with pytest.raises(ValueError, match="points outside"):
        walker.Forest(forest.width, forest.outputs, *bad_child)
    with pytest.raises(ValueError, match="do not agree"):
        walker.Forest(forest.width, forest.outputs, *arrays[:3], arrays[3][:-1], *arrays[4:])
    with pytest.raises(ValueError, match="tree 0 points outside"):
        walker.Forest(forest.width, 0 + 1, *arrays[:10], arrays[10] + 1, *arrays[11:])
    with pytest.raises(ValueError, match="must be rows x 6"):
        forest._forest.walk(np.zeros((3, 5)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="x: expected float64 items of 8 bytes"):
        forest._forest.walk(np.zeros((3, 6), dtype=np.float32), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="x: expected float64"):
        forest._forest.walk(np.zeros((3, 6), dtype=np.int64), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="feature: expected integer"):
        walker.Forest(forest.width, forest.outputs, arrays[0].view(np.float32), *arrays[1:])


def test_a_fitted_booster_gets_its_walker_once_lightgbm_has_spent_its_cost(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """An in-process booster predicts through LightGBM until LightGBM has spent what the walker
    would cost to make; a loaded one has its walker at once."""
    X, y = _data(seed=8)
    trainer = get_trainer("boosted_tree_regressor")(max_iterations=20)
    trainer.fit(X, y, categorical=[4, 5])
    booster = trainer.booster_
    monkeypatch.setattr(_forest, "BUILD_S", (3600.0, 0.0, 0.0))  # an hour: never paid
    first = trainer.predict(X)
    assert _forest.paid_forest(booster) is None
    assert booster in _forest._SPENT
    assert booster not in _forest._FORESTS
    monkeypatch.setattr(_forest, "BUILD_S", (0.0, 0.0, 0.0))
    _forest._SPENT.clear()
    trainer.predict(X)  # LightGBM's call: it records what it spent
    assert booster not in _forest._FORESTS
    np.testing.assert_array_equal(trainer.predict(X), first)  # the walker's
    assert _forest._FORESTS[booster] is not None
    assert booster not in _forest._SPENT

    saved = trainer.save(tmp_path)
    loaded = type(trainer).load(tmp_path, saved)
    assert _forest._FORESTS[loaded.booster_] is not None
    np.testing.assert_array_equal(loaded.predict(X), first)


@pytest.mark.parametrize("seed", range(6))
def test_random_forests_of_every_shape_walk_as_lightgbm(seed: int) -> None:
    """Random settings, data and rows: leaves, depth, categories, missing values, objective."""
    rng = np.random.default_rng(100 + seed)
    X, y = _data(seed=seed, categories=int(rng.choice([3, 40, 130, 600])))
    X[rng.random(X.shape) < rng.choice([0.0, 0.05, 0.3])] = np.nan
    objective = ["regression", "binary", "multiclass"][seed % 3]
    params: dict[str, Any] = {
        "objective": objective,
        "num_leaves": int(rng.choice([2, 7, 31, 127])),
        "max_depth": int(rng.choice([-1, 3, 8])),
        "max_cat_threshold": int(rng.choice([4, 32, 256])),
        "zero_as_missing": bool(rng.random() < 0.3),
        "learning_rate": float(rng.choice([0.05, 0.3])),
    }
    if objective == "multiclass":
        params["num_class"] = 3
        y = np.digitize(y, np.quantile(y, [0.33, 0.66]))
    elif objective == "binary":
        y = y > np.median(y)
    booster = _booster(params, X, y, rounds=int(rng.integers(1, 80)))
    rows = _awkward(X)
    _same(booster, rows[rng.permutation(rows.shape[0])])


def test_model_text_the_walker_cannot_read_leaves_the_booster_to_lightgbm() -> None:
    X, y = _data(seed=9)
    booster = _booster({"objective": "regression"}, X, y)
    text = booster.model_to_string()
    odd = text.replace("split_feature=", "split_feature=x ", 1)  # LightGBM's own text, damaged
    assert compiled_forest(booster, odd) is None
    assert _forest._FORESTS[booster] is None  # (decided once)
