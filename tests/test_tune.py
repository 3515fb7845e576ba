"""Hyper-parameter tuning on the Palmer penguins: BigQuery ML's search-space semantics, seeded
reproducibility, pruning, budgets, parallel trials in real worker processes, the bad inputs the
issue lists, and the Tuner component feeding the Trainer."""

from __future__ import annotations

import json
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from kiln.errors import TrainingError
from kiln.model import Model, evaluate_model
from kiln.train import trainers
from kiln.tune import (
    Candidates,
    Range,
    TuningResult,
    default_search_space,
    from_bigquery_options,
    hparam_candidates,
    hparam_range,
    parse_search_space,
    tune,
)
from kiln.tune._space import resolve

STATES = {"COMPLETE", "PRUNED", "FAILED"}


@pytest.fixture(scope="module")
def table() -> pa.Table:
    import importlib.resources

    src = importlib.resources.files("palmerpenguins") / "data/penguins.csv"
    with src.open("rb") as f:
        t = pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(null_values=["NA"]))
    return t.filter(pc.and_(pc.is_valid(t["body_mass_g"]), pc.is_valid(t["sex"])))


@pytest.fixture(scope="module")
def splits(table: pa.Table) -> dict[str, pa.Table]:
    from kiln.data import split_table

    return split_table(table, {"train": 0.75, "eval": 0.25}, seed=3)


def _params(result: TuningResult) -> list[dict[str, Any]]:
    return [json.loads(p) for p in result.trials["params"].to_pylist()]


def _states(result: TuningResult) -> list[str]:
    return list(result.trials["state"].to_pylist())


# --------------------------------------------------------------------------- search spaces


def test_ranges_and_candidates_follow_bigquery_semantics() -> None:
    assert hparam_range(0, 10) == Range(0, 10)
    assert hparam_candidates([4, 6, 8]) == Candidates((4, 6, 8))
    parsed = parse_search_space(
        {
            "L2_REG": {"range": [0, 10]},
            "max_tree_depth": {"candidates": [4, 6, 8]},
            "learn_rate": {"range": [0.01, 1], "log": True},
            "min_split_loss": hparam_range(0, 5),
        }
    )
    assert parsed["l2_reg"] == Range(0, 10)  # names lower-cased, like OPTIONS
    assert parsed["learn_rate"] == Range(0.01, 1, log=True)
    resolved = {r.name: r for r in resolve("boosted_tree_classifier", parsed, {})}
    # l2_reg is LOG-scale in BigQuery ML's table: (0, 10] starts just above 0
    assert resolved["l2_reg"].log
    assert not resolved["l2_reg"].integer
    assert resolved["l2_reg"].low == pytest.approx(1e-5)
    assert resolved["l2_reg"].high == 10.0
    # LINEAR by default; integer ends on a float option give a float range
    assert not resolved["min_split_loss"].log
    assert not resolved["min_split_loss"].integer
    assert resolved["learn_rate"].log
    # an integer option with integer ends stays integer
    depth = resolve("boosted_tree_classifier", {"max_tree_depth": Range(2, 8)}, {})[0]
    assert depth.integer
    assert (depth.low, depth.high) == (2, 8)
    assert isinstance(depth.low, int)


def test_every_builtin_trainer_has_a_default_search_space_it_accepts() -> None:
    tunable = [
        "linear_reg",
        "logistic_reg",
        "kmeans",
        "boosted_tree_classifier",
        "boosted_tree_regressor",
        "random_forest_classifier",
        "random_forest_regressor",
        "dnn_classifier",
        "dnn_regressor",
        "catboost_classifier",
        "catboost_regressor",
    ]
    assert set(tunable) | {"pca"} <= set(trainers())
    for model_type in tunable:
        space = default_search_space(model_type)
        assert space, model_type
        # every end and candidate is a value the trainer itself accepts
        assert len(resolve(model_type, space, {})) == len(space)
    assert set(default_search_space("linear_reg")) == {"l1_reg", "l2_reg"}
    assert default_search_space("kmeans") == {"num_clusters": Range(2, 10, False)}
    with pytest.raises(TrainingError, match=r"pca has no default search space.*search_space="):
        default_search_space("pca")


def test_list_candidates_travel_as_json_text() -> None:
    from kiln.tune._tuner import _Codec

    space = {"hidden_units": hparam_candidates([[8], [16, 8]]), "optimizer": Candidates(("ADAM",))}
    codec = _Codec(resolve("dnn_classifier", space, {}), None)
    choices = codec.distributions["hidden_units"].choices  # type: ignore[attr-defined]
    assert choices == ("[8]", "[16, 8]")  # Optuna's categories are scalars
    assert codec.decode({"hidden_units": "[16, 8]", "optimizer": "ADAM"}) == {
        "hidden_units": [16, 8],
        "optimizer": "ADAM",
    }


def test_bigquery_options_map_onto_tune() -> None:
    kwargs = from_bigquery_options(
        {
            "NUM_TRIALS": 20,
            "MAX_PARALLEL_TRIALS": 2,
            "HPARAM_TUNING_ALGORITHM": "VIZIER_DEFAULT",
            "HPARAM_TUNING_OBJECTIVES": ["R2_SCORE"],
            "L1_REG": hparam_range(0, 5),
            "L2_REG": {"candidates": [0, 0.1, 1]},
            "MAX_ITERATIONS": 10,
        }
    )
    assert kwargs == {
        "num_trials": 20,
        "num_parallel_trials": 2,
        "algorithm": "VIZIER_DEFAULT",
        "objective": "R2_SCORE",
        "search_space": {"l1_reg": Range(0, 5), "l2_reg": {"candidates": [0, 0.1, 1]}},
        "settings": {"max_iterations": 10},
    }


# --------------------------------------------------------------------------- tuning


def test_a_seed_makes_tuning_reproducible(table: pa.Table) -> None:
    def run() -> TuningResult:
        return tune(
            table,
            model_type="logistic_reg",
            label="sex",
            search_space={"l2_reg": hparam_range(0.001, 100.0), "l1_reg": hparam_range(0, 1)},
            num_trials=5,
            seed=7,
        )

    first, second = run(), run()
    assert first.best_params == second.best_params
    assert _params(first) == _params(second)
    assert first.best_score == second.best_score
    assert first.objective == "roc_auc"
    assert first.direction == "maximize"
    assert set(first.best_params) == {"l1_reg", "l2_reg"}
    assert first.trials.column_names == [
        "trial_id",
        "params",
        "score",
        "state",
        "duration_s",
        "error",
        "is_optimal",
    ]
    assert first.trials["trial_id"].to_pylist() == [0, 1, 2, 3, 4]
    assert sum(first.trials["is_optimal"].to_pylist()) == 1
    # another seed proposes other settings
    other = tune(
        table,
        model_type="logistic_reg",
        label="sex",
        search_space={"l2_reg": hparam_range(0.001, 100.0), "l1_reg": hparam_range(0, 1)},
        num_trials=5,
        seed=8,
    )
    assert _params(other) != _params(first)


def test_the_best_beats_a_deliberately_bad_setting(splits: dict[str, pa.Table]) -> None:
    train, held_out = splits["train"], splits["eval"]
    result = tune(
        train,
        model_type="logistic_reg",
        label="species",
        search_space={"l2_reg": hparam_range(0.001, 1000.0, log=True)},
        objective="log_loss",
        num_trials=6,
        eval_table=held_out,
        prune=False,
    )
    assert result.direction == "minimize"
    bad = Model.fit(train, model_type="logistic_reg", label="species", settings={"l2_reg": 1000.0})
    bad_loss = evaluate_model(bad, held_out, importance=False).metrics["log_loss"]
    assert result.best_score < bad_loss / 2
    # best_model is fitted with the best settings, and scores what the best trial scored
    assert result.best_model.trainer.get_params()["l2_reg"] == result.best_params["l2_reg"]
    best = evaluate_model(result.best_model, held_out, importance=False).metrics["log_loss"]
    assert best == pytest.approx(result.best_score)
    scores = [s for s in result.trials["score"].to_pylist() if s is not None]
    assert result.best_score == min(scores)


def test_default_objectives_and_search_spaces(table: pa.Table) -> None:
    regression = tune(table, model_type="linear_reg", label="body_mass_g", num_trials=3)
    assert (regression.objective, regression.direction) == ("r2_score", "maximize")
    assert set(regression.best_params) == {"l1_reg", "l2_reg"}
    assert 0.5 < regression.best_score <= 1.0
    clusters = tune(table, model_type="kmeans", label=None, num_trials=3)
    assert (clusters.objective, clusters.direction) == ("davies_bouldin_index", "minimize")
    assert 2 <= clusters.best_params["num_clusters"] <= 10
    assert isinstance(clusters.best_params["num_clusters"], int)
    assert set(_states(clusters)) == {"COMPLETE"}  # k-means trials are never pruned
    # a setting fixed in settings leaves the default space
    fixed = tune(
        table, model_type="linear_reg", label="body_mass_g", num_trials=2, settings={"l1_reg": 0}
    )
    assert set(fixed.best_params) == {"l2_reg"}
    assert fixed.best_model.trainer.get_params()["l1_reg"] == 0


def test_grid_search_covers_the_grid(table: pa.Table) -> None:
    result = tune(
        table,
        model_type="boosted_tree_classifier",
        label="species",
        search_space={
            "max_tree_depth": hparam_range(2, 3),  # an integer range is discrete
            "booster_type": hparam_candidates(["GBTREE", "DART"]),
        },
        settings={"max_iterations": 3},
        algorithm="GRID_SEARCH",
        objective="accuracy",
    )
    assert len(result.trials) == 4  # the whole grid when num_trials is not given
    seen = {(p["max_tree_depth"], p["booster_type"]) for p in _params(result)}
    assert seen == {(2, "GBTREE"), (2, "DART"), (3, "GBTREE"), (3, "DART")}
    assert result.best_model.trainer.get_params()["max_tree_depth"] in (2, 3)


def test_pruning_stops_bad_trials_of_an_iterative_trainer(table: pa.Table) -> None:
    options: dict[str, Any] = {
        "model_type": "boosted_tree_classifier",
        "label": "sex",
        "search_space": {"learn_rate": hparam_range(0.0005, 1.0, log=True)},
        "settings": {"max_iterations": 25, "early_stop": False},
        "objective": "log_loss",
        "num_trials": 8,
        "algorithm": "random",
        "seed": 1,
    }
    pruned = tune(table, **options)
    states = _states(pruned)
    assert states.count("PRUNED") >= 1, pruned.trials.to_pylist()
    assert states.count("COMPLETE") >= 2
    rows = pruned.trials.to_pylist()
    assert all(r["score"] is None for r in rows if r["state"] == "PRUNED")
    # the pruned trials are the slow learners: each has a smaller rate than the best one
    best_rate = pruned.best_params["learn_rate"]
    slow = [json.loads(r["params"])["learn_rate"] for r in rows if r["state"] == "PRUNED"]
    assert all(rate < best_rate for rate in slow)
    # the same trials without pruning all complete
    unpruned = tune(table, **options, prune=False)
    assert set(_states(unpruned)) == {"COMPLETE"}
    assert _params(unpruned) == _params(pruned)  # random search: the same proposals


def test_a_time_budget_stops_asking_for_trials(table: pa.Table) -> None:
    result = tune(
        table,
        model_type="logistic_reg",
        label="sex",
        search_space={"l2_reg": hparam_range(0.001, 10.0)},
        num_trials=500,
        time_budget=0.3,
    )
    assert 1 <= len(result.trials) < 500
    assert set(_states(result)) <= {"COMPLETE", "PRUNED"}
    assert "l2_reg" in result.best_params
    # only a time budget: still bounded, still a best
    timed = tune(
        table,
        model_type="logistic_reg",
        label="sex",
        search_space={"l2_reg": hparam_range(0.001, 10.0)},
        time_budget=0.3,
    )
    assert len(timed.trials) >= 1
    assert "COMPLETE" in _states(timed)
    with pytest.raises(TrainingError, match=r"no trial ran within the time budget"):
        tune(
            table,
            model_type="logistic_reg",
            label="sex",
            search_space={"l2_reg": hparam_range(0.001, 10.0)},
            time_budget=1e-9,
        )


def test_no_completed_trial_is_one_clear_error(splits: dict[str, pa.Table]) -> None:
    one_class = splits["eval"].filter(pc.equal(splits["eval"]["sex"], "male"))
    with pytest.raises(TrainingError, match=r"no trial completed: 2 ran, 2 failed.*roc_auc"):
        tune(
            splits["train"],
            model_type="logistic_reg",
            label="sex",
            search_space={"l2_reg": hparam_range(0.1, 10.0)},
            num_trials=2,
            eval_table=one_class,
        )
    # an error that does not depend on the settings stops the run after three trials
    with pytest.raises(TrainingError, match=r"the first 3 trials all failed alike.*roc_auc"):
        tune(
            splits["train"],
            model_type="logistic_reg",
            label="sex",
            search_space={"l2_reg": hparam_range(0.1, 10.0)},
            num_trials=50,
            eval_table=one_class,
        )


@pytest.mark.slow
def test_parallel_trials_run_in_worker_processes(table: pa.Table) -> None:
    options: dict[str, Any] = {
        "model_type": "boosted_tree_regressor",
        "label": "body_mass_g",
        "search_space": {
            "max_tree_depth": hparam_candidates([2, 4]),
            "learn_rate": hparam_range(0.05, 0.5),
        },
        "settings": {"max_iterations": 10},
        "num_trials": 4,
        "prune": False,
        "seed": 2,
        "algorithm": "random",
    }
    there = tune(table, **options, num_parallel_trials=2)
    assert _states(there) == ["COMPLETE"] * 4
    assert there.trials["trial_id"].to_pylist() == [0, 1, 2, 3]
    assert all(s is not None and s > 0.5 for s in there.trials["score"].to_pylist())
    assert there.best_params["max_tree_depth"] in (2, 4)
    assert there.best_model.trainer.get_params()["learn_rate"] == there.best_params["learn_rate"]
    # a trial scores the same in a worker as in this process (random search: same proposals)
    here = tune(table, **options)
    assert _params(here) == _params(there)
    assert here.trials["score"].to_pylist() == pytest.approx(there.trials["score"].to_pylist())
    assert here.best_params == there.best_params


@pytest.mark.slow
def test_parallel_trials_are_pruned_by_the_tuner(table: pa.Table) -> None:
    result = tune(
        table,
        model_type="boosted_tree_classifier",
        label="sex",
        search_space={"learn_rate": hparam_range(0.0005, 1.0, log=True)},
        settings={"max_iterations": 25, "early_stop": False},
        objective="log_loss",
        num_trials=8,
        num_parallel_trials=2,
        algorithm="random",
        seed=1,
    )
    states = _states(result)
    assert set(states) <= {"COMPLETE", "PRUNED"}
    assert "COMPLETE" in states
    assert "PRUNED" in states, result.trials.to_pylist()


@pytest.mark.parametrize("parallel", [1, 2])
def test_a_failed_trial_is_recorded_and_the_search_goes_on(table: pa.Table, parallel: int) -> None:
    # each value alone is valid; the normal equation with l1_reg > 0 is refused by the trainer
    result = tune(
        table,
        model_type="linear_reg",
        label="body_mass_g",
        search_space={
            "optimize_strategy": hparam_candidates(["NORMAL_EQUATION", "BATCH_GRADIENT_DESCENT"]),
            "l1_reg": hparam_candidates([0.0, 1.0]),
        },
        algorithm="grid",
        num_parallel_trials=parallel,
    )
    rows = result.trials.to_pylist()
    assert len(rows) == 4
    failed = [r for r in rows if r["state"] == "FAILED"]
    assert len(failed) == 1
    assert json.loads(failed[0]["params"]) == {
        "l1_reg": 1.0,
        "optimize_strategy": "NORMAL_EQUATION",
    }
    assert failed[0]["score"] is None
    assert "TrainingError" in failed[0]["error"]
    assert "l1_reg cannot be used" in failed[0]["error"]
    assert all(r["error"] is None for r in rows if r["state"] != "FAILED")
    assert not (
        result.best_params["optimize_strategy"] == "NORMAL_EQUATION"
        and result.best_params["l1_reg"] > 0
    )


CRASHY = textwrap.dedent(
    """
    import os

    from kiln.train import LinearRegTrainer, register_trainer


    @register_trainer
    class CrashyReg(LinearRegTrainer):
        model_type = "crashy_reg"

        def fit(self, X, y=None, **kwargs):
            if self.l2_reg > 5:
                os._exit(3)  # the process dies mid-trial, as if killed
            return super().fit(X, y, **kwargs)
    """
)


@pytest.mark.slow
def test_a_worker_that_dies_fails_its_trial_only(
    table: pa.Table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    (tmp_path / "kiln_test_crashy.py").write_text(CRASHY)
    monkeypatch.syspath_prepend(str(tmp_path))  # the workers import the DIY trainer's module
    importlib.import_module("kiln_test_crashy")
    result = tune(
        table,
        model_type="crashy_reg",
        label="body_mass_g",
        search_space={"l2_reg": hparam_candidates([1.0, 10.0, 2.0])},
        algorithm="grid",
        num_parallel_trials=2,
    )
    rows = {json.loads(r["params"])["l2_reg"]: r for r in result.trials.to_pylist()}
    assert rows[10.0]["state"] == "FAILED"
    assert "WorkerDied" in rows[10.0]["error"]
    assert "code 3" in rows[10.0]["error"]
    assert rows[1.0]["state"] == rows[2.0]["state"] == "COMPLETE"
    assert result.best_params["l2_reg"] in (1.0, 2.0)


# --------------------------------------------------------------------------- bad input


def _tune_bad(table: pa.Table, **overrides: Any) -> None:
    options: dict[str, Any] = {
        "model_type": "boosted_tree_classifier",
        "label": "species",
        "search_space": {"max_tree_depth": hparam_range(2, 6)},
        "num_trials": 2,
    }
    tune(table, **{**options, **overrides})


BAD: list[tuple[dict[str, Any], str]] = [
    (
        {"search_space": {"max_depth": hparam_range(2, 6)}},
        r"boosted_tree_classifier has no option 'max_depth' to tune; its options: .*max_tree_depth",
    ),
    ({"search_space": {"l2_reg": {"range": [10, 0]}}}, r"l2_reg.*low must be below high"),
    ({"search_space": {"max_tree_depth": {"candidates": []}}}, r"at least one value"),
    ({"search_space": {"l2_reg": 5}}, r"search_space\['l2_reg'\] must be hparam_range"),
    (
        {"search_space": {"max_tree_depth": {"candidates": ["deep"]}}},
        r"search_space\['max_tree_depth'\].*max_tree_depth must be an integer",
    ),
    (
        {"search_space": {"max_tree_depth": hparam_range(1.5, 6)}},
        r"max_tree_depth takes integers",
    ),
    (
        {"search_space": {"booster_type": hparam_range(0, 1)}},
        r"booster_type takes a str values, not a numeric range; use hparam_candidates",
    ),
    ({"search_space": {"max_tree_depth": hparam_range(2, 40)}}, r"max_tree_depth must be <= 20"),
    (
        {"settings": {"max_tree_depth": 3}},
        r"option 'max_tree_depth' is both fixed in settings and in the search space",
    ),
    ({"num_trials": 0}, r"num_trials must be at least 1"),
    ({"num_trials": 2.5}, r"num_trials must be a whole number"),
    ({"time_budget": 0}, r"time_budget must be a positive number of seconds"),
    ({"time_budget": -3.0}, r"time_budget must be a positive number of seconds"),
    ({"num_parallel_trials": 0}, r"num_parallel_trials must be at least 1"),
    ({"algorithm": "bayes"}, r"unknown algorithm 'bayes'; use 'tpe'.*'random'.*'grid'"),
    (
        {"algorithm": "grid", "search_space": {"learn_rate": hparam_range(0.1, 0.5)}},
        r"grid search needs discrete values, but 'learn_rate' is a continuous range",
    ),
    (
        {"objective": "r2_score"},
        r"objective 'r2_score' is a regression metric; a boosted_tree_classifier model "
        r"\(classification\) is tuned on one of: roc_auc",
    ),
    ({"objective": "auc"}, r"objective 'auc' is not a metric Kiln tunes on"),
    ({"model_type": "pca", "label": None}, r"pca \(dimensionality_reduction\) cannot be tuned"),
    ({"model_type": "gbm"}, r"unknown model_type 'gbm'"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD)
def test_bad_input_is_one_clear_error(
    table: pa.Table, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(TrainingError, match=message) as caught:
        _tune_bad(table, **overrides)
    assert "\n" not in str(caught.value)


def test_bad_ranges_and_candidates_are_refused_where_they_are_written() -> None:
    with pytest.raises(TrainingError, match=r"hparam_range\(10, 0\): low must be below high"):
        hparam_range(10, 0)
    with pytest.raises(TrainingError, match=r"low must be a finite number"):
        hparam_range(float("nan"), 1)
    with pytest.raises(TrainingError, match=r"needs at least one value"):
        hparam_candidates([])
    with pytest.raises(TrainingError, match=r"lists a value twice"):
        hparam_candidates([4, 4])
    with pytest.raises(TrainingError, match=r"takes a list of values"):
        hparam_candidates("ADAM")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- components

PIPELINE = textwrap.dedent(
    """
    from kiln import pipeline
    from kiln.components import ExampleGen, Trainer, Transform, Tuner


    @pipeline(name="tuned")
    def tuned(source: str) -> None:
        examples = ExampleGen(source=source, splits={"train": 0.7, "eval": 0.3}, seed=1)
        transform = Transform(examples.output, model_type="logistic_reg", label="species")
        tuner = Tuner(
            examples.output,
            transform.output,
            model_type="logistic_reg",
            label="species",
            search_space={"l2_reg": {"range": [0.001, 10], "log": True}},
            settings={"max_iterations": 15},
            objective="log_loss",
            num_trials=3,
        )
        Trainer(
            examples.output,
            transform.output,
            model_type="logistic_reg",
            label="species",
            settings={"l2_reg": 50.0, "max_iterations": 15},
            hyperparameters=tuner.output,
        )
    """
)


def test_the_tuner_feeds_the_trainer_in_a_pipeline(
    workspace: Any, tmp_path: Path, penguins: Path
) -> None:
    from kiln import metadata as md
    from kiln.artifacts import HyperParameters
    from kiln.orchestration import LocalRunner, load_pipeline, run

    pipe = tmp_path / "tuned_pipeline.py"
    pipe.write_text(PIPELINE)
    result = run(
        load_pipeline(pipe),
        {"source": str(penguins)},
        workspace=workspace,
        runner=LocalRunner(2),
        raise_on_failure=False,
    )
    assert result.state == "COMPLETE", {n: s.error for n, s in result.steps.items()}
    store, arts = workspace.metadata, workspace.artifacts
    tuned_art = store.get_artifact(result.output("Tuner").id or -1)
    assert tuned_art.type_name == "HyperParameters"
    props = tuned_art.properties
    assert props["model_type"] == "logistic_reg"
    assert props["objective"] == "log_loss"
    assert props["num_trials"] == 3
    best = props["best_params"]
    assert set(best) == {"l2_reg"}
    assert 0.001 <= best["l2_reg"] <= 10
    body = HyperParameters.stored(arts.path_of(tuned_art.uri)).read()
    assert body["trials"].num_rows == 3
    assert body["best_params"] == best
    assert body["settings"] == {"max_iterations": 15}

    # the Trainer's model has the tuned l2_reg over its own 50.0, and its other settings
    model = Model.load(arts.path_of(store.get_artifact(result.output("Trainer").id or -1).uri))
    assert model.trainer.get_params()["l2_reg"] == best["l2_reg"]
    assert model.trainer.get_params()["max_iterations"] == 15
    graph = md.lineage(store, result.output("Trainer").id or -1, "upstream")
    assert "Tuner" in {x.type_name for x in graph.executions.values()}


def test_the_trainer_refuses_hyperparameters_of_another_model_type(
    splits: dict[str, pa.Table],
) -> None:
    from kiln.artifacts import Dataset
    from kiln.components import Trainer, Transform, Tuner

    dataset = Dataset(splits)
    transform = Transform(dataset, model_type="linear_reg", label="body_mass_g")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tuned = Tuner(
            dataset,
            transform,
            model_type="linear_reg",
            label="body_mass_g",
            search_space={"l2_reg": {"candidates": [0.1, 1.0]}},
            algorithm="grid",
        )
    assert tuned.read()["trials"].num_rows == 2
    fitted = Trainer(
        dataset, transform, model_type="linear_reg", label="body_mass_g", hyperparameters=tuned
    )
    assert fitted.read().trainer.get_params()["l2_reg"] == tuned.best_params["l2_reg"]
    with pytest.raises(TrainingError, match=r"tuned for linear_reg, not logistic_reg"):
        Trainer(dataset, transform, model_type="logistic_reg", label="sex", hyperparameters=tuned)


def test_hyperparameters_artifact_conforms(table: pa.Table) -> None:
    from kiln.artifacts import HyperParameters
    from kiln.testing import check_artifact_type

    result = tune(
        table,
        model_type="linear_reg",
        label="body_mass_g",
        search_space={"l2_reg": hparam_candidates([0.1, 1.0])},
        algorithm="grid",
    )
    value = {**result.summary(), "trials": result.trials}

    def same(a: Any, b: Any) -> bool:
        return bool(
            a["trials"].equals(b["trials"])
            and {k: v for k, v in a.items() if k != "trials"}
            == {k: v for k, v in b.items() if k != "trials"}
        )

    check_artifact_type(HyperParameters, value, equal=same)
