"""Evaluating and comparing saved models on the penguins: evaluate_model, compare_models, the HTML
report and the ``kiln evaluate`` / ``kiln compare`` commands end to end."""

from __future__ import annotations

import json
import math
import re
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from conftest import assert_clean_error, kiln
from kiln.data import read_table
from kiln.errors import DataError
from kiln.evaluate import classification_metrics, regression_metrics, sliced_metrics
from kiln.model import (
    ComparisonResult,
    EvaluationResult,
    Model,
    compare_models,
    evaluate_model,
    evaluation_html,
)
from kiln.model._evaluate import (
    mcnemar,
    paired_t_test,
    parse_threshold,
    student_t_two_sided,
    wilcoxon_signed_rank,
)


def _penguins_path() -> Path:
    import importlib.resources

    return Path(str(importlib.resources.files("palmerpenguins") / "data/penguins.csv"))


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return read_table(_penguins_path())


@pytest.fixture(scope="module")
def models(table: pa.Table, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Saved model folders: good and weak species classifiers, a body-mass regressor or two."""
    folder = tmp_path_factory.mktemp("models")
    with_mass = table.filter(pc.is_valid(table["body_mass_g"]))
    fits = {
        "clf": (table, "logistic_reg", "species"),
        "weak": (table.select(["island", "species"]), "logistic_reg", "species"),
        "tree": (table, "boosted_tree_classifier", "species"),
        "reg": (with_mass, "linear_reg", "body_mass_g"),
        "weak_reg": (with_mass.select(["island", "body_mass_g"]), "linear_reg", "body_mass_g"),
    }
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, (data, model_type, label) in fits.items():
            model = Model.fit(data, model_type=model_type, label=label)
            out[name] = model.save(folder / name)
    return out


def _load(models: dict[str, Path], name: str) -> Model:
    return Model.load(models[name])


# ---------------------------------------------------------------------- evaluate_model


def test_classification_metrics_are_kiln_evaluates(
    table: pa.Table, models: dict[str, Path]
) -> None:
    model = _load(models, "weak")
    result = evaluate_model(model, table)
    assert isinstance(result, EvaluationResult)
    predicted = model.predict(table)
    probs = np.asarray(
        [[p["prob"] for p in row] for row in predicted["predicted_species_probs"].to_pylist()]
    )
    classes = [p["label"] for p in predicted["predicted_species_probs"][0].as_py()]
    direct = classification_metrics(table["species"], probs, classes=classes)
    assert result.metrics == direct
    assert result.metrics["accuracy"] < 0.9  # island alone cannot tell the species apart
    assert result.blessing is not None
    assert result.blessing.blessed
    assert result.baseline_metrics is None
    json.dumps(result.to_dict())


def test_regression_metrics_drop_null_labels_with_a_note(
    table: pa.Table, models: dict[str, Path]
) -> None:
    model = _load(models, "reg")
    result = evaluate_model(model, table)
    rows = table.filter(pc.is_valid(table["body_mass_g"]))
    direct = regression_metrics(rows["body_mass_g"], model.predict(rows)["predicted_body_mass_g"])
    assert result.metrics == direct
    assert result.metrics["num_examples"] == table.num_rows - 2
    assert any("2 row(s) with a null 'body_mass_g'" in n for n in result.notes)
    assert result.training_info
    assert {"iteration", "loss"} <= set(result.training_info[0])


def test_slices_by_island(table: pa.Table, models: dict[str, Path]) -> None:
    model = _load(models, "weak")
    result = evaluate_model(model, table, slice_by=["island"], importance=False)
    assert [s["slice"] for s in result.slices] == [
        {"island": "Biscoe"},
        {"island": "Dream"},
        {"island": "Torgersen"},
    ]
    assert sum(s["num_examples"] for s in result.slices) == table.num_rows
    assert all("roc_curve" not in s for s in result.slices)  # curves only overall
    probs = model.predict(table)["predicted_species_probs"].to_pylist()
    matrix = np.asarray([[p["prob"] for p in row] for row in probs])
    classes = [p["label"] for p in probs[0]]
    direct = sliced_metrics(
        table,
        table["species"].to_numpy(zero_copy_only=False),
        matrix,
        slice_by=["island"],
        metric_fn=partial(classification_metrics, classes=classes),
    )
    for mine, theirs in zip(result.slices, direct[1:], strict=True):
        assert mine["accuracy"] == theirs["accuracy"]
    assert result.importance is None


def test_importance_is_model_agnostic_and_seeded(table: pa.Table, models: dict[str, Path]) -> None:
    model = _load(models, "clf")
    first = evaluate_model(model, table).importance
    again = evaluate_model(model, table).importance
    assert first is not None
    assert first == again
    assert first["metric"] == "log_loss"
    names = [f["feature"] for f in first["features"]]
    assert set(names) == {c["name"] for c in model.signature}
    assert names[0] in ("bill_length_mm", "flipper_length_mm", "bill_depth_mm", "island")


def test_baseline_and_thresholds_bless_or_not_with_reasons(
    table: pa.Table, models: dict[str, Path]
) -> None:
    good, weak = _load(models, "clf"), _load(models, "weak")
    passes = evaluate_model(
        good,
        table,
        baseline=weak,
        thresholds=[parse_threshold("accuracy>=0.9"), parse_threshold("accuracy=0", change=True)],
        importance=False,
    )
    assert passes.blessing is not None
    assert passes.blessing.blessed
    assert passes.baseline_metrics is not None
    assert passes.deltas()["accuracy"] > 0
    assert passes.deltas()["log_loss"] < 0

    fails = evaluate_model(
        weak,
        table,
        baseline=good,
        thresholds=[
            parse_threshold("accuracy>=0.9"),
            parse_threshold("log_loss=10%", change=True),
        ],
        importance=False,
    )
    assert fails.blessing is not None
    assert not fails.blessing.blessed
    reasons = "\n".join(fails.blessing.reasons)
    assert "not blessed: 0 passed, 2 failed" in reasons
    assert "accuracy" in reasons
    assert "lower bound 0.9" in reasons
    assert "log_loss" in reasons
    assert "above the baseline" in reasons


def test_slice_thresholds_only_when_asked(table: pa.Table, models: dict[str, Path]) -> None:
    weak = _load(models, "weak")
    spec = [parse_threshold("accuracy>=0.7")]
    overall = evaluate_model(weak, table, slice_by=["island"], thresholds=spec, importance=False)
    assert overall.blessing is not None
    assert overall.blessing.blessed
    per_slice = evaluate_model(
        weak, table, slice_by=["island"], thresholds=spec, check_slices=True, importance=False
    )
    assert per_slice.blessing is not None
    assert not per_slice.blessing.blessed
    assert any(r.startswith("[island=") for r in per_slice.blessing.reasons)


def test_bad_inputs_are_clear_errors(table: pa.Table, models: dict[str, Path]) -> None:
    clf, reg = _load(models, "clf"), _load(models, "reg")
    with pytest.raises(DataError, match="no label column 'species'"):
        evaluate_model(clf, table.drop_columns(["species"]))
    with pytest.raises(DataError, match="slice column 'nope'"):
        evaluate_model(clf, table, slice_by=["nope"])
    with pytest.raises(DataError, match="compare models of one task and label"):
        evaluate_model(clf, table, baseline=reg)
    with pytest.raises(DataError, match="does not report"):
        evaluate_model(clf, table, thresholds=[parse_threshold("r2_score>=0.5")])
    for spec in ("accuracy>0.9", "accuracy", "accuracy>=high", "accuracy=0.1"):
        with pytest.raises(DataError, match="--threshold"):
            parse_threshold(spec)
    with pytest.raises(DataError, match="--max-change"):
        parse_threshold("accuracy>=0.1", change=True)
    assert parse_threshold("log_loss<=0.3").higher_is_better is False
    assert parse_threshold("accuracy=2%", change=True).change_relative == pytest.approx(0.02)


def test_kmeans_uses_the_transformed_features_and_centroids(table: pa.Table) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Model.fit(table, model_type="kmeans", settings={"num_clusters": 3})
    result = evaluate_model(model, table, slice_by=["island"])
    assert result.metrics["task"] == "clustering"
    assert result.metrics["num_clusters"] == 3
    assert result.metrics["davies_bouldin_index"] > 0
    assert len(result.slices) == 3
    assert result.importance is None


def test_binary_classifier_end_to_end(table: pa.Table) -> None:
    with_sex = table.filter(pc.is_valid(table["sex"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = Model.fit(with_sex, model_type="logistic_reg", label="sex")
        weak = Model.fit(with_sex.select(["island", "sex"]), model_type="logistic_reg", label="sex")
    result = evaluate_model(full, table, baseline=weak)
    assert result.metrics["positive_class"] == "male"
    assert result.metrics["num_examples"] == with_sex.num_rows
    assert result.deltas()["roc_auc"] > 0
    assert 'aria-label="ROC curve"' in evaluation_html(result)
    compared = compare_models(weak, full, table)
    assert compared.disagreements > 0
    assert compared.p_value < 0.05


# ---------------------------------------------------------------------- compare_models


def test_compare_two_classifiers(table: pa.Table, models: dict[str, Path]) -> None:
    weak, tree = _load(models, "weak"), _load(models, "tree")
    result = compare_models(weak, tree, table, rows=5)
    assert isinstance(result, ComparisonResult)
    assert result.metric == "accuracy"
    assert result.disagreements > 0
    assert 0 < result.disagreement_rate < 1
    assert 0.0 <= result.p_value <= 1.0
    assert result.p_value < 0.001  # the tree is far better, and McNemar sees it
    assert result.difference == pytest.approx(result.metric_b - result.metric_a)
    assert result.rows.num_rows == 5
    assert result.rows["row"].to_pylist() == [0, 1, 2, 3, 4]
    assert result.examples.num_rows == 5
    for example in result.examples.to_pylist():
        assert example["predicted_a"] != example["predicted_b"]
    json.dumps(result.to_dict())


def test_identical_models_never_disagree(table: pa.Table, models: dict[str, Path]) -> None:
    for name in ("clf", "reg"):
        model = _load(models, name)
        result = compare_models(model, model, table)
        assert result.disagreements == 0
        assert result.difference == 0.0
        assert result.p_value == 1.0
        assert result.examples.num_rows == 0


def test_compare_two_regressors(table: pa.Table, models: dict[str, Path]) -> None:
    result = compare_models(_load(models, "weak_reg"), _load(models, "reg"), table)
    assert result.metric == "mean_squared_error"
    assert result.metric_b < result.metric_a
    assert [t["name"] for t in result.tests] == ["paired_t", "wilcoxon_signed_rank"]
    assert all(0.0 <= t["p_value"] <= 1.0 for t in result.tests)
    assert result.p_value < 0.001
    gaps = [abs(r["predicted_a"] - r["predicted_b"]) for r in result.examples.to_pylist()]
    assert gaps == sorted(gaps, reverse=True)


def test_compare_refuses_models_of_different_labels(
    table: pa.Table, models: dict[str, Path]
) -> None:
    with pytest.raises(DataError, match="predict the same label"):
        compare_models(_load(models, "clf"), _load(models, "reg"), table)


def test_the_tests_match_their_textbook_values() -> None:
    # McNemar exact: b=3, c=10 -> 2 * P(X <= 3 | n=13, 1/2) = 2 * 378 / 8192
    assert mcnemar(3, 10)["p_value"] == pytest.approx(2 * 378 / 8192)
    assert mcnemar(0, 0)["p_value"] == 1.0
    big = mcnemar(6000, 6300)
    assert big["name"] == "mcnemar_chi2_continuity"
    assert 0 < big["p_value"] < 0.01
    # Student t: t=2.228, df=10 is the two-sided 5% point; t=1.96 with df=1e6 too
    assert student_t_two_sided(2.228138852, 10) == pytest.approx(0.05, abs=1e-6)
    assert student_t_two_sided(1.959963985, 1e6) == pytest.approx(0.05, abs=1e-5)
    assert student_t_two_sided(0.0, 5) == pytest.approx(1.0)
    d = np.array([1.2, -0.4, 2.5, 0.3, 1.1, 0.9, -0.2, 1.6])
    t = paired_t_test(d)
    expected_t = d.mean() / (d.std(ddof=1) / math.sqrt(d.size))
    assert t["statistic"] == pytest.approx(expected_t)
    assert 0.0 < t["p_value"] < 0.05
    w = wilcoxon_signed_rank(d)
    assert w["statistic"] == pytest.approx(32.0)  # ranks of the positive differences
    assert 0.0 < w["p_value"] < 0.1


# ---------------------------------------------------------------------- the HTML report


_EXTERNAL = re.compile(r"https?:|//[a-z]|\bsrc=|\bhref=|url\(|@import", re.IGNORECASE)


def test_html_report_is_self_contained_with_pictures(
    table: pa.Table, models: dict[str, Path]
) -> None:
    clf = evaluate_model(
        _load(models, "weak"),
        table,
        slice_by=["island"],
        baseline=_load(models, "clf"),
        thresholds=[parse_threshold("accuracy>=0.9")],
    )
    page = evaluation_html(clf, title="penguins <species>")
    assert not _EXTERNAL.search(page), _EXTERNAL.search(page)
    assert "penguins &lt;species&gt;" in page
    assert "<species>" not in page
    for picture in (
        "ROC curve",
        "precision-recall curve",
        "confusion matrix",
        "permutation importance",
        "training curve",
    ):
        assert f'aria-label="{picture}"' in page, picture
    assert "NOT BLESSED" in page
    assert "baseline" in page
    assert "island=Biscoe" in page
    assert page.count("<svg") >= 5

    reg = evaluation_html(evaluate_model(_load(models, "reg"), table), title="mass")
    assert 'aria-label="residual histogram"' in reg
    assert not _EXTERNAL.search(reg)


# ---------------------------------------------------------------------- the CLI


def test_cli_evaluate_writes_json_and_html(
    tmp_path: Path, penguins: Path, models: dict[str, Path]
) -> None:
    out, html = tmp_path / "metrics.json", tmp_path / "report.html"
    proc = kiln(
        "evaluate",
        str(models["clf"]),
        str(penguins),
        "--slice",
        "island",
        "--out",
        str(out),
        "--html",
        str(html),
        "--threshold",
        "accuracy>=0.9",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "accuracy" in proc.stdout
    assert "blessed: 1 passed" in proc.stdout
    saved = json.loads(out.read_text())
    direct = evaluate_model(Model.load(models["clf"]), read_table(penguins), importance=False)
    assert saved["metrics"]["accuracy"] == direct.metrics["accuracy"]
    assert saved["blessing"]["blessed"] is True
    assert [s["slice"]["island"] for s in saved["slices"]] == ["Biscoe", "Dream", "Torgersen"]
    assert saved["importance"]["features"]
    assert "<svg" in html.read_text()


def test_cli_evaluate_not_blessed_exits_1(penguins: Path, models: dict[str, Path]) -> None:
    proc = kiln(
        "evaluate",
        str(models["weak"]),
        str(penguins),
        "--baseline",
        str(models["clf"]),
        "--max-change",
        "accuracy=0.01",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "not blessed" in proc.stdout
    assert "below the baseline" in proc.stdout
    assert "baseline" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_cli_evaluate_input_errors_exit_2(
    tmp_path: Path, penguins: Path, models: dict[str, Path]
) -> None:
    no_label = tmp_path / "no_label.csv"
    no_label.write_text(
        "\n".join(line.split(",", 1)[1] for line in penguins.read_text().splitlines()) + "\n"
    )
    assert_clean_error(
        kiln("evaluate", str(models["clf"]), str(no_label)), "no label column 'species'"
    )
    assert_clean_error(kiln("evaluate", str(tmp_path / "missing"), str(penguins)), "does not exist")
    assert_clean_error(
        kiln("evaluate", str(models["clf"]), str(penguins), "--threshold", "accuracy>0.9"),
        "--threshold 'accuracy>0.9' does not parse",
    )
    assert_clean_error(
        kiln("evaluate", str(models["clf"]), str(tmp_path / "nothing.csv")), "nothing.csv"
    )


def test_cli_compare(tmp_path: Path, penguins: Path, models: dict[str, Path]) -> None:
    out = tmp_path / "compare.json"
    proc = kiln(
        "compare",
        str(models["weak"]),
        str(models["tree"]),
        str(penguins),
        "--rows",
        "3",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "mcnemar_exact" in proc.stdout
    assert "disagreements:" in proc.stdout
    saved = json.loads(out.read_text())
    assert saved["disagreements"] > 0
    assert 0 <= saved["test"]["p_value"] <= 1
    assert len(saved["rows"]) == 3
    assert_clean_error(
        kiln("compare", str(models["clf"]), str(models["reg"]), str(penguins)),
        "predict the same label",
    )
