"""The model artifact: every family through Model.fit -> save -> load -> predict, on the penguins,
and the bad inputs the issue lists (tampering, newer format, missing/extra/wrong columns)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from kiln.errors import DataError, TrainingError
from kiln.model import Model, ModelFormatError

FAMILIES: list[tuple[str, str | None, dict[str, Any], list[str]]] = [
    ("linear_reg", "body_mass_g", {}, ["predicted_body_mass_g"]),
    ("logistic_reg", "species", {}, ["predicted_species", "predicted_species_probs"]),
    ("boosted_tree_classifier", "species", {}, ["predicted_species", "predicted_species_probs"]),
    ("boosted_tree_regressor", "body_mass_g", {}, ["predicted_body_mass_g"]),
    ("random_forest_classifier", "sex", {}, ["predicted_sex", "predicted_sex_probs"]),
    ("random_forest_regressor", "body_mass_g", {}, ["predicted_body_mass_g"]),
    ("kmeans", None, {"num_clusters": 3}, ["centroid_id", "nearest_centroids_distance"]),
    (
        "pca",
        None,
        {"num_principal_components": 2},
        ["principal_component_1", "principal_component_2"],
    ),
]


@pytest.fixture(scope="module")
def table() -> pa.Table:
    import importlib.resources

    src = importlib.resources.files("palmerpenguins") / "data/penguins.csv"
    with src.open("rb") as f:
        t = pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(null_values=["NA"]))
    return t.filter(pc.and_(pc.is_valid(t["body_mass_g"]), pc.is_valid(t["sex"])))


def _fit(table: pa.Table, model_type: str, label: str | None, settings: dict[str, Any]) -> Model:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. the constant-column notice
        return Model.fit(table, model_type=model_type, label=label, settings=settings)


@pytest.mark.parametrize(("model_type", "label", "settings", "columns"), FAMILIES)
def test_every_family_round_trips_through_the_folder(
    tmp_path: Path,
    table: pa.Table,
    model_type: str,
    label: str | None,
    settings: dict[str, Any],
    columns: list[str],
) -> None:
    model = _fit(table, model_type, label, settings)
    folder = model.save(tmp_path / "model")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"] == "kiln.model"
    assert manifest["model_type"] == model_type
    assert {c["name"] for c in manifest["signature"]} >= {"bill_length_mm", "island"}
    loaded = Model.load(folder)
    before, after = model.predict(table), loaded.predict(table)
    assert before.column_names == columns
    assert before.equals(after)
    assert before.num_rows == table.num_rows
    # no staging folder left beside the model
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_kiln_model_is_the_model_class(tmp_path: Path, table: pa.Table) -> None:
    import kiln

    folder = _fit(table, "linear_reg", "body_mass_g", {}).save(tmp_path / "m")
    assert kiln.Model is Model
    assert kiln.Model.load(folder).predict(table.slice(0, 2)).num_rows == 2


def test_predictions_are_sensible(table: pa.Table) -> None:
    classifier = _fit(table, "logistic_reg", "species", {})
    predicted = classifier.predict(table)["predicted_species"].to_pylist()
    accuracy = sum(p == t for p, t in zip(predicted, table["species"].to_pylist(), strict=True))
    assert accuracy / table.num_rows > 0.95
    probs = classifier.predict(table.slice(0, 1))["predicted_species_probs"].to_pylist()[0]
    assert {p["label"] for p in probs} == {"Adelie", "Chinstrap", "Gentoo"}
    assert sum(p["prob"] for p in probs) == pytest.approx(1.0)
    regressor = _fit(table, "linear_reg", "body_mass_g", {})
    errors = pc.subtract(regressor.predict(table)["predicted_body_mass_g"], table["body_mass_g"])
    rmse = pc.sqrt(pc.mean(pc.multiply(errors, errors))).as_py()
    assert rmse < 400  # body mass std dev is about 800 g


def test_predict_checks_its_input(table: pa.Table) -> None:
    model = _fit(table, "linear_reg", "body_mass_g", {})
    with pytest.raises(DataError, match="missing column 'flipper_length_mm'"):
        model.predict(table.drop_columns(["flipper_length_mm"]))
    extra = table.append_column("unused", pa.array(["x"] * table.num_rows))
    assert model.predict(extra).equals(model.predict(table))  # extra columns are ignored
    wrong = table.set_column(
        table.column_names.index("bill_length_mm"),
        "bill_length_mm",
        pa.array(["long"] * table.num_rows),
    )
    with pytest.raises(DataError, match="bill_length_mm"):
        model.predict(wrong)


def test_a_tampered_or_newer_model_is_refused(tmp_path: Path, table: pa.Table) -> None:
    folder = _fit(table, "linear_reg", "body_mass_g", {}).save(tmp_path / "m")
    estimator_file = next(p for p in (folder / "estimator").iterdir() if p.is_file())
    original = estimator_file.read_bytes()
    estimator_file.write_bytes(original + b"\0")
    with pytest.raises(ModelFormatError, match="modified after it was saved"):
        Model.load(folder)
    estimator_file.write_bytes(original)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["version"] = 99
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFormatError, match="newer than this Kiln"):
        Model.load(folder)
    with pytest.raises(ModelFormatError, match="not a Kiln model"):
        Model.load(tmp_path)


def test_bad_training_input(tmp_path: Path, table: pa.Table) -> None:
    with pytest.raises(TrainingError, match="label column 'price' is not in the data"):
        Model.fit(table, model_type="linear_reg", label="price")
    nulls = table.append_column("empty", pa.nulls(table.num_rows, pa.float64()))
    with pytest.raises(TrainingError, match="'empty' is all null"):
        Model.fit(nulls, model_type="linear_reg", label="empty")
    adelie = table.filter(pc.equal(table["species"], "Adelie"))
    with pytest.raises(TrainingError):
        _fit(adelie, "logistic_reg", "species", {})  # a single class
    with pytest.raises(TrainingError, match="unknown model_type"):
        Model.fit(table, model_type="magic_reg", label="body_mass_g")
    model = _fit(table, "linear_reg", "body_mass_g", {})
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(DataError, match="not empty"):
        model.save(tmp_path / "full")
    assert (tmp_path / "full" / "x").read_text() == "keep me"


@pytest.mark.parametrize(
    ("model_type", "label"),
    [
        ("linear_reg", "body_mass_g"),
        ("logistic_reg", "species"),
        ("kmeans", None),
        ("boosted_tree_classifier", "species"),
    ],
)
def test_chunked_prediction_equals_one_pass(
    monkeypatch: pytest.MonkeyPatch, table: pa.Table, model_type: str, label: str | None
) -> None:
    """Large tables go through in chunks; a linear model reads its one-hot blocks as codes:
    neither changes a single prediction."""
    import kiln.model._model as model_module

    model = _fit(table, model_type, label, {"num_clusters": 3} if label is None else {})
    whole = model.predict(table)
    monkeypatch.setattr(model_module, "PREDICT_CHUNK_ROWS", 50)
    chunked = model.predict(table)
    assert chunked.num_rows == table.num_rows
    assert chunked.equals(whole)
    if model_type == "linear_reg":
        dense = model.trainer.predict(model.transform.transform(table).X)
        np.testing.assert_allclose(whole["predicted_body_mass_g"].to_numpy(), dense, rtol=1e-12)


def _transform_threads(monkeypatch: pytest.MonkeyPatch, model: Model) -> list[str]:
    """The names of the threads ``model`` transforms its chunks on, from now on."""
    import threading

    names: list[str] = []
    features = model._features

    def recorded(chunk: pa.Table) -> Any:
        names.append(threading.current_thread().name)
        return features(chunk)

    monkeypatch.setattr(model, "_features", recorded)
    return names


def test_large_predictions_transform_the_next_chunk_beside_the_estimator(
    monkeypatch: pytest.MonkeyPatch, table: pa.Table
) -> None:
    """With a core to spare beyond the estimator's one thread, chunks are transformed on a second
    thread while the estimator predicts; with none, everything stays on the caller's thread.
    The predictions are the same either way."""
    import threading

    import kiln._threads
    import kiln.model._model as model_module

    model = _fit(table, "boosted_tree_regressor", "body_mass_g", {"num_threads": 1})
    whole = model.predict(table)
    monkeypatch.setattr(model_module, "PREDICT_CHUNK_ROWS", 50)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    names = _transform_threads(monkeypatch, model)
    assert model.predict(table).equals(whole)
    assert set(names) == {"kiln-predict-transform"}
    assert len(names) == -(-table.num_rows // 50)
    assert not any(t.name == "kiln-predict-transform" for t in threading.enumerate())

    names.clear()
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0}, raising=False)
    assert not kiln._threads.spare_core(1)
    assert model.predict(table).equals(whole)
    assert set(names) == {threading.current_thread().name}


def test_a_chunk_that_fails_on_the_transform_thread_fails_the_prediction(
    monkeypatch: pytest.MonkeyPatch, table: pa.Table
) -> None:
    """An error in the transform thread reaches the caller, and the thread does not outlive it."""
    import threading

    import kiln.model._model as model_module

    model = _fit(table, "boosted_tree_regressor", "body_mass_g", {})
    monkeypatch.setattr(model_module, "PREDICT_CHUNK_ROWS", 50)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    features = model._features
    seen: list[int] = []

    def failing(chunk: pa.Table) -> Any:
        seen.append(chunk.num_rows)
        if len(seen) == 3:
            raise DataError("chunk 3 is unreadable")
        return features(chunk)

    monkeypatch.setattr(model, "_features", failing)
    with pytest.raises(DataError, match="chunk 3 is unreadable"):
        model.predict(table)
    assert not any(t.name == "kiln-predict-transform" for t in threading.enumerate())


def test_the_overlap_is_for_native_estimators_with_a_core_to_spare(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A model's prediction threads are its trainer's ``num_threads``, the most of any ensemble
    member, else KILN_THREADS (NumPy's BLAS). The transform overlaps only an estimator that
    predicts in native code (or an ensemble holding one), and only with a core to spare."""
    from kiln.model._model import _estimator_threads, _overlap_pays
    from kiln.train import get_trainer

    assert _estimator_threads({"num_threads": 3}) == 3
    assert _estimator_threads({"l2_reg": 0.0}) == 1
    members = [
        {"model_type": "linear_reg", "settings": {}},
        {"model_type": "boosted_tree_regressor", "settings": {"num_threads": 4}},
    ]
    assert _estimator_threads({"members": members}) == 4

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(8)), raising=False)
    trees, linear = get_trainer("boosted_tree_regressor"), get_trainer("linear_reg")
    assert _overlap_pays(trees, {"num_threads": 1})
    assert not _overlap_pays(trees, {"num_threads": 8})
    assert not _overlap_pays(linear, {})
    ensemble = get_trainer("ensemble_regressor")
    assert _overlap_pays(ensemble, {"members": members})
    assert not _overlap_pays(ensemble, {"members": members[:1]})


def test_loading_a_model_imports_only_its_own_family(tmp_path: Path, table: pa.Table) -> None:
    """Loading a linear model in a fresh process imports neither LightGBM nor PyTorch nor the
    deep-learning trainers, and neither loading nor predicting a few rows imports Arrow
    (pyarrow and pyarrow.compute: 85 ms): a server's start-up pays only for what its models
    need."""
    folder = _fit(table, "linear_reg", "body_mass_g", {}).save(tmp_path / "linear")
    row = {k: v for k, v in table.slice(0, 1).to_pylist()[0].items() if k != "body_mass_g"}
    code = (
        "import sys, json; from kiln.model import Model; m = Model.load(sys.argv[1]); "
        "m.predict_rows([json.loads(sys.argv[2])]); "
        "print(sorted(m for m in ('lightgbm', 'torch', 'kiln.train.dl._dnn', 'kiln.train._trees',"
        " 'pyarrow', 'pyarrow.compute') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(folder), json.dumps(row)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"
