"""CatBoost trainers (extra ``catboost``): categories, missing values, early stopping, training
info, the safe saved format, Model end to end, and the bad settings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from kiln.errors import TrainingError
from kiln.train import get_trainer

pytest.importorskip("catboost")

Array = np.ndarray[Any, np.dtype[Any]]


def _data(n: int = 1500, seed: int = 0) -> tuple[Array, Array]:
    """Four numeric columns (the first with 10 % missing) and one of six category codes; the
    label depends on a numeric column and on one category."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[:, 4] = rng.integers(0, 6, n)
    X[rng.random(n) < 0.1, 0] = np.nan
    y = (X[:, 1] + 2.0 * (X[:, 4] == 3) + rng.normal(0, 0.3, n) > 0.5).astype(np.int64)
    return X, y


def test_classifier_learns_numbers_and_categories_and_keeps_the_best_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # CatBoost must write nothing of its own (catboost_info/)
    X, y = _data()
    cls = get_trainer("catboost_classifier")
    trainer = cls(max_iterations=400, learn_rate=0.3, early_stop_rounds=10).fit(
        X[:1000], y[:1000], X_eval=X[1000:], y_eval=y[1000:], categorical=[4]
    )
    rows = trainer.training_info_
    # early stopping ran past the best round by the patience, and kept the best round's trees
    assert len(rows) < 400
    assert trainer.best_iteration_ == len(rows) - 1 - 10
    best = min(range(len(rows)), key=lambda i: (rows[i].eval_loss, i))
    assert trainer.best_iteration_ == best
    assert trainer.model_.tree_count_ == trainer.best_iteration_ + 1
    assert [r.iteration for r in rows] == list(range(len(rows)))
    assert rows[-1].loss < rows[0].loss
    assert all(r.learning_rate == pytest.approx(0.3) for r in rows)
    proba = trainer.predict_proba(X[1000:])
    assert proba.shape == (500, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (trainer.predict(X[1000:]) == y[1000:]).mean() > 0.85
    # the category column matters: its importance is in the input's column order
    importance = trainer.feature_importance_
    assert importance[4] > importance[0]
    assert importance[1] == importance.max()
    assert os.listdir(tmp_path) == []


def test_unseen_and_missing_values_predict(tmp_path: Path) -> None:
    X, y = _data()
    trainer = get_trainer("catboost_classifier")(max_iterations=50).fit(X, y, categorical=[4])
    rows = X[:20].copy()
    rows[:, 0] = np.nan  # missing numbers
    rows[:10, 4] = np.nan  # a category the fit never saw (Kiln's code for unseen)
    rows[10:, 4] = 3.0
    proba = trainer.predict_proba(rows)
    assert np.isfinite(proba).all()
    # category 3 raises the positive class; an unseen one is not category 3
    assert proba[10:, 1].mean() > proba[:10, 1].mean()


def test_multiclass_labels_of_any_type_and_a_saved_model_that_predicts_the_same(
    tmp_path: Path,
) -> None:
    X, _ = _data()
    labels = np.array(["low", "mid", "high"])[np.digitize(X[:, 1], [-0.5, 0.5])]
    cls = get_trainer("catboost_classifier")
    trainer = cls(max_iterations=60, max_tree_depth=4).fit(X, labels, categorical=[4])
    assert trainer.classes_.tolist() == ["high", "low", "mid"]
    proba = trainer.predict_proba(X[:100])
    assert proba.shape == (100, 3)
    assert (trainer.predict(X) == labels).mean() > 0.9
    saved = trainer.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.cbm"]
    loaded = cls.load(tmp_path / "m", saved)
    np.testing.assert_array_equal(loaded.predict_proba(X[:100]), proba)
    assert loaded.classes_.tolist() == ["high", "low", "mid"]
    assert [r.to_dict() for r in loaded.training_info_] == [
        r.to_dict() for r in trainer.training_info_
    ]
    assert loaded.get_params() == trainer.get_params()


def test_regressor_records_squared_error_and_fits() -> None:
    X, _ = _data()
    target = 3.0 * X[:, 1] + np.where(X[:, 4] == 2, 5.0, 0.0)
    trainer = get_trainer("catboost_regressor")(max_iterations=300, learn_rate=0.2).fit(
        X[:1200], target[:1200], X_eval=X[1200:], y_eval=target[1200:], categorical=[4]
    )
    pred = trainer.predict(X[1200:])
    mse = float(np.mean((pred - target[1200:]) ** 2))
    assert mse < 0.05 * float(np.var(target))
    # eval_loss is the mean squared error on the eval rows (CatBoost reports RMSE)
    assert trainer.training_info_[-1].eval_loss == pytest.approx(mse, rel=1e-4)


def test_model_fit_end_to_end_with_native_categories(tmp_path: Path) -> None:
    from kiln.model import Model

    rng = np.random.default_rng(1)
    n = 600
    color = rng.choice(["red", "green", "blue"], n)
    size = rng.normal(size=n)
    label = np.where((color == "red") | (size > 1.0), "yes", "no")
    table = pa.table({"color": color, "size": size, "label": label})
    model = Model.fit(table, model_type="catboost_classifier", label="label")
    out = model.predict(table.slice(0, 50))
    assert (np.asarray(out["predicted_label"].to_pylist()) == label[:50]).mean() > 0.9
    folder = model.save(tmp_path / "model")
    again = Model.load(folder).predict(table.slice(0, 50))
    assert again.equals(out)
    # a color the fit never saw predicts (as not red)
    unseen = Model.load(folder).predict(pa.table({"color": ["purple"], "size": [0.0]}))
    assert unseen["predicted_label"].to_pylist() == ["no"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_tree_depth": 17}, "max_tree_depth"),
        ({"learn_rate": 0}, "learn_rate"),
        ({"max_iterations": 0}, "max_iterations"),
        ({"colsample_bylevel": 1.5}, "colsample_bylevel"),
        ({"auto_class_weights": "yes"}, "auto_class_weights"),
        ({"auto_class_weights": True, "class_weights": {"1": 2.0}}, "not both"),
    ],
)
def test_bad_settings_are_named(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(TrainingError, match=message):
        get_trainer("catboost_classifier")(**settings)


def test_bad_fits_are_named() -> None:
    X, y = _data(200)
    cls = get_trainer("catboost_classifier")
    with pytest.raises(TrainingError, match="early_stop_rounds needs an eval set"):
        cls(early_stop_rounds=5).fit(X, y)
    with pytest.raises(TrainingError, match="single class"):
        cls().fit(X, np.zeros(200, dtype=np.int64))
    with pytest.raises(TrainingError, match="not a class in y"):
        cls(class_weights={"7": 2.0}).fit(X, y)
    with pytest.raises(TrainingError, match="out of range"):
        cls().fit(X, y, categorical=[9])
    with pytest.raises(TrainingError, match="classifiers only"):
        get_trainer("catboost_regressor")(auto_class_weights=True)


def test_class_weights_shift_the_decision() -> None:
    X, y = _data()
    cls = get_trainer("catboost_classifier")
    plain = cls(max_iterations=50).fit(X, y, categorical=[4]).predict_proba(X)[:, 1].mean()
    weighted = cls(max_iterations=50, class_weights={"1": 5.0}).fit(X, y, categorical=[4])
    assert weighted.predict_proba(X)[:, 1].mean() > plain + 0.05


@pytest.mark.parametrize("labels", ["binary", "multiclass", "regression"])
def test_contributions_add_up_to_the_raw_prediction_in_the_input_column_order(
    labels: str,
) -> None:
    X, _ = _data()
    if labels == "regression":
        trainer = get_trainer("catboost_regressor")(max_iterations=60)
        trainer.fit(X, 2.0 * (X[:, 4] == 3) + 0.1 * X[:, 1], categorical=[4])
    else:
        target = (X[:, 4] == 3) if labels == "binary" else (X[:, 4] % 3)
        target = target.astype(np.int64)
        trainer = get_trainer("catboost_classifier")(max_iterations=60)
        trainer.fit(X, target, categorical=[4])
    phi = trainer.contributions(X[:200])
    raw = trainer.model_.predict(trainer._pool(X[:200]), prediction_type="RawFormulaVal")
    np.testing.assert_allclose(phi.sum(axis=-1), raw, atol=1e-6)
    assert phi.shape[-1] == X.shape[1] + 1
    per_column = np.abs(phi[..., :-1]).reshape(-1, X.shape[1]).mean(axis=0)
    assert per_column.argmax() == 4  # the category column carries the signal, where it sits


def test_category_codes_name_the_same_category_however_large() -> None:
    """Codes are spelled the same in fit and predict, whatever the largest code in a batch (one
    row, many rows, or codes past the shared table of names)."""
    X, y = _data(600)
    X[:, 4] = X[:, 4] * 1_000_003  # codes far past the shared table of names
    trainer = get_trainer("catboost_classifier")(max_iterations=30).fit(X, y, categorical=[4])
    together = trainer.predict_proba(X[:50])
    one_by_one = np.vstack([trainer.predict_proba(X[i : i + 1]) for i in range(50)])
    np.testing.assert_allclose(one_by_one, together)
    small = get_trainer("catboost_classifier")(max_iterations=30)
    small.fit(X / 1_000_003, y, categorical=[4])
    np.testing.assert_allclose(small.predict_proba(X[:50] / 1_000_003), together)
