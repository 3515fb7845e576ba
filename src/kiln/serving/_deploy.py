"""What a server serves: the models named on the command line, loaded, warmed up, and swapped
when the registry alias they follow moves.

A model is named as ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``models:/NAME`` (the latest
version), a bare ``NAME`` (its ``production`` alias), ``NAME=FOLDER`` or ``NAME=URI`` (served
under NAME), or a model folder (served under the folder's name). With none, every registered model
that has a ``production`` alias is served.

Traffic split: ``--split NAME=3:90,4:10`` serves versions 3 and 4 of registered model NAME under
NAME, 90 and 10 percent of the requests. A request's ``X-Client-Id`` header is hashed to pick the
version, so a client sticks to one; without it the pick is random. The answer names the version.
The registry can hold the split instead: a model served by its alias whose registered model has
the tag ``traffic_split`` (``kiln models tag NAME traffic_split 3:90,4:10``) is served split that
way, and the watching thread applies a changed or removed tag as it applies a moved alias.

Hot swap: a model that follows an alias (or ``latest``) is looked up in the registry every few
seconds by one background thread; when the alias points at another version, the new version is
loaded and warmed up there, then put in place with one assignment. A request that already holds
the old version finishes on it; the next one gets the new one.
"""

from __future__ import annotations

import random
import sys
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.errors import KilnError, ModelNotFoundError, RegistryError
from kiln.serving._codec import Codec

if TYPE_CHECKING:
    import pyarrow as pa

    from kiln.model import Model
    from kiln.registry import ModelRegistry
    from kiln.workspace import Workspace

__all__ = [
    "Deployment",
    "ModelSpec",
    "ServedModel",
    "Split",
    "SplitSpec",
    "load_served",
    "parse_specs",
    "parse_split",
]

DEFAULT_ALIAS = "production"
FOLDER_VERSION = "1"
SPLIT_TAG = "traffic_split"
"""The registered model's tag that splits its traffic across versions (``3:90,4:10``)."""


@dataclass(frozen=True)
class ModelSpec:
    """One model to serve: the name it is served under, and where it comes from."""

    name: str
    uri: str | None = None  # models:/... (None: a folder)
    folder: Path | None = None
    alias: str | None = None  # the alias it follows (hot swap); "latest" for models:/NAME

    def __str__(self) -> str:
        return self.uri or str(self.folder)

    @property
    def uri_name(self) -> str:
        """The model's name in the registry (it may be served under another)."""
        from kiln.registry import parse_model_uri

        assert self.uri is not None
        return parse_model_uri(self.uri).name


@dataclass
class ServedModel:
    """A loaded, warmed-up model version and the codec for its signature."""

    name: str
    version: str
    model: Model
    codec: Codec
    platform: str


@dataclass(frozen=True)
class SplitSpec:
    """``--split NAME=3:90,4:10``: versions of registered model NAME and their weights."""

    name: str
    weights: tuple[tuple[int, int], ...]


def parse_split(text: str, *, what: str = "--split") -> SplitSpec:
    from kiln.registry import check_model_name

    name, sep, rest = text.partition("=")
    weights: list[tuple[int, int]] = []
    for part in rest.split(",") if sep else []:
        version, colon, weight = part.strip().partition(":")
        if not (colon and version.isdigit() and weight.isdigit() and int(version) >= 1):
            weights = []
            break
        weights.append((int(version), int(weight)))
    if not weights or sum(w for _, w in weights) <= 0:
        raise KilnError(
            f"{what} {text!r}: write NAME=VERSION:WEIGHT,VERSION:WEIGHT (e.g. churn=3:90,4:10)"
        )
    if len({v for v, _ in weights}) != len(weights):
        raise KilnError(f"{what} {text!r}: a version is named twice")
    return SplitSpec(check_model_name(name.strip()), tuple(weights))


class Split:
    """Versions of one model served under one name, picked by a client id's hash."""

    def __init__(self, name: str, members: Sequence[tuple[ServedModel, int]]) -> None:
        self.name = name
        self.versions = {m.version: m for m, _ in members}
        self.total = sum(w for _, w in members)
        self._bounds: list[tuple[int, ServedModel]] = []
        upto = 0
        for m, w in members:
            upto += w
            if w > 0:
                self._bounds.append((upto, m))
        self._random = random.Random()  # noqa: S311 - traffic split, not security

    def pick(self, client_id: bytes | None) -> ServedModel:
        point = (
            zlib.crc32(client_id) % self.total if client_id else self._random.randrange(self.total)
        )
        for bound, m in self._bounds:
            if point < bound:
                return m
        return self._bounds[-1][1]

    def describe(self) -> str:
        shares = ", ".join(
            f"{v}: {100 * w / self.total:.0f}%"
            for v, w in zip(self.versions, self._weights(), strict=True)
        )
        return f"{self.name} (versions {shares})"

    def _weights(self) -> list[int]:
        out, before = [], 0
        bounds = {m.version: b for b, m in self._bounds}
        for v in self.versions:
            b = bounds.get(v, before)
            out.append(b - before)
            before = b
        return out


def parse_specs(args: Sequence[str], workspace: Workspace | None) -> list[ModelSpec]:
    """The command line's models (or every ``production`` alias) as specs; names are unique."""
    from kiln.registry import check_model_name, is_model_uri, parse_model_uri

    specs: list[ModelSpec] = []
    for arg in args:
        served_as, sep, target = arg.partition("=")
        if sep and not is_model_uri(arg):
            check_model_name(served_as)
        else:
            served_as, target = "", arg
        if is_model_uri(target):
            uri = parse_model_uri(target)
            alias = uri.alias if uri.version is None and uri.alias else None
            if uri.version is None and uri.alias is None:
                alias = "latest"
            specs.append(ModelSpec(served_as or uri.name, uri=str(uri), alias=alias))
        elif Path(target).expanduser().is_dir():
            folder = Path(target).expanduser().resolve()
            specs.append(ModelSpec(served_as or check_model_name(folder.name), folder=folder))
        elif sep:
            raise ModelNotFoundError(
                f"{arg}: no model folder {target} (pass NAME=FOLDER with a folder Model.save "
                "wrote, or NAME=models:/NAME@ALIAS)"
            )
        else:
            check_model_name(target)
            specs.append(
                ModelSpec(target, uri=f"models:/{target}@{DEFAULT_ALIAS}", alias=DEFAULT_ALIAS)
            )
    if not args:
        registry = _registry(workspace, "kiln serve with no model")
        specs = [
            ModelSpec(m.name, uri=f"models:/{m.name}@{DEFAULT_ALIAS}", alias=DEFAULT_ALIAS)
            for m in registry.models()
            if DEFAULT_ALIAS in m.aliases
        ]
        if not specs:
            raise ModelNotFoundError(
                f"no registered model has a {DEFAULT_ALIAS!r} alias to serve; name one "
                "(kiln serve models:/NAME/VERSION, or NAME=FOLDER)"
            )
    seen: set[str] = set()
    for s in specs:
        if s.name in seen:
            raise KilnError(f"two models would be served as {s.name!r}; name one of them: NAME={s}")
        seen.add(s.name)
    return specs


def _registry(workspace: Workspace | None, what: str) -> ModelRegistry:
    from kiln.registry import ModelRegistry

    if workspace is None:
        raise RegistryError(
            f"{what} needs the model registry, and there is no Kiln workspace here (no kiln.toml "
            "in this folder or above, KILN_HOME unset); run from the workspace or set KILN_HOME"
        )
    return ModelRegistry(workspace)


def load_served(spec: ModelSpec, workspace: Workspace | None) -> ServedModel:
    """Load (Model.load: tampered folders are refused), then warm up with a signature row."""
    from kiln.model import Model
    from kiln.registry import ModelVersion

    if spec.folder is not None:
        model = Model.load(spec.folder)
        version = FOLDER_VERSION
    else:
        assert spec.uri is not None
        found = _registry(workspace, spec.uri).resolve(spec.uri)
        assert isinstance(found, ModelVersion)
        model = found.load()
        version = str(found.version)
    return warm(spec.name, version, model)


def warm(name: str, version: str, model: Model) -> ServedModel:
    codec = Codec(model.signature)
    example = codec.example()
    try:
        answer = model.predict(example)
        for _ in range(3):  # the first calls fill caches; later ones are what requests see
            model.predict(example)
    except KilnError as e:
        raise KilnError(
            f"model {name!r} version {version} fails its warm-up prediction on a row built from "
            f"its signature: {e}"
        ) from e
    codec.learn_outputs(answer)
    _warm_few(codec, model, example, answer)
    return ServedModel(name, version, model, codec, f"kiln_{model.trainer.model_type}")


def _warm_few(codec: Codec, model: Model, example: pa.Table, answer: pa.Table) -> None:
    """Warm the few-row path up too (it compiles the transform for rows on its first call), and
    check it on the example: where it does not give the Arrow path's answer, the model is served
    by the Arrow path alone."""
    if not codec.few_rows:
        return
    try:
        few = model.predict_columns(example.to_pydict(), example.num_rows)
    except KilnError:
        few = None
    if few is not None and few != answer.to_pydict():
        codec.few_rows = False


class Deployment:
    """The served models by name; a background thread follows the aliases (hot swap)."""

    def __init__(
        self,
        specs: Sequence[ModelSpec],
        workspace: Workspace | None,
        *,
        splits: Sequence[SplitSpec] = (),
        poll_seconds: float = 2.0,
        on_swap: Callable[[ServedModel, ServedModel], None] | None = None,
    ) -> None:
        split_names = {s.name for s in splits}
        self.specs = [s for s in specs if s.name not in split_names]
        self.split_specs = list(splits)
        self.splits: dict[str, Split] = {}
        self.workspace = workspace
        self.poll_seconds = poll_seconds
        self.on_swap = on_swap
        self.models: dict[str, ServedModel] = {}
        self._split_tags: dict[str, str] = {}  # served name -> its registry traffic_split tag
        self.on_tick: Callable[[], None] | None = None  # called by the thread each poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def load(self) -> None:
        for spec in self.specs:
            self.models[spec.name] = load_served(spec, self.workspace)
        for split in self.split_specs:
            registry = _registry(self.workspace, f"--split {split.name}")
            members = []
            for version, weight in split.weights:
                found = registry.get(split.name, version)
                members.append((warm(split.name, str(version), found.load()), weight))
            self.splits[split.name] = Split(split.name, members)
        self._follow_split_tags()

    def _follow_split_tags(self) -> None:
        """Split the models served by their alias whose registered model has a
        :data:`SPLIT_TAG`; unsplit them when the tag goes. Versions already loaded are reused."""
        followed = [s for s in self.specs if s.uri is not None and s.alias is not None]
        if not followed:
            return
        registry = _registry(self.workspace, "a traffic_split tag")
        for spec in followed:
            tag = registry.model(spec.uri_name).tags.get(SPLIT_TAG, "").strip()
            if tag == self._split_tags.get(spec.name, ""):
                continue
            if not tag:
                self.splits.pop(spec.name, None)
                self._split_tags.pop(spec.name, None)
                _say(f"kiln serve: {spec.name}: tag {SPLIT_TAG} removed; serving its {spec.alias}")
                continue
            wanted = parse_split(f"{spec.uri_name}={tag}", what=f"tag {SPLIT_TAG} of")
            current = self.models[spec.name]
            loaded = {current.version: current}
            if spec.name in self.splits:
                loaded |= self.splits[spec.name].versions
            members = []
            for version, weight in wanted.weights:
                served = loaded.get(str(version))
                if served is None:
                    found = registry.get(spec.uri_name, version)
                    served = warm(spec.name, str(version), found.load())
                members.append((served, weight))
            self.splits[spec.name] = split = Split(spec.name, members)  # one assignment
            self._split_tags[spec.name] = tag
            _say(f"kiln serve: {split.describe()}, from its {SPLIT_TAG} tag")

    def names(self) -> list[str]:
        return sorted({*self.models, *self.splits})

    def describe(self) -> str:
        """The served models, as the ready line lists them."""
        parts = [
            f"{m.name} (version {m.version})"
            for m in self.models.values()
            if m.name not in self.splits
        ]
        return ", ".join([*parts, *(s.describe() for s in self.splits.values())])

    def start_watching(self) -> None:
        followed = [s for s in self.specs if s.alias is not None]
        if (not followed and self.on_tick is None) or self.poll_seconds <= 0:
            return
        self._thread = threading.Thread(
            target=self._watch, args=(followed,), name="kiln-serve-swap", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.workspace is not None:
            self.workspace.close()

    def _watch(self, followed: list[ModelSpec]) -> None:
        registry = _registry(self.workspace, "hot swap") if followed else None
        while not self._stop.wait(self.poll_seconds):
            if self.on_tick is not None:
                try:
                    self.on_tick()
                except (KilnError, OSError) as e:
                    _say(f"kiln serve: {e}")
            try:
                self._follow_split_tags()
            except (KilnError, OSError) as e:
                _say(f"kiln serve: traffic split unchanged: {e}")
            for spec in followed:
                assert registry is not None
                assert spec.alias is not None
                current = self.models[spec.name]
                try:
                    holder = registry.alias(spec.uri_name, spec.alias)
                    if holder is None or str(holder.version) == current.version:
                        continue
                    t0 = time.perf_counter()
                    fresh = warm(spec.name, str(holder.version), holder.load())
                except (KilnError, OSError) as e:
                    _say(
                        f"kiln serve: {spec} not swapped, still serving version "
                        f"{current.version}: {e}"
                    )
                    continue
                self.models[spec.name] = fresh  # one assignment: requests see old or new
                _say(
                    f"kiln serve: {spec.name} version {current.version} -> {fresh.version} "
                    f"(loaded and warmed up in {time.perf_counter() - t0:.2f} s)"
                )
                if self.on_swap is not None:
                    self.on_swap(current, fresh)


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
