"""Components and pipelines at build time: signatures, wiring, and every graph error before a run.

Nothing here executes a step: a pipeline is *built* (its function called with parameter values,
each component call recorded as a step) and everything wrong with the graph must surface then.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import pyarrow as pa
import pytest

from kiln.artifacts import Metrics, Report, Table
from kiln.errors import ParameterError, PipelineDefinitionError
from kiln.orchestration import RUN_CONTEXT, Pipeline, Step, component, pipeline, run
from kiln.workspace import Workspace


class SpecialTable(Table):
    """A subtype of Table: accepted wherever a Table is expected, not the other way round."""


@component
def make_table(rows: int = 3) -> Table:
    return Table(pa.table({"x": list(range(rows))}))


@component
def make_special() -> SpecialTable:
    return SpecialTable(pa.table({"x": [1]}))


@component
def count(table: Table, label: str = "rows") -> Metrics:
    return Metrics({label: table.read().num_rows})


@component
def special_only(table: SpecialTable) -> Metrics:
    return Metrics({"n": table.read().num_rows})


@component
def render(table: Table, summary: Metrics) -> Report:
    return Report(f"<p>{summary.read()} {table.read().num_rows}</p>")


@component
def side_effect() -> None:
    return None


class Split(NamedTuple):
    train: Table
    test: Table


@component
def split(table: Table, fraction: float = 0.5) -> Split:
    t = table.read()
    n = int(t.num_rows * fraction)
    return Split(Table(t.slice(0, n)), Table(t.slice(n)))


# ---------------------------------------------------------------------------- components


def test_component_signature_separates_artifacts_from_parameters() -> None:
    assert set(count.inputs) == {"table", "label"}
    assert count.inputs["table"].artifact is Table
    assert count.inputs["table"].required
    assert count.inputs["label"].artifact is None
    assert count.inputs["label"].default == "rows"
    assert not count.inputs["label"].required
    assert {n: o.artifact for n, o in count.outputs.items()} == {"output": Metrics}
    assert {n: o.artifact for n, o in split.outputs.items()} == {"train": Table, "test": Table}
    assert split.output_tuple is Split
    assert side_effect.outputs == {}


def test_component_outside_a_pipeline_is_the_plain_function() -> None:
    result = count(make_table(rows=4), label="n")
    assert isinstance(result, Metrics)
    assert result.read() == {"n": 4}
    train, test = split(make_table(rows=4), fraction=0.25)
    assert (train.read().num_rows, test.read().num_rows) == (1, 3)


def test_component_name_can_be_given() -> None:
    @component(name="renamed")
    def original() -> Metrics:
        return Metrics({})

    assert original.name == "renamed"
    assert repr(original) == "<component renamed>"


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("def f(x) -> Metrics: ...", "input 'x' has no type annotation"),
        ("def f(*xs: int) -> Metrics: ...", "are not allowed"),
        ("def f(**kw: int) -> Metrics: ...", "are not allowed"),
        ("def f(x: bytes) -> Metrics: ...", "neither an artifact type nor a JSON parameter"),
        ("def f(x: set[int]) -> Metrics: ...", "neither an artifact type nor a JSON parameter"),
        ("def f(x: dict[int, str]) -> Metrics: ...", "neither an artifact type nor a JSON"),
        ("def f(x: float = float('nan')) -> Metrics: ...", "default of 'x' must be a JSON value"),
        ("def f(x: Any = object()) -> Metrics: ...", "default of 'x' must be a JSON value"),
        ("def f() -> int: ...", "return annotation int is not an artifact type"),
        ("def f() -> dict[str, Table]: ...", "is not an artifact type"),
        ("def f() -> BadTuple: ...", "output 'n' of BadTuple must be an artifact type"),
        ("def f() -> Undefined: ...", "cannot read its type hints"),
    ],
)
def test_component_definition_errors(source: str, needle: str) -> None:
    class BadTuple(NamedTuple):
        table: Table
        n: int

    namespace: dict[str, Any] = {
        "Metrics": Metrics,
        "Table": Table,
        "Any": Any,
        "BadTuple": BadTuple,
    }
    exec(source, namespace)  # the annotations must be resolvable from the function's globals
    with pytest.raises(PipelineDefinitionError, match="component 'f'") as info:
        component(namespace["f"])
    assert needle in str(info.value)


def test_component_accepts_json_parameter_types() -> None:
    @component
    def typed(
        a: int,
        b: float,
        c: str,
        d: bool,
        e: list[int],
        f: dict[str, Any],
        g: str | None = None,
        h: Literal["x", "y"] = "x",
        i: tuple[int, ...] = (1, 2),
        j: Any = None,
    ) -> Metrics:
        return Metrics({})

    assert all(spec.artifact is None for spec in typed.inputs.values())
    assert [n for n, s in typed.inputs.items() if s.required] == ["a", "b", "c", "d", "e", "f"]


# ---------------------------------------------------------------------------- wiring


def test_pipeline_records_steps_params_and_edges() -> None:
    @pipeline(name="wired")
    def wired(rows: int = 5) -> None:
        t = make_table(rows=rows)
        n = count(t.output, label="total")
        render(t.output, n.output)

    plan = wired.build(rows=7)
    assert plan.pipeline == "wired"
    assert plan.params == {"rows": 7}
    assert [s.name for s in plan.steps] == ["make_table", "count", "render"]
    make, cnt, rend = plan.steps
    assert make.params == {"rows": 7}
    assert cnt.params == {"label": "total"}  # a default the caller overrode
    assert cnt.artifact_inputs["table"].step is make
    assert set(rend.artifact_inputs) == {"table", "summary"}
    assert rend.artifact_inputs["summary"].step is cnt
    assert {s.name for s in rend.upstream()} == {"make_table", "count"}


def test_unset_parameters_take_the_component_default() -> None:
    @pipeline
    def defaults() -> None:
        count(make_table().output)

    plan = defaults.build()
    assert plan.step("make_table").params == {"rows": 3}
    assert plan.step("count").params == {"label": "rows"}
    with pytest.raises(KeyError):
        plan.step("nope")


def test_a_step_passed_directly_means_its_single_output() -> None:
    @pipeline
    def direct() -> None:
        count(make_table())

    plan = direct.build()
    assert plan.step("count").artifact_inputs["table"].step is plan.step("make_table")


def test_repeated_component_gets_unique_step_names() -> None:
    @pipeline
    def twice() -> None:
        a = make_table(rows=1)
        b = make_table(rows=2)
        make_table(rows=3, step_name="third")
        count(a.output)
        count(b.output)

    names = [s.name for s in twice.build().steps]
    assert names == ["make_table", "make_table_2", "third", "count", "count_2"]


def test_named_tuple_outputs_are_wired_by_name() -> None:
    @pipeline
    def splitting() -> None:
        parts = split(make_table(rows=10).output, fraction=0.3)
        count(parts.outputs["train"], step_name="count_train")
        count(parts.outputs["test"], step_name="count_test")

    plan = splitting.build()
    assert plan.step("count_train").artifact_inputs["table"].name == "train"
    assert plan.step("count_test").artifact_inputs["table"].name == "test"


def test_single_output_of_a_multi_output_step_is_an_error() -> None:
    @pipeline
    def ambiguous() -> None:
        count(split(make_table().output).output)

    with pytest.raises(PipelineDefinitionError, match=r"has 2 outputs \(train, test\)"):
        ambiguous.build()


def test_python_control_flow_on_parameters_shapes_the_graph() -> None:
    @pipeline
    def optional(with_report: bool = False) -> None:
        t = make_table()
        n = count(t.output)
        if with_report:
            render(t.output, n.output)

    assert len(optional.build().steps) == 2
    assert len(optional.build(with_report=True).steps) == 3


def test_a_pipeline_called_inside_another_inlines_its_steps() -> None:
    @pipeline
    def inner(rows: int = 2) -> None:
        count(make_table(rows=rows).output)

    @pipeline
    def outer() -> None:
        inner(rows=4)
        side_effect()

    plan = outer.build()
    assert [s.name for s in plan.steps] == ["make_table", "count", "side_effect"]
    assert plan.step("make_table").params == {"rows": 4}


def test_calling_a_pipeline_outside_a_build_builds_it() -> None:
    @pipeline
    def callable_pipe(rows: int = 2) -> None:
        make_table(rows=rows)

    plan = callable_pipe(9)
    assert plan.step("make_table").params == {"rows": 9}


def test_after_orders_steps_without_data() -> None:
    @pipeline
    def ordered() -> None:
        late = side_effect(step_name="late")
        early = side_effect(step_name="early")
        late.after(early)

    plan = ordered.build()
    assert [s.name for s in plan.steps] == ["early", "late"]
    assert plan.step("late").upstream() == [plan.step("early")]


# ---------------------------------------------------------------------------- build-time errors


def test_cycle_through_after_is_a_build_error_naming_the_cycle() -> None:
    @pipeline(name="loop")
    def loop() -> None:
        a = side_effect(step_name="a")
        b = side_effect(step_name="b").after(a)
        c = side_effect(step_name="c").after(b)
        a.after(c)

    with pytest.raises(PipelineDefinitionError, match="has a cycle") as info:
        loop.build()
    message = str(info.value)
    assert "pipeline 'loop'" in message
    assert "a -> c -> b -> a" in message  # each step depends on the next
    assert ".after()" in message


def test_cycle_through_data_and_after_is_a_build_error() -> None:
    @pipeline
    def loop() -> None:
        t = make_table()
        n = count(t.output)
        t.after(n)

    with pytest.raises(PipelineDefinitionError, match="make_table -> count -> make_table"):
        loop.build()


def test_self_cycle_is_a_build_error() -> None:
    @pipeline
    def selfish() -> None:
        s = side_effect()
        s.after(s)

    with pytest.raises(PipelineDefinitionError, match="side_effect -> side_effect"):
        selfish.build()


def test_after_takes_steps_only() -> None:
    @pipeline
    def wrong_after() -> None:
        t = make_table()
        side_effect().after(t.output)

    with pytest.raises(PipelineDefinitionError, match=r"\.after\(\) takes steps, got OutputRef"):
        wrong_after.build()


def test_type_mismatch_is_a_build_error_naming_both_ends() -> None:
    @pipeline(name="mismatch")
    def mismatch() -> None:
        t = make_table()
        n = count(t.output)
        count(n.output, step_name="count_metrics")  # Metrics into a Table input

    with pytest.raises(PipelineDefinitionError, match="type mismatch") as info:
        mismatch.build()
    message = str(info.value)
    assert "step 'count_metrics'" in message
    assert "input 'table'" in message
    assert "expects Table" in message
    assert "step 'count' output 'output' is Metrics" in message


def test_artifact_subtype_is_accepted_and_supertype_is_not() -> None:
    @pipeline
    def sub_ok() -> None:
        count(make_special().output)

    assert sub_ok.build().step("count").artifact_inputs["table"].artifact is SpecialTable

    @pipeline
    def super_bad() -> None:
        special_only(make_table().output)

    with pytest.raises(PipelineDefinitionError, match=r"expects SpecialTable.*is Table"):
        super_bad.build()


def test_missing_artifact_input_is_a_build_error() -> None:
    @pipeline
    def missing() -> None:
        t = make_table()
        render(table=t.output)

    with pytest.raises(PipelineDefinitionError, match=r"missing input 'summary' \(Metrics\)"):
        missing.build()


def test_missing_required_parameter_is_a_build_error() -> None:
    @component
    def needs(threshold: float) -> Metrics:
        return Metrics({"t": threshold})

    @pipeline
    def p() -> None:
        needs()

    with pytest.raises(PipelineDefinitionError, match=r"missing input 'threshold' \(float\)"):
        p.build()


def test_unknown_component_input_is_a_build_error_listing_known_ones() -> None:
    @pipeline
    def unknown() -> None:
        make_table(rows=2, colour="red")

    with pytest.raises(PipelineDefinitionError, match="has no input colour") as info:
        unknown.build()
    assert "rows: int" in str(info.value)


def test_too_many_positional_inputs_and_duplicates_are_build_errors() -> None:
    @pipeline
    def too_many() -> None:
        make_table(1, 2)

    with pytest.raises(PipelineDefinitionError, match="takes 1 inputs, 2 given by position"):
        too_many.build()

    @pipeline
    def duplicate() -> None:
        make_table(1, rows=2)

    with pytest.raises(PipelineDefinitionError, match="input 'rows' given twice"):
        duplicate.build()


def test_plain_value_for_an_artifact_input_is_a_build_error() -> None:
    @pipeline
    def plain() -> None:
        count("data.csv")

    with pytest.raises(PipelineDefinitionError, match=r"takes a Table artifact.*not str"):
        plain.build()


def test_artifact_for_a_parameter_is_a_build_error() -> None:
    @pipeline
    def crossed() -> None:
        t = make_table()
        count(t.output, label=t.output)

    with pytest.raises(PipelineDefinitionError, match="'label' is a parameter"):
        crossed.build()


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("three", "parameter 'rows' is int, got str 'three'"),
        (True, "parameter 'rows' is int, got bool True"),
        (2.5, "parameter 'rows' is int, got float 2.5"),
        ({1, 2}, "must be a JSON value"),
    ],
)
def test_wrong_parameter_value_is_a_build_error(value: object, needle: str) -> None:
    @pipeline
    def typed() -> None:
        make_table(rows=value)

    with pytest.raises(PipelineDefinitionError) as info:
        typed.build()
    assert needle in str(info.value)


def test_int_is_accepted_for_a_float_parameter() -> None:
    @pipeline
    def floats() -> None:
        split(make_table().output, fraction=1)

    assert floats.build().step("split").params["fraction"] == 1


def test_literal_parameter_outside_its_choices_is_a_build_error() -> None:
    @component
    def pick(mode: Literal["fast", "slow"] = "fast") -> Metrics:
        return Metrics({"mode": mode})

    @pipeline
    def p(mode: str = "fast") -> None:
        pick(mode=mode)

    assert p.build(mode="slow").step("pick").params == {"mode": "slow"}
    with pytest.raises(PipelineDefinitionError, match=r"'mode'.*'medium'"):
        p.build(mode="medium")


def test_step_from_another_pipeline_is_a_build_error() -> None:
    captured: dict[str, Step] = {}

    @pipeline
    def first() -> None:
        captured["table"] = make_table()

    first.build()

    @pipeline
    def second() -> None:
        count(captured["table"].output)

    with pytest.raises(PipelineDefinitionError, match="belongs to another pipeline"):
        second.build()


def test_pipeline_without_steps_is_a_build_error() -> None:
    @pipeline(name="empty")
    def empty() -> None:
        pass

    with pytest.raises(PipelineDefinitionError, match="pipeline 'empty' has no steps"):
        empty.build()


def test_build_errors_surface_before_anything_runs(workspace: Workspace) -> None:
    @pipeline(name="broken")
    def broken() -> None:
        a = make_table()
        a.after(count(a.output))

    with pytest.raises(PipelineDefinitionError, match="cycle"):
        run(broken, workspace=workspace)
    assert workspace.metadata.get_contexts(type_name=RUN_CONTEXT) == []
    assert workspace.metadata.get_executions() == []
    artifacts_dir = workspace.root / ".kiln" / "artifacts"
    assert not artifacts_dir.exists() or not any(p for p in artifacts_dir.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------- pipeline parameters


def _params_pipeline() -> Pipeline:
    @pipeline(name="params")
    def params(
        rows: int = 3,
        fraction: float = 0.5,
        verbose: bool = False,
        name: str = "x",
        columns: list[str] | None = None,
        options: dict[str, Any] | None = None,
        label: str | None = None,
        mode: Literal["fast", "slow"] = "fast",
        anything: Any = None,
    ) -> None:
        make_table(rows=rows)

    return params


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("rows", "12", 12),
        ("rows", "-3", -3),
        ("fraction", "0.25", 0.25),
        ("fraction", "2", 2.0),
        ("verbose", "true", True),
        ("verbose", "Yes", True),
        ("verbose", "1", True),
        ("verbose", "off", False),
        ("verbose", "FALSE", False),
        ("name", "hello world", "hello world"),
        ("name", "42", "42"),  # a str parameter stays text even when it looks like a number
        ("name", "", ""),
        ("columns", '["a", "b"]', ["a", "b"]),
        ("columns", "null", None),
        ("options", '{"depth": 3, "tags": ["t"]}', {"depth": 3, "tags": ["t"]}),
        ("label", "plain text", "plain text"),
        ("label", "2024", "2024"),  # str | None: text that parses as JSON is still text
        ("label", "null", None),
        ("mode", "slow", "slow"),
        ("anything", "[1, 2]", [1, 2]),
        ("anything", "not json", "not json"),
    ],
)
def test_param_coercion_by_annotation(key: str, text: str, expected: object) -> None:
    pipe = _params_pipeline()
    values = pipe.coerce({key: text})
    assert values == {key: expected}
    assert type(values[key]) is type(expected)
    plan = pipe.build(**values)  # what coerce returns always builds
    assert plan.params[key] == expected


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("rows", "three"),
        ("rows", "1.5"),
        ("fraction", "half"),
        ("verbose", "maybe"),
        ("columns", "[unclosed"),
        ("mode", "medium"),
    ],
)
def test_param_that_does_not_parse_is_a_parameter_error(key: str, text: str) -> None:
    with pytest.raises(ParameterError) as info:
        _params_pipeline().coerce({key: text})
    message = str(info.value)
    assert f"--param {key}={text}" in message
    assert f"parameter {key!r} of pipeline 'params'" in message


def test_unknown_param_lists_the_known_ones() -> None:
    with pytest.raises(ParameterError, match="has no parameter 'colour'") as info:
        _params_pipeline().coerce({"colour": "red"})
    assert "rows (int)" in str(info.value)
    assert "fraction (float)" in str(info.value)
    with pytest.raises(ParameterError, match="has no parameter colour"):
        _params_pipeline().build(colour="red")


def test_required_pipeline_parameter_must_be_given() -> None:
    @pipeline(name="needy")
    def needy(rows: int) -> None:
        make_table(rows=rows)

    with pytest.raises(ParameterError, match=r"needs a value for rows \(int\): --param rows="):
        needy.build()
    assert needy.build(rows=2).params == {"rows": 2}


def test_pipeline_build_checks_and_normalises_parameter_values() -> None:
    pipe = _params_pipeline()
    assert pipe.build(fraction=1).params["fraction"] == 1.0
    assert isinstance(pipe.build(fraction=1).params["fraction"], float)
    with pytest.raises(PipelineDefinitionError, match="parameter 'rows' is int, got str"):
        pipe.build(rows="3")
    with pytest.raises(PipelineDefinitionError, match="must be a JSON value"):
        pipe.build(options={"when": object()})


def test_pipeline_parameter_must_be_a_json_type() -> None:
    def bad(path: bytes = b"") -> None:
        make_table()

    with pytest.raises(PipelineDefinitionError, match="parameter 'path' is bytes"):
        pipeline(bad)


def test_unannotated_pipeline_parameters_are_text() -> None:
    @pipeline
    def loose(path="data.csv") -> None:  # type: ignore[no-untyped-def]
        make_table()

    assert loose.coerce({"path": "123"}) == {"path": "123"}
