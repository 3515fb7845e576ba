"""Checks shared by the built-in trainers: settings and input arrays, each failure a
:class:`~kiln.errors.TrainingError` that names the option (or array) and what to do."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from kiln.errors import TrainingError

if TYPE_CHECKING:
    from kiln.transform import OneHotFeatures

__all__ = [
    "Label",
    "check_bool",
    "check_choice",
    "check_class_weights",
    "check_labels",
    "check_matrix",
    "check_number",
    "check_rows",
    "class_codes",
    "elapsed_ms",
]

Array = np.ndarray[Any, np.dtype[Any]]


def check_choice(model_type: str, option: str, value: object, allowed: Sequence[str]) -> str:
    """``value`` upper-cased if it is one of ``allowed`` (BigQuery ML's spelling), else raise."""
    if isinstance(value, str) and value.upper() in allowed:
        return value.upper()
    raise TrainingError(
        f"{model_type}: {option}={value!r} is not supported; use one of {', '.join(allowed)}"
    )


def check_number(
    model_type: str,
    option: str,
    value: object,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
    integer: bool = False,
) -> float:
    """``value`` as a float if it is a finite number within bounds, else raise naming the option."""
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int | np.integer) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type:
        raise TrainingError(f"{model_type}: {option} must be {kind}, got {value!r}")
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise TrainingError(f"{model_type}: {option} must be finite, got {value!r}")
    if minimum is not None and (number <= minimum if exclusive_minimum else number < minimum):
        bound = f"> {minimum:g}" if exclusive_minimum else f">= {minimum:g}"
        raise TrainingError(f"{model_type}: {option} must be {bound}, got {value!r}")
    if maximum is not None and (number >= maximum if exclusive_maximum else number > maximum):
        bound = f"< {maximum:g}" if exclusive_maximum else f"<= {maximum:g}"
        raise TrainingError(f"{model_type}: {option} must be {bound}, got {value!r}")
    return number


def check_matrix(
    model_type: str,
    X: object,
    name: str = "X",
    n_features: int | None = None,
    *,
    allow_nan: bool = False,
) -> Array:
    """``X`` as a float64 rows x features matrix without infinity, and without NaN unless
    ``allow_nan`` (trees route NaN as missing)."""
    try:
        array = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TrainingError(
            f"{model_type}: {name} must be numeric (transform categories first): {exc}"
        ) from exc
    if array.ndim != 2:
        raise TrainingError(
            f"{model_type}: {name} must be a 2-D matrix (rows x features), got {array.ndim}-D"
        )
    if array.shape[0] == 0:
        raise TrainingError(f"{model_type}: {name} has no rows")
    if n_features is not None and array.shape[1] != n_features:
        raise TrainingError(
            f"{model_type}: {name} has {array.shape[1]} features; the model was fitted on"
            f" {n_features}"
        )
    if allow_nan:
        infinite = np.isinf(array)
        if infinite.any():
            row, column = (int(i) for i in np.argwhere(infinite)[0])
            raise TrainingError(
                f"{model_type}: {name} has infinite values (first: row {row}, column {column});"
                " replace them (NaN is fine: trees treat it as missing)"
            )
        return array
    bad = ~np.isfinite(array)
    if bad.any():
        rows = int(bad.any(axis=1).sum())
        first = int(np.argwhere(bad)[0][0])
        raise TrainingError(
            f"{model_type}: {name} has NaN or infinite values in {rows} row(s)"
            f" (first: row {first}); impute or drop them before training"
        )
    return array


def check_features(
    model_type: str, X: object, name: str = "X", *, n_features: int | None = None
) -> Array | OneHotFeatures:
    """:func:`check_matrix` of ``X``, or for :class:`kiln.transform.OneHotFeatures` (the one-hot
    blocks held as codes) of its dense columns, its width checked the same way."""
    from kiln.transform import OneHotFeatures

    if not isinstance(X, OneHotFeatures):
        return check_matrix(model_type, X, name, n_features=n_features)
    check_matrix(model_type, X.dense, name)
    if n_features is not None and X.shape[1] != n_features:
        raise TrainingError(
            f"{model_type}: {name} has {X.shape[1]} features; the model was fitted on {n_features}"
        )
    return X


class Shaped(Protocol):
    """Anything with an array's ``shape``: an array, or one-hot features held as codes."""

    @property
    def shape(self) -> tuple[int, ...]: ...


def check_rows(model_type: str, X: Shaped, y: Array, names: tuple[str, str] = ("X", "y")) -> None:
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise TrainingError(
            f"{model_type}: {names[1]} must be 1-D with one value per row of {names[0]}"
            f" ({X.shape[0]} rows), got shape {y.shape}"
        )


def _missing(y: Array) -> Array:
    if y.dtype.kind == "f":
        return np.isnan(y)
    if y.dtype.kind == "O":
        return np.array([v is None or (isinstance(v, float) and math.isnan(v)) for v in y])
    return np.zeros(y.shape, dtype=bool)


def check_labels(model_type: str, y: object, name: str = "y", numeric: bool = False) -> Array:
    """``y`` as a 1-D array without missing values (float64 when ``numeric``)."""
    array = np.asarray(y)
    if array.ndim != 1:
        raise TrainingError(f"{model_type}: {name} must be 1-D, got shape {array.shape}")
    missing = _missing(array)
    if missing.any():
        raise TrainingError(
            f"{model_type}: {name} has {int(missing.sum())} missing (NaN/None) label(s)"
            f" (first: row {int(np.argmax(missing))}); drop those rows before training"
        )
    if numeric:
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TrainingError(f"{model_type}: {name} must be numeric: {exc}") from exc
        if not np.isfinite(array).all():
            raise TrainingError(f"{model_type}: {name} has infinite values")
    return array


def check_bool(model_type: str, option: str, value: object) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TrainingError(f"{model_type}: {option} must be true or false, got {value!r}")
    return bool(value)


def elapsed_ms(started: float) -> int:
    """Milliseconds since ``started`` (a ``time.perf_counter()`` reading)."""
    return round((time.perf_counter() - started) * 1000)


Label = str | int | float


def check_class_weights(
    model_type: str, auto_class_weights: object, class_weights: object
) -> tuple[bool, dict[Label, float] | None]:
    """BigQuery ML's ``AUTO_CLASS_WEIGHTS`` / ``CLASS_WEIGHTS`` options, checked."""
    auto = check_bool(model_type, "auto_class_weights", auto_class_weights)
    if class_weights is None:
        return auto, None
    if not isinstance(class_weights, Mapping):
        raise TrainingError(
            f"{model_type}: class_weights must map a label to its weight, got {class_weights!r}"
        )
    if auto:
        raise TrainingError(f"{model_type}: set auto_class_weights or class_weights, not both")
    return auto, {
        label: check_number(model_type, f"class_weights[{label!r}]", w, minimum=0.0)
        for label, w in class_weights.items()
    }


def class_codes(
    model_type: str,
    y: Array,
    *,
    auto_class_weights: bool,
    class_weights: Mapping[Label, float] | None,
) -> tuple[Array, Array, Array]:
    """A classifier's ``classes_`` (sorted), each row's class code, and each row's class weight
    (inverse frequency with ``auto_class_weights``, else ``class_weights`` or 1)."""
    try:
        classes, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
    except TypeError as exc:
        raise TrainingError(
            f"{model_type}: the labels in y mix types that cannot be ordered ({exc}); cast the "
            "label column to one type"
        ) from exc
    if classes.shape[0] < 2:
        raise TrainingError(
            f"{model_type}: y holds a single class ({classes[0]!r}); a classifier needs at "
            "least two"
        )
    classes = np.asarray(classes.tolist())
    codes = codes.reshape(-1)
    if auto_class_weights:
        per_class = y.shape[0] / (classes.shape[0] * counts)
    else:
        per_class = np.ones(classes.shape[0])
        as_text = [str(c) for c in classes.tolist()]
        for label, weight in (class_weights or {}).items():
            hits = np.flatnonzero(classes == np.asarray(label))
            if hits.size == 0:  # a label written as text, as BigQuery ML's CLASS_WEIGHTS and
                # JSON (a saved model's settings) have it: 1 is "1"
                hits = np.flatnonzero(np.asarray(as_text) == str(label))
            if hits.size == 0:
                known = ", ".join(repr(c) for c in classes.tolist())
                raise TrainingError(
                    f"{model_type}: class_weights names {label!r}, which is not a class in y "
                    f"({known})"
                )
            per_class[hits[0]] = weight
    return classes, codes, per_class[codes]


def eval_codes(model_type: str, classes: Array, y: Array) -> Array:
    """Each eval label's position in ``classes`` (sorted, as :func:`class_codes` made them); a
    label the fit never saw is an error."""
    values = np.asarray(y.tolist())
    positions = np.clip(np.searchsorted(classes, values), 0, classes.shape[0] - 1)
    unknown = classes[positions] != values
    if unknown.any():
        raise TrainingError(
            f"{model_type}: y_eval has {int(unknown.sum())} label(s) not seen in y"
            f" (first: {y[int(np.argmax(unknown))]!r})"
        )
    return positions


def check_categorical(model_type: str, categorical: Sequence[int], n_features: int) -> list[int]:
    """The columns holding category codes, each a column of ``X``."""
    columns = sorted({int(c) for c in categorical})
    bad = [c for c in columns if not 0 <= c < n_features]
    if bad:
        raise TrainingError(
            f"{model_type}: categorical column(s) {bad} out of range for {n_features} features"
        )
    return columns


def check_eval_pair(
    model_type: str, X_eval: object, y_eval: object, early_stop_rounds: int | None = None
) -> None:
    """An eval set is both ``X_eval`` and ``y_eval``, or neither; ``early_stop_rounds`` (Kiln's
    patience) needs one to watch."""
    if (X_eval is None) != (y_eval is None):
        raise TrainingError(f"{model_type}: give both X_eval and y_eval, or neither")
    if early_stop_rounds is not None and X_eval is None:
        raise TrainingError(
            f"{model_type}: early_stop_rounds needs an eval set to watch: pass X_eval and y_eval"
            " (Model.fit's eval_table), or leave early_stop_rounds unset"
        )


def sample_weights(model_type: str, sample_weight: object, rows: int) -> Array:
    """``fit``'s ``sample_weight``: one finite weight >= 0 per row, not all 0 (all 1 when None)."""
    if sample_weight is None:
        return np.ones(rows)
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.shape != (rows,) or not np.isfinite(weights).all() or (weights < 0).any():
        raise TrainingError(
            f"{model_type}: sample_weight must hold one finite weight >= 0 per row ({rows})"
        )
    if weights.sum() <= 0:
        raise TrainingError(f"{model_type}: sample_weight sums to zero; nothing to learn from")
    return weights
