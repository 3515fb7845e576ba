"""The standard pipeline: TFX's, on Kiln's spine (Google's MLOps level 1: the pipeline is what
gets deployed, and a new model replaces the current one only when it is validated against it)::

    ExampleGen ─► StatisticsGen ─► SchemaGen | ImportSchema ─► ExampleValidator
        │              └─► DriftCheck (vs production's data;       │ (anomalies stop the run)
        │                   recorded, never stopping)              │
        ├──────────────► AutoML | Transform ─► Trainer ◄────────────┘
        │                          │
        ├──► ChampionEvaluator ◄───┤ (against the model holding the alias; value and change
        │          │               │  thresholds, per slice)
        │          ▼               ▼
        │       Pusher ◄──── InfraValidator (fresh process, warm-up, latency budget)
        │          (registers a version; moves the alias only when both blessed it)
        └──► BulkInferrer (optional)

Copy it and change it, or run it as it is: ``kiln train DATA --target COL`` runs it, and so does
``kiln run CONFIG.yaml`` with a YAML file of these parameters (:func:`load_config`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kiln.components import (
    AutoML,
    BulkInferrer,
    ChampionEvaluator,
    DriftCheck,
    ExampleGen,
    ExampleValidator,
    ImportSchema,
    InfraValidator,
    Pusher,
    SchemaGen,
    StatisticsGen,
    Trainer,
    Transform,
)
from kiln.errors import ParameterError, PipelineFileError
from kiln.orchestration import Pipeline, pipeline
from kiln.workspace import Workspace

__all__ = ["MODELS", "default_thresholds", "load_config", "resolve_champion", "standard"]

MODELS = (
    "auto",
    "linear",
    "logistic",
    "kmeans",
    "boosted_tree",
    "random_forest",
    "dnn",
    "catboost",
)
"""``model`` choices: ``auto`` searches (AutoML); the others train one family (BigQuery ML's, and
CatBoost)."""


def _model_type(model: str, task: str) -> str:
    classify = task != "regression"
    if model in ("linear", "logistic"):
        return "logistic_reg" if classify else "linear_reg"
    if model == "kmeans":
        return "kmeans"
    suffix = "classifier" if classify else "regressor"
    prefix = {
        "boosted_tree": "boosted_tree_",
        "random_forest": "random_forest_",
        "dnn": "dnn_",
        "catboost": "catboost_",
    }
    return prefix[model] + suffix


def _settings(model: str, settings: dict[str, Any] | None, seed: int) -> dict[str, Any]:
    """The trainer's settings: BigQuery ML's defaults under ``settings``, except for a network,
    whose defaults learn nothing on a small table (see :data:`kiln.train.dl.TABLE_SETTINGS`)."""
    if model != "dnn":
        return dict(settings or {})
    from kiln.train.dl import TABLE_SETTINGS

    return {**TABLE_SETTINGS, "seed": seed, **(settings or {})}


def default_thresholds(task: str) -> list[dict[str, Any]]:
    """Promote a challenger only when it beats the champion on the task's main metric (ROC AUC,
    log loss, mean squared error; the Davies-Bouldin index for ``clustering``) on the eval split;
    a first model has no champion to beat."""
    metric, higher = {
        "binary": ("roc_auc", True),
        "multiclass": ("log_loss", False),
        "regression": ("mean_squared_error", False),
        "clustering": ("davies_bouldin_index", False),
    }.get(task, ("", True))
    if not metric:
        return []
    return [{"metric": metric, "change_absolute": -1e-12, "higher_is_better": higher}]


def resolve_champion(name: str, alias: str, workspace: Workspace | None = None) -> str:
    """The ``models:/NAME/VERSION`` URI of the version holding ``alias`` of ``name`` in
    ``workspace`` (default: the current one), ``""`` when there is none (a first run, or no
    workspace yet)."""
    from kiln.registry import ModelRegistry

    ws = workspace or Workspace.find()
    if ws is None:  # no workspace yet: nothing is registered
        return ""
    holder = ModelRegistry(ws).alias(name, alias)
    return "" if holder is None else holder.uri


def _task_of(source: str, target: str) -> str:
    from kiln.automl import detect_task
    from kiln.data import read_table

    table = read_table(source, columns=[target])
    return detect_task(table[target])


@pipeline(name="standard")
def standard(
    source: str,
    target: str,
    name: str = "",
    model: str = "auto",
    task: str = "auto",
    time_budget: float = 60.0,
    metric: str = "",
    settings: dict[str, Any] | None = None,
    schema: str = "",
    slice_by: list[str] | None = None,
    thresholds: list[dict[str, Any]] | None = None,
    champion: str = "auto",
    alias: str = "production",
    latency_budget_ms: float = 100.0,
    bulk_infer: bool = False,
    splits: dict[str, float] | None = None,
    seed: int = 0,
) -> None:
    """Data in, a registered (and, when it beats the champion, promoted) model out.

    ``name`` is the registry name (default: the data file's stem); ``model`` one of
    :data:`MODELS`; ``settings`` the trainer's options over its defaults (BigQuery ML's, except
    ``dnn``'s: :data:`kiln.train.dl.TABLE_SETTINGS`); ``schema`` a curated schema YAML (else one
    is inferred from the train split);
    ``thresholds`` value/change thresholds for the blessing (default
    :func:`default_thresholds`: beat the champion on the main metric); ``champion`` ``auto``
    (the holder of ``alias`` in the current workspace, resolved when the pipeline is built),
    ``""`` (none) or a model folder.
    """
    if model not in MODELS:
        raise ParameterError(f"model must be one of {', '.join(MODELS)}, not {model!r}")
    if task not in ("auto", "binary", "multiclass", "regression"):
        raise ParameterError(f"task must be auto, binary, multiclass or regression, not {task!r}")
    name = name or Path(source).stem
    if task == "auto" and (model != "auto" or thresholds is None):
        task = _task_of(source, target)

    examples = ExampleGen(source=source, splits=splits or {"train": 0.8, "eval": 0.2}, seed=seed)
    statistics = StatisticsGen(examples.output)
    curated = ImportSchema(path=schema) if schema else SchemaGen(statistics.output)
    checked = ExampleValidator(statistics.output, curated.output, split="eval")
    DriftCheck(statistics.output, model_name=name, alias=alias)
    if model == "auto":
        trained = AutoML(
            examples.output,
            label=target,
            time_budget=time_budget,
            metric=metric,
            task=task,
            seed=seed,
        )
    else:
        model_type = _model_type(model, task)
        transform = Transform(examples.output, model_type=model_type, label=target)
        transform.after(checked)
        trained = Trainer(
            examples.output,
            transform.output,
            model_type=model_type,
            label=target,
            settings=_settings(model, settings, seed),
        )
    trained.after(checked)
    evaluation = ChampionEvaluator(
        examples.output,
        trained.output,
        model_name=name,
        alias=alias,
        champion=champion,
        thresholds=(
            default_thresholds("clustering" if model == "kmeans" else task)
            if thresholds is None
            else thresholds
        ),
        slice_by=slice_by or [],
    )
    infra = InfraValidator(trained.output, examples.output, latency_budget_ms=latency_budget_ms)
    Pusher(
        trained.output,
        evaluation.outputs["evaluation"],
        infra.output,
        model_name=name,
        alias=alias,
    )
    if bulk_infer:
        BulkInferrer(trained.output, examples.output)


def load_config(path: Path | str) -> tuple[Pipeline, dict[str, Any]]:
    """The standard pipeline and its parameters from a YAML file (keys: :func:`standard`'s
    parameters; an optional ``pipeline: standard``), for people who do not write Python."""
    import yaml

    file = Path(path)
    try:
        body = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as e:
        raise PipelineFileError(f"cannot read {file}: {e}") from e
    except yaml.YAMLError as e:
        raise PipelineFileError(f"{file} is not valid YAML: {e}") from e
    if not isinstance(body, dict):
        raise PipelineFileError(f"{file}: expected a mapping of the standard pipeline's parameters")
    kind = body.pop("pipeline", "standard")
    if kind != "standard":
        raise PipelineFileError(f"{file}: unknown pipeline {kind!r}; the one available: standard")
    source = body.get("source")
    if isinstance(source, str) and not Path(source).is_absolute():
        body["source"] = str((file.parent / source).resolve())  # relative to the config file
    schema = body.get("schema")
    if isinstance(schema, str) and schema and not Path(schema).is_absolute():
        body["schema"] = str((file.parent / schema).resolve())
    return standard, body
