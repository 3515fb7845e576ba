"""Cache keys, and why a step hit or missed the cache.

A step's cache key is the hash of:

- its component's code: the function's syntax tree, and that of every function and class of its own
  package that it calls, transitively (comments and formatting do not count, logic does);
- its parameter values (canonical JSON);
- its input artifacts' content fingerprints;
- Kiln's version.

Each execution records these parts, so that the next run can say which of them changed.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import sys
import textwrap
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiln._version import __version__
from kiln.metadata import Execution, ExecutionState, PropertyValue
from kiln.orchestration._component import Component

__all__ = ["CacheKey", "code_parts", "explain_miss", "path_fingerprint"]


def _sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def _source_digest(obj: Any) -> str:
    try:
        src = textwrap.dedent(inspect.getsource(obj))
        return _sha(ast.dump(ast.parse(src), annotate_fields=False))
    except (OSError, TypeError, SyntaxError):
        code = getattr(obj, "__code__", None)
        if code is not None:  # no source on disk: hash the bytecode and constants
            return _sha(code.co_code + repr(code.co_consts).encode())
        return _sha(repr(obj))


def _value_digest(value: Any) -> str:
    """A captured variable's value: its JSON, else its repr (one with an address never hits)."""
    return _sha(json.dumps(_canonical(value), sort_keys=True, default=repr))


def _canonical(value: Any) -> Any:
    """The value with sets sorted, so its digest does not depend on the hash seed."""
    if isinstance(value, set | frozenset):
        return sorted((_canonical(v) for v in value), key=repr)
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {repr(k): _canonical(v) for k, v in value.items()}
    return value


# Module-level values that are part of a component's logic when it reads them (constants, tables).
_DATA = (str, int, float, bool, bytes, tuple, list, dict, set, frozenset)


def _names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


def _package(module: str) -> str:
    return module.split(".", 1)[0]


def _home(module: str) -> Path | None:
    """The folder a component's own code lives in: its package's, or its script's folder."""
    top = sys.modules.get(_package(module))
    file = getattr(top, "__file__", None)
    if not file:
        return None
    path = Path(file).resolve().parent
    if "site-packages" in path.parts or "dist-packages" in path.parts:
        return path if getattr(top, "__path__", None) else None
    return path


def code_parts(fn: Callable[..., Any]) -> dict[str, str]:
    """Digests of ``fn`` and of the functions and classes of its own package it reaches."""
    package = _package(fn.__module__)
    home = _home(fn.__module__)
    parts: dict[str, str] = {}

    def own_module(name: str) -> bool:
        if _package(name) == package:
            return True
        if _package(name) == "kiln":  # Kiln's own code is covered by its version
            return False
        file = getattr(sys.modules.get(name), "__file__", None)
        if home is None or not file:
            return False
        path = Path(file).resolve()
        return path.is_relative_to(home) and "site-packages" not in path.parts

    def own(obj: Any) -> bool:
        mod = getattr(obj, "__module__", None)
        return isinstance(mod, str) and own_module(mod)

    def visit(obj: Any) -> None:
        if isinstance(obj, Component):
            obj = obj.fn
        key = f"{obj.__module__}.{obj.__qualname__}"
        if key in parts:
            return
        parts[key] = _source_digest(obj)
        code = getattr(obj, "__code__", None)
        if code is None:
            return
        names = set(_names(code))
        glb: Mapping[str, Any] = getattr(obj, "__globals__", {})
        for name in sorted(names):
            target = glb.get(name)
            if isinstance(target, Component) or (
                (inspect.isfunction(target) or inspect.isclass(target)) and own(target)
            ):
                visit(target)
            elif inspect.ismodule(target) and own_module(target.__name__):
                for attr in sorted(names):
                    member = getattr(target, attr, None)
                    if (inspect.isfunction(member) or inspect.isclass(member)) and own(member):
                        visit(member)
                    elif isinstance(member, _DATA):
                        parts[f"{target.__name__}.{attr}"] = _value_digest(member)
            elif isinstance(target, _DATA):  # a module-level constant such as COLUMNS = [...]
                parts[f"{obj.__module__}.{name}"] = _value_digest(target)
        # a function defined inside another one also depends on the variables it closes over
        cells = getattr(obj, "__closure__", None) or ()
        for var, cell in zip(code.co_freevars, cells, strict=False):
            try:
                value = cell.cell_contents
            except ValueError:  # not assigned yet
                continue
            if isinstance(value, Component) or inspect.isfunction(value) or inspect.isclass(value):
                visit(value)
            else:
                parts[f"{key}:{var}"] = _value_digest(value)

    visit(fn)
    return parts


def path_fingerprint(path_text: str) -> str:
    """A cheap fingerprint of the files an InputPath names (a file, a folder or a glob).

    Each file's relative path, size and modification time, as TFX's ExampleGen does: reading
    every byte of a large dataset on each run would cost more than the step it guards.
    """
    if not path_text:
        return "none"
    base = Path(path_text).expanduser()
    if any(c in path_text for c in "*?["):
        anchor = Path(base.anchor or ".")
        roots = sorted(anchor.glob(str(base.relative_to(anchor)) if base.anchor else path_text))
    else:
        roots = [base]
    digest = hashlib.sha256()
    found = False
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            st = f.stat()
            digest.update(f"{f}\x00{st.st_size}\x00{st.st_mtime_ns}\n".encode())
            found = True
    return digest.hexdigest() if found else "missing"


@dataclass(frozen=True)
class CacheKey:
    """The parts of a step's cache key and their hash."""

    component: str
    code: Mapping[str, str]
    params: Mapping[str, Any]
    inputs: Mapping[str, Sequence[str]]  # input name -> fingerprints
    kiln_version: str = __version__

    @property
    def digest(self) -> str:
        body = json.dumps(
            {
                "component": self.component,
                "code": dict(self.code),
                "params": dict(self.params),
                "inputs": {k: list(v) for k, v in self.inputs.items()},
                "kiln": self.kiln_version,
            },
            sort_keys=True,
        )
        return "sha256:" + _sha(body)

    def as_properties(self) -> dict[str, PropertyValue]:
        return {
            "code_parts": dict(self.code),
            "params": dict(self.params),
            "input_fingerprints": {k: list(v) for k, v in self.inputs.items()},
            "kiln_version": self.kiln_version,
        }


def _short(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def explain_miss(key: CacheKey, previous: Execution | None) -> str:
    """Why ``key`` missed, compared with the previous execution of the same step."""
    if previous is None:
        return "miss: first run of this step"
    props = previous.properties
    reasons: list[str] = []
    old_version = props.get("kiln_version")
    if old_version != key.kiln_version:
        reasons.append(f"Kiln version changed ({old_version} -> {key.kiln_version})")
    old_code = props.get("code_parts")
    if isinstance(old_code, dict) and old_code != dict(key.code):
        changed = sorted(k for k in key.code if k in old_code and old_code[k] != key.code[k])
        added = sorted(set(key.code) - set(old_code))
        removed = sorted(set(old_code) - set(key.code))
        bits = [f"code of {', '.join(changed)} changed"] if changed else []
        if added:
            bits.append(f"now calls {', '.join(added)}")
        if removed:
            bits.append(f"no longer calls {', '.join(removed)}")
        reasons.append("; ".join(bits))
    old_params = props.get("params")
    if isinstance(old_params, dict) and old_params != dict(key.params):
        for name in sorted(set(old_params) | set(key.params)):
            before, after = old_params.get(name, "<unset>"), key.params.get(name, "<unset>")
            if before != after:
                reasons.append(f"parameter {name!r} changed ({_short(before)} -> {_short(after)})")
    old_inputs = props.get("input_fingerprints")
    if isinstance(old_inputs, dict):
        for name in sorted(set(old_inputs) | set(key.inputs)):
            before, after = old_inputs.get(name), list(key.inputs.get(name, []))
            if before != after and name.startswith("file:"):
                path = key.params.get(name[5:], "")
                reasons.append(f"files of {name[5:]!r} changed ({path})")
            elif before != after:
                reasons.append(f"input {name!r} changed (new content upstream)")
    if not reasons:
        same = f"miss: same code, parameters and inputs as execution {previous.id}"
        if previous.state == ExecutionState.FAILED:  # a retry after an outside failure
            return f"{same}, which failed"
        if previous.state == ExecutionState.RUNNING:
            return f"{same}, which never finished"
        return f"{same}, but its outputs are no longer available"
    return "miss: " + "; ".join(reasons)
