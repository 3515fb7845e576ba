"""AutoML on real data: task and metric detection, the leaderboard, ensembles that save, load and
predict like their members, tiny budgets, and the bad inputs the issue lists."""

from __future__ import annotations

import importlib.resources
import json
import re
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from conftest import assert_clean_error, kiln
from kiln.automl import AutoMLWarning, fit, leaderboard_of
from kiln.errors import TrainingError
from kiln.model import Model
from kiln.train import EnsembleClassifier, EnsembleRegressor, get_trainer
from kiln.transform import OneHotFeatures, StackedTransform, auto_transform


@pytest.fixture(scope="module")
def penguins() -> pa.Table:
    src = importlib.resources.files("palmerpenguins") / "data/penguins.csv"
    with src.open("rb") as f:
        return pacsv.read_csv(
            f, convert_options=pacsv.ConvertOptions(null_values=["NA"], strings_can_be_null=True)
        )


def _fit(table: pa.Table, target: str, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutoMLWarning)
        return fit(table, target, **kwargs)


@pytest.fixture(scope="module")
def species(penguins: pa.Table) -> Any:
    """Multiclass, 5-fold CV, a budget that leaves room for an ensemble."""
    return _fit(penguins, "species", time_budget=8, seed=0)


def test_multiclass_search_gives_a_model_and_a_leaderboard(
    penguins: pa.Table, species: Any, tmp_path: Path
) -> None:
    assert (species.task, species.metric) == ("multiclass", "log_loss")
    assert species.validation == "5-fold cross-validation"
    board = species.leaderboard
    assert board.num_rows >= 3
    ok = board.filter(pc.equal(board["status"], "ok"))
    rechecked = ok["rechecked"].to_pylist()
    assert rechecked == sorted(rechecked, reverse=True), "the final choice's pool ranked first"
    scores = ok.filter(ok["rechecked"])["validation_score"].to_pylist()
    rest = ok.filter(pc.invert(ok["rechecked"]))["validation_score"].to_pylist()
    assert scores == sorted(scores), "best (lowest log loss) first"
    assert rest == sorted(rest)
    assert {"boosted_tree_classifier", "logistic_reg"} <= set(board["model_type"].to_pylist())
    assert species.best_score <= scores[0] + 1e-12  # the ensemble is kept only when it is better
    assert species.best_score < 0.2  # penguins' species are easy: a real model, not the prior

    predicted = species.model.predict(penguins)
    accuracy = pc.mean(pc.equal(predicted["predicted_species"], penguins["species"])).as_py()
    assert accuracy > 0.95
    folder = species.model.save(tmp_path / "automl")
    loaded = Model.load(folder)
    assert loaded.predict(penguins).equals(predicted)
    board_back = leaderboard_of(loaded)
    assert board_back is not None
    assert board_back["model_type"].to_pylist() == board["model_type"].to_pylist()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["metrics"]["automl"]["metric"] == "log_loss"


def test_with_cross_validation_the_final_choice_is_made_on_fresh_folds(
    penguins: pa.Table, species: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search's best candidates are scored again on the folds of another shuffle and the
    model is chosen from those alone; with one holdout split nothing is rechecked."""
    rows = [r for r in species.leaderboard.to_pylist() if r["status"] == "ok"]
    rechecked = [r for r in rows if r["rechecked"]]
    assert len(rechecked) >= 2
    assert all(r["rechecked"] for r in rows if (r["ensemble_weight"] or 0) > 0)
    assert species.best_score <= min(r["validation_score"] for r in rechecked) + 1e-12
    import kiln.automl._automl as automl

    monkeypatch.setattr(automl, "CV_MAX_ROWS", 100)  # penguins' 344 rows: one holdout split
    holdout = _fit(penguins, "species", time_budget=3, seed=0, exclude=["dnn"])
    assert holdout.validation.startswith("holdout")
    assert not any(holdout.leaderboard["rechecked"].to_pylist())


def test_no_recheck_when_the_best_candidate_does_not_fit_in_the_time_left(
    penguins: pa.Table,
) -> None:
    """A recheck of only the cheaper candidates would drop the best from the final choice for
    want of time: when the best one does not fit, nothing is rechecked; when it does, the
    shortlist is, on folds other than the search's."""
    import kiln.automl._automl as automl

    search = automl._Search(penguins, "species", "auto", None, 60.0, set(), 0, time.perf_counter())
    for family, settings in list(search._plan())[:3]:
        search._run_candidate(family, settings, deadline=None)
    best = search._shortlist()[0]
    first = {c.id: c.score for c in search.candidates}
    took = best.fit_s
    best.fit_s = 1e6  # as if the best took longer than the time left
    search._recheck()
    assert not any(c.rechecked for c in search.candidates)
    assert {c.id: c.score for c in search.candidates} == first
    best.fit_s = took
    search._recheck()
    assert all(c.rechecked for c in search._shortlist())
    assert {c.id: c.score for c in search.candidates} != first


def test_hand_built_ensembles_fit_save_and_check_their_members(
    penguins: pa.Table, tmp_path: Path
) -> None:
    table = penguins.filter(pc.is_valid(penguins["sex"]))
    y = np.asarray(table["sex"].to_pylist())
    linear = auto_transform(table, "linear", exclude=["sex"]).fit(table)
    trees = auto_transform(table, "tree", exclude=["sex"]).fit(table)
    Xl, Xt = linear.transform(table).X, trees.transform(table).X
    logistic = get_trainer("logistic_reg")().fit(Xl, y)
    boosted = get_trainer("boosted_tree_classifier")().fit(Xt, y)
    stacked = StackedTransform([linear, trees], [Xl.shape[1], Xt.shape[1]])
    (l0, l1), (t0, t1) = stacked.ranges
    ensemble = EnsembleClassifier.from_fitted([(logistic, (l0, l1), 1.0), (boosted, (t0, t1), 3.0)])
    model = Model.assemble(ensemble, stacked, table=table, label="sex")
    expected = (logistic.predict_proba(Xl) + 3 * boosted.predict_proba(Xt)) / 4
    np.testing.assert_allclose(ensemble.predict_proba(stacked.transform(table).X), expected)
    codes = stacked.one_hot_features(table)  # what Model.predict gives an ensemble
    assert codes.column_range(l0, l1).hot  # the linear member reads the island as codes
    assert not codes.column_range(t0, t1).hot  # the trees read category numbers, no one-hot
    np.testing.assert_allclose(ensemble.predict_proba(codes), expected)
    loaded = Model.load(model.save(tmp_path / "ensemble"))
    assert loaded.predict(table).equals(model.predict(table))
    assert sorted(p.name for p in (tmp_path / "ensemble" / "transform").iterdir()) == [
        "part_0",
        "part_1",
        "stack.json",
    ]

    other = get_trainer("logistic_reg")().fit(Xl, np.asarray(table["island"].to_pylist()))
    with pytest.raises(TrainingError, match="same labels"):
        EnsembleClassifier.from_fitted([(logistic, (l0, l1), 1.0), (other, (l0, l1), 1.0)])
    with pytest.raises(TrainingError, match="members must be regression"):
        EnsembleRegressor(members=[{"model_type": "logistic_reg", "columns": [0, 2]}])
    with pytest.raises(TrainingError, match=r"columns must be \[start, stop\)"):
        EnsembleClassifier(members=[{"model_type": "logistic_reg", "columns": [3, 1]}])
    with pytest.raises(TrainingError, match="weight must be a number > 0"):
        EnsembleClassifier(
            members=[{"model_type": "logistic_reg", "columns": [0, 1], "weight": -1}]
        )


def test_binary_regression_and_excluded_families(penguins: pa.Table) -> None:
    binary = _fit(penguins, "sex", time_budget=3, exclude=["dnn", "random_forest"])
    assert (binary.task, binary.metric) == ("binary", "roc_auc")
    kinds = set(binary.leaderboard["model_type"].to_pylist())
    assert "random_forest_classifier" not in kinds
    assert "dnn_classifier" not in kinds
    assert binary.best_score > 0.85

    regression = _fit(penguins, "body_mass_g", time_budget=3, metric="mae", exclude=["dnn"])
    assert (regression.task, regression.metric) == ("regression", "mean_absolute_error")
    assert regression.best_score < 400  # grams; the mean's MAE is ~650
    out = regression.model.predict(penguins.slice(0, 5))
    assert out.column_names == ["predicted_body_mass_g"]

    linear_only = _fit(
        penguins, "body_mass_g", time_budget=2, exclude=["boosted_tree", "random_forest", "dnn"]
    )
    assert set(linear_only.leaderboard["model_type"].to_pylist()) == {"linear_reg"}


def test_integer_targets_with_few_values_are_classes(penguins: pa.Table) -> None:
    table = penguins.select(["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "species"])
    codes = pc.index_in(table["species"], value_set=pa.array(["Adelie", "Chinstrap", "Gentoo"]))
    table = table.drop_columns(["species"]).append_column("kind", codes.cast(pa.int64()))
    result = _fit(table, "kind", time_budget=1, exclude=["dnn"])
    assert result.task == "multiclass"
    assert result.model.predict(table.slice(0, 2))["predicted_kind"].type == pa.int64()


def test_a_budget_too_small_still_returns_the_baseline(penguins: pa.Table) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit(penguins.filter(pc.is_valid(penguins["sex"])), "sex", time_budget=0.001)
    notes = [str(w.message) for w in caught if issubclass(w.category, AutoMLWarning)]
    assert any("ran out with the baseline model" in n for n in notes), notes
    assert result.warnings == notes
    assert result.leaderboard.num_rows == 1
    assert result.leaderboard["status"].to_pylist() == ["ok"]
    assert result.model.predict(penguins.slice(0, 3)).num_rows == 3


def test_bad_input(penguins: pa.Table) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=3000)
    cases: list[tuple[pa.Table, str, dict[str, Any], str]] = [
        (penguins, "wingspan", {}, "target column 'wingspan' is not in the data"),
        (
            penguins.append_column("nothing", pa.nulls(penguins.num_rows, pa.float64())),
            "nothing",
            {},
            "all null",
        ),
        (
            pa.table({"x": x, "y": [f"c{i}" for i in range(3000)]}),
            "y",
            {},
            "3,000 classes",
        ),
        (pa.table({"x": x[:4], "y": [1.0, 2.5, float("inf"), 3.5]}), "y", {}, "infinite value"),
        (pa.table({"x": x[:3], "y": ["a", "b", "c"]}), "y", {}, "every class of 'y' appears once"),
        (penguins, "sex", {"metric": "precision_at_7"}, "unknown metric 'precision_at_7'"),
        (penguins, "sex", {"metric": "rmse"}, "rmse does not score a binary task"),
        (penguins, "sex", {"time_budget": 0}, "time_budget must be > 0"),
        (penguins, "sex", {"infer_limit": 0}, "infer_limit must be seconds per row > 0"),
        (penguins, "sex", {"infer_limit": -1e-5}, "infer_limit must be seconds per row > 0"),
        (penguins, "sex", {"infer_limit": float("nan")}, "infer_limit must be seconds per row"),
        (penguins, "sex", {"infer_limit": "fast"}, "infer_limit must be seconds per row"),
        (penguins, "sex", {"exclude": ["svm"]}, "cannot exclude svm"),
        (penguins, "species", {"task": "binary"}, "exactly 2 classes; 'species' has 3"),
        (penguins, "species", {"task": "regression"}, "needs a numeric target"),
        (penguins.select(["sex"]), "sex", {}, "no column besides the target"),
    ]
    for table, target, kwargs, message in cases:
        with pytest.raises(TrainingError, match=message):
            _fit(table, target, **kwargs)


def test_kiln_automl_command(tmp_path: Path) -> None:
    src = importlib.resources.files("palmerpenguins") / "data/penguins.csv"
    data = tmp_path / "penguins.csv"
    data.write_bytes(src.read_bytes())
    out = tmp_path / "model"
    proc = kiln(
        "automl", str(data), "--target", "species", "--time-budget", "3", "--exclude", "dnn",
        "--out", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "leaderboard" in proc.stdout
    assert "log_loss" in proc.stdout
    assert "µs/row" in proc.stdout
    assert "boosted_tree_classifier" in proc.stdout  # model types whole, even 80 columns wide
    ranked = [line for line in proc.stdout.splitlines() if re.match(r"\s+\d+\s+\w", line)]
    assert ranked
    assert not any("…" in line for line in ranked)
    assert "scored again on a fresh shuffle" in proc.stdout  # why ranks 1-k lead
    assert f"model saved: {out}" in proc.stdout
    model = Model.load(out)
    table = pacsv.read_csv(data)
    assert model.predict(table).num_rows == table.num_rows

    single = tmp_path / "single"
    proc = kiln(
        "automl", str(data), "--target", "species", "--time-budget", "3", "--exclude", "dnn",
        "--no-ensemble", "--out", str(single), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not Model.load(single).trainer.model_type.startswith("ensemble")

    assert_clean_error(
        kiln("automl", str(data), "--target", "wingspan", "--time-budget", "1", cwd=tmp_path),
        "target column 'wingspan' is not in the data",
    )
    assert_clean_error(
        kiln("automl", str(data), "--target", "species", "--out", str(out), cwd=tmp_path),
        "exists and is not empty",
    )
    assert_clean_error(
        kiln("automl", str(tmp_path / "nope.csv"), "--target", "y", cwd=tmp_path), "nope.csv"
    )
    assert_clean_error(
        kiln(
            "automl",
            str(data),
            "--target",
            "species",
            "--infer-limit",
            "-1",
            "--out",
            str(tmp_path / "limited"),
            cwd=tmp_path,
        ),
        "infer_limit must be seconds per row > 0",
    )
    assert not (tmp_path / "limited").exists()


def test_large_data_also_tries_fewer_bigger_trees(
    penguins: pa.Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From LARGE_ROWS training rows the plan holds the big-tree presets (255 and 1,023 leaves)
    instead of the small-data ones; below it, the small-data ones. (The threshold is lowered to
    penguins' size here: what changes is the plan, not the data it runs on.)"""
    import kiln.automl._automl as automl

    def leaves(result: Any) -> set[int]:
        """The planned candidates' leaves (baseline, defaults, two presets), not the search's."""
        rows = result.leaderboard.to_pylist()
        planned = [json.loads(r["settings"]) for r in rows if r["candidate"] <= 3]
        return {int(s["num_leaves"]) for s in planned if "num_leaves" in s}

    options = {"time_budget": 6, "exclude": ["dnn", "random_forest", "linear"], "seed": 0}
    small = _fit(penguins, "species", **options)
    assert {64, 128} <= leaves(small)
    assert not {255, 1023} & leaves(small)
    monkeypatch.setattr(automl, "LARGE_ROWS", 100)
    large = _fit(penguins, "species", **options)
    assert {255, 1023} <= leaves(large)
    assert not {64, 128} & leaves(large)


def test_without_ensemble_the_best_single_candidate_is_the_model(
    penguins: pa.Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ensemble=False: the model is the leaderboard's first candidate alone, with its score,
    where the search would have kept an ensemble (forced here: the two best ok candidates, as if
    they validated better together)."""
    import kiln.automl._automl as automl

    def two_best(search: Any) -> dict[int, float]:
        ok = search._ranked()
        return {ok[0].id: 1.0, ok[1].id: 1.0}

    monkeypatch.setattr(automl._Search, "_ensemble", two_best)
    options: dict[str, Any] = {"time_budget": 4, "seed": 0, "exclude": ["dnn"]}
    assert _fit(penguins, "species", **options).model.trainer.model_type == "ensemble_classifier"
    single = _fit(penguins, "species", ensemble=False, **options)
    board = single.leaderboard.to_pylist()
    weighted = [r for r in board if (r["ensemble_weight"] or 0) > 0]
    assert [r["rank"] for r in weighted] == [1]
    assert single.model.trainer.model_type == board[0]["model_type"]
    assert single.best_score == pytest.approx(board[0]["validation_score"])
    assert single.model.predict(penguins).num_rows == penguins.num_rows


def test_infer_limit_leaves_out_candidates_that_predict_slower(
    penguins: pa.Table, species: Any
) -> None:
    """With ``infer_limit``, boosted trees grow only the rounds the cost per tree measured so far
    allows, every candidate measured slower than it is ``too_slow`` (its score still shown), and
    the model, ensemble or not, costs at most the limit. The limit is three times the cheapest
    candidate of an unlimited run: the linear models fit, the boosted trees (three classes,
    hundreds of rounds) do not unless their rounds are capped."""
    import kiln.automl._automl as automl

    board = species.leaderboard.to_pylist()
    costs = [r["predict_us_per_row"] for r in board if r["status"] == "ok" and r["candidate"]]
    limit_us = 3 * min(costs)
    result = _fit(penguins, "species", time_budget=6, seed=0, infer_limit=limit_us * 1e-6)
    rows = result.leaderboard.to_pylist()
    assert not [w for w in result.warnings if "no candidate predicts within" in w]
    fits = [r for r in rows if r["status"] == "ok" and r["candidate"]]  # the baseline is kept
    assert fits
    assert all(r["predict_us_per_row"] <= limit_us for r in fits)
    capped = [
        r
        for r in rows
        if r["model_type"] == "boosted_tree_classifier"
        and r["candidate"]
        and json.loads(r["settings"])["max_iterations"] < automl.MAX_ROUNDS
    ]
    assert [r for r in capped if r["status"] == "ok"], rows
    for r in (r for r in rows if r["status"] == "too_slow"):
        assert r["predict_us_per_row"] >= limit_us  # over it, then shown rounded to 0.001 µs
        assert r["validation_score"] is not None
        assert "over the infer_limit" in r["error"]
    chosen = result.model.metrics["automl"]
    assert chosen["infer_limit"] == pytest.approx(limit_us * 1e-6)
    assert chosen["predict_us_per_row"] <= limit_us
    members = [r for r in rows if r["ensemble_weight"]]
    assert members
    assert all(r["status"] == "ok" for r in members)
    assert result.model.predict(penguins).num_rows == penguins.num_rows


def test_an_infer_limit_nothing_meets_returns_the_fastest_with_a_warning(
    penguins: pa.Table,
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit(penguins, "species", time_budget=3, seed=0, infer_limit=1e-12)
    notes = [str(w.message) for w in caught if issubclass(w.category, AutoMLWarning)]
    assert any("no candidate predicts within the infer_limit" in n for n in notes), notes
    rows = result.leaderboard.to_pylist()
    measured = [r["predict_us_per_row"] for r in rows if r["status"] in ("ok", "too_slow")]
    others = [r["status"] for r in rows if r["candidate"] and r["predict_us_per_row"] is not None]
    assert others
    assert set(others) == {"too_slow"}, "each measured, each over the limit"
    members = [r for r in rows if r["ensemble_weight"]]
    assert len(members) == 1, "one model: a second would only cost more"
    assert members[0]["predict_us_per_row"] <= 1.25 * min(measured)
    assert result.model.predict(penguins.slice(0, 5)).num_rows == 5


def test_holdout_when_the_budget_affords_too_few_cross_validations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """From HOLDOUT_MIN_ROWS rows, a baseline whose cross-validation took more than CV_MAX_SHARE
    of the budget switches the search to one holdout; the candidates scored before keep their
    out-of-fold predictions of the holdout's rows and are scored on those. Fewer rows always
    cross-validate."""
    import kiln.automl._automl as automl

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2_000, 3))
    y = np.where(x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.5, 2_000) > 0, "yes", "no")
    table = pa.table({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y})
    options: dict[str, Any] = {"time_budget": 3, "seed": 0, "exclude": ["dnn"]}

    monkeypatch.setattr(automl, "CV_MAX_SHARE", 0.0)  # any baseline takes more than that
    search = automl._Search(table, "y", "auto", None, 3.0, {"dnn"}, 0, time.perf_counter())
    result = search.run(None)
    (holdout,) = search.folds
    n = len(holdout[1])
    assert 390 <= n <= 410, "a fifth of the rows, stratified"
    assert result.validation.startswith(f"holdout ({n} rows; cross-validation would leave")
    baseline = search.candidates[0]
    assert baseline.prediction is not None
    assert baseline.prediction.shape == (n, 2)
    assert baseline.score == search._score(baseline.prediction)
    assert len(baseline.trainers) == 5, "the baseline itself was cross-validated"
    X = search._features(baseline.model_type)[1]
    out_of_fold = np.zeros((search.n, 2))
    for trainer, (_, valid) in zip(baseline.trainers, search._folds(0), strict=True):
        out_of_fold[valid] = search._predict(trainer, X[valid])
    np.testing.assert_allclose(baseline.prediction, out_of_fold[holdout[1]])
    ok = [c for c in search.candidates if c.status == "ok"]
    assert len(ok) >= 2
    assert all(c.prediction is not None and len(c.prediction) == n for c in ok)
    assert result.model.predict(table.slice(0, 5)).num_rows == 5

    assert _fit(table.slice(0, 999), "y", **options).validation == "5-fold cross-validation"
    monkeypatch.setattr(automl, "CV_MAX_SHARE", 1.0)
    assert _fit(table, "y", **options).validation == "5-fold cross-validation"


def test_catboost_is_a_family_whose_members_refit_at_their_validated_rate(
    penguins: pa.Table,
) -> None:
    """CatBoost is planned unless excluded; a CatBoost member is refitted on every row with the
    rounds early stopping found and the learning rate CatBoost chose for the validation (its own
    choice would change with the rounds); a member the time left cannot refit keeps its first
    fold's model, named in a note, while the others are still refitted."""
    pytest.importorskip("catboost")
    import kiln.automl._automl as automl

    table = penguins.drop_columns(["sex", "year"])
    search = automl._Search(table, "species", "auto", None, 30.0, set(), 0, time.perf_counter())
    assert "catboost" in [family for family, _ in search._plan()]
    excluded = automl._Search(
        table, "species", "auto", None, 30.0, {"catboost"}, 0, time.perf_counter()
    )
    assert "catboost" not in [family for family, _ in excluded._plan()]

    small = {"max_iterations": 20, "num_leaves": 7, "early_stop": False, "seed": 0}
    base = search._run_candidate("boosted_tree", small, deadline=None)
    cat = search._run_candidate(
        "catboost", {"max_iterations": 300, "early_stop_rounds": 20, "seed": 0}, deadline=None
    )
    assert (base.status, cat.status) == ("ok", "ok"), cat.error
    assert cat.model_type == "catboost_classifier"
    assert len(cat.best_iterations) == 5
    validated_rate = cat.trainers[0].learning_rate_
    refit, _ = search._refit([cat, base])
    assert refit is not cat.trainers[0]
    assert refit.learning_rate_ == validated_rate
    rounds = round((np.mean(cat.best_iterations) + 1) * search._refit_growth)
    assert refit.model_.tree_count_ == rounds
    assert not search.notes

    search.deadline = time.perf_counter()  # no time left: only the allowance past the budget
    cat.fit_s = 1_000.0  # a refit far past it
    with pytest.warns(AutoMLWarning, match="no time was left to refit catboost_classifier"):
        kept, refitted = search._refit([cat, base])
    assert kept is cat.trainers[0]
    assert refitted is not base.trainers[0]
    assert search.notes == [
        "no time was left to refit catboost_classifier (candidate 1) on every row: trained on "
        "the 80% of rows the validation left"
    ]

    # with time for one of two equally costly refits, the heavier member in the ensemble gets it
    search.notes.clear()
    one_second = search._refit_estimate(cat) / cat.fit_s  # the refit estimate of a 1 s fit
    cat.fit_s = base.fit_s = 1.0 / one_second  # each refit estimated at 1 s; 1.5 s allowed
    cat.weight, base.weight = 1.0, 3.0
    with pytest.warns(AutoMLWarning, match="catboost_classifier"):
        kept, refitted = search._refit([cat, base])
    assert kept is cat.trainers[0]
    assert refitted is not base.trainers[0]
    cat.weight, base.weight = 3.0, 1.0
    with pytest.warns(AutoMLWarning, match=r"boosted_tree_classifier \(candidate 0\)"):
        refitted, kept = search._refit([cat, base])
    assert kept is base.trainers[0]
    assert refitted is not cat.trainers[0]


def test_the_refit_reserve_keeps_what_fits_under_its_cap(penguins: pa.Table) -> None:
    """The time kept for refitting the three best candidates on every row is capped (REFIT_MAX
    of the budget when a fifth of the rows was held out, as 5-fold cross-validation does) by
    dropping the refits that do not fit, not by keeping none: a best candidate whose refit
    alone fits keeps its time when all three together would not."""
    import kiln.automl._automl as automl

    table = penguins.drop_columns(["sex", "year"])
    search = automl._Search(table, "species", "auto", None, 60.0, set(), 0, time.perf_counter())
    held_out = 1 - len(search.folds[0][0]) / search.n
    assert held_out == pytest.approx(0.2, abs=0.01)
    cap = automl.REFIT_MAX * search.budget * held_out / 0.2  # about 20 s
    scale = search._refit_estimate(automl._Candidate(0, "", {}, "", fit_s=1.0))
    cands = [
        automl._Candidate(i, "boosted_tree_classifier", {}, "boosted_tree", score=score, fit_s=0.0)
        for i, score in enumerate([0.1, 0.2, 0.3])
    ]
    search.candidates = cands
    floor = search._end_reserve()  # selection and the margin: no refit time
    for cand, share in zip(cands, [0.7, 0.4, 0.2], strict=True):
        cand.fit_s = share * cap / scale
    # 0.7 + 0.4 + 0.2 of the cap is past it: the best's and the third's time are kept
    assert search._end_reserve() - floor == pytest.approx(0.9 * cap)
    cands[0].fit_s = 1.2 * cap / scale  # the best alone past the cap: the others' time
    assert search._end_reserve() - floor == pytest.approx(0.6 * cap)


def test_a_dnn_candidate_stops_on_its_eval_loss_and_refits_its_best_epochs(
    penguins: pa.Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AutoML's DNN watches its validation loss (``early_stop_rounds``) and keeps the best epoch;
    the refit on every row, with no eval set left, trains exactly the epochs found best."""
    pytest.importorskip("torch")
    import kiln.automl._automl as automl

    monkeypatch.setattr(automl, "DNN_MIN_SECONDS", 0.0)  # tried even in a short test budget
    others = ["boosted_tree", "random_forest", "linear", "catboost"]
    result = _fit(penguins, "body_mass_g", time_budget=8, seed=0, exclude=others, ensemble=False)
    board = result.leaderboard.to_pylist()
    dnn = [r for r in board if r["model_type"] == "dnn_regressor" and r["status"] == "ok"]
    assert dnn
    assert json.loads(dnn[0]["settings"])["early_stop_rounds"] is not None
    assert board[0]["model_type"] == "dnn_regressor"  # (the other: the linear baseline)
    trainer = result.model.trainer
    assert trainer.model_type == "dnn_regressor"
    params = trainer.get_params()
    assert not any("every row" in w for w in result.warnings)  # refitted, not a fold's model
    assert params["early_stop_rounds"] is None
    assert params["max_iterations"] == dnn[0]["best_iteration"] + 1
    assert len(trainer.training_info_) == params["max_iterations"]
    assert result.best_score < 600  # grams: far better than the mean's ~800


def test_a_second_dnn_is_planned_only_when_the_first_is_among_the_best(
    penguins: pa.Table,
) -> None:
    """The plan's second network (deeper, other starting weights) follows only a first one that
    ranks among the best candidates so far, i.e. a likely ensemble member."""
    pytest.importorskip("torch")
    import kiln.automl._automl as automl

    table = penguins.drop_columns(["sex", "year"])
    search = automl._Search(table, "species", "auto", None, 60.0, set(), 0, time.perf_counter())
    assert search.metric == "log_loss"  # lower is better

    def planned_networks(first_score: float) -> list[dict[str, Any]]:
        search.candidates = [
            automl._Candidate(i, "boosted_tree_classifier", {}, "boosted_tree", score=score)
            for i, score in enumerate([0.3, 0.4, 0.5])
        ]
        networks = []
        for family, settings in search._plan():
            if family == "dnn":  # as the run does: the candidate is scored before the next
                networks.append(settings)
                search.candidates.append(
                    automl._Candidate(9, "dnn_classifier", settings, "dnn", score=first_score)
                )
        return networks

    first, second = planned_networks(0.2)  # the best so far
    assert first["hidden_units"] == [256, 128]
    assert second["hidden_units"] == [256, 128, 64]
    assert second["seed"] != first["seed"]
    assert len(planned_networks(0.45)) == 2  # third best: still a likely member
    assert len(planned_networks(0.9)) == 1  # the worst: not worth a second


def test_dnn_candidates_train_from_one_hot_codes_and_ensembles_predict_through_them(
    penguins: pa.Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AutoML's DNNs train from the one-hot codes where the dense matrix would be too big (no
    rows dropped to fit it, as a linear model's are), and an ensemble holding one predicts from
    the codes (Model.predict's path) what it predicts from the dense matrix."""
    pytest.importorskip("torch")
    import kiln.automl._automl as automl

    table = penguins.drop_columns(["year"])
    search = automl._Search(table, "species", "auto", None, 60.0, set(), 0, time.perf_counter())
    _, X, _ = search._features("dnn_classifier")
    assert isinstance(X, np.ndarray)  # small: the dense matrix, whose epochs are faster

    monkeypatch.setattr(automl, "LINEAR_MAX_CELLS", 1_000)  # as if the table were wide
    search = automl._Search(table, "species", "auto", None, 60.0, set(), 0, time.perf_counter())
    _, X, categorical = search._features("dnn_classifier")
    assert isinstance(X, OneHotFeatures)
    assert X.hot  # island and sex
    assert categorical == []
    rows = np.arange(search.n)
    assert search._affordable("dnn", X, rows) is rows  # every row
    _, linear, _ = search._features("logistic_reg")
    assert len(search._affordable("linear", linear, rows)) < len(rows)  # a sample
    numeric = table.select(["bill_length_mm", "bill_depth_mm", "body_mass_g", "species"])
    plain = automl._Search(numeric, "species", "auto", None, 60.0, set(), 0, time.perf_counter())
    _, dense, _ = plain._features("dnn_classifier")  # no one-hot block: codes would not help
    assert isinstance(dense, np.ndarray)
    assert len(plain._affordable("dnn", dense, np.arange(plain.n))) < plain.n

    small = {"max_iterations": 20, "num_leaves": 7, "early_stop": False, "seed": 0}
    trees = search._run_candidate("boosted_tree", small, deadline=None)
    network = search._run_candidate(
        "dnn",
        {"hidden_units": [16], "max_iterations": 30, "early_stop": False, "early_stop_rounds": 5},
        deadline=None,
    )
    assert (trees.status, network.status) == ("ok", "ok"), network.error
    monkeypatch.setattr(automl._Search, "_ensemble", lambda _: {trees.id: 2.0, network.id: 1.0})
    model = search._final()
    ensemble = model.trainer
    assert [t.model_type for t in ensemble.members_] == [
        "boosted_tree_classifier",
        "dnn_classifier",
    ]
    dense = ensemble.predict_proba(model.transform.transform(table).X)
    codes = ensemble.predict_proba(model.transform.one_hot_features(table))
    np.testing.assert_allclose(codes, dense, atol=1e-5)
    predicted = model.predict(table)["predicted_species"].to_pylist()
    assert predicted == ensemble.classes_[np.argmax(codes, axis=1)].tolist()


def test_the_final_models_trees_get_their_walker_within_the_budget(
    penguins: pa.Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AutoML's model is made to predict: its LightGBM members get Kiln's tree walker before fit
    returns, where the estimate of its cost fits in the time left (always under an
    ``infer_limit``), and not otherwise."""
    from kiln.train import _forest

    if _forest._treewalk is None:
        pytest.skip("Kiln was built without its tree walker (no C compiler)")

    def boosters(result: Any) -> list[Any]:
        trainer = result.model.trainer
        members = getattr(trainer, "members_", [trainer])
        return [m.booster_ for m in members if hasattr(m, "booster_")]

    only_trees = ["linear", "dnn", "catboost"]
    result = _fit(penguins, "species", time_budget=3, seed=0, exclude=only_trees)
    assert boosters(result)
    assert all(_forest._FORESTS.get(b) is not None for b in boosters(result))

    monkeypatch.setattr(_forest, "BUILD_S", (3600.0, 0.0, 0.0))  # an hour: never in time
    late = _fit(penguins, "species", time_budget=3, seed=0, exclude=only_trees)
    assert boosters(late)
    assert not any(b in _forest._FORESTS for b in boosters(late))
    through_lightgbm = late.model.predict(penguins)  # (until the walker pays)
    for booster in boosters(late):
        _forest.compiled_forest(booster)
    assert late.model.predict(penguins).equals(through_lightgbm)  # the very same numbers

    # under an infer_limit, a boosted candidate LightGBM's predictor puts over it is timed again
    # walked, as its saved model would predict; the final model gets its walkers whatever the
    # estimate, its cost having been judged by them
    import kiln.automl._automl as automl

    walked: list[Any] = []

    def recorded(booster: Any, text: str | None = None) -> Any:
        walked.append(booster)
        return _forest.compiled_forest(booster, text)

    monkeypatch.setattr(automl, "compiled_forest", recorded)
    limited = _fit(penguins, "species", time_budget=3, seed=0, exclude=only_trees, infer_limit=1e-9)
    over = [r for r in limited.leaderboard.to_pylist() if r["status"] == "too_slow"]
    assert over  # (every candidate is over 1 ns a row, walked or not)
    assert len(walked) >= len(over)
    assert boosters(limited)
    assert all(_forest._FORESTS.get(b) is not None for b in boosters(limited))
