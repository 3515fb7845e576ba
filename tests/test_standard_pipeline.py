"""The standard pipeline end to end through `kiln train`: a first model is registered and promoted,
a rerun on unchanged data is all cache hits, new data trains a challenger that is judged against
production, data that fails validation stops the run with nothing registered; the YAML config."""

from __future__ import annotations

import contextlib
import importlib.resources
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from conftest import KILN, assert_clean_error, kiln
from kiln.registry import ModelRegistry
from kiln.workspace import Workspace

pytestmark = pytest.mark.slow


def _penguins() -> pa.Table:
    src = importlib.resources.files("palmerpenguins") / "data/penguins.csv"
    with src.open("rb") as f:
        return pacsv.read_csv(
            f, convert_options=pacsv.ConvertOptions(null_values=["NA"], strings_can_be_null=True)
        )


def _part(held_out: bool) -> pa.Table:
    """Every 8th row held out (the CSV is sorted by species: slices would not be)."""
    table = _penguins()
    return table.filter([(i % 8 == 0) == held_out for i in range(table.num_rows)])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    assert kiln("init", str(tmp_path)).returncode == 0
    pacsv.write_csv(_part(held_out=False), tmp_path / "penguins.csv")
    return tmp_path


def _train(project: Path, *args: str) -> tuple[int, str]:
    proc = kiln("train", "penguins.csv", "--target", "species", *args, cwd=project, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def test_train_registers_promotes_and_caches(project: Path) -> None:
    code, out = _train(project, "--model", "logistic", "--slice", "island")
    assert code == 0, out
    assert "no production model yet" in out
    assert "data: no anomalies" in out
    assert "registered models:/penguins/1" in out
    assert "promoted" in out
    assert "not promoted" not in out
    registry = ModelRegistry(Workspace(project))
    production = registry.alias("penguins", "production")
    assert production is not None
    assert production.version == 1
    model = production.load()
    assert model.predict(_part(held_out=True).slice(0, 5))["predicted_species"].to_pylist()
    # registry URIs work wherever a model folder does
    evaluated = kiln("evaluate", "models:/penguins@production", "penguins.csv", cwd=project)
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    assert "accuracy" in evaluated.stdout
    compared = kiln(
        "compare", "models:/penguins/1", "models:/penguins@production", "penguins.csv", cwd=project
    )
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert_clean_error(
        kiln("evaluate", "models:/penguin@production", "penguins.csv", cwd=project),
        "did you mean 'penguins'",
    )

    again, out2 = _train(project, "--model", "logistic", "--slice", "island")
    assert again == 0, out2
    assert out2.count("↺") == 10, out2  # every step came from the cache
    assert "✓" not in out2
    assert "registered models:/penguins/1" in out2
    assert [v.version for v in registry.versions("penguins")] == [1]


def test_new_data_trains_a_challenger_judged_against_production(project: Path) -> None:
    assert _train(project, "--model", "logistic")[0] == 0
    # new data: more rows, the same distribution; a boosted tree challenger
    table = _penguins()
    pacsv.write_csv(table, project / "penguins.csv")
    code, out = _train(project, "--model", "boosted_tree")
    assert code == 0, out
    assert "against production (models:/penguins/1)" in out
    assert "drift against models:/penguins/1's data: largest" in out
    assert "registered models:/penguins/2" in out
    registry = ModelRegistry(Workspace(project))
    production = registry.alias("penguins", "production")
    assert production is not None
    evaluation_said_promoted = "promoted:" in out and "not promoted" not in out
    assert (production.version == 2) == evaluation_said_promoted
    assert re.search(r"log_loss\s+\S+\s+\S+", out), out  # candidate and production side by side


def test_data_failing_validation_stops_the_run(project: Path) -> None:
    schema = project / "schema.yaml"
    assert (
        kiln("schema", "infer", "penguins.csv", "--out", str(schema), cwd=project).returncode == 0
    )
    # a curated schema that no longer admits one of the islands
    text = schema.read_text()
    assert "[Biscoe, Dream, Torgersen]" in text
    schema.write_text(text.replace("[Biscoe, Dream, Torgersen]", "[Biscoe, Torgersen]"))
    code, out = _train(project, "--model", "logistic", "--schema", str(schema))
    assert code == 1, out
    assert "failed validation" in out
    assert "island" in out
    assert ModelRegistry(Workspace(project)).models() == []
    assert "registered models:/" not in out
    assert "Traceback" not in out
    assert 'File "' not in out  # the anomalies, not a stack


def test_bad_input(project: Path) -> None:
    assert_clean_error(
        kiln("train", "nope.csv", "--target", "species", cwd=project), "nope.csv does not exist"
    )
    assert_clean_error(
        kiln("train", "penguins.csv", "--target", "wingspan", cwd=project),
        "'wingspan' is not a column",
    )
    assert_clean_error(
        kiln("train", "penguins.csv", "--target", "species", "--model", "svm", cwd=project),
        "--model must be one of",
    )


def test_yaml_config_runs_the_standard_pipeline(project: Path) -> None:
    (project / "train.yaml").write_text(
        "pipeline: standard\n"
        "source: penguins.csv\n"
        "target: species\n"
        "name: from-yaml\n"
        "model: logistic\n"
    )
    proc = kiln("run", "train.yaml", cwd=project, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    version = ModelRegistry(Workspace(project)).alias("from-yaml", "production")
    assert version is not None
    assert version.version == 1
    (project / "bad.yaml").write_text(
        "pipeline: standard\nsource: penguins.csv\ntarget: species\nmodel: svm\n"
    )
    assert_clean_error(kiln("run", "bad.yaml", cwd=project), "model must be one of")


def test_a_network_through_the_pipeline_learns_a_small_table(project: Path) -> None:
    """BigQuery ML's network defaults give penguins (a few hundred rows) one hidden unit and one
    epoch: a model no better than the majority class. ``--model dnn`` starts from settings that
    learn."""
    pytest.importorskip("torch")
    code, out = _train(project, "--model", "dnn")
    assert code == 0, out
    production = ModelRegistry(Workspace(project)).alias("penguins", "production")
    assert production is not None
    model = production.load()
    assert model.trainer.hidden_units_ == [256, 128]
    epochs = len(model.trainer.training_info_)
    assert epochs < 300  # stopped on the eval loss: 10 epochs without a better one
    assert epochs == model.trainer.best_iteration_ + 11
    held_out = _part(held_out=True)
    predicted = model.predict(held_out)["predicted_species"]
    accuracy = pc.mean(pc.cast(pc.equal(predicted, held_out["species"]), pa.float64())).as_py()
    assert accuracy > 0.9  # the majority class is 0.44
    # a setting given in a config file overrides the network's defaults
    (project / "small.yaml").write_text(
        "source: penguins.csv\ntarget: species\nname: small\nmodel: dnn\n"
        "settings: {hidden_units: [8], max_iterations: 2}\n"
    )
    proc = kiln("run", "small.yaml", cwd=project, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    small = ModelRegistry(Workspace(project)).versions("small")[0].load()
    assert small.trainer.hidden_units_ == [8]
    assert len(small.trainer.training_info_) == 2


def test_automl_through_the_pipeline(project: Path) -> None:
    code, out = _train(project, "--time-budget", "4")
    assert code == 0, out
    assert "AutoML leaderboard" in out
    assert "infra: single-row latency p99" in out
    assert "registered models:/penguins/1" in out
    production = ModelRegistry(Workspace(project)).alias("penguins", "production")
    assert production is not None
    manifest = json.loads((production.path / "manifest.json").read_text())
    assert manifest["metrics"]["automl"]["metric"] == "log_loss"
    held_out = _part(held_out=True)
    predicted = production.load().predict(held_out)
    truth = held_out["species"]
    assert pc.mean(pc.equal(predicted["predicted_species"], truth)).as_py() > 0.9


def _wait_for_line(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if text in log.read_text(errors="replace"):
            return True
        time.sleep(0.1)
    return False


def test_kill_9_during_training_then_rerun_resumes_with_the_registry_unchanged(
    project: Path,
) -> None:
    log = project / "train.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [KILN, "train", "penguins.csv", "--target", "species", "--time-budget", "30"],
            cwd=project,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        try:
            # ExampleValidator done: AutoML is the step running now
            assert _wait_for_line(log, "ExampleValidator", proc, timeout=120), log.read_text()
            time.sleep(2.0)
            assert proc.poll() is None, log.read_text()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its workers
            proc.wait(timeout=30)
    assert ModelRegistry(Workspace(project)).models() == []
    code, out = _train(project, "--time-budget", "3")
    assert code == 0, out
    for step in ("ExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator"):
        assert re.search(rf"↺ {step}\s+cached", out), out  # resumed from the cache
    assert "registered models:/penguins/1" in out
    assert [v.version for v in ModelRegistry(Workspace(project)).versions("penguins")] == [1]


def test_two_trains_of_one_name_at_once_register_distinct_versions(project: Path) -> None:
    """Two people train `penguins` at the same moment on different data: two versions, numbered
    without a clash, and the production alias moved once per blessing."""
    table = _penguins()
    pacsv.write_csv(table.filter([i % 2 == 0 for i in range(table.num_rows)]), project / "a.csv")
    pacsv.write_csv(table.filter([i % 3 != 0 for i in range(table.num_rows)]), project / "b.csv")
    procs = [
        subprocess.Popen(
            [
                KILN,
                "train",
                data,
                "--target",
                "species",
                "--model",
                "logistic",
                "--name",
                "penguins",
            ],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for data in ("a.csv", "b.csv")
    ]
    outs = [p.communicate(timeout=300)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    registry = ModelRegistry(Workspace(project))
    assert sorted(v.version for v in registry.versions("penguins")) == [1, 2], outs
    registered = sorted(re.findall(r"registered models:/penguins/(\d)", "".join(outs)))
    assert registered == ["1", "2"]
    promoted = sum("promoted:" in o and "not promoted" not in o for o in outs)
    assert promoted >= 1  # the first to finish had no champion to beat
    moves = [e for e in registry.alias_history("penguins", "production") if e.action == "set"]
    assert len(moves) == promoted  # the alias moved once per blessing
    holder = registry.alias("penguins", "production")
    assert holder is not None
    assert holder.version == moves[-1].version


def test_kmeans_through_the_pipeline_is_judged_on_its_own_metric(project: Path) -> None:
    assert _train(project, "--model", "kmeans", "--name", "clusters")[0] == 0
    pacsv.write_csv(_penguins().filter([i % 5 != 0 for i in range(344)]), project / "more.csv")
    proc = kiln(
        "train", "more.csv", "--target", "species", "--model", "kmeans", "--name", "clusters",
        cwd=project, timeout=300,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "against production (models:/clusters/1)" in out
    blessing = out.split("blessing", 1)[1]
    assert "davies_bouldin_index" in blessing  # judged on a clustering metric, not log_loss
    assert "log_loss" not in blessing
    holder = ModelRegistry(Workspace(project)).alias("clusters", "production")
    assert holder is not None
    assert holder.load().task == "clustering"
