"""The model registry as a library: version numbering, aliases and their history, rollback,
delete refused while an alias holds a version, tags, descriptions, models:/ URIs, not-found
suggestions, lineage, the schema upgrade of an existing store, and registrations from several
processes at once — on SQLite, and on PostgreSQL when CI provides one."""

from __future__ import annotations

import importlib.resources
import itertools
import json
import os
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest
import sqlalchemy as sa

from kiln import metadata as md
from kiln.errors import (
    KilnError,
    ModelNameError,
    ModelNotFoundError,
    RegistryError,
    RollbackError,
    VersionInUseError,
)
from kiln.metadata._schema import MIGRATIONS
from kiln.model import Model
from kiln.registry import (
    MODEL_VERSION_ARTIFACT,
    REGISTERED_MODEL_CONTEXT,
    ModelRegistry,
    ModelURI,
    ModelVersion,
    load_model,
    parse_model_uri,
)
from kiln.workspace import Workspace


def _penguins() -> pa.Table:
    src = importlib.resources.files("palmerpenguins") / "data/penguins.csv"
    with src.open("rb") as f:
        t = pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(null_values=["NA"]))
    return t.filter(pc.is_valid(t["body_mass_g"]))


@pytest.fixture(scope="module")
def rows() -> pa.Table:
    return _penguins().select(["bill_length_mm", "flipper_length_mm", "body_mass_g"])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, rows: pa.Table) -> Path:
    """A real model folder: linear regression of body mass on the penguins."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = Model.fit(rows, model_type="linear_reg", label="body_mass_g")
    return fitted.save(tmp_path_factory.mktemp("model") / "model")


@pytest.fixture
def ws(metadata_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """A workspace whose metadata is the test's database (SQLite, or PostgreSQL in CI)."""
    monkeypatch.setenv("KILN_METADATA_URL", metadata_url)
    monkeypatch.setenv("USER", "tester")
    workspace, _ = Workspace.init(tmp_path / "ws")
    yield workspace
    workspace.close()


@pytest.fixture
def reg(ws: Workspace) -> ModelRegistry:
    return ModelRegistry(ws)


def _live_model(reg: ModelRegistry, folder: Path) -> int:
    """A LIVE Model artifact in the workspace (register_folder's way), not registered."""
    art = reg._publish_folder(folder)
    assert art.id is not None
    return art.id


# ------------------------------------------------------------------------------- numbering


def test_versions_are_numbered_per_name_and_never_reused(
    reg: ModelRegistry, model_dir: Path
) -> None:
    art = _live_model(reg, model_dir)
    assert [reg.register("iris", art).version for _ in range(3)] == [1, 2, 3]
    assert reg.register("penguins", art).version == 1
    reg.delete_version("iris", 3)
    assert reg.register("iris", art).version == 4  # 3 is gone for good
    reg.delete_version("iris", 2)
    assert [v.version for v in reg.versions("iris")] == [1, 4]
    assert reg.get("iris").version == 4  # latest
    with pytest.raises(ModelNotFoundError, match=r"no version 2 \(it was deleted\)"):
        reg.get("iris", 2)
    with pytest.raises(ModelNotFoundError, match=r"Versions: 1, 4 \(latest 4\)"):
        reg.get("iris", 9)
    listed = {m.name: m for m in reg.models()}
    assert list(listed) == ["iris", "penguins"]
    assert (listed["iris"].latest_version, listed["iris"].num_versions) == (4, 2)
    assert listed["penguins"].latest_version == 1


def test_a_version_carries_its_model_and_lineage(
    reg: ModelRegistry, ws: Workspace, model_dir: Path, rows: pa.Table
) -> None:
    before = time.time() * 1000
    v = reg.register_folder(
        "mass",
        model_dir,
        description="linear baseline",
        tags={"team": "birds"},
        source={"note": "hand-made"},
        actor="alice",
    )
    assert isinstance(v, ModelVersion)
    assert (v.name, v.version, v.uri) == ("mass", 1, "models:/mass/1")
    assert v.description == "linear baseline"
    assert v.tags == {"team": "birds"}
    assert v.aliases == []
    assert v.source == {"note": "hand-made"}
    assert v.actor == "alice"
    assert before - 1000 <= v.created <= time.time() * 1000 + 1000
    assert (v.path / "manifest.json").is_file()
    assert v.path.is_relative_to(Path(ws.settings.artifact_root))
    predicted = v.load().predict(rows.slice(0, 3))["predicted_body_mass_g"]
    assert len(predicted) == 3
    # the Model artifact: LIVE, its folder's fingerprint, attributed to the model's context
    store = ws.metadata
    art = store.get_artifact(v.artifact_id)
    assert (art.type_name, art.state) == ("Model", md.ArtifactState.LIVE)
    assert art.properties == {
        "model_type": "linear_reg",
        "task": "regression",
        "label": "body_mass_g",
    }
    assert art.fingerprint == md_fingerprint(v.path)
    contexts = store.get_contexts(artifact_id=v.artifact_id)
    assert [(c.type_name, c.name) for c in contexts] == [(REGISTERED_MODEL_CONTEXT, "mass")]
    # the ModelVersion artifact: its lineage goes through the Register execution to the model
    assert v.lineage_artifact_id is not None
    graph = md.lineage(store, v.lineage_artifact_id, "upstream")
    assert graph.artifacts[v.lineage_artifact_id].type_name == MODEL_VERSION_ARTIFACT
    assert graph.artifacts[v.lineage_artifact_id].name == "models:/mass/1"
    assert v.artifact_id in graph.artifacts
    [register] = graph.executions.values()
    assert register.properties["actor"] == "alice"
    # the default actor is $USER
    assert reg.register("mass", v.artifact_id).actor == "tester"


def md_fingerprint(path: Path) -> str:
    from kiln.artifacts import fingerprint

    return fingerprint(path)


def test_register_refuses_what_is_not_a_live_model(reg: ModelRegistry, ws: Workspace) -> None:
    store = ws.metadata
    store.put_artifact_type("Table")
    store.put_artifact_type("Model")
    [table] = store.put_artifacts([md.Artifact("Table", "Table/x", md.ArtifactState.LIVE)])
    [pending] = store.put_artifacts([md.Artifact("Model", "Model/y")])
    with pytest.raises(RegistryError, match="is a Table, not a Model"):
        reg.register("iris", table)
    with pytest.raises(RegistryError, match="is PENDING, not LIVE"):
        reg.register("iris", pending.id or -1)
    with pytest.raises(ModelNotFoundError, match="no artifact with id 999"):
        reg.register("iris", 999)
    with pytest.raises(RegistryError, match="not stored in the workspace yet"):
        reg.register("iris", md.Artifact("Model", "Model/z"))
    for bad in ("a/b", "x@y", "", ".hidden", "a b"):
        with pytest.raises(ModelNameError, match="model name"):
            reg.register(bad, table)
    with pytest.raises(ModelNotFoundError, match="no model folder"):
        reg.register_folder("iris", Path("nowhere"))
    assert reg.models() == []  # nothing half-registered
    assert reg.versions("iris") == []


# --------------------------------------------------------------------------------- aliases


def test_aliases_record_who_when_why_and_roll_back_one_move_at_a_time(
    reg: ModelRegistry, model_dir: Path
) -> None:
    art = _live_model(reg, model_dir)
    for _ in range(3):
        reg.register("iris", art)
    assert reg.alias("iris", "production") is None
    assert reg.alias("not-registered", "production") is None
    reg.set_alias("iris", "production", 1, reason="first", actor="alice")
    reg.set_alias("iris", "production", 2, reason="better auc")
    moved = reg.set_alias("iris", "production", 3, reason="even better", actor="bob")
    assert moved.aliases == ["production"]
    reg.set_alias("iris", "production", 3, reason="no-op")  # already there: nothing recorded
    reg.set_alias("iris", "staging", 1)
    holder = reg.alias("iris", "production")
    assert holder is not None
    assert holder.version == 3
    assert reg.models()[0].aliases == {"production": 3, "staging": 1}

    history = reg.alias_history("iris", "production")
    assert [(e.previous_version, e.version) for e in history] == [(None, 1), (1, 2), (2, 3)]
    assert [e.reason for e in history] == ["first", "better auc", "even better"]
    assert [e.actor for e in history] == ["alice", "tester", "bob"]
    assert all(e.action == "set" for e in history)
    assert history[0].at <= history[1].at <= history[2].at
    assert len(reg.alias_history("iris")) == 4

    assert reg.rollback("iris", reason="bad in prod").version == 2
    assert reg.rollback("iris").version == 1
    with pytest.raises(RollbackError, match="no previous holder"):
        reg.rollback("iris")
    last = reg.alias_history("iris", "production")[-1]
    assert (last.action, last.previous_version, last.version) == ("rollback", 2, 1)
    assert last.reason == "rollback from version 2"
    assert reg.alias_history("iris", "production")[-2].reason == "bad in prod"

    # a removal is a move too: rollback restores the alias
    reg.remove_alias("iris", "staging", reason="retired")
    assert reg.alias("iris", "staging") is None
    assert reg.rollback("iris", "staging").version == 1
    with pytest.raises(ModelNotFoundError, match="did you mean 'staging'"):
        reg.rollback("iris", "stagin")


def test_alias_names_are_checked(reg: ModelRegistry, model_dir: Path) -> None:
    reg.register_folder("iris", model_dir)
    with pytest.raises(ModelNameError, match="reserved"):
        reg.set_alias("iris", "latest", 1)
    for bad in ("Production", "prod uction", "", "-x", "a/b"):
        with pytest.raises(ModelNameError, match="not valid"):
            reg.set_alias("iris", bad, 1)
    with pytest.raises(ModelNameError, match="version number"):
        reg.set_alias("iris", "3", 1)
    with pytest.raises(ModelNotFoundError, match="no version 7"):
        reg.set_alias("iris", "production", 7)
    latest = reg.alias("iris", "latest")
    assert latest is not None
    assert latest.version == 1


def test_a_version_holding_an_alias_cannot_be_deleted(
    reg: ModelRegistry, ws: Workspace, model_dir: Path
) -> None:
    art = _live_model(reg, model_dir)
    v1, v2 = reg.register("iris", art), reg.register("iris", art)
    reg.set_alias("iris", "production", 1)
    reg.set_alias("iris", "production", 2)
    with pytest.raises(VersionInUseError, match="holds alias production") as info:
        reg.delete_version("iris", 2)
    assert "kiln models alias iris VERSION production" in str(info.value)
    assert [v.version for v in reg.versions("iris")] == [1, 2]
    reg.delete_version("iris", 1)
    # the model's files and artifact stay (lineage); the version's lineage artifact is DELETED
    store = ws.metadata
    assert store.get_artifact(v1.artifact_id).state == md.ArtifactState.LIVE
    assert v1.lineage_artifact_id is not None
    assert store.get_artifact(v1.lineage_artifact_id).state == md.ArtifactState.DELETED
    assert v2.lineage_artifact_id is not None
    assert store.get_artifact(v2.lineage_artifact_id).state == md.ArtifactState.LIVE
    # the alias's previous holder is gone: rollback says so, and changes nothing
    with pytest.raises(
        RollbackError, match="was on version 1 before, but that version was deleted"
    ):
        reg.rollback("iris")
    holder = reg.alias("iris", "production")
    assert holder is not None
    assert holder.version == 2


# ------------------------------------------------------------------------ tags, descriptions


def test_tags_and_descriptions(reg: ModelRegistry, model_dir: Path) -> None:
    art = _live_model(reg, model_dir)
    reg.register("iris", art, tags={"stage": "dev"})
    reg.register("iris", art)
    created = reg.models()[0].updated
    time.sleep(0.01)
    reg.set_tag("iris", "owner", "ml-team")
    reg.set_tag("iris", "stage", "prod", version=1)
    reg.set_tag("iris", "stage", "canary", version=2)
    reg.set_tag("iris", "stage", "prod2", version=2)  # overwritten, not duplicated
    reg.set_description("iris", "the iris classifier")
    reg.set_description("iris", "retrained on May data", version=2)
    model = reg.models()[0]
    assert model.tags == {"owner": "ml-team"}
    assert model.description == "the iris classifier"
    assert model.updated > created
    assert reg.get("iris", 1).tags == {"stage": "prod"}
    v2 = reg.get("iris", 2)
    assert (v2.tags, v2.description) == ({"stage": "prod2"}, "retrained on May data")
    reg.remove_tag("iris", "stage", version=2)
    assert reg.get("iris", 2).tags == {}
    with pytest.raises(ModelNotFoundError, match="has no tag 'stage'"):
        reg.remove_tag("iris", "stage", version=2)
    with pytest.raises(ModelNotFoundError, match="no version 5"):
        reg.set_tag("iris", "k", "v", version=5)
    with pytest.raises(RegistryError, match="must be text"):
        reg.set_tag("iris", "k", 3)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ URIs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("models:/iris", ModelURI("iris")),
        ("models:/iris/3", ModelURI("iris", version=3)),
        ("models:/iris/latest", ModelURI("iris")),
        ("models:/iris@production", ModelURI("iris", alias="production")),
        ("models:/iris@latest", ModelURI("iris")),
        ("models:/my-model_v2.1@champion-2024", ModelURI("my-model_v2.1", alias="champion-2024")),
    ],
)
def test_model_uris_parse(text: str, expected: ModelURI) -> None:
    assert parse_model_uri(text) == expected
    if expected.alias is not None or expected.version is not None:
        assert str(expected) == text


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("iris", "is not a model URI"),
        ("models://iris", "is not a model URI"),
        ("models:/", "model name ''"),
        ("models:/iris/0", "not a number from 1 up"),
        ("models:/iris/v3", "not a number from 1 up"),
        ("models:/iris/1/2", "not a number from 1 up"),
        ("models:/iris@Prod", "alias 'Prod' is not valid"),
        ("models:/ir is", "model name 'ir is'"),
    ],
)
def test_bad_model_uris_say_what_is_accepted(text: str, needle: str) -> None:
    with pytest.raises(ModelNameError, match=needle) as info:
        parse_model_uri(text)
    assert isinstance(info.value, KilnError)


def test_resolve_uris_and_folders(reg: ModelRegistry, model_dir: Path, tmp_path: Path) -> None:
    art = _live_model(reg, model_dir)
    reg.register("iris", art)
    reg.register("iris", art)
    reg.set_alias("iris", "production", 1)

    def version(text: str) -> int:
        found = reg.resolve(text)
        assert isinstance(found, ModelVersion)
        return found.version

    assert version("models:/iris") == 2
    assert version("models:/iris/latest") == 2
    assert version("models:/iris@latest") == 2
    assert version("models:/iris/1") == 1
    assert version("models:/iris@production") == 1
    assert reg.resolve(str(model_dir)) == model_dir
    assert reg.resolve(model_dir) == model_dir
    with pytest.raises(ModelNotFoundError, match="did you mean the registered model models:/iris"):
        reg.resolve("iris")
    with pytest.raises(ModelNotFoundError, match="no model folder"):
        reg.resolve(str(tmp_path / "nowhere"))


def test_not_found_messages_list_the_close_names(reg: ModelRegistry, model_dir: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no model is registered in this workspace yet"):
        reg.resolve("models:/iris")
    art = _live_model(reg, model_dir)
    reg.register("iris", art)
    reg.register("penguins", art)
    reg.set_alias("iris", "production", 1)
    reg.set_alias("iris", "staging", 1)
    with pytest.raises(ModelNotFoundError) as info:
        reg.resolve("models:/irsi@production")
    assert str(info.value) == "no model 'irsi'; did you mean 'iris'? Models: iris, penguins"
    with pytest.raises(ModelNotFoundError) as info:
        reg.resolve("models:/zebra")
    assert str(info.value) == "no model 'zebra'. Models: iris, penguins"
    with pytest.raises(ModelNotFoundError) as info:
        reg.resolve("models:/iris@prodution")
    assert str(info.value) == (
        "model 'iris' has no alias 'prodution'; did you mean 'production'? "
        "Aliases: production -> 1, staging -> 1"
    )
    with pytest.raises(ModelNotFoundError, match="has no aliases yet"):
        reg.resolve("models:/penguins@production")
    with pytest.raises(ModelNotFoundError, match=r"no version 4\. Versions: 1 \(latest 1\)"):
        reg.resolve("models:/iris/4")


def test_load_model_finds_the_workspace(
    reg: ModelRegistry, ws: Workspace, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg.register_folder("iris", model_dir, aliases=["production"])
    assert load_model("models:/iris@production", ws).label == "body_mass_g"
    assert load_model(str(model_dir)).label == "body_mass_g"  # a folder needs no workspace
    elsewhere = ws.root.parent / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(RegistryError, match="no Kiln workspace here"):
        load_model("models:/iris@production")
    monkeypatch.chdir(ws.root)
    assert load_model("models:/iris/1").label == "body_mass_g"
    with pytest.raises(ModelNameError):
        load_model("models:/iris/x")


# ------------------------------------------------------------------ lineage from a pipeline

PIPELINE = textwrap.dedent(
    """
    from kiln import pipeline
    from kiln.components import (
        Evaluator, ExampleGen, SchemaGen, StatisticsGen, Trainer, Transform,
    )


    @pipeline(name="training")
    def training(source: str) -> None:
        examples = ExampleGen(source=source, splits={"train": 0.7, "eval": 0.3}, seed=1)
        stats = StatisticsGen(examples.output)
        SchemaGen(stats.output)
        transform = Transform(examples.output, model_type="logistic_reg", label="species")
        trained = Trainer(
            examples.output, transform.output, model_type="logistic_reg", label="species"
        )
        Evaluator(examples.output, trained.output)
    """
)


@pytest.mark.slow
def test_a_pipeline_model_is_linked_to_its_run_data_schema_and_evaluation(
    workspace: Workspace, tmp_path: Path, penguins: Path
) -> None:
    from kiln.orchestration import LocalRunner, load_pipeline, run

    pipe = tmp_path / "training_pipeline.py"
    pipe.write_text(PIPELINE)
    result = run(
        load_pipeline(pipe), {"source": str(penguins)}, workspace=workspace, runner=LocalRunner(1)
    )
    assert result.state == "COMPLETE"
    model = result.output("Trainer")
    reg = ModelRegistry(workspace)
    v = reg.register("penguins", model)  # no source given: found by lineage
    assert v.source == {
        "run": result.run_id,
        "dataset": result.output("ExampleGen").id,
        "schema": result.output("SchemaGen").id,
        "evaluation": result.output("Evaluator").id,
    }
    assert v.lineage_artifact_id is not None
    graph = md.lineage(workspace.metadata, v.lineage_artifact_id, "upstream")
    kinds = {x.type_name for x in graph.executions.values()}
    assert {"kiln.Register", "Trainer", "Evaluator", "SchemaGen", "ExampleGen"} <= kinds
    [register] = [x for x in graph.executions.values() if x.type_name == "kiln.Register"]
    assert register.id is not None
    inputs = {e.path for e in graph.inputs_of(register.id)}
    assert inputs == {"model", "dataset", "schema", "evaluation"}
    # an explicit source wins over what lineage finds
    explicit = reg.register("penguins", model, source={"run": "by-hand", "evaluation": None})
    assert explicit.source["run"] == "by-hand"
    assert explicit.source["evaluation"] == result.output("Evaluator").id


# ---------------------------------------------------------------------------------- schema


def test_an_existing_version_1_store_is_upgraded_in_place(
    metadata_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_dir: Path
) -> None:
    with md.MetadataStore(metadata_url, migrations={1: MIGRATIONS[1]}) as old:
        assert old.schema_version == 1
        old.put_artifact_type("Dataset", {"rows": "INT"})
        [kept] = old.put_artifacts([md.Artifact("Dataset", "d/1", md.ArtifactState.LIVE)])
    engine = sa.create_engine(metadata_url)
    try:
        with engine.connect() as conn:
            assert "registry_models" not in sa.inspect(conn).get_table_names()
        monkeypatch.setenv("KILN_METADATA_URL", metadata_url)
        ws, _ = Workspace.init(tmp_path / "ws")
        try:
            assert ws.metadata.schema_version == md.SCHEMA_VERSION == 2
            assert ws.metadata.get_artifact(kept.id or -1).uri == "d/1"
            assert ModelRegistry(ws).register_folder("iris", model_dir).version == 1
        finally:
            ws.close()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version FROM kiln_schema")).scalar() == 2
            names = set(sa.inspect(conn).get_table_names())
        assert {"registry_models", "registry_versions", "registry_aliases"} <= names
    finally:
        engine.dispose()


# ----------------------------------------------------------------------------- concurrency

CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    from kiln.registry import ModelRegistry
    from kiln.workspace import Workspace

    root, artifact_id, count, go = sys.argv[1:5]
    reg = ModelRegistry(Workspace(Path(root)))
    reg.models()  # connected and migrated before the start signal
    while not os.path.exists(go):
        time.sleep(0.005)
    mine = [reg.register("shared", int(artifact_id), actor=f"p{os.getpid()}").version
            for _ in range(int(count))]
    # one blessing per process: the alias moves once, to this process's last version
    reg.set_alias("shared", "production", mine[-1], reason=f"blessed by {os.getpid()}")
    print(json.dumps(mine))
    """
)


@pytest.mark.slow
def test_processes_registering_one_name_at_once_get_distinct_versions(
    reg: ModelRegistry, ws: Workspace, model_dir: Path, tmp_path: Path
) -> None:
    art = _live_model(reg, model_dir)
    go = tmp_path / "go"
    procs, count = 4, 5
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(ws.root), str(art), str(count), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "error"},
        )
        for _ in range(procs)
    ]
    time.sleep(1.0)
    go.touch()
    got: list[list[int]] = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        got.append(json.loads(out))
    every = sorted(v for mine in got for v in mine)
    assert every == list(range(1, procs * count + 1))  # distinct, none skipped
    assert all(mine == sorted(mine) for mine in got)
    assert [v.version for v in reg.versions("shared")] == every
    history = reg.alias_history("shared", "production")
    assert len(history) == procs  # once per blessing
    assert history[0].previous_version is None
    for before, after in itertools.pairwise(history):
        assert after.previous_version == before.version  # moves never interleave
    holder = reg.alias("shared", "production")
    assert holder is not None
    assert holder.version == history[-1].version
    assert {e.version for e in history} == {mine[-1] for mine in got}
