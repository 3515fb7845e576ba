"""The metadata store on a real database (SQLite file, and PostgreSQL when CI provides one):
types, artifacts, executions, contexts, events, the derived queries and lineage."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from kiln.errors import MetadataError, NotFoundError
from kiln.metadata import (
    Artifact,
    ArtifactState,
    ArtifactType,
    Context,
    ContextType,
    EventType,
    Execution,
    ExecutionState,
    ExecutionType,
    MetadataStore,
    PropertyType,
    TypeKind,
    lineage,
)

ALL_TYPES = {
    "n": PropertyType.INT,
    "x": PropertyType.DOUBLE,
    "s": PropertyType.STRING,
    "b": PropertyType.BOOL,
    "j": PropertyType.JSON,
}


@pytest.fixture
def store(metadata_url: str) -> Iterator[MetadataStore]:
    with MetadataStore(metadata_url) as s:
        yield s


def reopen(store: MetadataStore) -> MetadataStore:
    """A second store on the same database: nothing cached, everything read back from SQL."""
    return MetadataStore(store.url)


def count_rows(store: MetadataStore, table: str) -> int:
    engine = sa.create_engine(store.url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def ids(objects: list[Any]) -> list[int]:
    return [o.id for o in objects]


# ---------------------------------------------------------------------------------------- types


@pytest.mark.parametrize(
    ("put", "get", "cls"),
    [
        ("put_artifact_type", "get_artifact_type", ArtifactType),
        ("put_execution_type", "get_execution_type", ExecutionType),
        ("put_context_type", "get_context_type", ContextType),
    ],
)
def test_put_type_is_idempotent(store: MetadataStore, put: str, get: str, cls: type) -> None:
    first = getattr(store, put)("Thing", {"rows": PropertyType.INT, "name": "STRING"})
    second = getattr(store, put)("Thing", {"rows": "INT", "name": PropertyType.STRING})
    assert isinstance(first, cls)
    assert first.id is not None
    assert second.id == first.id
    assert dict(second.properties) == {"rows": PropertyType.INT, "name": PropertyType.STRING}
    assert count_rows(store, "types") == 1
    assert count_rows(store, "type_properties") == 2
    with reopen(store) as other:
        again = getattr(other, put)("Thing", {"rows": "INT"})
        assert again.id == first.id
        assert dict(getattr(other, get)("Thing").properties) == dict(second.properties)
    assert count_rows(store, "types") == 1


def test_same_name_in_different_kinds_are_different_types(store: MetadataStore) -> None:
    a = store.put_artifact_type("Trainer", {"x": "INT"})
    e = store.put_execution_type("Trainer", {"x": "STRING"})
    c = store.put_context_type("Trainer")
    assert len({a.id, e.id, c.id}) == 3
    assert store.get_artifact_type("Trainer").properties == {"x": PropertyType.INT}
    assert store.get_execution_type("Trainer").properties == {"x": PropertyType.STRING}
    assert [t.name for t in store.get_types(TypeKind.CONTEXT)] == ["Trainer"]


def test_new_property_is_added_to_an_existing_type(store: MetadataStore) -> None:
    t1 = store.put_artifact_type("Dataset", {"rows": "INT"})
    t2 = store.put_artifact_type("Dataset", {"split": "STRING"})
    assert t2.id == t1.id
    assert dict(t2.properties) == {"rows": PropertyType.INT, "split": PropertyType.STRING}
    with reopen(store) as other:
        assert dict(other.get_artifact_type("Dataset").properties) == dict(t2.properties)
        # an artifact may use both, the old and the new property
        a = other.put_artifacts([Artifact("Dataset", "d/1", properties={"rows": 1, "split": "a"})])
        assert other.get_artifact(a[0].id).properties == {"rows": 1, "split": "a"}


def test_an_artifact_written_before_a_property_was_added_still_reads(store: MetadataStore) -> None:
    store.put_artifact_type("Dataset", {"rows": "INT"})
    [old] = store.put_artifacts([Artifact("Dataset", "d/1", properties={"rows": 5})])
    with reopen(store) as other:
        other.put_artifact_type("Dataset", {"split": "STRING"})
        assert other.get_artifact(old.id).properties == {"rows": 5}


def test_changing_a_property_type_is_refused(store: MetadataStore) -> None:
    store.put_execution_type("Trainer", {"epochs": "INT", "lr": "DOUBLE"})
    with pytest.raises(MetadataError) as info:
        store.put_execution_type("Trainer", {"epochs": "STRING", "batch": "INT"})
    msg = str(info.value)
    assert "'Trainer'" in msg
    assert "'epochs'" in msg
    assert "INT" in msg
    assert "STRING" in msg
    assert "Rename" in msg
    # refused as a whole: the new property that came with the bad one was not added either
    with reopen(store) as other:
        props = dict(other.get_execution_type("Trainer").properties)
    assert props == {"epochs": PropertyType.INT, "lr": PropertyType.DOUBLE}


def test_changing_a_property_type_is_refused_across_processes_caches(
    store: MetadataStore,
) -> None:
    store.put_artifact_type("Model", {"auc": "DOUBLE"})
    with reopen(store) as other, pytest.raises(MetadataError, match="'auc' is DOUBLE"):
        other.put_artifact_type("Model", {"auc": "STRING"})


def test_version_and_description_are_kept_and_updated(store: MetadataStore) -> None:
    store.put_artifact_type("Model", version="1", description="a model")
    t = store.put_artifact_type("Model")  # no version given: the stored one is kept
    assert (t.version, t.description) == ("1", "a model")
    t = store.put_artifact_type("Model", version="2")
    assert (t.version, t.description) == ("2", "a model")
    with reopen(store) as other:
        t = other.get_artifact_type("Model")
    assert (t.version, t.description) == ("2", "a model")


def test_unknown_type_raises_not_found(store: MetadataStore) -> None:
    with pytest.raises(NotFoundError, match="artifact type 'Nope' is not registered"):
        store.get_artifact_type("Nope")
    with pytest.raises(NotFoundError, match="put_execution_type"):
        store.get_execution_type("Nope")
    with pytest.raises(NotFoundError, match="put_context_type"):
        store.get_context_type("Nope")
    with pytest.raises(NotFoundError, match="artifact type 'Nope'"):
        store.put_artifacts([Artifact("Nope", "x/1")])
    with pytest.raises(NotFoundError, match="execution type 'Nope'"):
        store.put_execution(Execution("Nope"))
    with pytest.raises(NotFoundError, match="context type 'Nope'"):
        store.put_context(Context("Nope", "c"))
    assert store.get_artifacts() == []
    assert store.get_executions() == []
    assert store.get_contexts() == []


def test_a_type_registered_by_another_store_is_found(store: MetadataStore) -> None:
    with pytest.raises(NotFoundError):
        store.get_artifact_type("Late")
    with reopen(store) as other:
        other.put_artifact_type("Late", {"k": "INT"})
    # the earlier miss was not cached
    assert store.get_artifact_type("Late").properties == {"k": PropertyType.INT}
    [a] = store.put_artifacts([Artifact("Late", "l/1", properties={"k": 1})])
    assert a.id is not None


# ------------------------------------------------------------------------------- properties


ROUND_TRIP: list[tuple[str, Any]] = [
    ("n", 0),
    ("n", -(2**63)),
    ("n", 2**63 - 1),
    ("x", 0.1),
    ("x", -1e300),
    ("x", 5e-324),
    ("x", math.inf),
    ("x", -math.inf),
    ("s", ""),
    ("s", "naïve ✓ 'quoted' \"double\" \n newline"),
    ("s", "x" * 100_000),
    ("b", True),
    ("b", False),
    ("j", []),
    ("j", [1, 2.5, "three", None, True, [4]]),
    ("j", {"nested": {"a": [1, {"b": None}]}, "z": 1}),
    ("j", {}),
    ("j", "a json string"),
    ("j", 7),
]


def test_declared_properties_round_trip(store: MetadataStore) -> None:
    store.put_artifact_type("T", ALL_TYPES)
    arts = store.put_artifacts(
        [
            Artifact("T", f"t/{i}", properties={name: value})
            for i, (name, value) in enumerate(ROUND_TRIP)
        ]
    )
    with reopen(store) as other:
        stored = {a.id: a for a in other.get_artifacts()}
    for a, (name, value) in zip(arts, ROUND_TRIP, strict=True):
        got = stored[a.id].properties
        assert got == {name: value}, (name, value)
        assert type(got[name]) is type(value), (name, value)


def test_nan_round_trips(store: MetadataStore) -> None:
    store.put_artifact_type("T", ALL_TYPES)
    [a] = store.put_artifacts(
        [Artifact("T", "t/1", properties={"x": math.nan}, custom_properties={"c": math.nan})]
    )
    with reopen(store) as other:
        got = other.get_artifact(a.id)
    assert isinstance(got.properties["x"], float)
    assert math.isnan(got.properties["x"])
    assert isinstance(got.custom_properties["c"], float)
    assert math.isnan(got.custom_properties["c"])


def test_a_declared_double_accepts_an_int_and_reads_back_a_float(store: MetadataStore) -> None:
    store.put_artifact_type("T", ALL_TYPES)
    [a] = store.put_artifacts([Artifact("T", "t/1", properties={"x": 3})])
    got = store.get_artifact(a.id).properties["x"]
    assert got == 3.0
    assert isinstance(got, float)


def test_all_properties_of_all_kinds_round_trip(store: MetadataStore) -> None:
    props = {"n": 42, "x": 2.5, "s": "hello", "b": True, "j": {"k": [1, 2]}}
    custom = {"free": "form", "count": 3, "ok": False, "ratio": 0.5, "tags": ["a", "b"]}
    store.put_artifact_type("T", ALL_TYPES)
    store.put_execution_type("E", ALL_TYPES)
    store.put_context_type("C", ALL_TYPES)
    [a] = store.put_artifacts([Artifact("T", "t/1", properties=props, custom_properties=custom)])
    x = store.put_execution(Execution("E", properties=props, custom_properties=custom))
    c = store.put_context(Context("C", "c1", properties=props, custom_properties=custom))
    with reopen(store) as other:
        for got in (
            other.get_artifact(a.id),
            other.get_execution(x.id),
            other.get_context("C", "c1"),
        ):
            assert got.properties == props
            assert got.custom_properties == custom
    assert store.get_context("C", "c1").id == c.id


def test_a_property_and_a_custom_property_may_share_a_name(store: MetadataStore) -> None:
    store.put_artifact_type("T", {"n": "INT"})
    [a] = store.put_artifacts(
        [Artifact("T", "t/1", properties={"n": 1}, custom_properties={"n": "one"})]
    )
    got = store.get_artifact(a.id)
    assert got.properties == {"n": 1}
    assert got.custom_properties == {"n": "one"}


def test_none_means_no_value(store: MetadataStore) -> None:
    store.put_artifact_type("T", ALL_TYPES)
    [a] = store.put_artifacts(
        [Artifact("T", "t/1", properties={"n": None, "s": "x"}, custom_properties={"c": None})]
    )
    got = store.get_artifact(a.id)
    assert got.properties == {"s": "x"}
    assert got.custom_properties == {}


TYPE_ERRORS: list[tuple[str, Any, list[str]]] = [
    ("n", "3", ["'n'", "INT", "str"]),
    ("n", 1.5, ["'n'", "INT", "float"]),
    ("n", True, ["'n'", "INT", "bool"]),
    ("n", [1], ["'n'", "INT", "list"]),
    ("x", "1.0", ["'x'", "DOUBLE", "str"]),
    ("s", 3, ["'s'", "STRING", "int"]),
    ("s", {"a": 1}, ["'s'", "STRING", "dict"]),
    ("b", 1, ["'b'", "BOOL", "int"]),
    ("b", "true", ["'b'", "BOOL", "str"]),
]


def test_declared_property_type_is_checked(store: MetadataStore) -> None:
    store.put_artifact_type("T", ALL_TYPES)
    for name, value, needles in TYPE_ERRORS:
        with pytest.raises(MetadataError) as info:
            store.put_artifacts([Artifact("T", "t/1", properties={name: value})])
        msg = str(info.value)
        for needle in ["'T'", *needles]:
            assert needle in msg, (value, msg)
    assert store.get_artifacts() == []


def test_declared_property_type_is_checked_for_executions_and_contexts(
    store: MetadataStore,
) -> None:
    store.put_execution_type("E", {"epochs": "INT"})
    store.put_context_type("C", {"owner": "STRING"})
    with pytest.raises(MetadataError, match=r"execution property 'epochs' .* declared INT"):
        store.put_execution(Execution("E", properties={"epochs": "ten"}))
    with pytest.raises(MetadataError, match=r"context property 'owner' .* declared STRING"):
        store.put_context(Context("C", "c", properties={"owner": 7}))
    assert store.get_executions() == []
    assert store.get_contexts() == []


def test_undeclared_property_points_to_custom_properties(store: MetadataStore) -> None:
    store.put_artifact_type("T", {"rows": "INT", "cols": "INT"})
    with pytest.raises(MetadataError) as info:
        store.put_artifacts([Artifact("T", "t/1", properties={"colour": "red"})])
    msg = str(info.value)
    assert "'colour'" in msg
    assert "cols, rows" in msg
    assert "custom_properties" in msg
    store.put_execution_type("E")
    with pytest.raises(MetadataError, match=r"declared: none\); put free-form .*custom_properties"):
        store.put_execution(Execution("E", properties={"k": 1}))
    # the same value as a custom property is fine
    [a] = store.put_artifacts([Artifact("T", "t/1", custom_properties={"colour": "red"})])
    assert store.get_artifact(a.id).custom_properties == {"colour": "red"}


def test_an_int_too_large_for_64_bits_is_a_clear_error(store: MetadataStore) -> None:
    store.put_artifact_type("T", ALL_TYPES)
    for art in (
        Artifact("T", "t/1", properties={"n": 2**63}),
        Artifact("T", "t/1", custom_properties={"big": -(2**63) - 1}),
    ):
        with pytest.raises(MetadataError, match="outside the 64-bit range"):
            store.put_artifacts([art])
    # as JSON it fits
    [a] = store.put_artifacts([Artifact("T", "t/1", properties={"j": 2**70})])
    assert store.get_artifact(a.id).properties == {"j": 2**70}


def test_a_value_that_is_not_json_is_a_clear_error(store: MetadataStore) -> None:
    store.put_artifact_type("T", ALL_TYPES)
    with pytest.raises(MetadataError, match="'weird' of type 'T' is not JSON-serialisable"):
        store.put_artifacts([Artifact("T", "t/1", custom_properties={"weird": {1, 2}})])
    with pytest.raises(MetadataError, match="'j' of type 'T' is not JSON-serialisable"):
        store.put_artifacts([Artifact("T", "t/1", properties={"j": [object()]})])
    assert store.get_artifacts() == []


# -------------------------------------------------------------------------------- artifacts


def test_artifact_insert_and_update(store: MetadataStore) -> None:
    store.put_artifact_type("Model", {"auc": "DOUBLE"})
    a = Artifact("Model", "Model/1", name="m", properties={"auc": 0.5}, custom_properties={"k": 1})
    [same] = store.put_artifacts([a])
    assert same is a
    assert a.id is not None
    assert a.state == ArtifactState.PENDING
    assert a.create_time_ms is not None
    assert a.update_time_ms == a.create_time_ms
    created, first_id = a.create_time_ms, a.id

    a.state = ArtifactState.LIVE
    a.fingerprint = "sha256:abc"
    a.uri = "Model/1b"
    a.properties = {"auc": 0.75}
    a.custom_properties = {}  # properties are replaced as a whole
    store.put_artifacts([a])
    assert a.id == first_id
    with reopen(store) as other:
        got = other.get_artifact(first_id)
    assert got.state == ArtifactState.LIVE
    assert got.fingerprint == "sha256:abc"
    assert got.uri == "Model/1b"
    assert got.name == "m"
    assert got.type_name == "Model"
    assert got.properties == {"auc": 0.75}
    assert got.custom_properties == {}
    assert got.create_time_ms == created
    assert got.update_time_ms is not None
    assert got.update_time_ms >= created
    assert count_rows(store, "artifacts") == 1


def test_updating_a_missing_artifact_or_execution_raises_not_found(store: MetadataStore) -> None:
    store.put_artifact_type("T")
    store.put_execution_type("E")
    with pytest.raises(NotFoundError, match="artifact 999"):
        store.put_artifacts([Artifact("T", "t/1", id=999)])
    with pytest.raises(NotFoundError, match="execution 999"):
        store.put_execution(Execution("E", id=999))
    with pytest.raises(NotFoundError, match="no artifact with id 999"):
        store.get_artifact(999)
    with pytest.raises(NotFoundError, match="no execution with id 999"):
        store.get_execution(999)
    with pytest.raises(NotFoundError, match="no C named 'x'"):
        store.get_context("C", "x")


def test_put_artifacts_is_atomic(store: MetadataStore) -> None:
    store.put_artifact_type("T", {"n": "INT"})
    good = Artifact("T", "t/good", properties={"n": 1})
    bad = Artifact("T", "t/bad", properties={"n": "one"})
    with pytest.raises(MetadataError):
        store.put_artifacts([good, bad])
    assert store.get_artifacts() == []
    # the failed write left no id behind on the object: fixing and retrying inserts it
    assert good.id is None
    assert good.create_time_ms is None
    bad.properties = {"n": 2}
    store.put_artifacts([good, bad])
    assert sorted(a.uri for a in store.get_artifacts()) == ["t/bad", "t/good"]


def test_a_failed_write_never_leaves_an_id_that_names_someone_elses_row(
    store: MetadataStore,
) -> None:
    store.put_artifact_type("T", {"n": "INT"})
    mine = Artifact("T", "mine", properties={"n": "bad"})
    with pytest.raises(MetadataError):
        store.put_artifacts([mine])
    [theirs] = store.put_artifacts([Artifact("T", "theirs")])
    mine.properties = {"n": 1}
    store.put_artifacts([mine])
    assert mine.id != theirs.id
    assert store.get_artifact(theirs.id).uri == "theirs"
    assert store.get_artifact(mine.id).uri == "mine"


@pytest.mark.parametrize("state", list(ArtifactState))
def test_artifact_states_round_trip_and_filter(store: MetadataStore, state: ArtifactState) -> None:
    store.put_artifact_type("T")
    arts = store.put_artifacts([Artifact("T", f"t/{s}", state=s) for s in ArtifactState])
    found = store.get_artifacts(state=state)
    assert [a.state for a in found] == [state]
    assert found[0].uri == f"t/{state}"
    assert {store.get_artifact(a.id).state for a in arts} == set(ArtifactState)


def test_get_artifacts_filters_and_orders(store: MetadataStore) -> None:
    store.put_artifact_type("A")
    store.put_artifact_type("B")
    store.put_context_type("Run")
    arts = store.put_artifacts(
        [
            Artifact("A", "a/1", state=ArtifactState.LIVE),
            Artifact("B", "b/1", state=ArtifactState.LIVE),
            Artifact("A", "a/2", state=ArtifactState.DELETED),
            Artifact("A", "a/3", state=ArtifactState.LIVE),
        ]
    )
    a1, b1, a2, a3 = arts
    assert ids(store.get_artifacts()) == [a3.id, a2.id, b1.id, a1.id]  # newest first
    assert ids(store.get_artifacts(type_name="A")) == [a3.id, a2.id, a1.id]
    assert ids(store.get_artifacts(type_name="A", state=ArtifactState.LIVE)) == [a3.id, a1.id]
    assert ids(store.get_artifacts(type_name="A", limit=1)) == [a3.id]
    assert ids(store.get_artifacts(ids=[a1.id, b1.id])) == [b1.id, a1.id]
    assert store.get_artifacts(ids=[]) == []
    assert store.get_artifacts(type_name="NoSuchType") == []

    store.put_execution_type("E")
    run = store.put_context(Context("Run", "r1"))
    store.put_execution(Execution("E"), inputs={"in": [a1]}, outputs={"out": [a3]}, contexts=[run])
    assert ids(store.get_artifacts(context_id=run.id)) == [a3.id, a1.id]
    assert ids(store.get_artifacts(context_id=run.id, type_name="B")) == []


# ------------------------------------------------------------------------- executions, contexts


def test_execution_insert_update_and_states(store: MetadataStore) -> None:
    store.put_execution_type("Trainer", {"epochs": "INT"})
    x = store.put_execution(Execution("Trainer", name="train", properties={"epochs": 3}))
    assert x.id is not None
    assert x.state == ExecutionState.RUNNING
    for state in ExecutionState:
        x.state = state
        store.put_execution(x)
        with reopen(store) as other:
            assert other.get_execution(x.id).state == state
    x.cache_key = "k1"
    x.custom_properties = {"note": "n"}
    store.put_execution(x)
    got = store.get_execution(x.id)
    assert (got.name, got.cache_key, got.type_name) == ("train", "k1", "Trainer")
    assert got.properties == {"epochs": 3}
    assert got.custom_properties == {"note": "n"}
    assert count_rows(store, "executions") == 1


def test_context_put_is_idempotent_by_type_and_name(store: MetadataStore) -> None:
    store.put_context_type("Pipeline", {"owner": "STRING"})
    store.put_context_type("Model")
    c1 = store.put_context(Context("Pipeline", "p", properties={"owner": "ann"}))
    c2 = store.put_context(Context("Pipeline", "p", properties={"owner": "bob"}))
    assert c2.id == c1.id
    assert c2.create_time_ms == c1.create_time_ms
    other_kind = store.put_context(Context("Model", "p"))
    assert other_kind.id != c1.id
    got = store.get_context("Pipeline", "p")
    assert got.properties == {"owner": "bob"}
    assert ids(store.get_contexts(type_name="Pipeline")) == [c1.id]
    assert ids(store.get_contexts(name="p")) == [other_kind.id, c1.id]
    assert count_rows(store, "contexts") == 2


# ---------------------------------------------------------------------------- put_execution


@pytest.fixture
def pipeline_types(store: MetadataStore) -> MetadataStore:
    store.put_artifact_type("Dataset", {"rows": "INT"})
    store.put_artifact_type("Model", {"auc": "DOUBLE"})
    store.put_artifact_type("Metrics")
    store.put_execution_type("Trainer", {"epochs": "INT"})
    store.put_context_type("Pipeline")
    store.put_context_type("Run")
    return store


def test_put_execution_writes_events_attributions_and_associations(
    pipeline_types: MetadataStore,
) -> None:
    store = pipeline_types
    [ds] = store.put_artifacts(
        [Artifact("Dataset", "d/1", ArtifactState.LIVE, properties={"rows": 9})]
    )
    pipe = store.put_context(Context("Pipeline", "p"))
    run = store.put_context(Context("Run", "r1"))
    model = Artifact("Model", "m/1")
    m1, m2 = Artifact("Metrics", "x/1"), Artifact("Metrics", "x/2")
    x = Execution("Trainer", name="train", cache_key="key-1", properties={"epochs": 2})
    store.put_execution(
        x,
        inputs={"examples": [ds]},
        outputs={"model": [model], "metrics": [m1, m2]},
        contexts=[pipe, run],
    )
    assert x.id is not None
    assert None not in (model.id, m1.id, m2.id)
    assert store.get_artifact(model.id).state == ArtifactState.PENDING

    events = store.get_events(execution_ids=[x.id])
    got = sorted((e.type, e.path, e.index, e.artifact_id) for e in events)
    assert got == sorted(
        [
            (EventType.INPUT, "examples", 0, ds.id),
            (EventType.OUTPUT, "model", 0, model.id),
            (EventType.OUTPUT, "metrics", 0, m1.id),
            (EventType.OUTPUT, "metrics", 1, m2.id),
        ]
    )
    assert all(e.time_ms is not None for e in events)
    assert [
        e.execution_id for e in store.get_events(artifact_ids=[ds.id], type=EventType.INPUT)
    ] == [x.id]
    assert store.get_events(artifact_ids=[ds.id], type=EventType.OUTPUT) == []

    inputs, outputs = store.get_inputs(x.id), store.get_outputs(x.id)
    assert {k: ids(v) for k, v in inputs.items()} == {"examples": [ds.id]}
    assert {k: ids(v) for k, v in outputs.items()} == {
        "model": [model.id],
        "metrics": [m1.id, m2.id],  # in index order
    }
    assert inputs["examples"][0].properties == {"rows": 9}

    for ctx in (pipe, run):
        assert sorted(ids(store.get_artifacts(context_id=ctx.id))) == sorted(
            [ds.id, model.id, m1.id, m2.id]
        )
        assert ids(store.get_executions(context_id=ctx.id)) == [x.id]
    assert sorted(ids(store.get_contexts(execution_id=x.id))) == sorted([pipe.id, run.id])
    assert sorted(ids(store.get_contexts(artifact_id=m2.id))) == sorted([pipe.id, run.id])
    assert ids(store.get_contexts(artifact_id=ds.id, type_name="Run")) == [run.id]


def test_put_execution_again_adds_no_duplicates(pipeline_types: MetadataStore) -> None:
    store = pipeline_types
    [ds] = store.put_artifacts([Artifact("Dataset", "d/1", ArtifactState.LIVE)])
    run = store.put_context(Context("Run", "r1"))
    model = Artifact("Model", "m/1")
    x = Execution("Trainer", cache_key="k")
    store.put_execution(x, inputs={"examples": [ds]}, outputs={"model": [model]}, contexts=[run])
    counts = {t: count_rows(store, t) for t in ("events", "attributions", "associations")}
    assert counts == {"events": 2, "attributions": 2, "associations": 1}

    model.state = ArtifactState.LIVE
    model.fingerprint = "fp"
    model.properties = {"auc": 0.9}
    x.state = ExecutionState.COMPLETE
    x.properties = {"epochs": 1}
    store.put_execution(x, inputs={"examples": [ds]}, outputs={"model": [model]}, contexts=[run])
    store.put_execution(x, outputs={"model": [model]}, contexts=[run])
    assert {t: count_rows(store, t) for t in counts} == counts
    assert count_rows(store, "artifacts") == 2
    assert count_rows(store, "executions") == 1
    with reopen(store) as other:
        assert other.get_execution(x.id).state == ExecutionState.COMPLETE
        assert other.get_execution(x.id).properties == {"epochs": 1}
        got = other.get_artifact(model.id)
    assert (got.state, got.fingerprint, got.properties) == (ArtifactState.LIVE, "fp", {"auc": 0.9})


def test_put_execution_leaves_stored_inputs_alone(pipeline_types: MetadataStore) -> None:
    store = pipeline_types
    [ds] = store.put_artifacts([Artifact("Dataset", "d/1", ArtifactState.LIVE)])
    ds.state = ArtifactState.DELETED  # a stale local copy: reading it must not write it
    new_input = Artifact("Dataset", "d/2", ArtifactState.LIVE)
    x = store.put_execution(Execution("Trainer"), inputs={"examples": [ds, new_input]})
    assert store.get_artifact(ds.id).state == ArtifactState.LIVE
    assert new_input.id is not None  # an input never stored before is inserted
    assert ids(store.get_inputs(x.id)["examples"]) == [ds.id, new_input.id]


def test_the_same_artifact_twice_in_a_list_is_two_events(pipeline_types: MetadataStore) -> None:
    store = pipeline_types
    [ds] = store.put_artifacts([Artifact("Dataset", "d/1", ArtifactState.LIVE)])
    x = store.put_execution(Execution("Trainer"), inputs={"examples": [ds, ds]})
    events = store.get_events(execution_ids=[x.id])
    assert sorted(e.index for e in events) == [0, 1]
    assert ids(store.get_inputs(x.id)["examples"]) == [ds.id, ds.id]


def test_put_execution_can_link_outputs_without_rewriting_them(
    pipeline_types: MetadataStore,
) -> None:
    """A cache hit links the earlier execution's outputs as they are stored."""
    store = pipeline_types
    model = Artifact("Model", "m/1", ArtifactState.LIVE, fingerprint="fp", properties={"auc": 0.8})
    first = store.put_execution(
        Execution("Trainer", cache_key="k", state=ExecutionState.COMPLETE),
        outputs={"model": [model]},
    )
    model.state, model.properties = ArtifactState.DELETED, {}  # a stale copy must not be written
    hit = store.put_execution(
        Execution("Trainer", cache_key="k", state=ExecutionState.CACHED),
        outputs={"model": [model]},
        update_outputs=False,
    )
    got = store.get_artifact(model.id)
    assert (got.state, got.properties) == (ArtifactState.LIVE, {"auc": 0.8})
    assert ids(store.get_outputs(hit.id)["model"]) == ids(store.get_outputs(first.id)["model"])
    assert count_rows(store, "artifacts") == 1


@pytest.mark.parametrize("failure", ["bad output property", "unstored context"])
def test_put_execution_is_atomic(pipeline_types: MetadataStore, failure: str) -> None:
    store = pipeline_types
    [ds] = store.put_artifacts([Artifact("Dataset", "d/1", ArtifactState.LIVE)])
    run = store.put_context(Context("Run", "r1"))
    model = Artifact("Model", "m/1")
    metrics = Artifact("Metrics", "x/1")
    contexts = [run]
    if failure == "bad output property":
        metrics.properties = {"undeclared": 1}
    else:
        contexts.append(Context("Pipeline", "never stored"))
    x = Execution("Trainer")
    with pytest.raises(MetadataError) as info:
        store.put_execution(
            x,
            inputs={"examples": [ds]},
            outputs={"model": [model], "metrics": [metrics]},
            contexts=contexts,
        )
    if failure == "unstored context":
        assert "'never stored' must be stored before it is linked" in str(info.value)
    assert store.get_executions() == []
    assert ids(store.get_artifacts()) == [ds.id]
    assert store.get_events() == []
    assert count_rows(store, "attributions") == 0
    assert count_rows(store, "associations") == 0
    # nothing on the objects pretends they were stored
    assert (x.id, model.id, metrics.id) == (None, None, None)
    assert ds.id is not None  # it was stored before, and keeps its id


def test_get_executions_filters(pipeline_types: MetadataStore) -> None:
    store = pipeline_types
    store.put_execution_type("Pusher")
    run1 = store.put_context(Context("Run", "r1"))
    run2 = store.put_context(Context("Run", "r2"))
    a = store.put_execution(Execution("Trainer", cache_key="k1"), contexts=[run1])
    b = store.put_execution(
        Execution("Trainer", cache_key="k1", state=ExecutionState.COMPLETE), contexts=[run1, run2]
    )
    c = store.put_execution(
        Execution("Pusher", cache_key="k2", state=ExecutionState.FAILED), contexts=[run2]
    )
    assert ids(store.get_executions()) == [c.id, b.id, a.id]
    assert ids(store.get_executions(newest_first=False)) == [a.id, b.id, c.id]
    assert ids(store.get_executions(cache_key="k1")) == [b.id, a.id]
    assert ids(store.get_executions(cache_key="k1", state=ExecutionState.COMPLETE)) == [b.id]
    assert ids(store.get_executions(state=ExecutionState.FAILED)) == [c.id]
    assert ids(store.get_executions(type_name="Pusher")) == [c.id]
    assert ids(store.get_executions(context_id=run1.id)) == [b.id, a.id]
    assert ids(store.get_executions(context_id=run2.id, cache_key="k1")) == [b.id]
    assert ids(store.get_executions(cache_key="nope")) == []
    assert ids(store.get_executions(limit=2)) == [c.id, b.id]
    assert sorted(ids(store.get_contexts(execution_id=b.id))) == sorted([run1.id, run2.id])


# ----------------------------------------------------------------------------- cache lookups


def _complete(
    store: MetadataStore, key: str, *states: ArtifactState
) -> tuple[Execution, list[Artifact]]:
    outs = [Artifact("Model", f"m/{key}/{i}", state=s) for i, s in enumerate(states)]
    x = store.put_execution(
        Execution("Trainer", cache_key=key, state=ExecutionState.COMPLETE),
        outputs={"model": outs},
    )
    return x, outs


def test_find_cached_execution(pipeline_types: MetadataStore) -> None:
    store = pipeline_types
    assert store.find_cached_execution("k") is None
    old, old_outs = _complete(store, "k", ArtifactState.LIVE, ArtifactState.LIVE)
    hit = store.find_cached_execution("k")
    assert hit is not None
    assert hit[0].id == old.id
    assert {k: ids(v) for k, v in hit[1].items()} == {"model": ids(old_outs)}

    # a newer COMPLETE one wins
    new, new_outs = _complete(store, "k", ArtifactState.LIVE)
    hit = store.find_cached_execution("k")
    assert hit is not None
    assert hit[0].id == new.id

    # ... until one of its outputs is gone: then the older one still serves
    new_outs[0].state = ArtifactState.DELETED
    store.put_artifacts(new_outs)
    hit = store.find_cached_execution("k")
    assert hit is not None
    assert hit[0].id == old.id

    # an execution any of whose outputs is not LIVE never serves
    old_outs[1].state = ArtifactState.PENDING
    store.put_artifacts(old_outs)
    assert store.find_cached_execution("k") is None

    # RUNNING, FAILED and CACHED executions never serve, whatever their outputs
    for state in (ExecutionState.RUNNING, ExecutionState.FAILED, ExecutionState.CACHED):
        store.put_execution(
            Execution("Trainer", cache_key="k", state=state),
            outputs={"model": [Artifact("Model", f"m/{state}", state=ArtifactState.LIVE)]},
        )
    assert store.find_cached_execution("k") is None
    # another key is unaffected
    other, _ = _complete(store, "k2", ArtifactState.LIVE)
    hit = store.find_cached_execution("k2")
    assert hit is not None
    assert hit[0].id == other.id


# ---------------------------------------------------------------------------------- lineage


class Graph:
    """dataset -> transform -> graph -> train -> model -> evaluate -> evaluation, and more:

    ::

        dataset ──► Transform ──► tgraph ──┐
           │                               ▼
           ├──────────────────────────► Trainer ──► model ──► Evaluator ──► evaluation
           │                               ▲                     ▲
           ├──► StatisticsGen ──► stats    └ Trainer (CACHED) ───┤ (reuses model)
           └─────────────────────────────────────────────────────┘
    """

    def __init__(self, store: MetadataStore) -> None:
        for t in ("Dataset", "TransformGraph", "Model", "Evaluation", "Statistics", "Other"):
            store.put_artifact_type(t)
        for t in ("Transform", "Trainer", "Evaluator", "StatisticsGen"):
            store.put_execution_type(t)
        live = ArtifactState.LIVE
        done = ExecutionState.COMPLETE
        self.dataset, self.unrelated = store.put_artifacts(
            [Artifact("Dataset", "d/1", live), Artifact("Other", "o/1", live)]
        )
        self.tgraph = Artifact("TransformGraph", "tg/1", live)
        self.transform = store.put_execution(
            Execution("Transform", state=done),
            inputs={"examples": [self.dataset]},
            outputs={"graph": [self.tgraph]},
        )
        self.model = Artifact("Model", "m/1", live)
        self.train = store.put_execution(
            Execution("Trainer", state=done),
            inputs={"examples": [self.dataset], "graph": [self.tgraph]},
            outputs={"model": [self.model]},
        )
        self.cached_train = store.put_execution(
            Execution("Trainer", state=ExecutionState.CACHED),
            inputs={"examples": [self.dataset], "graph": [self.tgraph]},
            outputs={"model": [self.model]},
        )
        self.evaluation = Artifact("Evaluation", "e/1", live)
        self.evaluate = store.put_execution(
            Execution("Evaluator", state=done),
            inputs={"model": [self.model], "examples": [self.dataset]},
            outputs={"evaluation": [self.evaluation]},
        )
        self.stats = Artifact("Statistics", "s/1", live)
        self.statsgen = store.put_execution(
            Execution("StatisticsGen", state=done),
            inputs={"examples": [self.dataset]},
            outputs={"statistics": [self.stats]},
        )


def test_lineage_upstream_of_a_model(store: MetadataStore) -> None:
    g = Graph(store)
    up = lineage(store, g.model.id)
    assert up.root == g.model.id
    assert up.direction == "upstream"
    assert set(up.artifacts) == {g.model.id, g.tgraph.id, g.dataset.id}
    assert set(up.executions) == {g.train.id, g.transform.id}
    assert up.producers(g.model.id) == [g.train.id]
    assert up.producers(g.tgraph.id) == [g.transform.id]
    assert sorted(e.path for e in up.inputs_of(g.train.id)) == ["examples", "graph"]
    assert [e.artifact_id for e in up.outputs_of(g.train.id)] == [g.model.id]
    assert up.artifacts[g.dataset.id].uri == "d/1"


def test_lineage_downstream_of_a_dataset(store: MetadataStore) -> None:
    g = Graph(store)
    down = lineage(store, g.dataset.id, "downstream")
    assert down.direction == "downstream"
    assert set(down.artifacts) == {
        g.dataset.id,
        g.tgraph.id,
        g.model.id,
        g.evaluation.id,
        g.stats.id,
    }
    assert g.unrelated.id not in down.artifacts
    assert set(down.executions) == {g.transform.id, g.train.id, g.evaluate.id, g.statsgen.id}
    assert down.consumers(g.dataset.id) == sorted(
        [g.transform.id, g.train.id, g.evaluate.id, g.statsgen.id]
    )
    assert down.consumers(g.model.id) == [g.evaluate.id]


def test_lineage_leaves_cached_executions_out_unless_asked(store: MetadataStore) -> None:
    g = Graph(store)
    up = lineage(store, g.model.id, include_cached=True)
    assert g.cached_train.id in up.executions
    assert up.producers(g.model.id) == sorted([g.train.id, g.cached_train.id])
    down = lineage(store, g.dataset.id, "downstream", include_cached=True)
    assert g.cached_train.id in down.executions
    for graph in (lineage(store, g.model.id), lineage(store, g.dataset.id, "downstream")):
        assert g.cached_train.id not in graph.executions
        assert all(e.execution_id != g.cached_train.id for e in graph.events)


def test_lineage_from_an_artifact_nothing_made(store: MetadataStore) -> None:
    g = Graph(store)
    up = lineage(store, g.dataset.id)
    assert set(up.artifacts) == {g.dataset.id}
    assert up.executions == {}
    assert up.events == []
    down = lineage(store, g.evaluation.id, "downstream")
    assert set(down.artifacts) == {g.evaluation.id}
    assert down.executions == {}


def test_lineage_stops_after_max_hops(store: MetadataStore) -> None:
    g = Graph(store)
    one = lineage(store, g.evaluation.id, max_hops=1)
    assert set(one.executions) == {g.evaluate.id}
    assert set(one.artifacts) == {g.evaluation.id, g.model.id, g.dataset.id}
    full = lineage(store, g.evaluation.id)
    assert set(full.executions) == {g.evaluate.id, g.train.id, g.transform.id}
    assert g.tgraph.id in full.artifacts


def test_lineage_keeps_every_edge_of_a_diamond(store: MetadataStore) -> None:
    """The dataset feeds the transform, the trainer and the evaluator: three paths to it."""
    g = Graph(store)
    up = lineage(store, g.evaluation.id)
    assert up.consumers(g.dataset.id) == sorted([g.transform.id, g.train.id, g.evaluate.id])
    assert sorted(e.path for e in up.inputs_of(g.evaluate.id)) == ["examples", "model"]
    assert up.producers(g.model.id) == [g.train.id]
    down = lineage(store, g.dataset.id, "downstream")
    # the evaluator is reached from the dataset first; its edge from the model must be kept too
    assert down.consumers(g.model.id) == [g.evaluate.id]
    assert down.consumers(g.tgraph.id) == [g.train.id]
    assert down.producers(g.evaluation.id) == [g.evaluate.id]
    # no edge twice
    keys = [(e.artifact_id, e.execution_id, e.type, e.path, e.index) for e in down.events]
    assert len(keys) == len(set(keys))


def test_lineage_of_a_missing_artifact_raises_not_found(store: MetadataStore) -> None:
    with pytest.raises(NotFoundError, match="no artifact with id 12345"):
        lineage(store, 12345)
