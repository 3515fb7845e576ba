"""Search spaces: BigQuery ML's ``HPARAM_RANGE`` and ``HPARAM_CANDIDATES``, checked against a
trainer's own options, and the default space BigQuery ML searches per model type.

- ``hparam_range(low, high)`` is ``HPARAM_RANGE(min, max)``: a numeric interval. It stays integer
  when both ends are integers and the option takes integers (``max_tree_depth``,
  ``num_clusters``…); ``log`` picks the scale (``None``: the option's scale in BigQuery ML's
  table: ``LOG`` for ``l1_reg``, ``l2_reg`` and ``batch_size``, ``LINEAR`` otherwise). A log range
  from 0 (BigQuery ML's ``(0, 10]``) starts at ``high / LOG_FLOOR_DIVISOR`` instead: a log scale
  cannot reach 0.
- ``hparam_candidates([...])`` is ``HPARAM_CANDIDATES([...])``: a list of values tried as
  categories (strings, numbers, booleans, or lists such as ``hidden_units`` sizes).

In JSON (the Tuner component, the CLI) the same two read ``{"range": [low, high]}`` (with an
optional ``"log": true``) and ``{"candidates": [...]}``.

:func:`default_search_space` gives, per model type, the options BigQuery ML documents a default
range for (its hyperparameter tuning overview), restricted to the options Kiln's trainers have
and to values they accept: an open end such as ``learn_rate``'s ``(0, 1]`` starts at a small
positive value, since a rate of 0 learns nothing and Kiln refuses it. CatBoost, which BigQuery
ML does not have, gets Kiln's own default ranges (learning rate on a log scale, depth 4-10).
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from kiln.errors import TrainingError
from kiln.train import Trainer, get_trainer

__all__ = [
    "LOG_FLOOR_DIVISOR",
    "Candidates",
    "Dimension",
    "Range",
    "default_search_space",
    "hparam_candidates",
    "hparam_range",
    "parse_search_space",
]

LOG_FLOOR_DIVISOR = 1e6
"""A log-scale range from 0 starts at ``high / LOG_FLOOR_DIVISOR`` (log scales cannot reach 0)."""

MAX_GRID_POINTS = 100_000
"""Grid search refuses a grid with more points than this (the product of every dimension)."""

Kind = Literal["int", "float", "bool", "str", "list", "any"]


@dataclass(frozen=True)
class Range:
    """``HPARAM_RANGE(low, high)``: a numeric interval; ``log=None``: the option's own scale."""

    low: float
    high: float
    log: bool | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"range": [self.low, self.high]}
        if self.log is not None:
            out["log"] = self.log
        return out


@dataclass(frozen=True)
class Candidates:
    """``HPARAM_CANDIDATES([...])``: values tried as unordered categories."""

    values: tuple[Any, ...]

    def to_json(self) -> dict[str, Any]:
        return {"candidates": list(self.values)}


Dimension = Range | Candidates


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def hparam_range(low: float, high: float, *, log: bool | None = None) -> Range:
    """BigQuery ML's ``HPARAM_RANGE(low, high)``: ``low`` below ``high``, both finite numbers."""
    for name, value in (("low", low), ("high", high)):
        if not _is_number(value) or not math.isfinite(value):
            raise TrainingError(
                f"hparam_range: {name} must be a finite number, got {value!r}; write e.g. "
                "hparam_range(0.001, 1.0)"
            )
    if low >= high:
        raise TrainingError(
            f"hparam_range({low!r}, {high!r}): low must be below high; to fix an option at one "
            "value, put it in settings instead"
        )
    if log is not None and not isinstance(log, bool):
        raise TrainingError(f"hparam_range: log must be True, False or None, got {log!r}")
    return Range(low, high, log)


def hparam_candidates(values: Sequence[Any]) -> Candidates:
    """BigQuery ML's ``HPARAM_CANDIDATES([...])``: at least one value, none repeated."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise TrainingError(
            f"hparam_candidates takes a list of values, e.g. hparam_candidates([4, 6, 8]), "
            f"got {values!r}"
        )
    if len(values) == 0:
        raise TrainingError("hparam_candidates needs at least one value, got an empty list")
    keys = [_key(v) for v in values]
    if len(set(keys)) != len(keys):
        raise TrainingError(f"hparam_candidates lists a value twice: {list(values)!r}")
    return Candidates(tuple(values))


def _key(value: Any) -> str:
    """A value's identity as a category: its JSON text (so 1 and 1.0 differ from True)."""
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TrainingError(
            f"candidate {value!r} is not a JSON value (str, number, bool, list): {e}"
        ) from e


# --------------------------------------------------------------------------- options


# BigQuery ML's LOG-scale options; every other numeric option is LINEAR.
_LOG_OPTIONS = frozenset({"l1_reg", "l2_reg", "batch_size"})
# Options whose type the trainer's default does not say (None, or an int default of a float).
_KINDS: dict[str, Kind] = {
    "num_clusters": "int",
    "batch_size": "int",
    "hidden_units": "list",
    "min_tree_child_weight": "float",
    "class_weights": "any",
    "num_principal_components": "int",
    "pca_explained_variance_ratio": "float",
}


def trainer_options(trainer_cls: type[Trainer]) -> dict[str, Kind]:
    """The keyword options of a trainer's ``__init__`` (up its classes while one takes
    ``**settings``), each with the kind of value it takes."""
    options: dict[str, Kind] = {}
    for cls in trainer_cls.__mro__:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        more = False
        for p in inspect.signature(init).parameters.values():
            if p.name == "self" or p.kind == p.VAR_POSITIONAL:
                continue
            if p.kind == p.VAR_KEYWORD:
                more = True
                continue
            if p.name not in options:
                options[p.name] = _KINDS.get(p.name) or _kind_of(p.default)
        if not more:
            break
    return options


def _kind_of(default: object) -> Kind:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, str):
        return "str"
    return "any"


# --------------------------------------------------------------------------- default spaces

_GLM: dict[str, Dimension] = {
    "l1_reg": Range(0.0, 10.0, True),
    "l2_reg": Range(0.0, 10.0, True),
}
_BOOSTED: dict[str, Dimension] = {
    "learn_rate": Range(0.01, 1.0, False),  # BigQuery ML: [0, 1] LINEAR; 0 learns nothing
    "max_tree_depth": Range(1, 10, False),
    "l1_reg": Range(0.0, 10.0, True),
    "l2_reg": Range(0.0, 10.0, True),
    "subsample": Range(0.1, 1.0, False),  # (0, 1]
    "colsample_bytree": Range(0.1, 1.0, False),  # [0, 1]; Kiln needs > 0
    "min_tree_child_weight": Range(0.0, 20.0, False),
    "min_split_loss": Range(0.0, 20.0, False),
}
_FOREST: dict[str, Dimension] = {
    "num_parallel_tree": Range(2, 200, False),
    "max_tree_depth": Range(1, 20, False),
    "l1_reg": Range(0.0, 10.0, True),
    "l2_reg": Range(0.0, 10.0, True),
    "subsample": Range(0.1, 0.95, False),  # (0, 1): a forest needs each tree to see a sample
    "colsample_bynode": Range(0.1, 1.0, False),
    "min_tree_child_weight": Range(0.0, 20.0, False),
}
_DNN: dict[str, Dimension] = {
    "batch_size": Range(16, 1024, True),
    "dropout": Range(0.0, 0.8, False),
    "learn_rate": Range(1e-4, 1.0, True),  # BigQuery ML: [0, 1] LINEAR; log suits Adam's rates
    "l1_reg": Range(0.0, 10.0, True),
    "l2_reg": Range(0.0, 10.0, True),
    "optimizer": Candidates(("ADAGRAD", "ADAM", "FTRL", "RMSPROP", "SGD")),
}
_CATBOOST: dict[str, Dimension] = {  # Kiln's (BigQuery ML has no CatBoost): its usual ranges
    "learn_rate": Range(0.01, 0.3, True),
    "max_tree_depth": Range(4, 10, False),
    "l2_reg": Range(1.0, 10.0, True),
    "colsample_bylevel": Range(0.5, 1.0, False),
}
_DEFAULTS: dict[str, dict[str, Dimension]] = {
    "linear_reg": _GLM,
    "logistic_reg": _GLM,
    "kmeans": {"num_clusters": Range(2, 10, False)},
    "boosted_tree_classifier": _BOOSTED,
    "boosted_tree_regressor": _BOOSTED,
    "random_forest_classifier": _FOREST,
    "random_forest_regressor": _FOREST,
    "dnn_classifier": _DNN,
    "dnn_regressor": _DNN,
    "catboost_classifier": _CATBOOST,
    "catboost_regressor": _CATBOOST,
}


def default_search_space(model_type: str) -> dict[str, Range | Candidates]:
    """The options BigQuery ML tunes for ``model_type`` when given no range, with its default
    ranges and scales (adapted where noted in this module's docstring)."""
    space = _DEFAULTS.get(model_type.lower())
    if space is None:
        get_trainer(model_type)  # an unknown model_type names the known ones
        tunable = ", ".join(sorted(_DEFAULTS))
        raise TrainingError(
            f"{model_type} has no default search space (BigQuery ML tunes {tunable}); pass "
            "search_space={option: hparam_range(...) or hparam_candidates([...])}"
        )
    return dict(space)


# --------------------------------------------------------------------------- checking


def _dimension(where: str, value: Any) -> Dimension:
    """A Range or Candidates from itself or its JSON form."""
    if isinstance(value, Range | Candidates):
        return value
    form = (
        'hparam_range(low, high) or hparam_candidates([...]); in JSON {"range": [low, high]} '
        '(optionally with "log": true) or {"candidates": [...]}'
    )
    if isinstance(value, Mapping):
        keys = set(value)
        if keys in ({"range"}, {"range", "log"}):
            bounds = value["range"]
            if (
                isinstance(bounds, str | bytes)
                or not isinstance(bounds, Sequence)
                or len(bounds) != 2
            ):
                raise TrainingError(f"{where}: range must be [low, high], got {bounds!r}")
            try:
                return hparam_range(bounds[0], bounds[1], log=value.get("log"))
            except TrainingError as e:
                raise TrainingError(f"{where}: {e}") from None
        if keys == {"candidates"}:
            try:
                return hparam_candidates(value["candidates"])
            except TrainingError as e:
                raise TrainingError(f"{where}: {e}") from None
    raise TrainingError(f"{where} must be {form}; got {value!r}")


def parse_search_space(space: Mapping[str, Any]) -> dict[str, Dimension]:
    """Range and Candidates from themselves or their JSON forms, option names lower-cased."""
    if not isinstance(space, Mapping):
        raise TrainingError(
            f"search_space must be a mapping of option name to range or candidates, got "
            f"{type(space).__name__}"
        )
    out: dict[str, Dimension] = {}
    for name, value in space.items():
        if not isinstance(name, str):
            raise TrainingError(f"search_space keys must be option names, got {name!r}")
        out[name.lower()] = _dimension(f"search_space[{name!r}]", value)
    if not out:
        raise TrainingError("search_space is empty: name at least one option to tune")
    return out


@dataclass(frozen=True)
class Resolved:
    """One option's dimension checked against its trainer: bounds final, scale decided."""

    name: str
    dimension: Dimension
    integer: bool = False
    log: bool = False

    @property
    def low(self) -> float:
        assert isinstance(self.dimension, Range)
        return self.dimension.low

    @property
    def high(self) -> float:
        assert isinstance(self.dimension, Range)
        return self.dimension.high


def resolve(
    model_type: str, space: Mapping[str, Dimension], settings: Mapping[str, Any]
) -> list[Resolved]:
    """Check every option of ``space`` against ``model_type``'s trainer: a known option not also
    fixed in ``settings``, a range only on a numeric option (integer ends for an integer option),
    and every end and candidate a value the trainer accepts (it says which is not, and why)."""
    trainer_cls = get_trainer(model_type)
    options = trainer_options(trainer_cls)
    _construct(trainer_cls, model_type, dict(settings), "settings")
    resolved: list[Resolved] = []
    for name, dim in space.items():
        if name not in options:
            raise TrainingError(
                f"{model_type} has no option {name!r} to tune; its options: "
                f"{', '.join(sorted(options))}"
            )
        if name in settings:
            raise TrainingError(
                f"option {name!r} is both fixed in settings and in the search space; keep one"
            )
        kind = options[name]
        where = f"search_space[{name!r}]"
        if isinstance(dim, Candidates):
            for value in dim.values:
                _construct(trainer_cls, model_type, {**settings, name: value}, where)
            resolved.append(Resolved(name, dim))
            continue
        if kind not in ("int", "float", "any"):
            raise TrainingError(
                f"{where}: {name} takes {'true/false' if kind == 'bool' else 'a ' + kind} "
                f"values, not a numeric range; use hparam_candidates([...])"
            )
        integer = kind == "int"
        if integer and not all(float(v).is_integer() for v in (dim.low, dim.high)):
            raise TrainingError(
                f"{where}: {name} takes integers, so the range ends must be integers; got "
                f"[{dim.low!r}, {dim.high!r}]"
            )
        integer = integer or (
            kind == "any" and isinstance(dim.low, int) and isinstance(dim.high, int)
        )
        log = dim.log if dim.log is not None else name in _LOG_OPTIONS
        low, high = dim.low, dim.high
        if log and low < 0:
            raise TrainingError(
                f"{where}: a log-scale range needs low >= 0, got {low!r}; pass log=False"
            )
        if log and low == 0:
            floor = high / LOG_FLOOR_DIVISOR
            low = max(1, math.ceil(floor)) if integer else floor
        if integer:
            low, high = int(low), int(high)
        else:
            low, high = float(low), float(high)
        for end in (low, high):
            _construct(trainer_cls, model_type, {**settings, name: end}, where)
        resolved.append(Resolved(name, Range(low, high, log), integer, log))
    return resolved


def _construct(
    trainer_cls: type[Trainer], model_type: str, settings: dict[str, Any], where: str
) -> None:
    try:
        trainer_cls(**settings)
    except TrainingError as e:
        raise TrainingError(f"{where}: {e}") from None
    except TypeError as e:
        raise TrainingError(f"{where}: {model_type} refused these settings: {e}") from None


def grid(resolved: Sequence[Resolved]) -> dict[str, list[Any]]:
    """Every point of each dimension for grid search: candidates, and integer ranges in full."""
    points: dict[str, list[Any]] = {}
    total = 1
    for r in resolved:
        if isinstance(r.dimension, Candidates):
            points[r.name] = list(r.dimension.values)
        elif r.integer:
            points[r.name] = list(range(int(r.low), int(r.high) + 1))
        else:
            raise TrainingError(
                f"grid search needs discrete values, but {r.name!r} is a continuous range "
                f"[{r.low!r}, {r.high!r}]; give it hparam_candidates([...]) or use "
                "algorithm='tpe' or 'random'"
            )
        total *= len(points[r.name])
    if total > MAX_GRID_POINTS:
        raise TrainingError(
            f"the grid has {total} points (more than {MAX_GRID_POINTS}); narrow the ranges or "
            "use algorithm='tpe' or 'random'"
        )
    return points
