"""The training components on the spine: ExampleGen -> Transform -> Trainer -> Evaluator on the
Palmer penguins (logistic_reg on species), with lineage, caching and blessing."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from kiln import metadata as md
from kiln import model as kiln_model
from kiln.artifacts import Model, ModelEvaluation, TransformGraph
from kiln.errors import TrainingError
from kiln.orchestration import LocalRunner, RunResult, component, load_pipeline, run
from kiln.testing import check_artifact_type
from kiln.transform import FittedTransform, auto_transform
from kiln.workspace import Workspace

PIPELINE = textwrap.dedent(
    """
    from kiln import pipeline
    from kiln.components import Evaluator, ExampleGen, Trainer, Transform


    @pipeline(name="training")
    def training(
        source: str, max_iterations: int = 20, lower: float = 0.5, fail: bool = False
    ) -> None:
        examples = ExampleGen(source=source, splits={"train": 0.7, "eval": 0.3}, seed=1)
        transform = Transform(examples.output, model_type="logistic_reg", label="species")
        trained = Trainer(
            examples.output,
            transform.output,
            model_type="logistic_reg",
            label="species",
            settings={"max_iterations": max_iterations},
        )
        Evaluator(
            examples.output,
            trained.output,
            thresholds=[{"metric": "accuracy", "lower_bound": lower}],
            fail_if_not_blessed=fail,
        )
    """
)
STEPS = {"ExampleGen", "Transform", "Trainer", "Evaluator"}


def _run(ws: Workspace, pipe: Path, **params: object) -> RunResult:
    return run(
        load_pipeline(pipe), params, workspace=ws, runner=LocalRunner(2), raise_on_failure=False
    )


def _states(result: RunResult) -> dict[str, str]:
    return {name: s.state for name, s in result.steps.items()}


def test_training_pipeline_end_to_end(workspace: Workspace, tmp_path: Path, penguins: Path) -> None:
    pipe = tmp_path / "training_pipeline.py"
    pipe.write_text(PIPELINE)
    first = _run(workspace, pipe, source=str(penguins))
    assert first.state == "COMPLETE", {n: s.error for n, s in first.steps.items()}
    assert _states(first) == dict.fromkeys(STEPS, "COMPLETE")
    store, arts = workspace.metadata, workspace.artifacts

    # the transform: fitted on train, the label left out
    graph_art = first.output("Transform")
    graph_props = store.get_artifact(graph_art.id or -1).properties
    assert "species" not in graph_props["input_columns"]
    assert "island" in graph_props["input_columns"]
    assert graph_props["num_features"] > 6
    fitted = TransformGraph.stored(arts.path_of(graph_art.uri)).read()
    assert isinstance(fitted, FittedTransform)

    # the model folder is a model: Model.load works on the artifact's path, and predicts
    model_art = first.output("Trainer")
    model_path = arts.path_of(model_art.uri)
    loaded = kiln_model.Model.load(model_path)
    assert loaded.label == "species"
    assert loaded.task == "classification"
    rows = pa.table(
        {
            "island": ["Biscoe", "Torgersen"],
            "bill_length_mm": [48.0, 39.0],
            "bill_depth_mm": [15.0, 18.5],
            "flipper_length_mm": [220.0, 185.0],
            "body_mass_g": [5400.0, 3700.0],
            "sex": ["male", "female"],
            "year": [2008, 2008],
        }
    )
    predicted = loaded.predict(rows)["predicted_species"].to_pylist()
    assert predicted == ["Gentoo", "Adelie"]
    assert store.get_artifact(model_art.id or -1).properties == {
        "model_type": "logistic_reg",
        "task": "classification",
        "label": "species",
    }
    # the Trainer used the Transform step's fitted graph, not a refit one
    assert json.loads((model_path / "transform" / "transform.json").read_text()) == json.loads(
        (arts.path_of(graph_art.uri) / "transform.json").read_text()
    )

    # the evaluation: metrics on the eval split, blessed, recorded as properties
    evaluation_art = store.get_artifact(first.output("Evaluator").id or -1)
    assert evaluation_art.properties["blessed"] is True
    headline = evaluation_art.properties["metrics"]
    assert headline["accuracy"] > 0.9
    assert "confusion_matrix" not in headline
    evaluation = ModelEvaluation.stored(arts.path_of(first.output("Evaluator").uri))
    body = evaluation.read()
    assert body["metrics"]["confusion_matrix"]["labels"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert body["blessing"]["blessed"] is True
    assert any("accuracy" in r and "lower bound" in r for r in body["blessing"]["reasons"])
    assert evaluation.blessed

    # lineage: the evaluation comes from the CSV through every step
    graph = md.lineage(store, evaluation_art.id or -1, "upstream")
    assert {x.type_name for x in graph.executions.values()} == STEPS

    # unchanged: all cache hits
    again = _run(workspace, pipe, source=str(penguins))
    assert set(_states(again).values()) == {"CACHED"}

    # a trainer setting changed: Trainer and Evaluator rerun, the data and transform are reused
    changed = _run(workspace, pipe, source=str(penguins), max_iterations=5)
    assert changed.state == "COMPLETE", {n: s.error for n, s in changed.steps.items()}
    assert _states(changed) == {
        "ExampleGen": "CACHED",
        "Transform": "CACHED",
        "Trainer": "COMPLETE",
        "Evaluator": "COMPLETE",
    }
    assert "settings" in changed.steps["Trainer"].reason


def test_an_unblessed_model_is_recorded_or_fails_the_step(
    workspace: Workspace, tmp_path: Path, penguins: Path
) -> None:
    pipe = tmp_path / "training_pipeline.py"
    pipe.write_text(PIPELINE)
    recorded = _run(workspace, pipe, source=str(penguins), lower=0.999)
    assert recorded.state == "COMPLETE", {n: s.error for n, s in recorded.steps.items()}
    art = workspace.metadata.get_artifact(recorded.output("Evaluator").id or -1)
    assert art.properties["blessed"] is False
    body = ModelEvaluation.stored(workspace.artifacts.path_of(art.uri)).read()
    assert body["blessing"]["blessed"] is False
    assert any(
        "accuracy" in r and "lower bound 0.999: not blessed" in r
        for r in body["blessing"]["reasons"]
    )

    failed = _run(workspace, pipe, source=str(penguins), lower=0.999, fail=True)
    assert failed.state == "FAILED"
    step = failed.steps["Evaluator"]
    assert step.state == "FAILED"
    assert "not blessed" in (step.error or "")
    assert "lower bound 0.999" in (step.error or "")
    assert failed.steps["Trainer"].state == "CACHED"


def _penguin_splits(penguins: Path) -> dict[str, pa.Table]:
    from kiln.data import read_table, split_table

    return dict(split_table(read_table(str(penguins)), {"train": 0.7, "eval": 0.3}, seed=1))


def test_evaluator_with_baseline_checks_change(penguins: Path) -> None:
    from kiln.artifacts import Dataset
    from kiln.components import EvaluatorWithBaseline

    splits = _penguin_splits(penguins)
    good = kiln_model.Model.fit(splits["train"], model_type="logistic_reg", label="species")
    weak = kiln_model.Model.fit(
        splits["train"].select(["species", "year"]), model_type="logistic_reg", label="species"
    )
    dataset = Dataset(splits)
    # called outside a pipeline, a component is its plain function
    worse = EvaluatorWithBaseline(
        dataset,
        Model(weak),
        Model(good),
        thresholds=[{"metric": "accuracy", "change_absolute": 0.0}],
        slice_by=["island"],
    )
    assert isinstance(worse, ModelEvaluation)
    body = worse.read()
    assert body["blessing"]["blessed"] is False
    assert any("not blessed" in r and "baseline" in r for r in body["blessing"]["reasons"])
    assert body["split"] == "eval"
    assert {s["slice"].get("island") for s in body["slices"]} >= {"Biscoe", "Dream"}
    assert body["baseline_metrics"]["accuracy"] > body["metrics"]["accuracy"]
    better = EvaluatorWithBaseline(
        dataset,
        Model(good),
        Model(weak),
        thresholds=[{"metric": "accuracy", "change_absolute": 0.0}],
    )
    assert better.read()["blessing"]["blessed"] is True


def test_bad_thresholds_are_named(penguins: Path) -> None:
    from kiln.artifacts import Dataset
    from kiln.components import Evaluator

    splits = _penguin_splits(penguins)
    fitted = kiln_model.Model.fit(splits["train"], model_type="logistic_reg", label="species")
    with pytest.raises(TrainingError, match=r"thresholds\[0\].*lower_bound"):
        Evaluator(Dataset(splits), Model(fitted), thresholds=[{"metric": "accuracy", "min": 1}])


def test_a_transform_that_uses_the_label_is_refused(penguins: Path) -> None:
    from kiln.artifacts import Dataset
    from kiln.components import Trainer, Transform

    dataset = Dataset(_penguin_splits(penguins))
    leaky = Transform(dataset, model_type="logistic_reg")  # label not named: a feature
    with pytest.raises(TrainingError, match=r"label column 'species'.*label='species'"):
        Trainer(dataset, leaky, model_type="logistic_reg", label="species")
    fitted = Trainer(
        dataset,
        Transform(dataset, model_type="logistic_reg", label="species"),
        model_type="logistic_reg",
        label="species",
        eval_split="",
    )
    assert fitted.read().label == "species"


def test_an_optional_artifact_input_is_refused() -> None:
    """Why EvaluatorWithBaseline is its own component: `Model | None` is not an input type."""
    from kiln.errors import PipelineDefinitionError

    def evaluator(model: Model, baseline: Model | None = None) -> ModelEvaluation:
        raise AssertionError

    with pytest.raises(PipelineDefinitionError, match="baseline"):
        component(evaluator)


# --------------------------------------------------------------------------- conformance


def _same_model(a: Any, b: Any) -> bool:
    table = pa.table({"x": [0.5, 1.5, -2.0], "c": ["a", "b", None]})
    return bool(
        a.label == b.label
        and a.signature == b.signature
        and a.trainer.get_params() == b.trainer.get_params()
        and a.predict(table).equals(b.predict(table))
    )


def _training_table() -> pa.Table:
    return pa.table(
        {
            "x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
            "c": ["a", "b", "a", "b", "a", "b", None, "a"],
            "y": [0.1, 1.2, 1.9, 3.2, 4.1, 4.8, 6.1, 7.0],
        }
    )


def test_transform_graph_artifact_conforms() -> None:
    table = _training_table()
    fitted = auto_transform(table, "linear", exclude=["y"]).fit(table)
    check_artifact_type(
        TransformGraph,
        fitted,
        equal=lambda a, b: bool(
            a.to_json() == b.to_json() and (a.transform(table).X == b.transform(table).X).all()
        ),
    )


def test_model_artifact_conforms() -> None:
    fitted = kiln_model.Model.fit(_training_table(), model_type="linear_reg", label="y")
    check_artifact_type(Model, fitted, equal=_same_model)


def test_model_evaluation_artifact_conforms() -> None:
    value = {
        "metrics": {"task": "regression", "r2_score": 0.9, "notes": [], "residuals": {"n": 1}},
        "blessing": {
            "blessed": False,
            "reasons": ["r2_score 0.9 < lower bound 0.95"],
            "checks": [],
        },
        "baseline_metrics": None,
    }
    check_artifact_type(ModelEvaluation, value)
    props = ModelEvaluation(value).write(_empty_dir())
    assert props == {"blessed": False, "metrics": {"r2_score": 0.9}}


def _empty_dir() -> Path:
    import tempfile

    return Path(tempfile.mkdtemp())
