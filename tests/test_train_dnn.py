"""dnn_classifier and dnn_regressor: PyTorch MLPs with BigQuery ML's options (extra ``dl``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kiln.errors import NotFittedError, TrainingError
from kiln.train import get_trainer, trainers

torch = pytest.importorskip("torch")

from kiln.train.dl import DnnClassifierTrainer, DnnRegressorTrainer  # noqa: E402

FAST: dict[str, Any] = {"learn_rate": 0.01, "batch_size": 32}


def _r2(y: np.ndarray, p: np.ndarray) -> float:
    return float(1 - ((y - p) ** 2).sum() / ((y - y.mean()) ** 2).sum())


@pytest.fixture(scope="module")
def wave() -> tuple[np.ndarray, np.ndarray]:
    """A nonlinear target no linear model fits: sin(x0) + x1^2 / 2, on a scale of thousands."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, size=(700, 2))
    return X * [1.0, 1000.0], 1000.0 * (np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2)


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    idx = np.random.default_rng(0).permutation(len(y))
    train, test = idx[:400], idx[400:]
    scaler = StandardScaler().fit(X[train])
    return scaler.transform(X[train]), y[train], scaler.transform(X[test]), y[test]


def test_builtin_and_registered() -> None:
    assert get_trainer("DNN_CLASSIFIER") is DnnClassifierTrainer
    assert get_trainer("dnn_regressor") is DnnRegressorTrainer
    assert {"dnn_classifier", "dnn_regressor"} <= set(trainers())


def test_regressor_learns_a_nonlinear_function(wave: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = wave
    model = DnnRegressorTrainer(hidden_units=[32, 32], max_iterations=25, early_stop=False, **FAST)
    model.fit(X[:500], y[:500])
    assert _r2(y[500:], model.predict(X[500:])) > 0.9
    assert model.predict(X[:3]).dtype == np.float64


def test_classifier_on_breast_cancer(cancer: tuple[np.ndarray, ...]) -> None:
    X, y, Xt, yt = cancer
    model = DnnClassifierTrainer(hidden_units=[16], max_iterations=20, **FAST)
    model.fit(X, y, X_eval=Xt, y_eval=yt)
    assert (model.predict(Xt) == yt).mean() > 0.9
    proba = model.predict_proba(Xt)
    assert proba.shape == (len(yt), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert model.classes_.tolist() == [0, 1]


def test_multiclass_iris_with_string_labels() -> None:
    from sklearn.datasets import load_iris

    X, codes = load_iris(return_X_y=True)
    y = np.array(["setosa", "versicolor", "virginica"])[codes]
    model = DnnClassifierTrainer(
        hidden_units=[16], batch_size=16, learn_rate=0.01, max_iterations=40, early_stop=False
    ).fit(X, y)
    assert model.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    assert (model.predict(X) == y).mean() > 0.9
    assert model.predict_proba(X).shape == (150, 3)


# BigQuery ML's documented defaults (read 2026-11-26):
# https://docs.cloud.google.com/bigquery/docs/reference/standard-sql/bigqueryml-syntax-create-dnn-models
DOCUMENTED_DEFAULTS: dict[str, Any] = {
    "hidden_units": None,  # a rule on the data: min(128, rows / (10 * (inputs + outputs)))
    "activation_fn": "RELU",
    "optimizer": "ADAM",
    "learn_rate": 0.001,
    "batch_size": None,  # a rule on the data: min(32, rows)
    "dropout": 0.0,
    "l1_reg": 0.0,
    "l2_reg": 0.0,
    "max_iterations": 20,
    "early_stop": True,
    "min_rel_progress": 0.01,
}


def test_defaults_follow_bigquery_ml() -> None:
    params = DnnRegressorTrainer().get_params()
    assert {k: params[k] for k in DOCUMENTED_DEFAULTS} == DOCUMENTED_DEFAULTS
    assert {k: params[k] for k in ("seed", "num_threads", "device")} == {
        "seed": 0,
        "num_threads": 1,
        "device": "auto",
    }
    classifier = DnnClassifierTrainer().get_params()
    assert classifier["auto_class_weights"] is False
    assert classifier["class_weights"] is None
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    model = DnnRegressorTrainer().fit(X, X[:, 0])
    assert model.batch_size_ == 32  # min(32, rows), BigQuery ML's default
    assert model.hidden_units_ == [300 // (10 * (4 + 1))]


def test_default_batch_size_is_32_or_the_row_count() -> None:
    X = np.random.default_rng(6).normal(size=(20, 2))
    small = DnnRegressorTrainer(max_iterations=1).fit(X, X[:, 0])
    assert small.batch_size_ == 20
    given = DnnRegressorTrainer(max_iterations=1, batch_size=8192).fit(X, X[:, 0])
    assert given.batch_size_ == 8192  # as given (at most 8192); one batch of all 20 rows


def test_training_info_and_early_stopping(wave: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = wave
    full = DnnRegressorTrainer(hidden_units=[8], max_iterations=6, early_stop=False, **FAST)
    full.fit(X[:300], y[:300], X_eval=X[300:400], y_eval=y[300:400])
    rows = full.training_info_
    assert [r.iteration for r in rows] == list(range(6))
    assert all(r.eval_loss is not None and r.eval_loss > 0 for r in rows)
    assert all(r.learning_rate == 0.01 and r.duration_ms >= 0 for r in rows)
    assert rows[-1].loss < rows[0].loss
    # without penalties the reported loss is the MSE in the label's units
    mse = float(((full.predict(X[:300]) - y[:300]) ** 2).mean())
    assert rows[-1].loss == pytest.approx(mse, rel=1e-3)

    stopped = DnnRegressorTrainer(
        hidden_units=[8], max_iterations=50, min_rel_progress=0.5, **FAST
    ).fit(X[:300], y[:300])
    assert len(stopped.training_info_) < 50
    assert stopped.training_info_[-1].eval_loss is None


def test_early_stop_rounds_keeps_the_best_epoch(
    tmp_path: Path, wave: tuple[np.ndarray, np.ndarray]
) -> None:
    """With ``early_stop_rounds`` the fit stops that many epochs after the best eval loss and
    keeps the best epoch's weights: the same network as a fit of exactly that many epochs. It
    needs an eval set; the best epoch survives save and load."""
    X, y = wave
    fast = {**FAST, "learn_rate": 0.05}  # a rate that overshoots soon on this wave
    patient = DnnRegressorTrainer(
        hidden_units=[16], max_iterations=200, early_stop_rounds=3, **fast
    ).fit(X[:300], y[:300], X_eval=X[300:400], y_eval=y[300:400])
    losses = [r.eval_loss for r in patient.training_info_]
    best = patient.best_iteration_
    assert losses[best] == min(losses)  # type: ignore[type-var]
    assert len(losses) == best + 4 < 200  # stopped 3 epochs after the best, not at the end
    exact = DnnRegressorTrainer(
        hidden_units=[16], max_iterations=best + 1, early_stop=False, **fast
    ).fit(X[:300], y[:300], X_eval=X[300:400], y_eval=y[300:400])
    np.testing.assert_array_equal(patient.predict(X[400:]), exact.predict(X[400:]))
    assert exact.best_iteration_ == best  # without patience, the last epoch

    loaded = DnnRegressorTrainer.load(tmp_path, patient.save(tmp_path))
    assert loaded.best_iteration_ == best
    np.testing.assert_array_equal(loaded.predict(X[400:]), patient.predict(X[400:]))

    with pytest.raises(TrainingError, match="early_stop_rounds needs an eval set"):
        DnnRegressorTrainer(early_stop_rounds=3).fit(X, y)


def test_save_load_predicts_identically(tmp_path: Path, cancer: tuple[np.ndarray, ...]) -> None:
    X, y, Xt, _ = cancer
    labels = np.where(y == 1, "benign", "malignant")
    model = DnnClassifierTrainer(
        hidden_units=[8, 4], activation_fn="crelu", dropout=0.2, max_iterations=3, **FAST
    ).fit(X, labels)
    saved = model.save(tmp_path)
    json.dumps(saved)
    assert (tmp_path / "weights.safetensors").is_file()
    assert saved["architecture"]["hidden_units"] == [8, 4]
    loaded = DnnClassifierTrainer.load(tmp_path, saved)
    np.testing.assert_array_equal(loaded.predict_proba(Xt), model.predict_proba(Xt))
    np.testing.assert_array_equal(loaded.predict(Xt), model.predict(Xt))
    assert loaded.training_info_ == model.training_info_


def test_load_never_unpickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    X = np.random.default_rng(2).normal(size=(50, 3))
    model = DnnRegressorTrainer(hidden_units=[4], max_iterations=2).fit(X, X[:, 0])
    saved = model.save(tmp_path)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("torch.load must not be used")

    monkeypatch.setattr(torch, "load", refuse)
    loaded = DnnRegressorTrainer.load(tmp_path, saved)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_same_seed_same_model_and_global_state_untouched(
    wave: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = wave
    settings: dict[str, Any] = {"hidden_units": [8], "max_iterations": 3, "dropout": 0.1, **FAST}
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    threads = torch.get_num_threads()
    a = DnnRegressorTrainer(**settings).fit(X[:200], y[:200]).predict(X)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.get_num_threads() == threads
    b = DnnRegressorTrainer(**settings).fit(X[:200], y[:200]).predict(X)
    c = DnnRegressorTrainer(**settings, seed=1).fit(X[:200], y[:200]).predict(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("optimizer", ["ADAM", "ADAGRAD", "FTRL", "RMSPROP", "SGD"])
@pytest.mark.parametrize("activation", ["RELU", "RELU6", "CRELU", "ELU", "SELU", "SIGMOID", "TANH"])
def test_every_optimizer_and_activation_trains(optimizer: str, activation: str) -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 3))
    y = X @ [1.0, -1.0, 0.5]
    model = DnnRegressorTrainer(
        hidden_units=[6],
        optimizer=optimizer,
        activation_fn=activation,
        learn_rate=0.05,
        l1_reg=0.001,
        l2_reg=0.001,
        max_iterations=4,
        early_stop=False,
        batch_size=32,
    ).fit(X, y)
    losses = [r.loss for r in model.training_info_]
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0]


def test_class_weights_shift_predictions() -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 2))
    y = np.where(X[:, 0] + rng.normal(scale=1.0, size=300) > 0, "a", "b")
    settings: dict[str, Any] = {"hidden_units": [4], "max_iterations": 15, "early_stop": False}
    plain = DnnClassifierTrainer(**settings, **FAST).fit(X, y)
    heavy = DnnClassifierTrainer(**settings, **FAST, class_weights={"b": 10.0}).fit(X, y)
    assert (heavy.predict(X) == "b").sum() > (plain.predict(X) == "b").sum()
    auto = DnnClassifierTrainer(**settings, **FAST, auto_class_weights=True).fit(X, y)
    assert auto.get_params()["auto_class_weights"] is True


@pytest.mark.parametrize(
    ("settings", "option"),
    [
        ({"hidden_units": []}, "hidden_units"),
        ({"hidden_units": "64"}, "hidden_units"),
        ({"hidden_units": [8, 0]}, "hidden_units[1]"),
        ({"activation_fn": "gelu"}, "activation_fn"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"learn_rate": 0}, "learn_rate"),
        ({"batch_size": 10_000}, "batch_size"),
        ({"batch_size": 8193}, "batch_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"l1_reg": -1}, "l1_reg"),
        ({"l2_reg": float("nan")}, "l2_reg"),
        ({"max_iterations": 0}, "max_iterations"),
        ({"early_stop": "yes"}, "early_stop"),
        ({"min_rel_progress": -0.1}, "min_rel_progress"),
        ({"seed": -1}, "seed"),
        ({"num_threads": 0}, "num_threads"),
        ({"early_stop_rounds": 0}, "early_stop_rounds"),
        ({"early_stop_rounds": 2.5}, "early_stop_rounds"),
        ({"device": "tpu"}, "device"),
        ({"class_weights": [1, 2]}, "class_weights"),
    ],
)
def test_bad_settings_name_the_option(settings: dict[str, Any], option: str) -> None:
    with pytest.raises(TrainingError, match=re.escape(f"dnn_classifier: {option}")):
        DnnClassifierTrainer(**settings)


def test_bad_data_and_not_fitted() -> None:
    X = np.random.default_rng(5).normal(size=(20, 2))
    model = DnnClassifierTrainer(hidden_units=[2], max_iterations=1)
    with pytest.raises(NotFittedError, match="fit"):
        model.predict(X)
    with pytest.raises(TrainingError, match="single class"):
        model.fit(X, np.zeros(20))
    with pytest.raises(TrainingError, match="y_eval has 1 label"):
        model.fit(X, np.arange(20) % 2, X_eval=X[:2], y_eval=np.array([0, 7]))
    fitted = DnnClassifierTrainer(hidden_units=[2], max_iterations=1).fit(X, np.arange(20) % 2)
    with pytest.raises(TrainingError, match="fitted on 2"):
        fitted.predict(np.zeros((3, 5)))
    if not torch.cuda.is_available():
        with pytest.raises(TrainingError, match="no CUDA GPU"):
            DnnRegressorTrainer(device="cuda", max_iterations=1).fit(X, X[:, 0])


def test_device_auto_picks_cuda_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert DnnRegressorTrainer()._resolve_device(torch).type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert DnnRegressorTrainer()._resolve_device(torch).type == "cpu"


def test_without_torch_asking_for_a_dnn_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kiln.train import _contract

    monkeypatch.setattr(_contract, "_TRAINERS", {})
    monkeypatch.setattr(_contract.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(TrainingError, match=r"install kiln\[dl\]"):
        get_trainer("dnn_classifier")


@pytest.mark.parametrize(
    ("model_type", "label"),
    [("dnn_classifier", "species"), ("dnn_classifier", "sex"), ("dnn_regressor", "body_mass_g")],
)
def test_predicting_from_one_hot_codes_equals_the_dense_matrix(model_type: str, label: str) -> None:
    """A DNN predicts from the one-hot blocks as codes (one weight row looked up per block, the
    input scaling folded into the first layer) with the outputs of the dense matrix; Model.predict
    and the few-row path take that way, unseen and missing categories included."""
    import warnings
    from importlib.resources import files

    import pyarrow as pa
    import pyarrow.csv as pacsv

    from kiln.model import Model
    from kiln.transform import OneHotFeatures

    table = pacsv.read_csv(str(files("palmerpenguins") / "data/penguins.csv"))
    table = table.filter(pa.compute.is_valid(table[label]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Model.fit(
            table, model_type=model_type, label=label, settings={**FAST, "max_iterations": 3}
        )
    odd = table.slice(0, 4).to_pylist()
    odd[0]["island"], odd[1]["island"] = "Atlantis", None  # unseen; missing
    rows = pa.concat_tables([table, pa.Table.from_pylist(odd, schema=table.schema)])
    rows = rows.drop_columns([label])

    hot = model.transform.one_hot_features(rows)
    assert isinstance(hot, OneHotFeatures)
    assert hot.hot  # island and sex (or species) stay codes
    dense = model.transform.transform(rows).X
    estimate = "predict_proba" if model_type == "dnn_classifier" else "predict"
    from_codes = getattr(model.trainer, estimate)(hot)
    np.testing.assert_allclose(
        from_codes, getattr(model.trainer, estimate)(dense), rtol=1e-5, atol=1e-6
    )
    predicted = model.predict(rows)
    column = f"predicted_{label}"
    if model_type == "dnn_regressor":
        np.testing.assert_allclose(predicted[column].to_numpy(), from_codes, rtol=1e-12)
    else:
        best = np.asarray(model.trainer.classes_)[from_codes.argmax(axis=1)]
        assert predicted[column].to_pylist() == best.tolist()
    few = model.predict_rows(rows.slice(rows.num_rows - 4).to_pylist())
    assert few[column] == predicted[column].to_pylist()[-4:]

    with pytest.raises(TrainingError, match="fitted on"):
        model.trainer.predict(OneHotFeatures((2, 3), np.zeros((2, 1)), np.array([0]), []))


def _penguins() -> Any:
    from importlib.resources import files

    import pyarrow.csv as pacsv

    return pacsv.read_csv(str(files("palmerpenguins") / "data/penguins.csv"))


@pytest.mark.parametrize(
    ("model_type", "label"), [("dnn_classifier", "species"), ("dnn_regressor", "body_mass_g")]
)
def test_fitting_from_one_hot_codes_equals_fitting_the_dense_matrix(
    monkeypatch: pytest.MonkeyPatch, model_type: str, label: str
) -> None:
    """A DNN fitted on the one-hot blocks as codes (the moments from each category's share, the
    first layer a lookup per block) learns the network the dense matrix gives, eval set and all;
    Model.fit takes that way and never builds the dense matrix."""
    import warnings

    import pyarrow as pa

    from kiln.model import Model, preprocessing_for
    from kiln.transform import FittedTransform, OneHotFeatures

    table = _penguins()
    table = table.filter(pa.compute.is_valid(table[label]))
    table = table.take(np.random.default_rng(0).permutation(table.num_rows))  # (sorted by species)
    train, held = table.slice(0, 250), table.slice(250)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = preprocessing_for(train, model_type, label=label).fit(train)
    hot, hot_eval = fitted.one_hot_features(train), fitted.one_hot_features(held)
    assert isinstance(hot, OneHotFeatures)
    assert hot.hot
    y = train[label].to_numpy(zero_copy_only=False)
    y_eval = held[label].to_numpy(zero_copy_only=False)
    settings = {**FAST, "hidden_units": [16, 8], "max_iterations": 4, "early_stop": False}
    cls = get_trainer(model_type)
    coded = cls(**settings).fit(hot, y, X_eval=hot_eval, y_eval=y_eval)
    dense = cls(**settings).fit(
        fitted.transform(train).X, y, X_eval=fitted.transform(held).X, y_eval=y_eval
    )
    for a, b in zip(coded.training_info_, dense.training_info_, strict=True):
        assert a.loss == pytest.approx(b.loss, rel=1e-4)
        assert a.eval_loss == pytest.approx(b.eval_loss, rel=1e-4)
    estimate = "predict_proba" if model_type == "dnn_classifier" else "predict"
    np.testing.assert_allclose(
        getattr(coded, estimate)(hot_eval), getattr(dense, estimate)(hot_eval), rtol=1e-3, atol=1e-5
    )

    def no_dense(self: Any, table: Any) -> Any:
        raise AssertionError("Model.fit built the dense matrix")

    monkeypatch.setattr(FittedTransform, "transform", no_dense)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Model.fit(
            train, model_type=model_type, label=label, settings=settings, eval_table=held
        )
    assert len(model.trainer.training_info_) == 4
