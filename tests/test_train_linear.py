"""linear_reg and logistic_reg against scikit-learn, and the trainer contract."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge

from kiln.errors import NotFittedError, TrainingError
from kiln.train import LinearRegTrainer, LogisticRegTrainer, get_trainer

Array = np.ndarray[Any, np.dtype[Any]]
GD = {"optimize_strategy": "BATCH_GRADIENT_DESCENT", "early_stop": False}


@pytest.fixture
def regression() -> tuple[Array, Array]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5)) * [1.0, 10.0, 0.1, 3.0, 1.0] + [0.0, 5.0, 0.0, 0.0, 2.0]
    y = X @ np.array([1.0, -0.2, 5.0, 0.3, 0.0]) + 3.0 + rng.normal(scale=0.1, size=300)
    return X, y


@pytest.fixture
def binary() -> tuple[Array, Array]:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 4)) * [1.0, 2.0, 0.5, 1.0]
    y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 3] + rng.normal(size=400)) > 0.3
    return X, y.astype(int)


@pytest.fixture
def three_classes() -> tuple[Array, Array]:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(450, 3))
    scores = X @ np.array([[2.0, -1.0, 0.0], [0.0, 2.0, -1.0], [1.0, 0.0, 1.0]])
    y = np.array(["cat", "dog", "eel"])[np.argmax(scores + rng.normal(size=(450, 3)), axis=1)]
    return X, y


def test_builtins_are_registered() -> None:
    assert get_trainer("LINEAR_REG") is LinearRegTrainer
    assert get_trainer("logistic_reg") is LogisticRegTrainer


def test_normal_equation_matches_ols_and_ridge(regression: tuple[Array, Array]) -> None:
    X, y = regression
    ols = LinearRegTrainer().fit(X, y)
    assert ols.optimize_strategy_ == "NORMAL_EQUATION"  # AUTO_STRATEGY: few features, no L1
    reference = LinearRegression().fit(X, y)
    np.testing.assert_allclose(ols.coef_, reference.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ols.intercept_, reference.intercept_, rtol=1e-8)
    assert len(ols.training_info_) == 1
    ridge = LinearRegTrainer(optimize_strategy="normal_equation", l2_reg=50.0).fit(X, y)
    np.testing.assert_allclose(ridge.coef_, Ridge(alpha=50.0).fit(X, y).coef_, rtol=1e-8)


def test_gradient_descent_converges_to_ridge(regression: tuple[Array, Array]) -> None:
    X, y = regression
    gd = LinearRegTrainer(l2_reg=2.0, max_iterations=300, **GD).fit(X, y)
    assert gd.optimize_strategy_ == "BATCH_GRADIENT_DESCENT"
    np.testing.assert_allclose(gd.coef_, Ridge(alpha=2.0).fit(X, y).coef_, atol=1e-4)
    np.testing.assert_allclose(gd.predict(X), Ridge(alpha=2.0).fit(X, y).predict(X), atol=1e-3)


def test_line_search_loss_never_rises(regression: tuple[Array, Array]) -> None:
    X, y = regression
    info = LinearRegTrainer(l1_reg=5.0, max_iterations=50, **GD).fit(X, y).training_info_
    losses = [row.loss for row in info]
    assert [row.iteration for row in info] == list(range(50))
    assert all(b <= a * (1 + 1e-9) for a, b in itertools.pairwise(losses))
    assert losses[-1] < 0.1 * losses[0]
    assert all(row.learning_rate is not None and row.learning_rate > 0 for row in info)
    assert all(row.eval_loss is None and row.duration_ms >= 0 for row in info)


def test_constant_learn_rate_is_recorded(regression: tuple[Array, Array]) -> None:
    X, y = regression
    trainer = LinearRegTrainer(learn_rate_strategy="CONSTANT", learn_rate=0.05, **GD).fit(X, y)
    assert {row.learning_rate for row in trainer.training_info_} == {0.05}
    assert len(trainer.training_info_) == 20  # MAX_ITERATIONS default


def test_constant_learn_rate_too_big_is_reported(regression: tuple[Array, Array]) -> None:
    X, y = regression
    trainer = LinearRegTrainer(
        learn_rate_strategy="CONSTANT", learn_rate=50.0, max_iterations=200, **GD
    )
    with pytest.raises(TrainingError, match=r"diverged.*learn_rate"), np.errstate(all="ignore"):
        trainer.fit(X, y)


def test_early_stop_before_max_iterations(regression: tuple[Array, Array]) -> None:
    X, y = regression
    trainer = LinearRegTrainer(optimize_strategy="BATCH_GRADIENT_DESCENT", max_iterations=100)
    info = trainer.fit(X, y).training_info_
    assert 1 < len(info) < 100
    last, before = info[-1].loss, info[-2].loss
    assert (before - last) / before < 0.01 <= (info[-3].loss - before) / info[-3].loss


def test_early_stop_watches_eval_loss(regression: tuple[Array, Array]) -> None:
    X, y = regression
    trainer = LinearRegTrainer(optimize_strategy="BATCH_GRADIENT_DESCENT", max_iterations=100)
    info = trainer.fit(X[:200], y[:200], X_eval=X[200:], y_eval=y[200:]).training_info_
    assert all(row.eval_loss is not None for row in info)
    assert info[-1].eval_loss == pytest.approx(
        float(np.mean((trainer.predict(X[200:]) - y[200:]) ** 2))
    )
    assert len(info) < 100


def test_l1_gives_exact_zeros_like_lasso(regression: tuple[Array, Array]) -> None:
    X, y = regression
    alpha = 0.1
    trainer = LinearRegTrainer(l1_reg=2 * len(y) * alpha, max_iterations=1000, **GD).fit(X, y)
    assert trainer.optimize_strategy_ == "BATCH_GRADIENT_DESCENT"  # AUTO: L1 rules out NE
    reference = Lasso(alpha=alpha).fit(X, y)
    np.testing.assert_array_equal(trainer.coef_ == 0, reference.coef_ == 0)
    assert (trainer.coef_ == 0).sum() >= 1
    np.testing.assert_allclose(trainer.coef_, reference.coef_, atol=1e-4)


def test_weights_are_readable_per_feature(regression: tuple[Array, Array]) -> None:
    X, y = regression
    trainer = LinearRegTrainer().fit(X, y)
    weights = trainer.weights_
    assert list(weights) == [0, 1, 2, 3, 4, "__INTERCEPT__"]
    assert weights[2] == pytest.approx(5.0, abs=0.1)
    assert weights["__INTERCEPT__"] == pytest.approx(trainer.intercept_)


def test_logistic_binary_matches_sklearn(binary: tuple[Array, Array]) -> None:
    X, y = binary
    trainer = LogisticRegTrainer(l2_reg=0.5, max_iterations=500, **GD).fit(X, y)
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(X, y)  # C = 1/(2 l2)
    np.testing.assert_allclose(trainer.predict_proba(X), reference.predict_proba(X), atol=1e-4)
    np.testing.assert_allclose(trainer.coef_, reference.coef_[0], atol=1e-3)
    assert (trainer.predict(X) == reference.predict(X)).mean() > 0.99
    assert set(trainer.weights_) == {0, 1, 2, 3, "__INTERCEPT__"}


def test_logistic_defaults_are_close_to_sklearn(binary: tuple[Array, Array]) -> None:
    X, y = binary
    trainer = LogisticRegTrainer().fit(X, y)  # 20 iterations at most, early stop
    assert trainer.optimize_strategy_ == "BATCH_GRADIENT_DESCENT"
    accuracy = (trainer.predict(X) == y).mean()
    reference = (LogisticRegression().fit(X, y).predict(X) == y).mean()
    assert accuracy >= reference - 0.02


def test_multiclass_softmax_with_string_labels(three_classes: tuple[Array, Array]) -> None:
    X, y = three_classes
    trainer = LogisticRegTrainer(l2_reg=0.5, max_iterations=1000, **GD).fit(X, y)
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(X, y)
    assert trainer.classes_.tolist() == ["cat", "dog", "eel"]
    proba = trainer.predict_proba(X)
    assert proba.shape == (450, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba, reference.predict_proba(X), atol=2e-3)
    assert set(trainer.predict(X)) <= {"cat", "dog", "eel"}
    assert (trainer.predict(X) == reference.predict(X)).mean() > 0.99
    per_class = trainer.weights_[0]
    assert isinstance(per_class, dict)
    assert set(per_class) == {"cat", "dog", "eel"}


def test_class_weights_change_the_decision() -> None:
    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(0.0, 1.0, size=(570, 2)), rng.normal(1.0, 1.0, size=(30, 2))])
    y = np.array(["no"] * 570 + ["yes"] * 30)
    settings: dict[str, Any] = {"max_iterations": 200, **GD}
    plain = (LogisticRegTrainer(**settings).fit(X, y).predict(X) == "yes").sum()
    auto = LogisticRegTrainer(auto_class_weights=True, **settings).fit(X, y)
    explicit = LogisticRegTrainer(class_weights={"yes": 19.0}, **settings).fit(X, y)
    assert (auto.predict(X) == "yes").sum() > 5 * max(plain, 1)
    assert (explicit.predict(X) == "yes").sum() > 5 * max(plain, 1)
    reference = LogisticRegression(class_weight="balanced", C=1e6).fit(X, y)
    assert (auto.predict(X) == reference.predict(X)).mean() > 0.97


def test_class_weights_survive_a_json_round_trip_with_integer_labels() -> None:
    """Saved settings are JSON, whose keys are text: {1: 19.0} comes back as {"1": 19.0}, and
    BigQuery ML writes CLASS_WEIGHTS labels as text too; both weigh the integer class 1."""
    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(0.0, 1.0, size=(570, 2)), rng.normal(1.0, 1.0, size=(30, 2))])
    y = np.array([0] * 570 + [1] * 30)
    settings: dict[str, Any] = {"max_iterations": 50, **GD}
    by_int = LogisticRegTrainer(class_weights={1: 19.0}, **settings)
    params = json.loads(json.dumps(by_int.get_params()))
    assert params["class_weights"] == {"1": 19.0}
    by_text = LogisticRegTrainer(**params).fit(X, y)
    np.testing.assert_array_equal(by_text.coef_, by_int.fit(X, y).coef_)
    with pytest.raises(TrainingError, match="class_weights names '2'"):
        LogisticRegTrainer(class_weights={"2": 1.0}).fit(X, y)


def test_bad_labels_are_reported() -> None:
    X = np.arange(12.0).reshape(6, 2)
    with pytest.raises(TrainingError, match="single class"):
        LogisticRegTrainer().fit(X, np.array(["a"] * 6))
    with pytest.raises(TrainingError, match="2 missing"):
        LinearRegTrainer().fit(X, np.array([1.0, np.nan, 2.0, np.nan, 3.0, 4.0]))
    with pytest.raises(TrainingError, match="1 missing"):
        LogisticRegTrainer().fit(X, np.array(["a", None, "b", "a", "b", "a"], dtype=object))
    with pytest.raises(TrainingError, match="mix types"):
        LogisticRegTrainer().fit(X, np.array(["a", 1, "b", 2, "a", 1], dtype=object))
    with pytest.raises(TrainingError, match="class_weights names 'z'"):
        LogisticRegTrainer(class_weights={"z": 2.0}).fit(X, np.array(["a", "b"] * 3))
    with pytest.raises(TrainingError, match="NaN or infinite values in 1 row"):
        LinearRegTrainer().fit(np.where(X == 4.0, np.nan, X), np.arange(6.0))


@pytest.mark.parametrize(
    ("settings", "option"),
    [
        ({"l2_reg": -1.0}, "l2_reg"),
        ({"l1_reg": "a lot"}, "l1_reg"),
        ({"learn_rate_strategy": "ADAM"}, "learn_rate_strategy"),
        ({"optimize_strategy": "SGD"}, "optimize_strategy"),
        ({"max_iterations": 0}, "max_iterations"),
        ({"learn_rate": 0.0}, "learn_rate"),
        ({"min_rel_progress": -0.5}, "min_rel_progress"),
        ({"early_stop": "yes"}, "early_stop"),
        ({"optimize_strategy": "NORMAL_EQUATION", "l1_reg": 1.0}, "l1_reg"),
    ],
)
def test_bad_settings_name_the_option(settings: dict[str, Any], option: str) -> None:
    with pytest.raises(TrainingError, match=option):
        LinearRegTrainer(**settings)


def test_logistic_settings() -> None:
    with pytest.raises(TrainingError, match="not both"):
        LogisticRegTrainer(auto_class_weights=True, class_weights={"a": 1.0})
    X, y = np.arange(12.0).reshape(6, 2), np.array([0, 1] * 3)
    with pytest.raises(TrainingError, match="NORMAL_EQUATION"):
        LogisticRegTrainer(optimize_strategy="NORMAL_EQUATION").fit(X, y)


@pytest.mark.parametrize("cls", [LinearRegTrainer, LogisticRegTrainer])
def test_not_fitted(cls: type[LinearRegTrainer]) -> None:
    with pytest.raises(NotFittedError, match="call fit"):
        cls().predict(np.zeros((2, 2)))


def test_save_load_round_trip(
    tmp_path: Path, regression: tuple[Array, Array], three_classes: tuple[Array, Array]
) -> None:
    X, y = regression
    linear = LinearRegTrainer(l2_reg=1.0, optimize_strategy="BATCH_GRADIENT_DESCENT").fit(X, y)
    saved = json.loads(json.dumps(linear.save(tmp_path / "linear")))
    again = LinearRegTrainer.load(tmp_path / "linear", saved)
    np.testing.assert_array_equal(again.predict(X), linear.predict(X))
    assert again.training_info_ == linear.training_info_
    assert again.get_params() == linear.get_params()

    Xc, yc = three_classes
    logistic = LogisticRegTrainer(class_weights={"eel": 2.0}).fit(Xc, yc)
    saved = json.loads(json.dumps(logistic.save(tmp_path / "logistic")))
    assert saved["classes"] == ["cat", "dog", "eel"]
    loaded = LogisticRegTrainer.load(tmp_path / "logistic", saved)
    np.testing.assert_array_equal(loaded.predict(Xc), logistic.predict(Xc))
    np.testing.assert_array_equal(loaded.predict_proba(Xc), logistic.predict_proba(Xc))


def test_integer_labels_survive_save_load(tmp_path: Path, binary: tuple[Array, Array]) -> None:
    X, y = binary
    trainer = LogisticRegTrainer().fit(X, y + 10)
    saved = json.loads(json.dumps(trainer.save(tmp_path)))
    loaded = LogisticRegTrainer.load(tmp_path, saved)
    assert loaded.classes_.tolist() == [10, 11]
    np.testing.assert_array_equal(loaded.predict(X), trainer.predict(X))


def test_sample_weight_is_row_repetition(regression: tuple[Array, Array]) -> None:
    X, y = regression
    weights = np.where(np.arange(len(y)) % 3 == 0, 2.0, 1.0)
    repeated = np.repeat(np.arange(len(y)), weights.astype(int))
    for settings in ({"l2_reg": 3.0}, {"l2_reg": 3.0, "max_iterations": 200, **GD}):
        weighted = LinearRegTrainer(**settings).fit(X, y, sample_weight=weights)
        copied = LinearRegTrainer(**settings).fit(X[repeated], y[repeated])
        np.testing.assert_allclose(weighted.coef_, copied.coef_, rtol=1e-6, atol=1e-9)


def test_without_intercept(regression: tuple[Array, Array]) -> None:
    X, y = regression
    trainer = LinearRegTrainer(fit_intercept=False).fit(X, y)
    reference = LinearRegression(fit_intercept=False).fit(X, y)
    np.testing.assert_allclose(trainer.coef_, reference.coef_, rtol=1e-8)
    assert trainer.intercept_ == 0.0
    assert "__INTERCEPT__" not in trainer.weights_
    gd = LinearRegTrainer(fit_intercept=False, max_iterations=2000, **GD).fit(X, y)
    np.testing.assert_allclose(gd.coef_, reference.coef_, atol=1e-4)


@pytest.mark.parametrize("cls", [LinearRegTrainer, LogisticRegTrainer])
def test_params_are_json_and_rebuild_the_trainer(cls: type[LinearRegTrainer]) -> None:
    trainer = cls(l2_reg=0.25, learn_rate_strategy="constant", max_iterations=7)
    params = json.loads(json.dumps(trainer.get_params()))
    assert params["learn_rate_strategy"] == "CONSTANT"
    assert cls(**params).get_params() == trainer.get_params()


@pytest.mark.parametrize("model_type", ["linear_reg", "logistic_reg"])
def test_iteration_listeners_see_every_row_and_can_stop_training(model_type: str) -> None:
    """The hook a tuner prunes through: every recorded row reaches the listener, in order, and
    an exception raised there leaves fit."""
    from kiln.train import iteration_listener

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ [1.0, -2.0, 0.5] > 0 if model_type == "logistic_reg" else X @ [1.0, -2.0, 0.5]
    seen: list[int] = []
    trainer = get_trainer(model_type)(max_iterations=8, **GD)
    with iteration_listener(lambda t, info: seen.append(info.iteration)):
        trainer.fit(X, y)
    assert seen == [row.iteration for row in trainer.training_info_]
    assert len(seen) >= 2

    class Stop(Exception):
        pass

    def stop_at_two(_: object, info: Any) -> None:
        if info.iteration == 2:
            raise Stop

    with iteration_listener(stop_at_two), pytest.raises(Stop):
        get_trainer(model_type)(max_iterations=8, **GD).fit(X, y)
    seen.clear()
    get_trainer(model_type)(max_iterations=3, **GD).fit(X, y)  # outside: nobody listens
    assert seen == []
