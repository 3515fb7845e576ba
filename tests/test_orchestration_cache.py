"""Cache keys: code (the component and the functions of its own code it calls), parameters, input
fingerprints and Kiln's version; a hit reuses LIVE outputs, and every hit or miss says why.

Pipelines are real files in the test's folder, edited between runs the way a person would.
"""

from __future__ import annotations

import functools
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import kiln
from kiln import metadata as md
from kiln._version import __version__
from kiln.artifacts import Metrics
from kiln.orchestration import (
    CacheKey,
    LocalRunner,
    RunResult,
    code_parts,
    component,
    load_pipeline,
    pipeline,
    run,
)
from kiln.orchestration._cache import explain_miss
from kiln.orchestration._loader import module_name_for
from kiln.workspace import Workspace

PIPELINE = '''
from __future__ import annotations

import json

from kiln import Metrics, component, pipeline


def _inner(x: int) -> int:
    return x + INNER


def scale(x: int) -> int:
    """Multiply by a factor."""
    return _inner(x) * FACTOR


def unused(x: int) -> int:
    return x - UNUSED


@component
def produce(n: int = 1, tag: str = "") -> Metrics:
    return Metrics({"value": scale(n), "dumped": json.dumps(n)})


@component
def consume(m: Metrics) -> Metrics:
    return Metrics({"double": m.read()["value"] * 2})


@pipeline(name="cachey")
def cachey(n: int = 1, tag: str = "") -> None:
    p = produce(n=n, tag=tag)
    consume(p.output)
'''


def write_pipeline(path: Path, *, factor: int = 2, inner: int = 0, unused: int = 0) -> Path:
    text = (
        PIPELINE.replace("FACTOR", str(factor))
        .replace("INNER", str(inner))
        .replace("UNUSED", str(unused))
    )
    path.write_text(text)
    return path


def run_file(ws: Workspace, path: Path, *, use_cache: bool = True, **params: object) -> RunResult:
    """Load the file anew (as `kiln run` does) and run it in this process."""
    return run(
        load_pipeline(path),
        params,
        workspace=ws,
        runner=LocalRunner(workers=0),
        use_cache=use_cache,
    )


def states(result: RunResult) -> dict[str, str]:
    return {name: step.state for name, step in result.steps.items()}


def reasons(result: RunResult) -> dict[str, str]:
    return {name: step.reason for name, step in result.steps.items()}


@pytest.fixture
def pipe(tmp_path: Path) -> Path:
    return write_pipeline(tmp_path / "pipe.py")


# ---------------------------------------------------------------------------- code


def test_code_parts_are_the_component_and_the_own_functions_it_calls(pipe: Path) -> None:
    plan = load_pipeline(pipe).build()
    module = module_name_for(pipe)
    parts = code_parts(plan.step("produce").component.fn)
    # produce -> scale -> _inner, transitively; not `unused`, not json, not Kiln itself
    assert set(parts) == {f"{module}.produce", f"{module}.scale", f"{module}._inner"}
    assert all(len(digest) == 64 for digest in parts.values())
    assert set(code_parts(plan.step("consume").component.fn)) == {f"{module}.consume"}


def test_first_run_misses_then_everything_hits_with_the_same_outputs(
    workspace: Workspace, pipe: Path
) -> None:
    first = run_file(workspace, pipe)
    assert states(first) == {"produce": "COMPLETE", "consume": "COMPLETE"}
    assert reasons(first) == {
        "produce": "miss: first run of this step",
        "consume": "miss: first run of this step",
    }
    second = run_file(workspace, pipe)
    assert states(second) == {"produce": "CACHED", "consume": "CACHED"}
    for name in ("produce", "consume"):
        original = first.steps[name].execution_id
        assert second.steps[name].reason == (
            f"hit: same code, parameters and inputs as execution {original}"
        )
        # a hit reuses the LIVE output artifacts themselves, not copies
        assert second.output(name).id == first.output(name).id
        assert second.output(name).state == md.ArtifactState.LIVE
    cached = workspace.metadata.get_execution(second.steps["consume"].execution_id or -1)
    assert cached.state == md.ExecutionState.CACHED
    assert cached.properties["cached_from"] == first.steps["consume"].execution_id
    # a third run still points at the execution that did the work, not at a CACHED one
    third = run_file(workspace, pipe)
    assert third.steps["consume"].reason == second.steps["consume"].reason


def test_comments_formatting_and_uncalled_functions_do_not_change_the_key(
    workspace: Workspace, pipe: Path
) -> None:
    before = code_parts(load_pipeline(pipe).build().step("produce").component.fn)
    first = run_file(workspace, pipe)
    edits = {
        "def scale(x: int) -> int:": (
            "# a comment above\ndef scale(\n    x: int,\n) -> int:  # trailing comment"
        ),
        "return _inner(x) * 2": "return (\n        _inner(x)   *   2  # spaced out\n    )",
        '{"value": scale(n), "dumped": json.dumps(n)}': (
            "{'value': scale(n),\n\n        'dumped': json.dumps(n)}"
        ),
        "return x - 0": "return x - 1000  # not called by any component",
    }
    text = pipe.read_text()
    for old, new in edits.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    pipe.write_text(text)
    after = code_parts(load_pipeline(pipe).build().step("produce").component.fn)
    assert after == before
    second = run_file(workspace, pipe)
    assert states(second) == {"produce": "CACHED", "consume": "CACHED"}
    assert second.output("consume").id == first.output("consume").id


def test_editing_a_called_helper_changes_the_key_and_names_it(
    workspace: Workspace, pipe: Path
) -> None:
    module = module_name_for(pipe)
    before = code_parts(load_pipeline(pipe).build().step("produce").component.fn)
    first = run_file(workspace, pipe)
    write_pipeline(pipe, factor=3)
    after = code_parts(load_pipeline(pipe).build().step("produce").component.fn)
    assert before[f"{module}.scale"] != after[f"{module}.scale"]
    assert before[f"{module}.produce"] == after[f"{module}.produce"]

    second = run_file(workspace, pipe)
    assert states(second) == {"produce": "COMPLETE", "consume": "COMPLETE"}
    assert second.steps["produce"].reason == f"miss: code of {module}.scale changed"
    # the new value reached consume, so its input fingerprint changed, not its code
    assert second.steps["consume"].reason == "miss: input 'm' changed (new content upstream)"
    assert workspace.artifacts.path_of(second.output("consume").uri).is_dir()
    assert second.output("consume").fingerprint != first.output("consume").fingerprint


def test_editing_a_helper_two_calls_deep_changes_the_key(workspace: Workspace, pipe: Path) -> None:
    run_file(workspace, pipe)
    write_pipeline(pipe, inner=5)
    result = run_file(workspace, pipe)
    assert result.steps["produce"].state == "COMPLETE"
    assert result.steps["produce"].reason == f"miss: code of {module_name_for(pipe)}._inner changed"


def test_a_code_change_with_the_same_output_reruns_only_that_step(
    workspace: Workspace, pipe: Path
) -> None:
    first = run_file(workspace, pipe)
    text = pipe.read_text()
    assert "return _inner(x) * 2" in text
    pipe.write_text(text.replace("return _inner(x) * 2", "return _inner(x) + _inner(x)"))
    second = run_file(workspace, pipe)
    assert states(second) == {"produce": "COMPLETE", "consume": "CACHED"}
    assert second.output("produce").id != first.output("produce").id
    assert second.output("produce").fingerprint == first.output("produce").fingerprint
    assert second.output("consume").id == first.output("consume").id


def test_calling_a_new_helper_is_named_in_the_explanation(workspace: Workspace, pipe: Path) -> None:
    module = module_name_for(pipe)
    run_file(workspace, pipe)
    text = pipe.read_text()
    pipe.write_text(text.replace('"value": scale(n)', '"value": unused(scale(n))'))
    result = run_file(workspace, pipe)
    assert result.steps["produce"].reason == (
        f"miss: code of {module}.produce changed; now calls {module}.unused"
    )


def test_editing_a_helper_in_a_sibling_module_via_the_cli(tmp_path: Path) -> None:
    """A helper module next to the pipeline file is importable and is the component's own code."""
    (tmp_path / "elsewhere").mkdir()
    helpers = tmp_path / "kiln_test_helpers.py"
    helpers.write_text("def bump(x: int) -> int:\n    return x + 1\n")
    pipe = tmp_path / "sibling.py"
    pipe.write_text(
        textwrap.dedent(
            """
            from __future__ import annotations

            import kiln_test_helpers
            from kiln import Metrics, component, pipeline


            @component
            def bumped(n: int = 1) -> Metrics:
                return Metrics({"value": kiln_test_helpers.bump(n)})


            @pipeline
            def sibling(n: int = 1) -> None:
                bumped(n=n)
            """
        )
    )
    # the pipeline's folder is importable (as with `python sibling.py`), with no PYTHONPATH
    env = {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    first = kiln("run", str(pipe), "--explain-cache", cwd=tmp_path / "elsewhere", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "bumped  miss: first run of this step" in first.stdout
    helpers.write_text("def bump(x: int) -> int:\n    # one more\n    return x + 1\n")
    same = kiln("run", str(pipe), "--explain-cache", cwd=tmp_path / "elsewhere", env=env)
    assert "bumped  hit: same code, parameters and inputs" in same.stdout, same.stdout
    helpers.write_text("def bump(x: int) -> int:\n    return x + 2\n")
    changed = kiln("run", str(pipe), "--explain-cache", cwd=tmp_path / "elsewhere", env=env)
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert "bumped  miss: code of kiln_test_helpers.bump changed" in changed.stdout, changed.stdout


def test_a_module_level_constant_the_component_reads_is_part_of_its_code(
    workspace: Workspace, tmp_path: Path
) -> None:
    source = textwrap.dedent(
        """
        from kiln import Metrics, component, pipeline

        COLUMNS = ["bill", "flipper"]
        UNREAD = {"not": "used"}


        @component
        def pick(n: int = 1) -> Metrics:
            return Metrics({"columns": COLUMNS[:n]})


        @pipeline
        def consts(n: int = 1) -> None:
            pick(n=n)
        """
    )
    pipe = tmp_path / "consts.py"
    pipe.write_text(source)
    module = module_name_for(pipe)
    assert run_file(workspace, pipe).steps["pick"].state == "COMPLETE"
    pipe.write_text(source.replace('{"not": "used"}', '{"still": "unused"}'))
    assert run_file(workspace, pipe).steps["pick"].state == "CACHED"
    pipe.write_text(source.replace('["bill", "flipper"]', '["mass", "flipper"]'))
    changed = run_file(workspace, pipe)
    assert changed.steps["pick"].state == "COMPLETE"
    assert changed.steps["pick"].reason == f"miss: code of {module}.COLUMNS changed"
    value = (workspace.artifacts.path_of(changed.output("pick").uri) / "metrics.json").read_text()
    assert "mass" in value


# ---------------------------------------------------------------------------- parameters and inputs


def test_an_input_path_parameter_is_keyed_by_its_files_not_just_its_name(
    workspace: Workspace, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("x\n1\n2\n")
    pipe = tmp_path / "files.py"
    pipe.write_text(
        textwrap.dedent(
            """
            from pathlib import Path

            from kiln import InputPath, Metrics, component, pipeline


            @component
            def count_lines(path: InputPath) -> Metrics:
                files = sorted(Path(path).glob("*.csv"))
                return Metrics({"lines": sum(len(f.read_text().splitlines()) for f in files)})


            @pipeline
            def files(folder: str) -> None:
                count_lines(path=folder)
            """
        )
    )
    first = run_file(workspace, pipe, folder=str(data))
    assert first.steps["count_lines"].state == "COMPLETE"
    assert run_file(workspace, pipe, folder=str(data)).steps["count_lines"].state == "CACHED"

    (data / "a.csv").write_text("x\n1\n2\n3\n")  # same name, new content
    os.utime(data / "a.csv", ns=(1, 1_000_000_000))  # whatever the clock's resolution
    edited = run_file(workspace, pipe, folder=str(data))
    step = edited.steps["count_lines"]
    assert step.state == "COMPLETE"
    assert step.reason == f"miss: files of 'path' changed ({data})"
    value = workspace.artifacts.path_of(edited.output("count_lines").uri) / "metrics.json"
    assert '"lines": 4' in value.read_text()

    (data / "b.csv").write_text("x\n")  # a new file in the folder
    assert run_file(workspace, pipe, folder=str(data)).steps["count_lines"].state == "COMPLETE"
    assert run_file(workspace, pipe, folder=str(data)).steps["count_lines"].state == "CACHED"


def test_a_parameter_change_misses_and_going_back_hits_the_old_outputs(
    workspace: Workspace, pipe: Path
) -> None:
    one = run_file(workspace, pipe, n=1)
    two = run_file(workspace, pipe, n=2)
    assert states(two) == {"produce": "COMPLETE", "consume": "COMPLETE"}
    assert two.steps["produce"].reason == "miss: parameter 'n' changed (1 -> 2)"
    assert two.steps["consume"].reason == "miss: input 'm' changed (new content upstream)"
    back = run_file(workspace, pipe, n=1)
    assert states(back) == {"produce": "CACHED", "consume": "CACHED"}
    assert back.output("consume").id == one.output("consume").id
    assert workspace.artifacts.path_of(back.output("consume").uri).is_dir()


def test_an_upstream_rerun_with_identical_content_keeps_downstream_cached(
    workspace: Workspace, pipe: Path
) -> None:
    """Inputs are keyed by content fingerprint: `tag` does not change what produce writes."""
    first = run_file(workspace, pipe, tag="a")
    second = run_file(workspace, pipe, tag="b")
    assert second.steps["produce"].state == "COMPLETE"
    assert second.steps["produce"].reason == 'miss: parameter \'tag\' changed ("a" -> "b")'
    assert second.output("produce").id != first.output("produce").id
    assert second.steps["consume"].state == "CACHED"
    assert second.output("consume").id == first.output("consume").id


def test_parameters_are_keyed_by_value_not_identity() -> None:
    key = functools.partial(CacheKey, component="c", code={"m.f": "abc"}, inputs={})
    assert key(params={"a": 1, "b": [1, 2]}).digest == key(params={"b": [1, 2], "a": 1}).digest
    assert key(params={"a": 1}).digest != key(params={"a": 2}).digest
    assert key(params={"a": 1}).digest != key(params={"a": "1"}).digest
    assert key(params={"a": 1}, inputs={"t": ["sha256:1"]}).digest != (
        key(params={"a": 1}, inputs={"t": ["sha256:2"]}).digest
    )
    assert key(params={}).digest.startswith("sha256:")


# ---------------------------------------------------------------------------- Kiln's version


def test_kiln_version_is_part_of_the_key() -> None:
    key = functools.partial(CacheKey, component="c", code={"m.f": "abc"}, params={}, inputs={})
    assert key().kiln_version == __version__
    assert key().digest == key(kiln_version=__version__).digest
    assert key().digest != key(kiln_version="999.0.0").digest
    assert key().as_properties()["kiln_version"] == __version__


def test_a_new_kiln_version_misses_and_says_so(
    workspace: Workspace, pipe: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_file(workspace, pipe)
    # what upgrading Kiln does to every key: the same step under another version
    monkeypatch.setattr(
        "kiln.orchestration._run.CacheKey", functools.partial(CacheKey, kiln_version="999.0.0")
    )
    upgraded = run_file(workspace, pipe)
    assert states(upgraded) == {"produce": "COMPLETE", "consume": "COMPLETE"}
    assert upgraded.steps["produce"].reason == (
        f"miss: Kiln version changed ({__version__} -> 999.0.0)"
    )
    x = workspace.metadata.get_execution(upgraded.steps["produce"].execution_id or -1)
    assert x.properties["kiln_version"] == "999.0.0"


def test_explain_miss_lists_every_changed_part() -> None:
    old = CacheKey(
        component="c",
        code={"m.c": "1", "m.gone": "2", "m.same": "3"},
        params={"a": 1, "b": "x"},
        inputs={"t": ["sha256:1"]},
        kiln_version="0.0.1",
    )
    previous = md.Execution(
        "c", id=7, state=md.ExecutionState.COMPLETE, properties=old.as_properties()
    )
    assert explain_miss(old, None) == "miss: first run of this step"
    new = CacheKey(
        component="c",
        code={"m.c": "changed", "m.same": "3", "m.new": "4"},
        params={"a": 2, "c": [1]},
        inputs={"t": ["sha256:2"]},
        kiln_version="0.0.2",
    )
    why = explain_miss(new, previous)
    assert why == (
        "miss: Kiln version changed (0.0.1 -> 0.0.2); code of m.c changed; now calls m.new; "
        "no longer calls m.gone; parameter 'a' changed (1 -> 2); "
        'parameter \'b\' changed ("x" -> "<unset>"); parameter \'c\' changed ("<unset>" -> [1]); '
        "input 't' changed (new content upstream)"
    )
    assert explain_miss(old, previous) == (
        "miss: same code, parameters and inputs as execution 7, but its outputs are no longer "
        "available"
    )
    previous.state = md.ExecutionState.FAILED
    assert explain_miss(old, previous) == (
        "miss: same code, parameters and inputs as execution 7, which failed"
    )
    previous.state = md.ExecutionState.RUNNING  # its process died without a word
    assert explain_miss(old, previous) == (
        "miss: same code, parameters and inputs as execution 7, which never finished"
    )


# ------------------------------------------------------------------ no cache, lost outputs


def test_no_cache_runs_every_step_anew(workspace: Workspace, pipe: Path) -> None:
    first = run_file(workspace, pipe)
    fresh = run_file(workspace, pipe, use_cache=False)
    assert states(fresh) == {"produce": "COMPLETE", "consume": "COMPLETE"}
    assert reasons(fresh) == {"produce": "miss: --no-cache", "consume": "miss: --no-cache"}
    assert fresh.output("consume").id != first.output("consume").id
    assert fresh.output("consume").fingerprint == first.output("consume").fingerprint
    # afterwards the cache answers again (from either run; both outputs are LIVE)
    again = run_file(workspace, pipe)
    assert states(again) == {"produce": "CACHED", "consume": "CACHED"}
    assert again.output("consume").id in {first.output("consume").id, fresh.output("consume").id}


def test_outputs_whose_files_are_gone_are_not_reused(workspace: Workspace, pipe: Path) -> None:
    import shutil

    first = run_file(workspace, pipe)
    shutil.rmtree(workspace.artifacts.path_of(first.output("consume").uri))
    second = run_file(workspace, pipe)
    assert states(second) == {"produce": "CACHED", "consume": "COMPLETE"}
    assert second.steps["consume"].reason == (
        f"miss: same code, parameters and inputs as execution "
        f"{first.steps['consume'].execution_id}, but its outputs are no longer available"
    )
    assert workspace.artifacts.path_of(second.output("consume").uri).is_dir()


def test_the_key_is_the_same_in_the_cli_and_in_another_process(
    workspace: Workspace, pipe: Path, tmp_path: Path
) -> None:
    """No addresses or process state in the key: a run by `kiln run` is a hit for run()."""
    proc = kiln("run", str(pipe), "--param", "n=4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = run_file(workspace, pipe, n=4)
    assert states(result) == {"produce": "CACHED", "consume": "CACHED"}


def test_retrying_a_step_that_failed_for_an_outside_reason_says_so(
    workspace: Workspace, tmp_path: Path
) -> None:
    flag = tmp_path / "broken.flag"
    flag.write_text("the network is down")
    path = tmp_path / "transient.py"
    path.write_text(
        textwrap.dedent(
            f"""
            from __future__ import annotations
            from pathlib import Path
            from kiln import Metrics, component, pipeline

            @component
            def fetch() -> Metrics:
                flag = Path({str(flag)!r})
                if flag.exists():
                    raise ConnectionError(flag.read_text())
                return Metrics({{"ok": True}})

            @pipeline
            def transient() -> None:
                fetch()
            """
        )
    )
    failed = run(
        load_pipeline(path), workspace=workspace, runner=LocalRunner(0), raise_on_failure=False
    )
    assert failed.steps["fetch"].state == "FAILED"
    assert "ConnectionError: the network is down" in (failed.steps["fetch"].error or "")
    flag.unlink()  # the outside world recovered; the code, parameters and inputs are the same
    retried = run_file(workspace, path)
    assert retried.steps["fetch"].state == "COMPLETE"
    assert retried.steps["fetch"].reason == (
        f"miss: same code, parameters and inputs as execution "
        f"{failed.steps['fetch'].execution_id}, which failed"
    )


def test_a_component_defined_in_a_function_is_keyed_by_what_it_closes_over(
    workspace: Workspace,
) -> None:
    def make(offset: int) -> Any:
        def helper(n: int) -> int:
            return n + offset

        @component
        def shifted(n: int = 1) -> Metrics:
            return Metrics({"value": helper(n)})

        @pipeline(name="closures")
        def closures() -> None:
            shifted()

        return closures

    def value(result: RunResult) -> Any:
        path = workspace.artifacts.path_of(result.output("shifted").uri)
        return Metrics.stored(path).read()["value"]

    ten = run(make(10), workspace=workspace, runner=LocalRunner(0))
    assert value(ten) == 11
    assert run(make(10), workspace=workspace).steps["shifted"].state == "CACHED"
    twenty = run(make(20), workspace=workspace, runner=LocalRunner(0))
    assert twenty.steps["shifted"].state == "COMPLETE"
    assert value(twenty) == 21  # not the cached 11
    assert twenty.steps["shifted"].reason == (
        f"miss: code of {__name__}.{make.__qualname__}.<locals>.helper:offset changed"
    )
