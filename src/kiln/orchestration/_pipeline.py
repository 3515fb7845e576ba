"""Pipelines: a ``@pipeline`` function wires components by passing outputs to inputs.

::

    @pipeline(name="hello")
    def hello(path: str, top: int = 5) -> None:
        table = read_csv(path=path)
        stats = summarise(table=table.output, top=top)
        write_report(table=table.output, stats=stats.output)

Building calls the function with the run's parameter values (so ordinary Python control flow on
parameters works) and records each component call as a step. Everything that can be wrong with
the graph — a type mismatch, a missing or unknown input, a cycle (through ``.after``) — is an error
here, before any step runs.
"""

from __future__ import annotations

import contextvars
import inspect
import json
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from kiln.artifacts import Artifact
from kiln.errors import ParameterError, PipelineDefinitionError
from kiln.orchestration._component import Component, _is_json_annotation, _label, check_json_value

__all__ = ["OutputRef", "Pipeline", "Plan", "Step", "current_builder", "pipeline"]

_BUILDER: contextvars.ContextVar[_Builder | None] = contextvars.ContextVar(
    "kiln_pipeline_builder", default=None
)


def current_builder() -> _Builder | None:
    return _BUILDER.get()


@dataclass(frozen=True)
class OutputRef:
    """One output of one step, to be passed to another step's input."""

    step: Step
    name: str
    artifact: type[Artifact]

    def __repr__(self) -> str:
        return f"<output {self.step.name}.{self.name}: {self.artifact.type_name}>"


@dataclass(eq=False)
class Step:
    """One component call in a pipeline: its inputs (values or other steps' outputs)."""

    name: str
    component: Component
    params: dict[str, Any] = field(default_factory=dict)
    artifact_inputs: dict[str, OutputRef] = field(default_factory=dict)
    explicit_after: list[Step] = field(default_factory=list)

    @property
    def outputs(self) -> dict[str, OutputRef]:
        return {n: OutputRef(self, n, spec.artifact) for n, spec in self.component.outputs.items()}

    @property
    def output(self) -> OutputRef:
        """The single output (for a component with exactly one)."""
        outs = self.outputs
        if len(outs) != 1:
            names = ", ".join(outs) or "none"
            raise PipelineDefinitionError(
                f"step {self.name!r} has {len(outs)} outputs ({names}); pick one with "
                f".outputs['NAME']"
            )
        return next(iter(outs.values()))

    def after(self, *steps: Step) -> Step:
        """Run this step only after ``steps``, even though it takes none of their outputs."""
        for s in steps:
            if not isinstance(s, Step):
                raise PipelineDefinitionError(
                    f"step {self.name!r}: .after() takes steps, got {type(s).__name__}"
                )
        self.explicit_after.extend(steps)
        return self

    def upstream(self) -> list[Step]:
        seen: dict[int, Step] = {}
        for ref in self.artifact_inputs.values():
            seen.setdefault(id(ref.step), ref.step)
        for s in self.explicit_after:
            seen.setdefault(id(s), s)
        return list(seen.values())

    def __repr__(self) -> str:
        return f"<step {self.name} ({self.component.name})>"


class _Builder:
    def __init__(self, pipeline_name: str) -> None:
        self.pipeline_name = pipeline_name
        self.steps: list[Step] = []
        self._names: set[str] = set()

    def add_step(self, comp: Component, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Step:
        base = kwargs.pop("step_name", None) or comp.name
        name, n = base, 2
        while name in self._names:
            name, n = f"{base}_{n}", n + 1
        self._names.add(name)
        where = f"pipeline {self.pipeline_name!r}, step {name!r}"
        specs = list(comp.inputs.values())
        if len(args) > len(specs):
            raise PipelineDefinitionError(
                f"{where}: {comp.name} takes {len(specs)} inputs, {len(args)} given by position"
            )
        given: dict[str, Any] = {}
        for spec, value in zip(specs, args, strict=False):
            given[spec.name] = value
        for key, value in kwargs.items():
            if key in given:
                raise PipelineDefinitionError(f"{where}: input {key!r} given twice")
            given[key] = value
        unknown = set(given) - set(comp.inputs)
        if unknown:
            known = ", ".join(f"{s.name}: {s.type_label()}" for s in specs) or "none"
            raise PipelineDefinitionError(
                f"{where}: {comp.name} has no input {', '.join(sorted(unknown))} "
                f"(its inputs: {known})"
            )
        step = Step(name=name, component=comp)
        for spec in specs:
            if spec.name not in given:
                if spec.required:
                    raise PipelineDefinitionError(
                        f"{where}: missing input {spec.name!r} ({spec.type_label()}) of {comp.name}"
                    )
                if spec.artifact is None:
                    step.params[spec.name] = spec.default
                continue
            value = given[spec.name]
            if isinstance(value, Step):
                value = value.output
            if spec.artifact is not None:
                if not isinstance(value, OutputRef):
                    raise PipelineDefinitionError(
                        f"{where}: input {spec.name!r} takes a {spec.artifact.type_name} artifact; "
                        f"pass another step's output, not {type(value).__name__}"
                    )
                if not issubclass(value.artifact, spec.artifact):
                    raise PipelineDefinitionError(
                        f"{where}: type mismatch on input {spec.name!r}: {comp.name} expects "
                        f"{spec.artifact.type_name}, but step {value.step.name!r} output "
                        f"{value.name!r} is {value.artifact.type_name}"
                    )
                step.artifact_inputs[spec.name] = value
            else:
                if isinstance(value, OutputRef):
                    raise PipelineDefinitionError(
                        f"{where}: input {spec.name!r} is a parameter ({spec.type_label()}), "
                        f"but got the artifact output {value.step.name}.{value.name}"
                    )
                check_json_value(f"{where}: parameter {spec.name!r}", value)
                _check_scalar(where, spec.name, spec.annotation, value)
                step.params[spec.name] = value
        self.steps.append(step)
        return step


def _check_scalar(where: str, name: str, annotation: Any, value: Any) -> None:
    if typing.get_origin(annotation) is typing.Literal and value not in typing.get_args(annotation):
        raise PipelineDefinitionError(
            f"{where}: parameter {name!r} is {_label(annotation)}, got {value!r}"
        )
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return
    if annotation in (int, float, str, bool) and (
        not isinstance(value, annotation) or (annotation is int and isinstance(value, bool))
    ):
        raise PipelineDefinitionError(
            f"{where}: parameter {name!r} is {annotation.__name__}, got "
            f"{type(value).__name__} {value!r}"
        )


@dataclass
class Plan:
    """A built pipeline: its steps in a topological order and the parameter values used."""

    pipeline: str
    params: dict[str, Any]
    steps: list[Step]

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)


def _toposort(pipeline_name: str, steps: list[Step]) -> list[Step]:
    """Steps ordered so each comes after its upstream; a cycle is an error that names it."""
    known = {id(s) for s in steps}
    for s in steps:
        for u in s.upstream():
            if id(u) not in known:
                raise PipelineDefinitionError(
                    f"pipeline {pipeline_name!r}: step {s.name!r} depends on {u.name!r}, "
                    "which belongs to another pipeline"
                )
    order: list[Step] = []
    state: dict[int, int] = {}  # 1 = on the current path, 2 = done
    path: list[Step] = []

    def visit(s: Step) -> None:
        mark = state.get(id(s))
        if mark == 2:
            return
        if mark == 1:
            cycle = [*path[path.index(s) :], s]
            raise PipelineDefinitionError(
                f"pipeline {pipeline_name!r} has a cycle: "
                + " -> ".join(x.name for x in cycle)
                + "; remove one of the .after() dependencies"
            )
        state[id(s)] = 1
        path.append(s)
        for u in s.upstream():
            visit(u)
        path.pop()
        state[id(s)] = 2
        order.append(s)

    for s in steps:
        visit(s)
    return order


@dataclass(frozen=True)
class ParamSpec:
    name: str
    annotation: Any
    default: Any = inspect.Parameter.empty

    def label(self) -> str:
        return f"{self.name} ({_label(self.annotation)})"


class Pipeline:
    """A named pipeline; :meth:`build` turns parameter values into a :class:`Plan`."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.__doc__ = fn.__doc__
        self.__module__ = fn.__module__
        self.__qualname__ = fn.__qualname__
        try:
            hints = typing.get_type_hints(fn)
        except (NameError, TypeError) as e:
            raise PipelineDefinitionError(
                f"pipeline {self.name!r}: cannot read its type hints: {e}"
            ) from e
        self.params: dict[str, ParamSpec] = {}
        for p in inspect.signature(fn).parameters.values():
            ann = hints.get(p.name, str)
            if not _is_json_annotation(ann):
                raise PipelineDefinitionError(
                    f"pipeline {self.name!r}: parameter {p.name!r} is {_label(ann)}; pipeline "
                    "parameters must be JSON types (int, float, str, bool, list, dict)"
                )
            self.params[p.name] = ParamSpec(p.name, ann, p.default)

    def describe_params(self) -> str:
        return ", ".join(s.label() for s in self.params.values()) or "none"

    def coerce(self, raw: Mapping[str, str]) -> dict[str, Any]:
        """Parse ``--param k=v`` strings by each parameter's annotation."""
        out: dict[str, Any] = {}
        for key, text in raw.items():
            spec = self.params.get(key)
            if spec is None:
                raise ParameterError(
                    f"--param {key}={text}: pipeline {self.name!r} has no parameter {key!r}; "
                    f"its parameters: {self.describe_params()}"
                )
            out[key] = _parse_param(self.name, spec, text)
        return out

    def build(self, **params: Any) -> Plan:
        unknown = set(params) - set(self.params)
        if unknown:
            raise ParameterError(
                f"pipeline {self.name!r} has no parameter {', '.join(sorted(unknown))}; "
                f"its parameters: {self.describe_params()}"
            )
        values: dict[str, Any] = {}
        for spec in self.params.values():
            if spec.name in params:
                values[spec.name] = params[spec.name]
            elif spec.default is not inspect.Parameter.empty:
                values[spec.name] = spec.default
            else:
                raise ParameterError(
                    f"pipeline {self.name!r} needs a value for {spec.label()}: "
                    f"--param {spec.name}=VALUE"
                )
            value = values[spec.name]
            if spec.annotation is float and isinstance(value, int) and not isinstance(value, bool):
                values[spec.name] = float(value)
            check_json_value(f"pipeline {self.name!r} parameter {spec.name!r}", values[spec.name])
            _check_scalar(f"pipeline {self.name!r}", spec.name, spec.annotation, values[spec.name])
        builder = _Builder(self.name)
        with _building(builder):
            self.fn(**values)
        if not builder.steps:
            raise PipelineDefinitionError(
                f"pipeline {self.name!r} has no steps: call @component functions inside it"
            )
        return Plan(self.name, values, _toposort(self.name, builder.steps))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if current_builder() is not None:
            return self.fn(*args, **kwargs)  # a pipeline used inside another one: inline its steps
        return self.build(**dict(zip(self.params, args, strict=False)), **kwargs)

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"


def _parse_param(pipeline_name: str, spec: ParamSpec, text: str) -> Any:
    ann = spec.annotation
    where = f"--param {spec.name}={text}"
    try:
        if ann is str:
            return text
        if ann is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if ann is int:
            return int(text)
        if ann is float:
            return float(text)
        args = typing.get_args(ann)
        if typing.get_origin(ann) is typing.Literal:  # Literal["a", "b"]: --param mode=a
            for choice in args:
                if text == (choice if isinstance(choice, str) else json.dumps(choice)):
                    return choice
            raise ValueError(f"expected one of {', '.join(map(repr, args))}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            if ann is Any or str in args:
                return text
            raise
        kinds = [typing.get_origin(a) or a for a in args if a is not str]
        if str in args and not any(isinstance(k, type) and isinstance(value, k) for k in kinds):
            return text  # `str | None` given 2024 is the text "2024", not a number
        return value
    except ValueError as e:
        raise ParameterError(
            f"{where}: parameter {spec.name!r} of pipeline {pipeline_name!r} is "
            f"{_label(ann)}, and {text!r} does not parse as one ({e})"
        ) from e


@contextmanager
def _building(builder: _Builder) -> Iterator[None]:
    token = _BUILDER.set(builder)
    try:
        yield
    finally:
        _BUILDER.reset(token)


@typing.overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...
@typing.overload
def pipeline(*, name: str | None = None) -> Callable[[Callable[..., Any]], Pipeline]: ...


def pipeline(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Make a function that wires components a named pipeline."""
    if fn is not None:
        return Pipeline(fn, name=name)
    return lambda f: Pipeline(f, name=name)
