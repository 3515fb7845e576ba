"""The training components, TFX's names and roles: Transform, Trainer and Evaluator (and
EvaluatorWithBaseline), each a Kiln component with lineage and caching.

- ``Transform`` fits BigQuery ML's automatic preprocessing for the model family on the train split
  and emits a ``TransformGraph`` artifact: the analyzers run once, over training data only.
- ``Trainer`` fits ``model_type`` (BigQuery ML's names and ``OPTIONS`` as ``settings``) on the
  train split through that fitted transform, with the eval split for early stopping, and emits a
  ``Model`` artifact: the folder :meth:`kiln.model.Model.save` writes. Given the Tuner's
  ``HyperParameters`` (optional), their best settings override ``settings``.
- ``Evaluator`` computes ``ML.EVALUATE``'s metrics of the model on one split, checks them against
  thresholds (JSON dicts with :class:`kiln.evaluate.MetricThreshold`'s fields) and records the
  decision in a ``ModelEvaluation`` artifact. A model that is not blessed does not fail the step
  (TFX's Pusher is what checks the blessing) unless ``fail_if_not_blessed`` is set.
  ``EvaluatorWithBaseline`` does the same against a baseline ``Model`` artifact, so that
  ``change_absolute`` / ``change_relative`` thresholds apply. It is a separate component because
  a component's artifact inputs are required: an input annotated ``Model | None`` is refused by
  :func:`kiln.orchestration.component` (neither an artifact type nor a JSON type).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from kiln.artifacts import Dataset, HyperParameters, Model, ModelEvaluation, TransformGraph
from kiln.errors import TrainingError
from kiln.orchestration import component

if TYPE_CHECKING:
    from kiln.evaluate import MetricThreshold
    from kiln.model import EvaluationResult

    OptionalHyperParameters: TypeAlias = HyperParameters | None
else:
    # kiln.orchestration takes an artifact input with a default as optional (a pipeline may leave
    # it out) but refuses the annotation `X | None`; it reads this one as the artifact type.
    OptionalHyperParameters = HyperParameters

__all__ = [
    "Evaluator",
    "EvaluatorWithBaseline",
    "ModelNotBlessedError",
    "Trainer",
    "Transform",
]


class ModelNotBlessedError(TrainingError):
    """The Evaluator's thresholds did not bless the model and it was told to fail the step."""


@component(name="Transform")
def Transform(
    dataset: Dataset, model_type: str = "linear_reg", label: str = "", split: str = "train"
) -> TransformGraph:
    """Fit BigQuery ML's automatic preprocessing for ``model_type``'s family on one split.

    Every column but ``label`` is a feature; the analyzers (means, deviations, vocabularies) see
    only ``split``, so evaluation data never leaks into the features.
    """
    from kiln.model import preprocessing_for
    from kiln.train import get_trainer

    get_trainer(model_type)  # an unknown model_type fails here, naming the known ones
    table = dataset.split(split)
    if label and label not in table.column_names:
        raise TrainingError(
            f"label column {label!r} is not in split {split!r}; its columns: "
            f"{', '.join(table.column_names)}"
        )
    fitted = preprocessing_for(table, model_type, label=label or None).fit(table)
    return TransformGraph(fitted, feature_names=fitted.transform(table).names)


@component(name="Trainer")
def Trainer(
    dataset: Dataset,
    transform: TransformGraph,
    model_type: str,
    label: str = "",
    settings: dict[str, Any] | None = None,
    train_split: str = "train",
    eval_split: str = "eval",
    hyperparameters: OptionalHyperParameters = None,
) -> Model:
    """Fit ``model_type`` with ``settings`` on ``train_split`` through the fitted ``transform``.

    ``settings`` are the trainer's options, BigQuery ML's names (``max_iterations``, ``l2_reg``,
    ``num_clusters``…). ``eval_split`` (``""`` for none) is the held-out data iterative trainers
    stop early on. The transform is used as fitted, not refitted: fit the Transform step with
    the same ``label`` (and, for BigQuery ML's preprocessing, a ``model_type`` of the same
    family). ``hyperparameters`` (the Tuner's output, optional) were tuned for ``model_type``:
    their best settings override those of ``settings``.
    """
    from kiln.model import Model as FittedModel

    if hyperparameters is not None:
        settings = _tuned(model_type, settings, hyperparameters)
    graph = transform.read()
    if label and label in graph.input_columns:
        raise TrainingError(
            f"the transform takes the label column {label!r} as a feature, which would leak the "
            f"answer into the model; fit the Transform step with label={label!r}"
        )
    train = dataset.split(train_split)
    held_out = dataset.split(eval_split) if eval_split else None
    fitted = FittedModel.fit(
        train,
        model_type=model_type,
        label=label or None,
        settings=settings,
        eval_table=held_out,
        fitted_transform=graph,
    )
    return Model(fitted)


def _tuned(
    model_type: str, settings: dict[str, Any] | None, hyperparameters: HyperParameters
) -> dict[str, Any]:
    from kiln.train import get_trainer

    tuned = hyperparameters.read()
    tuned_for = tuned.get("model_type")
    if tuned_for and tuned_for != get_trainer(model_type).model_type:
        raise TrainingError(
            f"the hyperparameters were tuned for {tuned_for}, not {model_type}; tune "
            f"{model_type} or train {tuned_for}"
        )
    return {**(settings or {}), **tuned["best_params"]}


def _thresholds(thresholds: Sequence[Mapping[str, Any]]) -> list[MetricThreshold]:
    from kiln.evaluate import MetricThreshold

    parsed = []
    for i, entry in enumerate(thresholds):
        try:
            parsed.append(MetricThreshold(**entry))
        except TypeError as e:
            raise TrainingError(
                f"thresholds[{i}] {dict(entry)!r} is not a metric threshold ({e}); use the keys "
                "metric, lower_bound, upper_bound, change_absolute, change_relative, "
                "higher_is_better"
            ) from e
    return parsed


def _evaluation_result(
    dataset: Dataset,
    model: Model,
    baseline: Any,
    split: str,
    thresholds: list[dict[str, Any]],
    slice_by: list[str],
    importance: bool,
    fail_if_not_blessed: bool,
) -> EvaluationResult:
    """``baseline``: a loaded :class:`kiln.model.Model`, or None."""
    from kiln.model import evaluate_model

    checks = _thresholds(thresholds)  # bad thresholds fail before any work
    result = evaluate_model(
        model.read(),
        dataset.split(split),
        slice_by=slice_by,
        baseline=baseline,
        thresholds=checks,
        importance=importance,
    )
    blessing = result.blessing  # evaluate_model always decides, thresholds or not
    if blessing is not None and not blessing.blessed and fail_if_not_blessed:
        reasons = "\n".join(f"  {r}" for r in blessing.reasons)
        raise ModelNotBlessedError(
            f"the model is not blessed on split {split!r}:\n{reasons}\n"
            "(leave fail_if_not_blessed off to record the decision and go on)"
        )
    return result


def _evaluate(
    dataset: Dataset,
    model: Model,
    baseline: Any,
    split: str,
    thresholds: list[dict[str, Any]],
    slice_by: list[str],
    importance: bool,
    fail_if_not_blessed: bool,
) -> ModelEvaluation:
    result = _evaluation_result(
        dataset, model, baseline, split, thresholds, slice_by, importance, fail_if_not_blessed
    )
    return ModelEvaluation({"split": split, **result.to_dict()})


@component(name="Evaluator")
def Evaluator(
    dataset: Dataset,
    model: Model,
    split: str = "eval",
    thresholds: list[dict[str, Any]] | None = None,
    slice_by: list[str] | None = None,
    importance: bool = False,
    fail_if_not_blessed: bool = False,
) -> ModelEvaluation:
    """Evaluate ``model`` on ``split`` and bless it when every threshold holds.

    ``thresholds``: ``[{"metric": "accuracy", "lower_bound": 0.9}, ...]`` (the fields of
    :class:`kiln.evaluate.MetricThreshold`). Change thresholds need a baseline: see
    ``EvaluatorWithBaseline``; here they are skipped. ``slice_by`` adds metrics per value of
    those columns; ``importance`` adds permutation importance of each input column. It runs
    :func:`kiln.model.evaluate_model`, as ``kiln evaluate`` does. A model that is not blessed is
    recorded (``blessed`` false, with the reasons); with ``fail_if_not_blessed`` the step fails.
    """
    return _evaluate(
        dataset,
        model,
        None,
        split,
        thresholds or [],
        slice_by or [],
        importance,
        fail_if_not_blessed,
    )


@component(name="EvaluatorWithBaseline")
def EvaluatorWithBaseline(
    dataset: Dataset,
    model: Model,
    baseline: Model,
    split: str = "eval",
    thresholds: list[dict[str, Any]] | None = None,
    slice_by: list[str] | None = None,
    importance: bool = False,
    fail_if_not_blessed: bool = False,
) -> ModelEvaluation:
    """``Evaluator`` against a ``baseline`` model evaluated on the same split, so that
    ``change_absolute`` / ``change_relative`` thresholds compare the two."""
    return _evaluate(
        dataset,
        model,
        baseline.read(),
        split,
        thresholds or [],
        slice_by or [],
        importance,
        fail_if_not_blessed,
    )
