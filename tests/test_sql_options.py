"""kiln sql's CREATE MODEL options: BigQuery ML's defaults, the mapping onto Kiln's trainer
settings, every kind of bad option, the data split methods, and training with real trainers."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pyarrow as pa
import pytest

from kiln.errors import SqlError
from kiln.sql._model import HParamCandidates, HParamRange
from kiln.sql._options import SplitPlan, resolve_options, split_data
from kiln.sql._train import TRIAL_INFO_SCHEMA, train
from kiln.train import IterationInfo

SCHEMA = pa.schema([("x1", pa.float64()), ("x2", pa.float64()), ("label", pa.float64())])
CLASS_SCHEMA = pa.schema([("x1", pa.float64()), ("x2", pa.float64()), ("label", pa.string())])


def _regression(rows: int = 200, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    y = 3.0 * x1 - 2.0 * x2 + 1.5 + rng.normal(scale=0.5, size=rows)
    return pa.table({"x1": x1, "x2": x2, "label": y})


def _classes(rows: int = 200, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    label = np.where(x1 + x2 + rng.normal(scale=0.3, size=rows) > 0, "yes", "no")
    return pa.table({"x1": x1, "x2": x2, "label": label})


# --------------------------------------------------------------------------- defaults


DEFAULTS: dict[str, dict[str, Any]] = {
    "linear_reg": {
        "max_iterations": 20,
        "learn_rate_strategy": "LINE_SEARCH",
        "learn_rate": 0.1,
        "ls_init_learn_rate": 0.1,
        "early_stop": True,
        "min_rel_progress": 0.01,
        "optimize_strategy": "AUTO_STRATEGY",
        "l1_reg": 0.0,
        "l2_reg": 0.0,
        "fit_intercept": True,
        "warm_start": False,
        "calculate_p_values": False,
        "category_encoding_method": "ONE_HOT_ENCODING",
        "data_split_method": "AUTO_SPLIT",
        "data_split_eval_fraction": 0.2,
        "input_label_cols": ["label"],
        "enable_global_explain": False,
        "num_trials": 1,
        "hparam_tuning_algorithm": "VIZIER_DEFAULT",
    },
    "logistic_reg": {"auto_class_weights": False, "class_weights": None, "max_iterations": 20},
    "kmeans": {
        "num_clusters": None,
        "kmeans_init_method": "RANDOM",
        "distance_type": "EUCLIDEAN",
        "standardize_features": True,
        "max_iterations": 20,
        "early_stop": True,
        "min_rel_progress": 0.01,
    },
    "boosted_tree_regressor": {
        "booster_type": "GBTREE",
        "num_parallel_tree": 1,
        "max_tree_depth": 6,
        "subsample": 1.0,
        "min_split_loss": 0.0,
        "min_tree_child_weight": 1,
        "colsample_bytree": 1.0,
        "colsample_bylevel": 1.0,
        "colsample_bynode": 1.0,
        "l1_reg": 0.0,
        "l2_reg": 1.0,
        "learn_rate": 0.3,
        "max_iterations": 20,
        "tree_method": "AUTO",
        "dart_normalize_type": "TREE",
        "dropout": 0.0,
    },
    "boosted_tree_classifier": {"auto_class_weights": False, "learn_rate": 0.3},
    "random_forest_regressor": {
        "num_parallel_tree": 100,
        "max_tree_depth": 15,
        "subsample": 0.8,
        "colsample_bynode": 0.8,
        "l2_reg": 1.0,
        "min_tree_child_weight": 1,
    },
    "random_forest_classifier": {"num_parallel_tree": 100, "subsample": 0.8},
    "dnn_regressor": {
        "hidden_units": None,
        "activation_fn": "RELU",
        "optimizer": "ADAM",
        "learn_rate": 0.001,
        "batch_size": None,
        "dropout": 0.0,
        "max_iterations": 20,
        "early_stop": True,
    },
    "dnn_classifier": {"optimizer": "ADAM", "class_weights": None},
    "automl_regressor": {"budget_hours": 1.0, "optimization_objective": "MINIMIZE_RMSE"},
    "automl_classifier": {"budget_hours": 1.0, "optimization_objective": None},
}


@pytest.mark.parametrize("model_type", sorted(DEFAULTS))
def test_every_model_type_resolves_with_bigquery_defaults(model_type: str) -> None:
    schema = CLASS_SCHEMA if "class" in model_type or "logistic" in model_type else SCHEMA
    resolved = resolve_options({"model_type": model_type.upper()}, schema)
    assert resolved.model_type == model_type
    assert resolved.options["model_type"] == model_type
    for name, default in DEFAULTS[model_type].items():
        assert resolved.options[name] == default, name
    json.dumps(resolved.options)  # the lead stores them as metadata
    supervised = model_type != "kmeans"
    assert resolved.label == ("label" if supervised else None)
    assert resolved.tuning is None
    assert resolved.global_explain is False
    if model_type.startswith("automl"):
        assert resolved.trainer_type is None
        assert resolved.settings == {}
        assert resolved.automl is not None
        assert resolved.automl["time_budget"] == 3600.0
        assert resolved.split == SplitPlan("NO_SPLIT")
    else:
        assert resolved.trainer_type == model_type
        assert resolved.automl is None
        expected = SplitPlan("NO_SPLIT") if model_type == "kmeans" else SplitPlan("AUTO_SPLIT")
        assert resolved.split == expected


def test_pca_resolves_with_one_size_given() -> None:
    resolved = resolve_options({"model_type": "pca", "num_principal_components": 2}, SCHEMA)
    assert resolved.label is None
    assert resolved.split == SplitPlan("NO_SPLIT")
    assert resolved.settings == {
        "num_principal_components": 2,
        "pca_explained_variance_ratio": None,
        "scale_features": True,
        "pca_solver": "AUTO",
    }


def test_automl_budget_and_objective() -> None:
    resolved = resolve_options(
        {
            "model_type": "automl_classifier",
            "budget_hours": 0.5,
            "optimization_objective": "minimize_log_loss",
        },
        CLASS_SCHEMA,
    )
    assert resolved.automl == {
        "time_budget": 1800.0,
        "metric": "log_loss",
        "task": "classification",
    }
    assert resolved.options["optimization_objective"] == "MINIMIZE_LOG_LOSS"
    with pytest.raises(SqlError, match=r"optimization_objective.*MAXIMIZE_AU_PRC"):
        resolve_options(
            {"model_type": "automl_classifier", "optimization_objective": "MAXIMIZE_AU_PRC"},
            CLASS_SCHEMA,
        )


# --------------------------------------------------------------------------- mapping


def test_options_map_onto_trainer_settings() -> None:
    resolved = resolve_options(
        {
            "model_type": "boosted_tree_classifier",
            "booster_type": "dart",
            "max_tree_depth": 4,
            "subsample": 0.5,
            "l2_reg": 2,
            "class_weights": [("yes", 0.7), ("no", 0.3)],
            "enable_global_explain": True,
            "input_label_cols": ["LABEL"],  # BigQuery column names ignore case
        },
        CLASS_SCHEMA,
    )
    s = resolved.settings
    assert (s["booster_type"], s["max_tree_depth"], s["subsample"]) == ("DART", 4, 0.5)
    assert s["l2_reg"] == 2.0
    assert isinstance(s["l2_reg"], float)
    assert s["class_weights"] == {"yes": 0.7, "no": 0.3}
    assert s["enable_global_explain"] is True
    assert resolved.global_explain is True
    assert resolved.label == "label"
    assert "input_label_cols" not in s
    assert "data_split_method" not in s


def test_glm_mapping_and_sql_only_options() -> None:
    resolved = resolve_options(
        {
            "model_type": "linear_reg",
            "learn_rate_strategy": "constant",
            "learn_rate": 0.05,
            "optimize_strategy": "batch_gradient_descent",
            "l1_reg": 0.1,
            "max_iterations": 5,
            "fit_intercept": False,
            "kms_key_name": "projects/p/keys/k",
        },
        SCHEMA,
    )
    s = resolved.settings
    assert s["learn_rate_strategy"] == "CONSTANT"
    assert s["optimize_strategy"] == "BATCH_GRADIENT_DESCENT"
    assert (s["learn_rate"], s["l1_reg"], s["max_iterations"]) == (0.05, 0.1, 5)
    assert s["fit_intercept"] is False
    assert "kms_key_name" not in s
    assert "warm_start" not in s
    assert resolved.options["kms_key_name"] == "projects/p/keys/k"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, r"model_type = "),
        ({"model_type": 5}, r"model_type: expected STRING, got INT64 5"),
        ({"model_type": "neural_net"}, r"Unsupported model_type 'neural_net'.*linear_reg"),
        ({"model_type": "linear_reg", "foo": 1}, r"Unknown option: foo .*l2_reg"),
        ({"model_type": "linear_reg", "auto_class_weights": True}, r"Unknown option"),
        ({"model_type": "kmeans", "input_label_cols": ["label"]}, r"Unknown option"),
        ({"model_type": "linear_reg", "l2_reg": "abc"}, r"l2_reg: expected FLOAT64.*'abc'"),
        ({"model_type": "linear_reg", "max_iterations": 2.5}, r"max_iterations: expected INT64"),
        ({"model_type": "linear_reg", "early_stop": 1}, r"early_stop: expected BOOL"),
        ({"model_type": "linear_reg", "input_label_cols": "label"}, r"expected ARRAY<STRING>"),
        ({"model_type": "linear_reg", "l1_reg": -1.0}, r"l1_reg: -1.0 is out of range"),
        (
            {
                "model_type": "linear_reg",
                "data_split_method": "random",
                "data_split_eval_fraction": 1.5,
            },
            r"data_split_eval_fraction: 1.5 is out of range",
        ),
        ({"model_type": "boosted_tree_regressor", "subsample": 0.0}, r"subsample: 0.0 is out"),
        ({"model_type": "boosted_tree_regressor", "subsample": 1.5}, r"subsample: 1.5 is out"),
        ({"model_type": "random_forest_regressor", "subsample": 1.0}, r"subsample: 1.0 is out"),
        ({"model_type": "kmeans", "num_clusters": 1}, r"num_clusters: 1 is out of range"),
        ({"model_type": "linear_reg", "optimize_strategy": "newton"}, r"'AUTO_STRATEGY'"),
        ({"model_type": "kmeans", "kmeans_init_method": "custom"}, r"not supported yet"),
        ({"model_type": "kmeans", "kmeans_init_col": "c"}, r"kmeans_init_col is not supported"),
        ({"model_type": "linear_reg", "warm_start": True}, r"warm_start=True is not supported"),
        ({"model_type": "linear_reg", "calculate_p_values": True}, r"p-values"),
        ({"model_type": "linear_reg", "learn_rate": 0.2}, r"learn_rate applies to .*CONSTANT"),
        (
            {"model_type": "linear_reg", "optimize_strategy": "normal_equation", "l1_reg": 1.0},
            r"l1_reg cannot be used with optimize_strategy='NORMAL_EQUATION'",
        ),
        ({"model_type": "pca"}, r"exactly one of num_principal_components"),
        (
            {"model_type": "boosted_tree_regressor", "category_encoding_method": "target_encoding"},
            r"LABEL_ENCODING",
        ),
        ({"model_type": "linear_reg", "l1_reg": HParamRange(0, 1)}, r"needs num_trials > 1"),
        (
            {"model_type": "linear_reg", "num_trials": 3, "max_iterations": HParamRange(1, 5)},
            r"max_iterations .*does not take HPARAM_RANGE",
        ),
        (
            {"model_type": "linear_reg", "num_trials": 3, "l1_reg": HParamRange(-1, 1)},
            r"l1_reg: -1.0 is out of range",
        ),
        (
            {"model_type": "linear_reg", "input_label_cols": ["y"]},
            r"Label column y not found.*x1, x2, label",
        ),
        ({"model_type": "linear_reg", "data_split_method": "custom"}, r"needs data_split_col"),
        (
            {"model_type": "linear_reg", "data_split_method": "custom", "data_split_col": "x1"},
            r"data_split_col x1 is double.*must be BOOL",
        ),
        (
            {"model_type": "linear_reg", "data_split_method": "seq", "data_split_col": "nope"},
            r"Split column nope not found",
        ),
        (
            {"model_type": "linear_reg", "data_split_col": "x1"},
            r"data_split_col applies to data_split_method 'CUSTOM' or 'SEQ'",
        ),
        ({"model_type": "linear_reg", "data_split_eval_fraction": 0.3}, r"applies to .*'RANDOM'"),
        (
            {"model_type": "linear_reg", "num_trials": 3, "hparam_tuning_objectives": ["roc_auc"]},
            r"hparam_tuning_objectives.*R2_SCORE",
        ),
        ({"model_type": "automl_regressor", "data_split_col": "x1"}, r"Unknown option"),
    ],
)
def test_bad_options_raise_sql_error(options: dict[str, Any], message: str) -> None:
    with pytest.raises(SqlError, match=message):
        resolve_options(options, SCHEMA)


@pytest.mark.parametrize(
    ("model_type", "instead"),
    [
        ("matrix_factorization", ""),
        ("arima_plus", ""),
        ("arima_plus_xreg", ""),
        ("autoencoder", "pca"),
        ("tensorflow", "train a model"),
        ("onnx", "train a model"),
        ("xgboost", "boosted_tree"),
        ("dnn_linear_combined_classifier", "dnn_classifier"),
        ("contribution_analysis", ""),
    ],
)
def test_unsupported_model_types(model_type: str, instead: str) -> None:
    with pytest.raises(SqlError, match=f"model_type '{model_type}' is not supported yet") as e:
        resolve_options({"model_type": model_type}, SCHEMA)
    assert instead in str(e.value)


def test_regressor_needs_a_numeric_label() -> None:
    with pytest.raises(SqlError, match="Label column label is string; linear_reg predicts"):
        resolve_options({"model_type": "linear_reg"}, CLASS_SCHEMA)


def test_dnn_without_torch_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(SqlError, match=r"pip install 'kiln\[dl\]'"):
        resolve_options({"model_type": "dnn_regressor"}, SCHEMA)


# --------------------------------------------------------------------------- tuning options


def test_tuning_with_a_range_and_candidates() -> None:
    resolved = resolve_options(
        {
            "model_type": "boosted_tree_regressor",
            "num_trials": 4,
            "max_parallel_trials": 1,
            "hparam_tuning_algorithm": "random_search",
            "hparam_tuning_objectives": ["mean_absolute_error"],
            "max_tree_depth": HParamRange(2, 5),
            "booster_type": HParamCandidates(("gbtree", "dart")),
        },
        SCHEMA,
    )
    assert resolved.tuning is not None
    space = resolved.tuning["space"]
    assert (space["max_tree_depth"].low, space["max_tree_depth"].high) == (2, 5)
    assert space["booster_type"].values == ("GBTREE", "DART")
    assert resolved.tuning["algorithm"] == "random"
    assert resolved.tuning["objective"] == "mean_absolute_error"
    assert "max_tree_depth" not in resolved.settings
    assert "booster_type" not in resolved.settings
    assert resolved.options["max_tree_depth"] == {"hparam_range": [2, 5]}
    assert resolved.options["booster_type"] == {"hparam_candidates": ["GBTREE", "DART"]}


def test_tuning_without_ranges_searches_bigquery_default_space() -> None:
    resolved = resolve_options({"model_type": "linear_reg", "num_trials": 5, "l2_reg": 0.5}, SCHEMA)
    assert resolved.tuning is not None
    assert sorted(resolved.tuning["space"]) == ["l1_reg"]  # l2_reg is fixed by the user
    assert resolved.settings["l2_reg"] == 0.5
    assert "l1_reg" not in resolved.settings
    assert resolved.tuning["objective"] is None  # BigQuery's default per task: r2_score


# --------------------------------------------------------------------------- splits


def _numbered(rows: int) -> pa.Table:
    return pa.table({"i": np.arange(rows), "label": np.arange(rows, dtype=np.float64)})


@pytest.mark.parametrize(
    ("rows", "eval_rows"),
    [
        (10, 0),
        (499, 0),
        (500, 100),
        (1_000, 200),
        (50_000, 10_000),
        (50_001, 10_000),
        (80_000, 10_000),
    ],
)
def test_auto_split_row_counts(rows: int, eval_rows: int) -> None:
    training, evaluation = split_data(_numbered(rows), SplitPlan("AUTO_SPLIT"), label="label")
    if eval_rows == 0:
        assert evaluation is None
        assert training.num_rows == rows
    else:
        assert evaluation is not None
        assert evaluation.num_rows == eval_rows
        assert training.num_rows == rows - eval_rows
        ids = set(training["i"].to_pylist()) | set(evaluation["i"].to_pylist())
        assert len(ids) == rows  # a partition, no row twice


def test_random_split_is_deterministic_by_seed() -> None:
    table = _numbered(100)
    plan = SplitPlan("RANDOM", 0.3)
    a_train, a_eval = split_data(table, plan, label="label", seed=1)
    _, b_eval = split_data(table, plan, label="label", seed=1)
    _, c_eval = split_data(table, plan, label="label", seed=2)
    assert a_eval is not None
    assert b_eval is not None
    assert c_eval is not None
    assert (a_train.num_rows, a_eval.num_rows) == (70, 30)
    assert a_eval["i"].to_pylist() == b_eval["i"].to_pylist()
    assert a_eval["i"].to_pylist() != c_eval["i"].to_pylist()
    assert a_eval["i"].to_pylist() == sorted(a_eval["i"].to_pylist())  # input order kept


def test_custom_split_true_and_null_rows_evaluate() -> None:
    table = pa.table(
        {
            "x": [1.0, 2.0, 3.0, 4.0, 5.0],
            "is_eval": pa.array([False, True, None, False, True]),
            "label": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    training, evaluation = split_data(table, SplitPlan("CUSTOM", None, "is_eval"), label="label")
    assert evaluation is not None
    assert training["x"].to_pylist() == [1.0, 4.0]
    assert evaluation["x"].to_pylist() == [2.0, 3.0, 5.0]
    assert "is_eval" not in training.column_names + evaluation.column_names


def test_seq_split_holds_out_the_last_rows_in_column_order() -> None:
    days = [5, 1, 9, 3, 7, 2, 8, 4, 10, 6]
    table = pa.table({"day": days, "x": [float(d) for d in days], "label": [0.0] * 10})
    training, evaluation = split_data(table, SplitPlan("SEQ", 0.3, "day"), label="label")
    assert evaluation is not None
    assert sorted(evaluation["x"].to_pylist()) == [8.0, 9.0, 10.0]
    assert sorted(training["x"].to_pylist()) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert "day" not in training.column_names


def test_no_split_keeps_every_row() -> None:
    training, evaluation = split_data(_numbered(2_000), SplitPlan("NO_SPLIT"), label="label")
    assert evaluation is None
    assert training.num_rows == 2_000


def test_split_resolved_from_options() -> None:
    schema = pa.schema([("x1", pa.float64()), ("Holdout", pa.bool_()), ("label", pa.float64())])
    resolved = resolve_options(
        {"model_type": "linear_reg", "data_split_method": "CUSTOM", "data_split_col": "holdout"},
        schema,
    )
    assert resolved.split == SplitPlan("CUSTOM", None, "Holdout")
    resolved = resolve_options(
        {
            "model_type": "linear_reg",
            "data_split_method": "RANDOM",
            "data_split_eval_fraction": 0.1,
        },
        schema,
    )
    assert resolved.split == SplitPlan("RANDOM", 0.1, None)


# --------------------------------------------------------------------------- training


def test_train_linear_reg_matches_least_squares() -> None:
    table = _regression(300)
    resolved = resolve_options({"model_type": "linear_reg"}, table.schema)
    training, evaluation = split_data(table, resolved.split, label=resolved.label)
    assert evaluation is None  # under 500 rows: AUTO_SPLIT holds nothing out
    seen: list[IterationInfo] = []
    result = train(resolved, training, evaluation, on_iteration=seen.append)
    predicted = result.model.predict(table)["predicted_label"].to_numpy()
    X = np.column_stack([table["x1"].to_numpy(), table["x2"].to_numpy(), np.ones(300)])
    y = table["label"].to_numpy()
    coef = np.linalg.lstsq(X, y, rcond=None)[0]
    rmse_numpy = float(np.sqrt(np.mean((X @ coef - y) ** 2)))
    rmse_kiln = float(np.sqrt(np.mean((predicted - y) ** 2)))
    assert rmse_kiln == pytest.approx(rmse_numpy, rel=1e-6)
    assert len(seen) == len(result.model.trainer.training_info_) >= 1
    assert result.trials is None
    assert result.leaderboard is None


def test_train_logistic_reg_reports_every_iteration() -> None:
    table = _classes(600)
    resolved = resolve_options(
        {"model_type": "logistic_reg", "data_split_method": "random"}, table.schema
    )
    training, evaluation = split_data(table, resolved.split, label=resolved.label)
    assert evaluation is not None
    assert evaluation.num_rows == 120
    seen: list[IterationInfo] = []
    result = train(resolved, training, evaluation, on_iteration=seen.append)
    assert [i.iteration for i in seen] == [i.iteration for i in result.model.trainer.training_info_]
    assert all(i.eval_loss is not None for i in seen)
    predicted = result.model.predict(evaluation)["predicted_label"].to_pylist()
    accuracy = np.mean(np.array(predicted) == np.array(evaluation["label"].to_pylist()))
    assert accuracy > 0.85


def test_train_kmeans_finds_the_two_blobs() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(loc=-5.0, size=(50, 2))
    b = rng.normal(loc=5.0, size=(50, 2))
    points = np.vstack([a, b])
    table = pa.table({"x1": points[:, 0], "x2": points[:, 1]})
    resolved = resolve_options({"model_type": "kmeans", "num_clusters": 2}, table.schema)
    training, evaluation = split_data(table, resolved.split, label=None)
    result = train(resolved, training, evaluation)
    ids = result.model.predict(table)["centroid_id"].to_numpy()
    assert len(set(ids[:50])) == 1
    assert len(set(ids[50:])) == 1
    assert ids[0] != ids[50]


def test_train_boosted_tree_classifier() -> None:
    table = _classes(300)
    resolved = resolve_options(
        {"model_type": "boosted_tree_classifier", "max_iterations": 10, "max_tree_depth": 3},
        table.schema,
    )
    seen: list[IterationInfo] = []
    result = train(resolved, table, None, on_iteration=seen.append)
    assert result.model.trainer.get_params()["max_tree_depth"] == 3
    assert 1 <= len(seen) <= 10
    predicted = result.model.predict(table)["predicted_label"].to_pylist()
    assert np.mean(np.array(predicted) == np.array(table["label"].to_pylist())) > 0.9


def test_train_dnn_regressor_tiny() -> None:
    table = _regression(200)
    resolved = resolve_options(
        {
            "model_type": "dnn_regressor",
            "hidden_units": [8],
            "learn_rate": 0.01,
            "max_iterations": 30,
            "early_stop": False,
        },
        table.schema,
    )
    seen: list[IterationInfo] = []
    result = train(resolved, table, None, on_iteration=seen.append)
    assert len(seen) == 30
    y = table["label"].to_numpy()
    predicted = result.model.predict(table)["predicted_label"].to_numpy()
    rmse = float(np.sqrt(np.mean((predicted - y) ** 2)))
    assert rmse < 0.5 * float(np.std(y))  # learned much more than the mean


def test_train_tuning_with_a_range() -> None:
    table = _regression(250)
    resolved = resolve_options(
        {"model_type": "linear_reg", "num_trials": 3, "l2_reg": HParamRange(0.0, 10.0)},
        table.schema,
    )
    result = train(resolved, table, None)
    trials = result.trials
    assert trials is not None
    assert trials.schema == TRIAL_INFO_SCHEMA
    assert trials["trial_id"].to_pylist() == [1, 2, 3]
    assert trials["status"].to_pylist() == ["SUCCEEDED"] * 3
    assert trials["is_optimal"].to_pylist().count(True) == 1
    for text in trials["hyperparameters"].to_pylist():
        assert 0.0 <= json.loads(text)["l2_reg"] <= 10.0
    best = trials.filter(trials["is_optimal"]).to_pylist()[0]
    assert json.loads(best["hparam_tuning_evaluation_metrics"])["r2_score"] > 0.9
    assert (
        result.model.trainer.get_params()["l2_reg"] == json.loads(best["hyperparameters"])["l2_reg"]
    )


def test_train_automl_regressor_tiny_budget() -> None:
    table = _regression(200)
    resolved = resolve_options(
        {"model_type": "automl_regressor", "budget_hours": 0.002}, table.schema
    )
    assert resolved.automl is not None
    assert resolved.automl["time_budget"] == pytest.approx(7.2)
    result = train(resolved, table, None)
    assert result.leaderboard is not None
    assert result.leaderboard.num_rows >= 1
    predicted = result.model.predict(table)["predicted_label"].to_numpy()
    y = table["label"].to_numpy()
    assert float(np.sqrt(np.mean((predicted - y) ** 2))) < 1.5


def test_training_errors_come_back_as_sql_errors() -> None:
    table = pa.table({"x1": [1.0, 2.0, 3.0], "label": ["a", "a", "a"]})
    resolved = resolve_options({"model_type": "logistic_reg"}, table.schema)
    with pytest.raises(SqlError, match=r"CREATE MODEL \(logistic_reg\) failed to train"):
        train(resolved, table, None)
