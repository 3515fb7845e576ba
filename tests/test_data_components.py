"""The data components on the spine: ExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator
on the Palmer penguins, with lineage, caching and a validator that stops the pipeline."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from conftest import ANOMALY_KEYS
from kiln import metadata as md
from kiln.artifacts import Anomalies, Dataset, Schema, Statistics
from kiln.orchestration import LocalRunner, RunResult, load_pipeline, run
from kiln.testing import check_artifact_type
from kiln.workspace import Workspace

PIPELINE = textwrap.dedent(
    """
    from kiln import pipeline
    from kiln.components import ExampleGen, ExampleValidator, SchemaGen, StatisticsGen


    @pipeline(name="data")
    def data(source: str, stop: bool = True) -> None:
        examples = ExampleGen(source=source, splits={"train": 0.7, "eval": 0.3}, seed=1)
        stats = StatisticsGen(examples.output)
        schema = SchemaGen(stats.output)
        ExampleValidator(stats.output, schema.output, stop_on_anomalies=stop)
    """
)


def _run(ws: Workspace, pipe: Path, **params: object) -> RunResult:
    return run(
        load_pipeline(pipe), params, workspace=ws, runner=LocalRunner(2), raise_on_failure=False
    )


def test_data_pipeline_end_to_end(workspace: Workspace, tmp_path: Path, penguins: Path) -> None:
    pipe = tmp_path / "data_pipeline.py"
    pipe.write_text(PIPELINE)
    first = _run(workspace, pipe, source=str(penguins))
    assert first.state == "COMPLETE", {n: s.error for n, s in first.steps.items()}
    store, arts = workspace.metadata, workspace.artifacts

    dataset = Dataset.stored(arts.path_of(first.output("ExampleGen").uri))
    splits = dataset.read()
    assert set(splits) == {"train", "eval"}
    assert sum(t.num_rows for t in splits.values()) == 344
    assert 0.6 < splits["train"].num_rows / 344 < 0.8
    manifest = dataset.manifest()
    assert manifest["splits"]["train"]["rows"] == splits["train"].num_rows
    assert manifest["source"] == str(penguins)

    stats = Statistics.stored(arts.path_of(first.output("StatisticsGen").uri)).read()
    assert [d.name for d in stats.datasets] == ["train", "eval"]
    species = stats.dataset("train").feature("species")
    assert species is not None
    assert species.string is not None
    assert {t.value for t in species.string.top_values} == {"Adelie", "Gentoo", "Chinstrap"}

    schema = Schema.stored(arts.path_of(first.output("SchemaGen").uri)).read()
    assert schema.feature("species") is not None

    anomalies_art = store.get_artifact(first.output("ExampleValidator").id or -1)
    assert anomalies_art.properties["num_anomalies"] == 0

    # lineage: the anomalies come from the CSV through every step
    graph = md.lineage(store, anomalies_art.id or -1, "upstream")
    assert {x.type_name for x in graph.executions.values()} == {
        "ExampleGen",
        "StatisticsGen",
        "SchemaGen",
        "ExampleValidator",
    }
    # unchanged: all cache hits; an edited CSV reruns from ExampleGen (an InputPath)
    again = _run(workspace, pipe, source=str(penguins))
    assert {s.state for s in again.steps.values()} == {"CACHED"}
    with penguins.open("a") as f:
        f.write("Adelie,Torgersen,39.1,18.7,181,3750,male,2009\n")
    edited = _run(workspace, pipe, source=str(penguins))
    assert edited.steps["ExampleGen"].state == "COMPLETE"
    assert "files of 'source' changed" in edited.steps["ExampleGen"].reason


def test_the_validator_stops_the_pipeline_or_records(
    workspace: Workspace, tmp_path: Path, penguins: Path
) -> None:
    # the latest rows (eval, by time) hold a species training never saw
    header, *rows = penguins.read_text().splitlines()
    extra = [r.replace("Adelie", "Emperor", 1) for r in rows if r.startswith("Adelie")][:60]
    lines = [f"{header},ts", *(f"{r},{i}" for i, r in enumerate([*rows, *extra]))]
    penguins.write_text("\n".join(lines) + "\n")
    pipe = tmp_path / "data_pipeline.py"
    pipe.write_text(PIPELINE.replace(", seed=1", ', time_column="ts"'))
    stopped = _run(workspace, pipe, source=str(penguins))
    validator = stopped.steps["ExampleValidator"]
    assert validator.state == "FAILED"
    assert "ENUM_TYPE_UNEXPECTED_STRING_VALUES" in (validator.error or "")
    assert "species" in (validator.error or "")
    recorded = _run(workspace, pipe, source=str(penguins), stop=False)
    assert recorded.steps["ExampleValidator"].state == "COMPLETE"
    found = Anomalies.stored(
        workspace.artifacts.path_of(recorded.output("ExampleValidator").uri)
    ).read()
    assert any("ENUM_TYPE_UNEXPECTED_STRING_VALUES" in a.types for a in found)
    body = json.loads(
        (
            workspace.artifacts.path_of(recorded.output("ExampleValidator").uri) / "anomalies.json"
        ).read_text()
    )
    assert set(body["anomalies"][0]) == ANOMALY_KEYS


def test_dataset_artifact_conforms() -> None:
    import pyarrow as pa

    value = {"train": pa.table({"x": [1, 2, 3]}), "eval": pa.table({"x": [4]})}
    check_artifact_type(
        Dataset,
        value,
        equal=lambda a, b: set(a) == set(b) and all(a[k].equals(b[k]) for k in a),
    )
