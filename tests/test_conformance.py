"""Every built-in artifact type and runner passes the shipped conformance checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from kiln.artifacts import Artifact, Metrics, Report, Table
from kiln.orchestration import LocalRunner
from kiln.testing import check_artifact_type, check_runner, check_trainer
from kiln.train import get_trainer, trainers
from kiln.workspace import Workspace


def _folder(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "nested").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "nested" / "b.bin").write_bytes(bytes(range(256)))
    return src


@pytest.mark.parametrize(
    ("cls", "value"),
    [
        (Table, pa.table({"x": [1, 2, None], "s": ["a", "b", "c"], "f": [0.5, None, 2.0]})),
        (Metrics, {"auc": 0.93, "rows": 3, "nested": {"per_class": [1, 2]}}),
        (Report, "<!doctype html><p>é — ok</p>"),
    ],
    ids=["Table", "Metrics", "Report"],
)
def test_builtin_artifact_types_conform(cls: type[Artifact], value: Any) -> None:
    equal = (lambda a, b: a.equals(b)) if cls is Table else None
    check_artifact_type(cls, value, equal=equal)


def test_generic_artifact_conforms(tmp_path: Path) -> None:
    src = _folder(tmp_path)

    def same(a: Any, b: Any) -> bool:
        files = lambda p: sorted(  # noqa: E731
            (f.relative_to(p).as_posix(), f.read_bytes())
            for f in Path(p).rglob("*")
            if f.is_file() and f.name != "kiln-artifact.json"
        )
        return files(a) == files(b)

    check_artifact_type(Artifact, src, equal=same)


@pytest.mark.parametrize("workers", [0, 1, 2], ids=["in-process", "1-worker", "2-workers"])
def test_local_runner_conforms(workspace: Workspace, workers: int) -> None:
    check_runner(LocalRunner(workers), workspace)


def test_conformance_catches_a_broken_artifact_type() -> None:
    class Unstable(Metrics):
        """Writes a counter into its file: the same value never gives the same bytes."""

        calls = 0

        def _write(self, folder: Path) -> dict[str, Any]:
            Unstable.calls += 1
            (folder / "metrics.json").write_text(f'{{"n": {Unstable.calls}}}')
            return {}

        def _read(self, folder: Path) -> Any:
            return {}

    with pytest.raises(AssertionError, match="same value twice"):
        check_artifact_type(Unstable, {})


@pytest.mark.parametrize("workers", [0, 2], ids=["in-process", "2-workers"])
def test_local_runner_conforms_on_an_fsspec_artifact_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """Artifacts on object storage (fsspec's memory filesystem standing in for s3://)."""
    import uuid

    monkeypatch.setenv("KILN_ARTIFACT_ROOT", f"memory://kiln-conformance-{uuid.uuid4().hex}")
    ws, _ = Workspace.init(tmp_path)
    assert not ws.artifacts.is_local
    check_runner(LocalRunner(workers), ws)
    ws.close()


def _data(task: str) -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    if task == "regression":
        return X, X @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(scale=0.1, size=300)
    if task == "classification":
        return X, np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    return X, None


def _settings(model_type: str) -> dict[str, Any]:
    def members(linear: str, trees: str) -> list[dict[str, Any]]:
        return [
            {"model_type": linear, "columns": [0, 4], "weight": 1.0},
            {"model_type": trees, "columns": [1, 3], "weight": 2.0},
        ]

    return {
        "kmeans": {"num_clusters": 3},
        "pca": {"num_principal_components": 2},
        "ensemble_classifier": {"members": members("logistic_reg", "boosted_tree_classifier")},
        "ensemble_regressor": {"members": members("linear_reg", "boosted_tree_regressor")},
    }.get(model_type, {})


@pytest.mark.parametrize("model_type", sorted(trainers()))
def test_every_builtin_trainer_conforms(model_type: str) -> None:
    cls = get_trainer(model_type)
    X, y = _data(cls.task)
    check_trainer(cls(**_settings(model_type)), X, y)


@pytest.mark.parametrize(
    "model_type",
    [
        "linear_reg",
        "logistic_reg",
        "kmeans",
        "boosted_tree_classifier",
        "boosted_tree_regressor",
        "dnn_classifier",
        "dnn_regressor",
        "catboost_classifier",
        "catboost_regressor",
    ],
)
def test_stop_training_keeps_the_model_as_it_stands(model_type: str) -> None:
    """An iteration listener raising StopTraining (AutoML out of time) ends fit normally: the
    rows recorded so far stay, and the trainer predicts."""
    from kiln.train import StopTraining, iteration_listener

    cls = get_trainer(model_type)
    X, y = _data(cls.task)
    settings = {**_settings(model_type), "max_iterations": 10}
    if not model_type.startswith("catboost"):  # CatBoost stops early only on an eval set
        settings["early_stop"] = False
    if model_type.startswith("linear") or model_type.startswith("logistic"):
        settings["optimize_strategy"] = "BATCH_GRADIENT_DESCENT"

    def stop_after_two(_: object, info: Any) -> None:
        if info.iteration == 1:
            raise StopTraining

    with iteration_listener(stop_after_two):
        trainer = cls(**settings).fit(X, y)
    assert [row.iteration for row in trainer.training_info_] == [0, 1]
    assert len(trainer.predict(X)) == len(X)
