"""Loading a pipeline file: import it as a module and find its ``@pipeline`` objects."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType

from kiln.errors import PipelineFileError
from kiln.orchestration._pipeline import Pipeline

__all__ = ["import_file", "load_pipeline", "module_name_for"]


def module_name_for(path: Path) -> str:
    """A stable module name for a file: the same in the runner and in its worker processes."""
    resolved = path.resolve()
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:10]
    stem = "".join(c if c.isalnum() else "_" for c in resolved.stem)
    return f"kiln_user_{stem}_{digest}"


def import_file(path: Path, module_name: str | None = None) -> ModuleType:
    """Import a Python file by path (again, when it changed since it was last imported)."""
    path = path.expanduser()
    if not path.is_file():
        raise PipelineFileError(
            f"pipeline file {path} does not exist; give the path of a .py file that defines "
            "a @pipeline"
        )
    if path.suffix != ".py":
        raise PipelineFileError(f"pipeline file {path} is not a .py file")
    name = module_name or module_name_for(path)
    folder = str(path.resolve().parent)
    if folder not in sys.path:  # as `python file.py` does: modules beside the file import
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PipelineFileError(f"pipeline file {path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        frames = [
            f for f in traceback.extract_tb(e.__traceback__) if Path(f.filename) == path.resolve()
        ]
        where = f"{path}:{frames[-1].lineno}" if frames else str(path)
        raise PipelineFileError(
            f"pipeline file {where} failed to import: {type(e).__name__}: {e}"
        ) from e
    return module


def load_pipeline(path: Path, name: str | None = None) -> Pipeline:
    """The pipeline ``name`` defined in ``path`` (the only one, when ``name`` is not given)."""
    module = import_file(path)
    found: dict[str, Pipeline] = {}
    for value in vars(module).values():
        if isinstance(value, Pipeline) and value.__module__ == module.__name__:
            found[value.name] = value
    if not found:
        raise PipelineFileError(
            f"{path} defines no pipeline: decorate a function that wires components with "
            "@kiln.orchestration"
        )
    if name is None:
        if len(found) > 1:
            raise PipelineFileError(
                f"{path} defines {len(found)} pipelines ({', '.join(sorted(found))}); choose one "
                "with --pipeline NAME"
            )
        return next(iter(found.values()))
    if name not in found:
        raise PipelineFileError(
            f"{path} has no pipeline named {name!r}; it defines: {', '.join(sorted(found))}"
        )
    return found[name]
