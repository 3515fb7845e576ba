"""The artifact-type and runner contracts, checked."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiln import metadata as md
from kiln.artifacts import MANIFEST, Artifact, artifact_class, fingerprint
from kiln.errors import NotFittedError
from kiln.orchestration import Runner, run
from kiln.testing import _pipelines
from kiln.train import Trainer
from kiln.workspace import Workspace

__all__ = ["check_artifact_type", "check_runner", "check_trainer"]


def _require(condition: object, message: str) -> None:
    """``assert`` that survives ``python -O``: a conformance check must be able to fail."""
    if not condition:
        raise AssertionError(message)


def check_artifact_type(
    cls: type[Artifact],
    value: Any,
    *,
    equal: Callable[[Any, Any], bool] | None = None,
) -> None:
    """An artifact type's contract, checked on one sample ``value``.

    - its ``type_name`` is registered to it, its ``version`` is a positive int;
    - ``write`` fills a folder with a manifest naming the type and version, and returns only
      declared properties, of their declared types (checked by a real metadata store);
    - reading the stored artifact gives the value back, and a pending artifact reads as its value;
    - writing the same value twice gives the same fingerprint (so cache keys are stable), and
      copying a stored artifact keeps it.
    """
    same = equal or (lambda a, b: a == b)
    name = cls.__qualname__
    _require(
        artifact_class(cls.type_name) is cls, f"{name}: type name {cls.type_name!r} not registered"
    )
    _require(
        isinstance(cls.version, int) and cls.version >= 1, f"{name}: version must be an int >= 1"
    )
    _require(same(cls(value).read(), value), f"{name}: a pending artifact must read as its value")
    with tempfile.TemporaryDirectory() as tmp:
        one, two, copy = Path(tmp, "one"), Path(tmp, "two"), Path(tmp, "copy")
        for folder in (one, two, copy):
            folder.mkdir()
        props = cls(value).write(one)
        manifest = json.loads((one / MANIFEST).read_text())
        _require(
            manifest == {"type": cls.type_name, "version": cls.version},
            f"{name}: manifest {manifest} does not name the type and version",
        )
        undeclared = set(props) - set(cls.properties)
        _require(not undeclared, f"{name}: write() returned undeclared properties {undeclared}")
        with md.MetadataStore("sqlite://") as store:  # checks each property's declared type
            store.put_artifact_type(cls.type_name, cls.properties)
            store.put_artifacts([md.Artifact(cls.type_name, "x/1", properties=props)])
        stored = cls.stored(one)
        _require(
            same(stored.read(), value), f"{name}: reading the stored artifact changed the value"
        )
        cls(value).write(two)
        _require(
            fingerprint(one) == fingerprint(two),
            f"{name}: writing the same value twice gave different bytes; cache keys would churn",
        )
        stored.write(copy)
        _require(
            fingerprint(copy) == fingerprint(one), f"{name}: copying a stored artifact changed it"
        )


def check_runner(runner: Runner, workspace: Workspace) -> None:
    """A runner's contract, checked by running a small diamond pipeline in ``workspace``.

    - every step runs once, after its upstream, and its outputs are LIVE with verified files;
    - the metadata records each execution COMPLETE with its input and output events;
    - rerunning hits the cache for every step;
    - a failing step is FAILED with its error, its downstream does not run, upstream is kept,
      and a rerun after the fix resumes from the cache.
    """
    kind = type(runner).__name__
    store, arts = workspace.metadata, workspace.artifacts

    first = run(_pipelines.diamond, {"n": 5}, workspace=workspace, runner=runner, command="check")
    _require(first.state == "COMPLETE", f"{kind}: diamond run {first.state}")
    _require(
        all(s.state == "COMPLETE" for s in first.steps.values()),
        f"{kind}: not every step ran: {[(s.name, s.state) for s in first.steps.values()]}",
    )
    total = first.output("combine")
    value = json.loads((arts.path_of(total.uri) / "metrics.json").read_text())
    _require(
        value == {"total": sum(range(5)) * 2 + sum(range(5)) ** 2}, f"{kind}: wrong result {value}"
    )
    for step in first.steps.values():
        assert step.execution_id is not None
        x = store.get_execution(step.execution_id)
        _require(x.state == md.ExecutionState.COMPLETE, f"{kind}: {step.name} is {x.state}")
        for outs in store.get_outputs(step.execution_id).values():
            for a in outs:
                _require(a.state == md.ArtifactState.LIVE, f"{kind}: {step.name} output {a.state}")
                _require(
                    fingerprint(arts.path_of(a.uri)) == a.fingerprint,
                    f"{kind}: {step.name} output files do not match their fingerprint",
                )
    combine_id = first.steps["combine"].execution_id
    assert combine_id is not None
    _require(set(store.get_inputs(combine_id)) == {"doubled", "squared"}, f"{kind}: inputs lost")

    again = run(_pipelines.diamond, {"n": 5}, workspace=workspace, runner=runner, command="check")
    _require(
        all(s.state == "CACHED" for s in again.steps.values()),
        f"{kind}: unchanged rerun must be all cache hits: "
        f"{[(s.name, s.state) for s in again.steps.values()]}",
    )

    failed = run(
        _pipelines.diamond,
        {"n": 6, "fail_at": "square"},
        workspace=workspace,
        runner=runner,
        command="check",
        raise_on_failure=False,
    )
    states = {name: s.state for name, s in failed.steps.items()}
    _require(failed.state == "FAILED", f"{kind}: a failing step must fail the run")
    _require(states["square"] == "FAILED", f"{kind}: states {states}")
    _require(states["combine"] == "SKIPPED", f"{kind}: downstream of a failure ran: {states}")
    _require(states["numbers"] == "COMPLETE", f"{kind}: states {states}")
    bad = failed.steps["square"]
    _require("asked to fail at square" in (bad.error or ""), f"{kind}: error lost: {bad.error}")
    assert bad.execution_id is not None
    _require(
        store.get_execution(bad.execution_id).state == md.ExecutionState.FAILED,
        f"{kind}: the failed step's execution is not FAILED in the metadata",
    )

    resumed = run(_pipelines.diamond, {"n": 6}, workspace=workspace, runner=runner, command="check")
    _require(
        resumed.steps["numbers"].state == "CACHED", f"{kind}: resume must reuse completed steps"
    )
    _require(
        resumed.steps["square"].state == resumed.steps["combine"].state == "COMPLETE",
        f"{kind}: the resumed run must run the fixed step and its downstream",
    )


def check_trainer(trainer: Trainer, X: Any, y: Any = None) -> None:
    """A trainer's contract, checked on one dataset (``X`` float64, ``y`` for supervised tasks).

    - predicting before ``fit`` raises NotFittedError naming ``fit``;
    - ``fit`` returns the trainer itself; ``get_params`` is JSON;
    - ``save`` writes only plain files and returns JSON, and ``load`` gives a trainer that
      predicts exactly the same; nothing in the folder is a pickle;
    - an iterative trainer's ``training_info_`` has one row per iteration, numbered from 0.
    """
    import numpy as np

    kind = type(trainer).__name__
    try:
        trainer.predict(X)
    except NotFittedError as e:
        _require("fit" in str(e), f"{kind}: the not-fitted error must say to call fit: {e}")
    else:
        raise AssertionError(f"{kind}: predict before fit must raise NotFittedError")
    _require(trainer.fit(X, y) is trainer, f"{kind}: fit must return the trainer itself")
    json.dumps(trainer.get_params())
    before = np.asarray(trainer.predict(X))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        saved = trainer.save(folder)
        json.dumps(saved)
        for path in folder.rglob("*"):
            if path.is_file():
                head = path.read_bytes()[:2]
                _require(head != b"\x80\x04" and head != b"\x80\x05", f"{kind}: {path} is a pickle")
        loaded = type(trainer).load(folder, saved)
        after = np.asarray(loaded.predict(X))
    _require(
        before.shape == after.shape and bool(np.all(before == after)),
        f"{kind}: a saved and loaded trainer must predict exactly the same",
    )
    info = getattr(trainer, "training_info_", [])
    _require(
        [row.iteration for row in info] == list(range(len(info))),
        f"{kind}: training_info_ rows must be numbered 0, 1, 2…",
    )
