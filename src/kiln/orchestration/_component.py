"""Components: typed Python functions whose inputs are artifacts or JSON parameters and whose
outputs are typed artifacts.

::

    @component
    def summarise(table: Table, top: int = 5) -> Metrics:
        return Metrics({...})

Called inside a ``@pipeline`` function, a component adds a step and returns it (its ``.output``
feeds other steps). Called anywhere else it is the plain function, so it can be unit-tested.
"""

from __future__ import annotations

import functools
import inspect
import json
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kiln.artifacts import Artifact
from kiln.errors import PipelineDefinitionError

__all__ = ["Component", "InputPath", "InputSpec", "OutputSpec", "component"]

_JSON_SCALARS = (int, float, str, bool, type(None))


class _Watched:
    """Marks a ``str`` parameter as a path whose files are part of the step's cache key."""

    def __repr__(self) -> str:
        return "InputPath"


InputPath = typing.Annotated[str, _Watched()]
"""A parameter naming a file, folder or glob to read: the cache key includes the files' sizes and
modification times (as TFX's ExampleGen fingerprints its inputs), so editing the data reruns the
step even though the path did not change."""


@dataclass(frozen=True)
class InputSpec:
    """One input of a component: an artifact (``artifact`` set) or a JSON parameter."""

    name: str
    annotation: Any
    artifact: type[Artifact] | None
    default: Any = inspect.Parameter.empty
    watched: bool = False  # an InputPath: its files' fingerprint is part of the cache key

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty

    def type_label(self) -> str:
        if self.artifact is not None:
            return self.artifact.type_name
        return _label(self.annotation)


@dataclass(frozen=True)
class OutputSpec:
    name: str
    artifact: type[Artifact]


def _label(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _artifact_class(annotation: Any) -> type[Artifact] | None:
    if isinstance(annotation, type) and issubclass(annotation, Artifact):
        return annotation
    return None


def _is_json_annotation(annotation: Any) -> bool:
    """Whether an annotation admits only JSON values (the cache key hashes them as JSON)."""
    if annotation is Any or annotation in _JSON_SCALARS:
        return True
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, tuple, dict, typing.Union, types.UnionType, typing.Literal):
        if origin is typing.Literal:
            return all(isinstance(a, _JSON_SCALARS) for a in args)
        if origin is dict and args and args[0] is not str:
            return False
        return all(a is Ellipsis or _is_json_annotation(a) for a in args)
    return annotation in (list, dict, tuple)


def check_json_value(where: str, value: Any) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise PipelineDefinitionError(
            f"{where} must be a JSON value (str, number, bool, list, dict): {e}"
        ) from e


class Component:
    """A typed function that a pipeline runs as a step; see :func:`component`."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name or fn.__name__
        self.inputs, self.outputs, self.output_tuple = self._signature(fn)

    def _signature(
        self, fn: Callable[..., Any]
    ) -> tuple[dict[str, InputSpec], dict[str, OutputSpec], type | None]:
        where = f"component {self.name!r} ({fn.__module__}.{fn.__qualname__})"
        try:
            hints = typing.get_type_hints(fn, include_extras=True)
        except (NameError, TypeError) as e:
            raise PipelineDefinitionError(f"{where}: cannot read its type hints: {e}") from e
        watched = {
            name
            for name, ann in hints.items()
            if typing.get_origin(ann) is typing.Annotated
            and any(isinstance(m, _Watched) for m in ann.__metadata__)
        }
        hints = {  # Annotated[X, ...] is X for everything but the marker above
            name: typing.get_args(ann)[0] if typing.get_origin(ann) is typing.Annotated else ann
            for name, ann in hints.items()
        }
        inputs: dict[str, InputSpec] = {}
        for p in inspect.signature(fn).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise PipelineDefinitionError(
                    f"{where}: *{p.name} / **{p.name} are not allowed; name every input"
                )
            if p.name not in hints:
                raise PipelineDefinitionError(
                    f"{where}: input {p.name!r} has no type annotation; annotate it with an "
                    "artifact type (Table, Metrics…) or a JSON type (int, str, list[float]…)"
                )
            ann = hints[p.name]
            art = _artifact_class(ann)
            if art is None and not _is_json_annotation(ann):
                raise PipelineDefinitionError(
                    f"{where}: input {p.name!r} is annotated {_label(ann)}, which is neither an "
                    "artifact type nor a JSON parameter type (int, float, str, bool, list, dict)"
                )
            if art is None and p.default is not p.empty:
                check_json_value(f"{where}: default of {p.name!r}", p.default)
            inputs[p.name] = InputSpec(p.name, ann, art, p.default, p.name in watched)
        ret = hints.get("return", type(None))
        outputs: dict[str, OutputSpec] = {}
        output_tuple: type | None = None
        if ret is type(None):
            pass
        elif _artifact_class(ret) is not None:
            outputs["output"] = OutputSpec("output", ret)
        elif isinstance(ret, type) and issubclass(ret, tuple) and hasattr(ret, "_fields"):
            field_hints = typing.get_type_hints(ret)
            for field in ret._fields:
                cls = _artifact_class(field_hints.get(field))
                if cls is None:
                    raise PipelineDefinitionError(
                        f"{where}: output {field!r} of {ret.__name__} must be an artifact type"
                    )
                outputs[field] = OutputSpec(field, cls)
            output_tuple = ret
        else:
            raise PipelineDefinitionError(
                f"{where}: its return annotation {_label(ret)} is not an artifact type; return "
                "an artifact (-> Table) or a NamedTuple of artifacts, or nothing (-> None)"
            )
        return inputs, outputs, output_tuple

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from kiln.orchestration._pipeline import current_builder

        builder = current_builder()
        if builder is None:
            return self.fn(*args, **kwargs)
        return builder.add_step(self, args, kwargs)

    def split_outputs(self, result: Any) -> dict[str, Artifact]:
        """The function's return value as {output name: artifact}, checked against the signature."""
        where = f"component {self.name!r}"
        if not self.outputs:
            return {}
        if self.output_tuple is None:
            values = {"output": result}
        elif isinstance(result, tuple) and len(result) == len(self.outputs):
            values = dict(zip(self.outputs, result, strict=True))
        else:
            raise TypeError(
                f"{where} must return a {self.output_tuple.__name__} of "
                f"{len(self.outputs)} artifacts, returned {type(result).__name__}"
            )
        for name, value in values.items():
            expected = self.outputs[name].artifact
            if not isinstance(value, expected):
                raise TypeError(
                    f"{where} output {name!r} must be a {expected.type_name} artifact, "
                    f"returned {type(value).__name__}"
                )
        return values

    def __repr__(self) -> str:
        return f"<component {self.name}>"


@typing.overload
def component(fn: Callable[..., Any], /) -> Component: ...
@typing.overload
def component(*, name: str | None = None) -> Callable[[Callable[..., Any]], Component]: ...


def component(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None
) -> Component | Callable[[Callable[..., Any]], Component]:
    """Make a typed function a pipeline component (``@component`` or ``@component(name=...)``)."""
    if fn is not None:
        return Component(fn, name=name)
    return lambda f: Component(f, name=name)
