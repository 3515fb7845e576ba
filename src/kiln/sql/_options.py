"""``CREATE MODEL``'s ``OPTIONS(...)``: checked against BigQuery ML's option table for the model
type, defaults filled, and turned into a Kiln trainer's settings, a data split, a tuning run or
an AutoML search.

Every option of every model type is declared once, in :data:`_OPTIONS` (its BigQuery type,
default, allowed values and bounds, whether it reaches the trainer and whether it takes
``HPARAM_RANGE`` / ``HPARAM_CANDIDATES``); the checks and their messages come from there. The
trainers' own ``__init__`` then checks what depends on several options at once (``l1_reg`` with
``NORMAL_EQUATION``, exactly one of PCA's two sizes, class weights given twice...).

Data split (BigQuery ML's ``DATA_SPLIT_METHOD``):

- ``AUTO_SPLIT`` (default): fewer than 500 rows, no evaluation rows; 500 to 50,000 rows, 20 % of
  them at random; more than 50,000 rows, 10,000 of them at random.
- ``RANDOM``: ``DATA_SPLIT_EVAL_FRACTION`` (default 0.2) of the rows at random, seeded.
- ``CUSTOM``: ``DATA_SPLIT_COL`` is a BOOL column; rows where it is TRUE or NULL are evaluation
  rows, FALSE ones training rows.
- ``SEQ``: rows sorted by ``DATA_SPLIT_COL`` (NULLs first, as ``ORDER BY`` puts them); the last
  ``DATA_SPLIT_EVAL_FRACTION`` of them are evaluation rows.
- ``NO_SPLIT``: every row trains. ``kmeans``, ``pca`` and ``automl_*`` take no split options
  (AutoML validates on its own).

``DATA_SPLIT_COL`` is never a feature: :func:`split_data` drops it from both parts.
"""

from __future__ import annotations

import copy
import importlib.util
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kiln.errors import SqlError, TrainingError
from kiln.sql._model import HParamCandidates, HParamRange

__all__ = ["ResolvedOptions", "SplitPlan", "resolve_options", "split_data"]

AUTO_SPLIT_MIN_ROWS = 500
"""AUTO_SPLIT: below this many rows every row trains."""
AUTO_SPLIT_FRACTION_MAX_ROWS = 50_000
"""AUTO_SPLIT: up to this many rows, 20 % of them are held out..."""
AUTO_SPLIT_EVAL_ROWS = 10_000
"""... and beyond it, this many."""
AUTO_SPLIT_FRACTION = 0.2
DEFAULT_EVAL_FRACTION = 0.2
SECONDS_PER_HOUR = 3600.0

SPLIT_METHODS = ("AUTO_SPLIT", "RANDOM", "CUSTOM", "SEQ", "NO_SPLIT")

# --------------------------------------------------------------------------- the option table


@dataclass(frozen=True)
class _Option:
    """One option as BigQuery ML declares it, and where it goes in Kiln."""

    type: str  # BigQuery's: FLOAT64, INT64, BOOL, STRING, ARRAY<STRING>, ARRAY<INT64>, STRUCTS
    default: Any = None
    choices: tuple[str, ...] = ()  # STRING options: the values allowed (upper case)
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    setting: bool = True  # passed to the Kiln trainer under the same name
    tunable: bool = False  # takes HPARAM_RANGE / HPARAM_CANDIDATES
    unsupported: Mapping[Any, str] = field(default_factory=dict)  # value -> why refused


_STRUCTS = "ARRAY<STRUCT<STRING, FLOAT64>>"
_NOT_NEGATIVE = {"minimum": 0.0}
_POSITIVE = {"minimum": 0.0, "exclusive_minimum": True}
_FRACTION = {"minimum": 0.0, "maximum": 1.0, "exclusive_minimum": True}  # (0, 1]


def _opt(type_: str, default: Any = None, **kwargs: Any) -> _Option:
    return _Option(type_, default, **kwargs)


_SPLIT = {
    "data_split_method": _opt("STRING", "AUTO_SPLIT", choices=SPLIT_METHODS, setting=False),
    "data_split_eval_fraction": _opt(
        "FLOAT64",
        DEFAULT_EVAL_FRACTION,
        minimum=0.0,
        maximum=1.0,
        exclusive_minimum=True,
        exclusive_maximum=True,
        setting=False,
    ),
    "data_split_col": _opt("STRING", setting=False),
}
_TUNING = {
    "num_trials": _opt("INT64", 1, minimum=1, maximum=100, setting=False),
    "max_parallel_trials": _opt("INT64", 1, minimum=1, setting=False),
    "hparam_tuning_algorithm": _opt(
        "STRING",
        "VIZIER_DEFAULT",
        choices=("VIZIER_DEFAULT", "RANDOM_SEARCH", "GRID_SEARCH"),
        setting=False,
    ),
    "hparam_tuning_objectives": _opt("ARRAY<STRING>", setting=False),
}
_ITERATIONS = {
    "max_iterations": _opt("INT64", 20, minimum=1),
    "early_stop": _opt("BOOL", True),
    "min_rel_progress": _opt("FLOAT64", 0.01, **_NOT_NEGATIVE),
}
_WARM_START = {
    "warm_start": _opt(
        "BOOL",
        False,
        setting=False,
        unsupported={True: "retrain from scratch (CREATE OR REPLACE MODEL without WARM_START)"},
    ),
}
_COMMON = {"kms_key_name": _opt("STRING", setting=False)}  # accepted; no meaning locally
_SUPERVISED = {
    "input_label_cols": _opt("ARRAY<STRING>", ["label"], setting=False),
    "enable_global_explain": _opt("BOOL", False, setting=False),
}
_CLASS_WEIGHTS = {
    "auto_class_weights": _opt("BOOL", False),
    "class_weights": _opt(_STRUCTS),
}
_REG = {
    "l1_reg": _opt("FLOAT64", 0.0, tunable=True, **_NOT_NEGATIVE),
    "l2_reg": _opt("FLOAT64", 0.0, tunable=True, **_NOT_NEGATIVE),
}

_GLM = {
    **_COMMON,
    **_SUPERVISED,
    **_SPLIT,
    **_TUNING,
    **_ITERATIONS,
    **_WARM_START,
    **_REG,
    "optimize_strategy": _opt(
        "STRING",
        "AUTO_STRATEGY",
        choices=("AUTO_STRATEGY", "BATCH_GRADIENT_DESCENT", "NORMAL_EQUATION"),
    ),
    "learn_rate_strategy": _opt("STRING", "LINE_SEARCH", choices=("LINE_SEARCH", "CONSTANT")),
    "learn_rate": _opt("FLOAT64", 0.1, **_POSITIVE),
    "ls_init_learn_rate": _opt("FLOAT64", 0.1, **_POSITIVE),
    "fit_intercept": _opt("BOOL", True),
    "calculate_p_values": _opt(
        "BOOL",
        False,
        setting=False,
        unsupported={True: "Kiln's linear models do not compute p-values yet"},
    ),
    "category_encoding_method": _opt(
        "STRING",
        "ONE_HOT_ENCODING",
        choices=("ONE_HOT_ENCODING", "DUMMY_ENCODING"),
        setting=False,
        unsupported={"DUMMY_ENCODING": "use ONE_HOT_ENCODING (Kiln's linear preprocessing)"},
    ),
}

_TREE_COMMON = {
    **_COMMON,
    **_SUPERVISED,
    **_SPLIT,
    **_TUNING,
    "enable_global_explain": _opt("BOOL", False),  # the tree trainers keep it
    "l1_reg": _opt("FLOAT64", 0.0, tunable=True, **_NOT_NEGATIVE),
    "l2_reg": _opt("FLOAT64", 1.0, tunable=True, **_NOT_NEGATIVE),
    "early_stop": _opt("BOOL", True),
    "min_rel_progress": _opt("FLOAT64", 0.01, **_NOT_NEGATIVE),
    "tree_method": _opt(
        "STRING", "AUTO", choices=("AUTO", "EXACT", "APPROX", "HIST"), tunable=True
    ),
    "min_tree_child_weight": _opt("INT64", 1, tunable=True, **_NOT_NEGATIVE),
    "min_split_loss": _opt("FLOAT64", 0.0, tunable=True, **_NOT_NEGATIVE),
    "colsample_bytree": _opt("FLOAT64", 1.0, tunable=True, **_FRACTION),
    "colsample_bylevel": _opt("FLOAT64", 1.0, tunable=True, **_FRACTION),
    "category_encoding_method": _opt(
        "STRING",
        "LABEL_ENCODING",
        choices=("LABEL_ENCODING", "ONE_HOT_ENCODING", "TARGET_ENCODING"),
        setting=False,
        unsupported={
            "ONE_HOT_ENCODING": "Kiln's trees split on categories natively: use LABEL_ENCODING",
            "TARGET_ENCODING": "Kiln's trees split on categories natively: use LABEL_ENCODING",
        },
    ),
    "approx_global_feature_contrib": _opt("BOOL", False, setting=False),
}
_BOOSTED = {
    **_TREE_COMMON,
    "max_iterations": _opt("INT64", 20, minimum=1),
    "learn_rate": _opt("FLOAT64", 0.3, tunable=True, **_POSITIVE),
    "booster_type": _opt("STRING", "GBTREE", choices=("GBTREE", "DART"), tunable=True),
    "dart_normalize_type": _opt("STRING", "TREE", choices=("TREE", "FOREST"), tunable=True),
    "dropout": _opt("FLOAT64", 0.0, minimum=0.0, maximum=1.0, tunable=True),
    "num_parallel_tree": _opt("INT64", 1, minimum=1, tunable=True),
    "max_tree_depth": _opt("INT64", 6, minimum=1, tunable=True),
    "subsample": _opt("FLOAT64", 1.0, tunable=True, **_FRACTION),
    "colsample_bynode": _opt("FLOAT64", 1.0, tunable=True, **_FRACTION),
}
_FOREST = {
    **_TREE_COMMON,
    "num_parallel_tree": _opt("INT64", 100, minimum=2, tunable=True),
    "max_tree_depth": _opt("INT64", 15, minimum=1, tunable=True),
    "subsample": _opt(
        "FLOAT64", 0.8, tunable=True, exclusive_maximum=True, maximum=1.0, **_POSITIVE
    ),
    "colsample_bynode": _opt("FLOAT64", 0.8, tunable=True, **_FRACTION),
}
_DNN = {
    **_COMMON,
    **_SUPERVISED,
    **_SPLIT,
    **_TUNING,
    **_ITERATIONS,
    **_WARM_START,
    "l1_reg": _opt("FLOAT64", 0.0, tunable=True, **_NOT_NEGATIVE),
    "l2_reg": _opt("FLOAT64", 0.0, tunable=True, **_NOT_NEGATIVE),
    "hidden_units": _opt("ARRAY<INT64>", tunable=True),
    "activation_fn": _opt(
        "STRING",
        "RELU",
        choices=("RELU", "RELU6", "CRELU", "ELU", "SELU", "SIGMOID", "TANH"),
        tunable=True,
    ),
    "optimizer": _opt(
        "STRING",
        "ADAM",
        choices=("ADAM", "ADAGRAD", "FTRL", "RMSPROP", "SGD"),
        tunable=True,
    ),
    "learn_rate": _opt("FLOAT64", 0.001, tunable=True, **_POSITIVE),
    "batch_size": _opt("INT64", minimum=1, tunable=True),
    "dropout": _opt("FLOAT64", 0.0, minimum=0.0, maximum=1.0, exclusive_maximum=True, tunable=True),
}
_KMEANS = {
    **_COMMON,
    **_TUNING,
    **_ITERATIONS,
    **_WARM_START,
    "num_clusters": _opt("INT64", minimum=2, maximum=100, tunable=True),
    "kmeans_init_method": _opt(
        "STRING",
        "RANDOM",
        choices=("RANDOM", "KMEANS++", "CUSTOM"),
        unsupported={"CUSTOM": "use RANDOM or KMEANS++"},
    ),
    "distance_type": _opt("STRING", "EUCLIDEAN", choices=("EUCLIDEAN", "COSINE")),
    "standardize_features": _opt("BOOL", True),
}
_PCA = {
    **_COMMON,
    "num_principal_components": _opt("INT64", minimum=1),
    "pca_explained_variance_ratio": _opt(
        "FLOAT64",
        minimum=0.0,
        maximum=1.0,
        exclusive_minimum=True,
        exclusive_maximum=True,
    ),
    "scale_features": _opt("BOOL", True),
    "pca_solver": _opt("STRING", "AUTO", choices=("FULL", "RANDOMIZED", "AUTO")),
}
_AUTOML = {
    **_COMMON,
    "input_label_cols": _opt("ARRAY<STRING>", ["label"], setting=False),
    "budget_hours": _opt("FLOAT64", 1.0, maximum=72.0, setting=False, **_POSITIVE),
    "optimization_objective": _opt("STRING", setting=False),
}

_OPTIONS: dict[str, dict[str, _Option]] = {
    "linear_reg": _GLM,
    "logistic_reg": {**_GLM, **_CLASS_WEIGHTS},
    "kmeans": _KMEANS,
    "pca": _PCA,
    "boosted_tree_regressor": _BOOSTED,
    "boosted_tree_classifier": {**_BOOSTED, **_CLASS_WEIGHTS},
    "random_forest_regressor": _FOREST,
    "random_forest_classifier": {**_FOREST, **_CLASS_WEIGHTS},
    "dnn_regressor": _DNN,
    "dnn_classifier": {**_DNN, **_CLASS_WEIGHTS},
    "automl_regressor": _AUTOML,
    "automl_classifier": _AUTOML,
}
"""Every option each supported model type takes (``model_type`` itself aside)."""

MODEL_TYPES = tuple(_OPTIONS)

_UNSUPPORTED_MODEL_TYPES: dict[str, str] = {
    "matrix_factorization": "",
    "arima_plus": "",
    "arima_plus_xreg": "",
    "autoencoder": "; for dimensionality reduction use model_type='pca'",
    "tensorflow": "; train a model with kiln sql instead",
    "tensorflow_lite": "; train a model with kiln sql instead",
    "onnx": "; train a model with kiln sql instead",
    "xgboost": "; train model_type='boosted_tree_classifier' or 'boosted_tree_regressor'",
    "dnn_linear_combined_classifier": "; use model_type='dnn_classifier'",
    "dnn_linear_combined_regressor": "; use model_type='dnn_regressor'",
    "contribution_analysis": "",
    "transform_only": "",
}
"""BigQuery ML model types kiln sql knows but cannot train yet (what to use instead)."""

_UNSUPPORTED_OPTIONS: dict[str, str] = {
    "kmeans_init_col": "it goes with kmeans_init_method='CUSTOM'; use RANDOM or KMEANS++",
    "data_split_test_fraction": "hold test rows out in the query instead",
    "model_registry": "models are kept in Kiln's model registry",
    "vertex_ai_model_id": "models are kept in Kiln's model registry",
    "vertex_ai_model_version_aliases": "models are kept in Kiln's model registry",
    "xgboost_version": "Kiln trains trees with LightGBM",
}

_TRAINERS: dict[str, str | None] = {mt: mt for mt in MODEL_TYPES}
_TRAINERS |= {"automl_regressor": None, "automl_classifier": None}
_REGRESSION = ("linear_reg", "boosted_tree_regressor", "random_forest_regressor", "dnn_regressor")
_TASKS = {mt: "regression" for mt in (*_REGRESSION, "automl_regressor")}
_TASKS |= {
    mt: "classification"
    for mt in (
        "logistic_reg",
        "boosted_tree_classifier",
        "random_forest_classifier",
        "dnn_classifier",
        "automl_classifier",
    )
}
_TASKS |= {"kmeans": "clustering", "pca": "dimensionality_reduction"}

# BigQuery ML's OPTIMIZATION_OBJECTIVE -> kiln.automl's metric (what Kiln's AutoML can score)
_AUTOML_OBJECTIVES: dict[str, dict[str, str]] = {
    "automl_regressor": {"MINIMIZE_RMSE": "rmse", "MINIMIZE_MAE": "mean_absolute_error"},
    "automl_classifier": {"MAXIMIZE_AU_ROC": "roc_auc", "MINIMIZE_LOG_LOSS": "log_loss"},
}
_AUTOML_DEFAULT_OBJECTIVE = {"automl_regressor": "MINIMIZE_RMSE", "automl_classifier": None}
_ALGORITHMS = {"VIZIER_DEFAULT": "tpe", "RANDOM_SEARCH": "random", "GRID_SEARCH": "grid"}


# --------------------------------------------------------------------------- results


@dataclass
class SplitPlan:
    """How the training query's rows are split into training and evaluation rows."""

    method: str  # "AUTO_SPLIT" | "RANDOM" | "CUSTOM" | "SEQ" | "NO_SPLIT"
    eval_fraction: float | None = None  # RANDOM and SEQ
    column: str | None = None  # data_split_col: CUSTOM and SEQ


@dataclass
class ResolvedOptions:
    """``OPTIONS(...)`` checked and resolved for one model type (see :func:`resolve_options`)."""

    model_type: str
    trainer_type: str | None
    label: str | None
    settings: dict[str, Any]
    options: dict[str, Any]
    split: SplitPlan
    tuning: dict[str, Any] | None = None
    automl: dict[str, Any] | None = None
    global_explain: bool = False


# --------------------------------------------------------------------------- checking values


def _type_name(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, str):
        return "STRING"
    if isinstance(value, list):
        return "ARRAY"
    if isinstance(value, tuple):
        return "STRUCT"
    if isinstance(value, HParamRange):
        return "HPARAM_RANGE"
    if isinstance(value, HParamCandidates):
        return "HPARAM_CANDIDATES"
    return type(value).__name__


def _wrong_type(name: str, spec: _Option, value: object) -> SqlError:
    return SqlError(
        f"Invalid value for option {name}: expected {spec.type}, got {_type_name(value)} {value!r}"
    )


def _check_bounds(name: str, spec: _Option, number: float) -> None:
    low, high = spec.minimum, spec.maximum
    too_low = low is not None and (number <= low if spec.exclusive_minimum else number < low)
    too_high = high is not None and (number >= high if spec.exclusive_maximum else number > high)
    if too_low or too_high:
        left = "(" if spec.exclusive_minimum else "["
        right = ")" if spec.exclusive_maximum else "]"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "+inf" if high is None else f"{high:g}"
        raise SqlError(
            f"Invalid value for option {name}: {number!r} is out of range; it must lie in "
            f"{left}{lo}, {hi}{right}"
        )


def _check_value(model_type: str, name: str, spec: _Option, value: object) -> Any:
    """``value`` checked against ``spec`` and normalised (choices upper-cased, structs to a
    dict); a value BigQuery ML takes but Kiln cannot honour raises, saying what to use."""
    out: Any
    if spec.type == "FLOAT64":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong_type(name, spec, value)
        if not math.isfinite(value):
            raise SqlError(f"Invalid value for option {name}: {value!r} is not a finite number")
        out = float(value)
        _check_bounds(name, spec, out)
    elif spec.type == "INT64":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong_type(name, spec, value)
        out = int(value)
        _check_bounds(name, spec, out)
    elif spec.type == "BOOL":
        if not isinstance(value, bool):
            raise _wrong_type(name, spec, value)
        out = value
    elif spec.type == "STRING":
        if not isinstance(value, str):
            raise _wrong_type(name, spec, value)
        out = value
        if spec.choices:
            out = value.strip().upper()
            if out not in spec.choices:
                raise SqlError(
                    f"Invalid value for option {name}: {value!r}; use one of "
                    + ", ".join(f"'{c}'" for c in spec.choices)
                )
    elif spec.type == "ARRAY<STRING>":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _wrong_type(name, spec, value)
        out = list(value)
    elif spec.type == "ARRAY<INT64>":
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise _wrong_type(name, spec, value)
        if not value or any(v < 1 for v in value):
            raise SqlError(
                f"Invalid value for option {name}: {value!r}; give at least one layer size, "
                "each at least 1, e.g. [64, 32]"
            )
        out = list(value)
    else:  # ARRAY<STRUCT<STRING, FLOAT64>>: [('label', weight), ...]
        out = _class_weights(name, spec, value)
    key = out.upper() if isinstance(out, str) else out
    if isinstance(key, bool | str) and key in spec.unsupported:
        raise SqlError(
            f"{name}={value!r} is not supported yet by kiln sql ({model_type}): "
            f"{spec.unsupported[key]}"
        )
    return out


def _class_weights(name: str, spec: _Option, value: object) -> dict[str, float]:
    pairs: Any = list(value.items()) if isinstance(value, Mapping) else value
    ok = isinstance(pairs, list) and all(
        isinstance(p, tuple | list)
        and len(p) == 2
        and isinstance(p[0], str | int)
        and not isinstance(p[0], bool)
        and isinstance(p[1], int | float)
        and not isinstance(p[1], bool)
        for p in pairs
    )
    if not ok:
        raise SqlError(
            f"Invalid value for option {name}: expected {spec.type}, e.g. "
            f"[('yes', 0.7), ('no', 0.3)], got {value!r}"
        )
    weights: dict[str, float] = {}
    for label, weight in pairs:
        if not math.isfinite(weight) or weight < 0:
            raise SqlError(
                f"Invalid value for option {name}: the weight of {label!r} is {weight!r}; "
                "weights must be finite and >= 0"
            )
        weights[str(label)] = float(weight)
    return weights


def _check_tuned(model_type: str, name: str, spec: _Option, value: Any) -> Any:
    """An HPARAM_RANGE / HPARAM_CANDIDATES, each end or candidate checked like a plain value;
    returned as kiln.tune's Range / Candidates."""
    from kiln.tune import hparam_candidates, hparam_range

    if not spec.tunable:
        raise SqlError(
            f"Option {name} of model_type '{model_type}' does not take "
            f"{_type_name(value)}; give it a plain {spec.type} value"
        )
    try:
        if isinstance(value, HParamRange):
            if spec.type not in ("FLOAT64", "INT64"):
                raise SqlError(
                    f"Option {name} takes {spec.type} values: use HPARAM_CANDIDATES([...]), "
                    "not HPARAM_RANGE"
                )
            low = _check_value(model_type, name, spec, value.low)
            high = _check_value(model_type, name, spec, value.high)
            return hparam_range(low, high)
        return hparam_candidates([_check_value(model_type, name, spec, v) for v in value.values])
    except TrainingError as e:
        raise SqlError(f"Invalid value for option {name}: {e}") from e


def _as_json(value: Any) -> Any:
    """An effective option value as the model's metadata keeps it."""
    from kiln.tune import Candidates, Range

    if isinstance(value, Range):
        return {"hparam_range": [value.low, value.high]}
    if isinstance(value, Candidates):
        return {"hparam_candidates": list(value.values)}
    return value


# --------------------------------------------------------------------------- resolving


def _model_type(options: Mapping[str, Any]) -> str:
    value = options.get("model_type")
    if value is None:
        raise SqlError(
            "CREATE MODEL needs OPTIONS(model_type = '...'); kiln sql trains: "
            + ", ".join(MODEL_TYPES)
        )
    if not isinstance(value, str):
        raise SqlError(
            f"Invalid value for option model_type: expected STRING, got {_type_name(value)} "
            f"{value!r}"
        )
    model_type = value.strip().lower()
    if model_type in _UNSUPPORTED_MODEL_TYPES:
        raise SqlError(
            f"model_type '{model_type}' is not supported yet by kiln sql"
            f"{_UNSUPPORTED_MODEL_TYPES[model_type]}"
        )
    if model_type not in _OPTIONS:
        raise SqlError(
            f"Unsupported model_type '{value}'; kiln sql trains: {', '.join(MODEL_TYPES)}"
        )
    return model_type


def _column(schema: pa.Schema, name: str, what: str) -> pa.Field:
    """The schema's field named ``name`` (BigQuery column names ignore case)."""
    for f in schema:
        if f.name == name:
            return f
    matches = [f for f in schema if f.name.lower() == name.lower()]
    if len(matches) == 1:
        return matches[0]
    raise SqlError(
        f"{what} {name} not found in the training data; its columns: " + ", ".join(schema.names)
    )


def _numeric(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


def _label(model_type: str, values: dict[str, Any], schema: pa.Schema) -> str | None:
    if "input_label_cols" not in values:
        return None
    columns = values["input_label_cols"]
    if len(columns) != 1:
        raise SqlError(
            f"Option input_label_cols must name exactly one label column for {model_type}, "
            f"got {columns!r}"
        )
    field = _column(schema, columns[0], "Label column")
    if _TASKS[model_type] == "regression" and not _numeric(field.type):
        raise SqlError(
            f"Label column {field.name} is {field.type}; {model_type} predicts numbers: give "
            "a numeric label, or use a classifier"
        )
    return str(field.name)


def _split(
    model_type: str, values: dict[str, Any], given: set[str], schema: pa.Schema, label: str | None
) -> SplitPlan:
    if "data_split_method" not in values:  # kmeans, pca, automl
        return SplitPlan("NO_SPLIT")
    method = values["data_split_method"]
    column = values.get("data_split_col")
    fraction_given = "data_split_eval_fraction" in given
    if method in ("CUSTOM", "SEQ"):
        if column is None:
            raise SqlError(
                f"data_split_method '{method}' needs data_split_col: the column to split on"
            )
        field = _column(schema, column, "Split column")
        column = str(field.name)
        if column == label:
            raise SqlError(f"data_split_col {column} is the label column; split on another one")
        if method == "CUSTOM" and not pa.types.is_boolean(field.type):
            raise SqlError(
                f"data_split_col {column} is {field.type}; with data_split_method 'CUSTOM' it "
                "must be BOOL (TRUE or NULL: evaluation row, FALSE: training row)"
            )
    elif column is not None:
        raise SqlError(
            f"data_split_col applies to data_split_method 'CUSTOM' or 'SEQ', not '{method}'"
        )
    if method in ("RANDOM", "SEQ"):
        return SplitPlan(method, float(values["data_split_eval_fraction"]), column)
    if fraction_given:
        raise SqlError(
            f"data_split_eval_fraction applies to data_split_method 'RANDOM' or 'SEQ', not "
            f"'{method}'"
        )
    return SplitPlan(method, None, column)


def _tuning(
    model_type: str,
    trainer_type: str | None,
    values: dict[str, Any],
    given: set[str],
    space: dict[str, Any],
) -> dict[str, Any] | None:
    if "num_trials" not in values:
        return None
    trials = int(values["num_trials"])
    if trials == 1:
        if space:
            raise SqlError(
                f"Option {sorted(space)[0]} is set to HPARAM_RANGE or HPARAM_CANDIDATES, which "
                "needs num_trials > 1: set num_trials, or give the option a single value"
            )
        return None
    assert trainer_type is not None
    from kiln.tune import OBJECTIVES, default_search_space

    if not space:
        space = {k: v for k, v in default_search_space(trainer_type).items() if k not in given}
        if not space:
            raise SqlError(
                f"num_trials={trials} but every option BigQuery ML tunes for {model_type} is "
                "fixed; give one of them HPARAM_RANGE or HPARAM_CANDIDATES"
            )
    task = _TASKS[model_type]
    objective: str | None = None
    names = values.get("hparam_tuning_objectives")
    if names:
        if len(names) != 1:
            raise SqlError(
                f"hparam_tuning_objectives lists {len(names)} objectives; kiln sql tunes on one"
            )
        objective = names[0].strip().lower()
        if objective not in OBJECTIVES[task]:
            raise SqlError(
                f"Invalid value for option hparam_tuning_objectives: {names[0]!r}; a "
                f"{model_type} model is tuned on one of: "
                + ", ".join(m.upper() for m in OBJECTIVES[task])
            )
    return {
        "num_trials": trials,
        "max_parallel_trials": int(values["max_parallel_trials"]),
        "algorithm": _ALGORITHMS[values["hparam_tuning_algorithm"]],
        "objective": objective,
        "space": space,
    }


def _automl(model_type: str, values: dict[str, Any]) -> dict[str, Any]:
    objectives = _AUTOML_OBJECTIVES[model_type]
    name = values.get("optimization_objective")
    metric: str | None = None
    if name is not None:
        key = name.strip().upper()
        if key not in objectives:
            raise SqlError(
                f"Invalid value for option optimization_objective: {name!r}; kiln sql's "
                f"{model_type} optimises one of: {', '.join(objectives)}"
            )
        values["optimization_objective"] = key
        metric = objectives[key]
    elif _AUTOML_DEFAULT_OBJECTIVE[model_type] is not None:  # (classifiers: per class count)
        values["optimization_objective"] = _AUTOML_DEFAULT_OBJECTIVE[model_type]
        metric = objectives[str(_AUTOML_DEFAULT_OBJECTIVE[model_type])]
    return {
        "time_budget": float(values["budget_hours"]) * SECONDS_PER_HOUR,
        "metric": metric,
        "task": _TASKS[model_type],
    }


def _check_trainer(model_type: str, trainer_type: str, settings: dict[str, Any]) -> None:
    """The trainer's own checks of the settings together (one place: its ``__init__``)."""
    if model_type.startswith("dnn_"):
        try:
            missing = importlib.util.find_spec("torch") is None
        except ValueError:  # torch in sys.modules as None: blocked
            missing = True
        if missing:
            raise SqlError(
                f"model_type '{model_type}' needs PyTorch, which is not installed: "
                "pip install 'kiln[dl]'"
            )
    from kiln.train import get_trainer

    try:
        get_trainer(trainer_type)(**settings)
    except TrainingError as e:
        raise SqlError(f"Invalid OPTIONS for {model_type}: {e}") from e


def resolve_options(options: Mapping[str, Any], schema: pa.Schema) -> ResolvedOptions:
    """Check ``OPTIONS(...)`` (keys lower-cased, values as the parser gives them) against
    BigQuery ML's table for the model type and the training query's ``schema``; fill the
    defaults; say what to train and how.

    Raises :class:`~kiln.errors.SqlError` naming the option for an unknown option, a value of
    the wrong type or out of range, a value Kiln cannot honour yet, a label or split column not
    in the data, or HPARAM_RANGE without ``num_trials`` > 1."""
    if not isinstance(options, Mapping):
        raise SqlError(f"OPTIONS must be name = value pairs, got {type(options).__name__}")
    options = {str(k).lower(): v for k, v in options.items()}
    model_type = _model_type(options)
    table = _OPTIONS[model_type]
    trainer_type = _TRAINERS[model_type]
    values: dict[str, Any] = {n: copy.deepcopy(spec.default) for n, spec in table.items()}
    given: set[str] = set()
    space: dict[str, Any] = {}
    for name, value in options.items():
        if name == "model_type":
            continue
        if name in _UNSUPPORTED_OPTIONS:
            raise SqlError(
                f"Option {name} is not supported yet by kiln sql: {_UNSUPPORTED_OPTIONS[name]}"
            )
        spec = table.get(name)
        if spec is None:
            raise SqlError(
                f"Unknown option: {name} (model_type '{model_type}'); its options: "
                + ", ".join(sorted(table))
            )
        given.add(name)
        if value is None:  # NULL: the default
            continue
        if isinstance(value, HParamRange | HParamCandidates):
            space[name] = _check_tuned(model_type, name, spec, value)
            values[name] = space[name]
        else:
            values[name] = _check_value(model_type, name, spec, value)
    if model_type in ("linear_reg", "logistic_reg"):
        strategy = values["learn_rate_strategy"]
        if strategy == "LINE_SEARCH" and "learn_rate" in given:
            raise SqlError(
                "Option learn_rate applies to learn_rate_strategy 'CONSTANT'; with 'LINE_SEARCH'"
                " set ls_init_learn_rate instead"
            )
        if strategy == "CONSTANT" and "ls_init_learn_rate" in given:
            raise SqlError(
                "Option ls_init_learn_rate applies to learn_rate_strategy 'LINE_SEARCH'; with "
                "'CONSTANT' set learn_rate instead"
            )
    label = _label(model_type, values, schema)
    split = _split(model_type, values, given, schema, label)
    tuning = _tuning(model_type, trainer_type, values, given, space)
    automl = _automl(model_type, values) if trainer_type is None else None
    settings = {
        name: values[name]
        for name, spec in table.items()
        if spec.setting and name not in space and not (tuning and name in tuning["space"])
    }
    if trainer_type is not None:
        _check_trainer(model_type, trainer_type, settings)
    effective = {"model_type": model_type, **{k: _as_json(v) for k, v in values.items()}}
    if tuning is not None:  # the options tuned by default show their search space
        effective |= {k: _as_json(v) for k, v in tuning["space"].items()}
    return ResolvedOptions(
        model_type=model_type,
        trainer_type=trainer_type,
        label=label,
        settings=settings,
        options=effective,
        split=split,
        tuning=tuning,
        automl=automl,
        global_explain=bool(values.get("enable_global_explain", False)),
    )


# --------------------------------------------------------------------------- splitting


def _random_eval_mask(rows: int, eval_rows: int, seed: int) -> np.ndarray[Any, Any]:
    mask = np.zeros(rows, dtype=bool)
    mask[np.random.default_rng(seed).permutation(rows)[:eval_rows]] = True
    return mask


def split_data(
    table: pa.Table, plan: SplitPlan, *, label: str | None, seed: int = 0
) -> tuple[pa.Table, pa.Table | None]:
    """The training and evaluation rows under ``plan`` (see this module's docstring), each in
    the input's order, without the ``data_split_col``; evaluation is None when no row is held
    out (NO_SPLIT, AUTO_SPLIT under 500 rows, a fraction of too few rows, no TRUE/NULL row).
    ``label`` is the label column, which is never the split column."""
    rows = table.num_rows
    column = plan.column
    if column is not None:
        if column not in table.column_names:
            raise SqlError(
                f"Split column {column} not found in the training data; its columns: "
                + ", ".join(table.column_names)
            )
        if column == label:
            raise SqlError(f"data_split_col {column} is the label column; split on another one")
    mask: Any
    if plan.method == "NO_SPLIT":
        mask = None
    elif plan.method == "AUTO_SPLIT":
        if rows < AUTO_SPLIT_MIN_ROWS:
            mask = None
        elif rows <= AUTO_SPLIT_FRACTION_MAX_ROWS:
            mask = _random_eval_mask(rows, round(rows * AUTO_SPLIT_FRACTION), seed)
        else:
            mask = _random_eval_mask(rows, AUTO_SPLIT_EVAL_ROWS, seed)
    elif plan.method == "RANDOM":
        fraction = DEFAULT_EVAL_FRACTION if plan.eval_fraction is None else plan.eval_fraction
        mask = _random_eval_mask(rows, round(rows * fraction), seed)
    elif plan.method == "CUSTOM":
        assert column is not None
        flags = table[column]
        if not pa.types.is_boolean(flags.type):
            raise SqlError(
                f"data_split_col {column} is {flags.type}; with data_split_method 'CUSTOM' it "
                "must be BOOL (TRUE or NULL: evaluation row, FALSE: training row)"
            )
        mask = pc.fill_null(flags, True).to_numpy(zero_copy_only=False).astype(bool)
    elif plan.method == "SEQ":
        assert column is not None
        fraction = DEFAULT_EVAL_FRACTION if plan.eval_fraction is None else plan.eval_fraction
        try:
            order = pc.array_sort_indices(
                table[column], order="ascending", null_placement="at_start"
            ).to_numpy()
        except pa.ArrowNotImplementedError as e:
            raise SqlError(
                f"data_split_col {column} ({table[column].type}) cannot be ordered; "
                "data_split_method 'SEQ' needs an orderable column (a number, date, string...)"
            ) from e
        mask = np.zeros(rows, dtype=bool)
        eval_rows = round(rows * fraction)
        if eval_rows:
            mask[order[rows - eval_rows :]] = True
    else:
        raise SqlError(
            f"Invalid data_split_method '{plan.method}'; use one of {', '.join(SPLIT_METHODS)}"
        )
    if column is not None:
        table = table.drop_columns([column])
    if mask is None or not mask.any():
        return table, None
    return table.filter(pa.array(~mask)), table.filter(pa.array(mask))
