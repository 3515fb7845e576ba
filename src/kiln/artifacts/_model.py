"""The training artifact types: TransformGraph, Model, ModelEvaluation and HyperParameters.

A ``TransformGraph`` folder is what :meth:`kiln.transform.FittedTransform.save` writes
(``transform.json`` and ``arrays.npz``); a ``Model`` folder is what
:meth:`kiln.model.Model.save` writes, so ``kiln.model.Model.load(artifact.path)`` works on it (the
artifact store's own ``kiln-artifact.json`` is not part of the model's fingerprint). A
``ModelEvaluation`` folder holds::

    metrics.json      the candidate's overall metrics on the evaluated split (ML.EVALUATE's names)
    blessing.json     {"blessed": bool, "reasons": [...], "checks": [...]}
    evaluation.json   the rest: model type, task, label, slices, the baseline's metrics and the
                      deltas when there was one, importance, training curve, notes

A ``HyperParameters`` folder (the Tuner's output, which the Trainer takes) holds::

    hyperparameters.json  best_params (the tuned settings), best_score, objective, direction,
                          and how the search ran: model type, label, fixed settings, algorithm,
                          seed, trial counts
    trials.parquet        one row per trial (kiln.tune's trial table: trial_id, params as JSON
                          text, score, state, duration_s, error, is_optimal)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from kiln.artifacts._types import Artifact
from kiln.errors import ArtifactError
from kiln.metadata import PropertyType, PropertyValue

__all__ = [
    "HyperParameters",
    "InfraBlessing",
    "Model",
    "ModelEvaluation",
    "PushedModel",
    "TransformGraph",
    "headline_metrics",
]


def headline_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The top-level numbers of a metrics dict (accuracy, roc_auc, r2_score…): what a list shows.

    Curves, matrices, per-class tables and notes are left out; an undefined metric stays ``None``.
    """
    return {
        k: v
        for k, v in metrics.items()
        if v is None or (isinstance(v, int | float) and not isinstance(v, bool))
    }


def _dump(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, indent=1, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ArtifactError(
            f"ModelEvaluation {what} is not strict JSON ({e}); use None for an undefined metric"
        ) from e


class TransformGraph(Artifact):
    """A fitted transform graph (:class:`kiln.transform.FittedTransform`), in its own JSON + npz.

    ``TransformGraph(fitted, feature_names=[...])``: the names of the features it produces on the
    data it was fitted on, when known, are recorded as ``num_features``.
    """

    properties: ClassVar[Mapping[str, PropertyType]] = {
        "num_features": PropertyType.INT,
        "input_columns": PropertyType.JSON,
    }
    description: ClassVar[str] = "A fitted transform graph (analyzer state and mappers)."

    def __init__(self, fitted: Any, *, feature_names: Sequence[str] = ()) -> None:
        super().__init__(fitted)
        self.feature_names = list(feature_names)

    def _write(self, folder: Path) -> dict[str, PropertyValue]:
        from kiln.transform import FittedTransform

        fitted = self._value
        if not isinstance(fitted, FittedTransform):
            raise ArtifactError(
                f"TransformGraph artifact needs a kiln.transform.FittedTransform (a graph after "
                f"fit), got {type(fitted).__name__}"
            )
        fitted.save(folder)
        props: dict[str, PropertyValue] = {"input_columns": fitted.input_columns}
        if self.feature_names:
            props["num_features"] = len(self.feature_names)
        return props

    def _read(self, folder: Path) -> Any:
        from kiln.transform import FittedTransform

        return FittedTransform.load(folder)


class Model(Artifact):
    """A trained model (:class:`kiln.model.Model`): the self-contained model folder."""

    properties: ClassVar[Mapping[str, PropertyType]] = {
        "model_type": PropertyType.STRING,
        "task": PropertyType.STRING,
        "label": PropertyType.STRING,
    }
    description: ClassVar[str] = "A self-contained model: signature, transform, estimator."

    def _write(self, folder: Path) -> dict[str, PropertyValue]:
        from kiln.model import Model as FittedModel

        model = self._value
        if not isinstance(model, FittedModel):
            raise ArtifactError(
                f"Model artifact needs a kiln.model.Model, got {type(model).__name__}"
            )
        model.save(folder)
        return {
            "model_type": model.trainer.model_type,
            "task": model.task,
            "label": model.label or "",
        }

    def _read(self, folder: Path) -> Any:
        from kiln.model import Model as FittedModel

        return FittedModel.load(folder)


class ModelEvaluation(Artifact):
    """A model's evaluation on one split and the blessing decision (TFX's Evaluator output).

    The value is a JSON mapping with at least ``metrics`` (the candidate's overall metrics) and
    ``blessing`` (``{"blessed": bool, "reasons": [...], "checks": [...]}``), as
    :meth:`kiln.model.EvaluationResult.to_dict` gives it; any other keys (slices, baseline
    metrics, deltas, importance, notes…) are kept in ``evaluation.json``.
    """

    properties: ClassVar[Mapping[str, PropertyType]] = {
        "blessed": PropertyType.BOOL,
        "metrics": PropertyType.JSON,
    }
    description: ClassVar[str] = "Evaluation metrics and the blessing decision (blessed + why)."

    def _write(self, folder: Path) -> dict[str, PropertyValue]:
        value = self._value
        if not isinstance(value, Mapping) or "metrics" not in value or "blessing" not in value:
            raise ArtifactError(
                "ModelEvaluation artifact needs a mapping with 'metrics' and 'blessing' (as "
                f"kiln.model.EvaluationResult.to_dict() gives), got {type(value).__name__}"
            )
        blessing, metrics = value["blessing"], value["metrics"]
        if not isinstance(blessing, Mapping) or not isinstance(blessing.get("blessed"), bool):
            raise ArtifactError("ModelEvaluation's blessing needs a boolean 'blessed'")
        if not isinstance(metrics, Mapping):
            raise ArtifactError("ModelEvaluation's metrics must be a mapping of name to value")
        rest = {k: v for k, v in value.items() if k not in ("metrics", "blessing")}
        (folder / "metrics.json").write_text(_dump(metrics, "metrics"))
        (folder / "blessing.json").write_text(_dump(blessing, "blessing"))
        (folder / "evaluation.json").write_text(_dump(rest, "evaluation"))
        return {"blessed": blessing["blessed"], "metrics": headline_metrics(metrics)}

    def _read(self, folder: Path) -> Any:
        rest = json.loads((folder / "evaluation.json").read_text())
        return {
            **rest,
            "metrics": json.loads((folder / "metrics.json").read_text()),
            "blessing": json.loads((folder / "blessing.json").read_text()),
        }

    @property
    def blessed(self) -> bool:
        """Whether the model was blessed (no threshold check failed)."""
        return bool(self.read()["blessing"]["blessed"])


class HyperParameters(Artifact):
    """The best settings a tuning run found, and its trial table (TFX's Tuner output).

    The value is a mapping with at least ``best_params`` (option -> value) and ``trials`` (a
    ``pyarrow.Table``), as the Tuner component builds it from
    :meth:`kiln.tune.TuningResult.summary`; its other keys are kept in ``hyperparameters.json``.
    ``read()`` gives the same mapping back.
    """

    properties: ClassVar[Mapping[str, PropertyType]] = {
        "model_type": PropertyType.STRING,
        "objective": PropertyType.STRING,
        "best_score": PropertyType.DOUBLE,
        "best_params": PropertyType.JSON,
        "num_trials": PropertyType.INT,
    }
    description: ClassVar[str] = "Tuned hyper-parameters (best settings) and the trial table."

    def _write(self, folder: Path) -> dict[str, PropertyValue]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        value = self._value
        if not isinstance(value, Mapping) or not isinstance(value.get("best_params"), Mapping):
            raise ArtifactError(
                "HyperParameters artifact needs a mapping with 'best_params' (option -> value) "
                f"and 'trials' (a pyarrow.Table), got {type(value).__name__}"
            )
        trials = value.get("trials")
        if not isinstance(trials, pa.Table):
            raise ArtifactError(
                "HyperParameters' trials must be a pyarrow.Table (kiln.tune's trial table), got "
                f"{type(trials).__name__}"
            )
        body = {k: v for k, v in value.items() if k != "trials"}
        try:
            text = json.dumps(body, sort_keys=True, indent=1, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ArtifactError(f"HyperParameters is not strict JSON ({e})") from e
        (folder / "hyperparameters.json").write_text(text)
        pq.write_table(trials, folder / "trials.parquet")
        props: dict[str, PropertyValue] = {
            "best_params": dict(value["best_params"]),
            "num_trials": trials.num_rows,
        }
        for key in ("model_type", "objective"):
            if isinstance(value.get(key), str):
                props[key] = value[key]
        score = value.get("best_score")
        if isinstance(score, int | float) and not isinstance(score, bool):
            props["best_score"] = float(score)
        return props

    def _read(self, folder: Path) -> Any:
        import pyarrow.parquet as pq

        body: dict[str, Any] = json.loads((folder / "hyperparameters.json").read_text())
        body["trials"] = pq.read_table(folder / "trials.parquet")
        return body

    @property
    def best_params(self) -> dict[str, Any]:
        """The tuned settings: what the Trainer puts over its own ``settings``."""
        return dict(self.read()["best_params"])


class _Decision(Artifact):
    """A JSON decision record (``decision.json``) with ``blessed``/``promoted`` and its reasons."""

    flag: ClassVar[str] = "blessed"

    def _write(self, folder: Path) -> dict[str, PropertyValue]:
        value = self._value
        if not isinstance(value, Mapping) or not isinstance(value.get(self.flag), bool):
            raise ArtifactError(
                f"{self.type_name} artifact needs a mapping with a boolean {self.flag!r}, got "
                f"{type(value).__name__}"
            )
        (folder / "decision.json").write_text(_dump(dict(value), self.type_name))
        return {k: value.get(k) for k in self.properties}

    def _read(self, folder: Path) -> Any:
        return json.loads((folder / "decision.json").read_text())


class InfraBlessing(_Decision):
    """The InfraValidator's verdict (TFX's InfraBlessing): the candidate loaded in a fresh
    process, warmed up and predicted sample rows within the latency budget, or why not."""

    properties: ClassVar[Mapping[str, PropertyType]] = {
        "blessed": PropertyType.BOOL,
        "load_ms": PropertyType.DOUBLE,
        "p99_ms": PropertyType.DOUBLE,
    }
    description: ClassVar[str] = (
        "Whether the model loads and serves sample rows in a fresh process."
    )


class PushedModel(_Decision):
    """The Pusher's record: the registered version, and whether the alias moved to it and why."""

    flag: ClassVar[str] = "promoted"
    properties: ClassVar[Mapping[str, PropertyType]] = {
        "promoted": PropertyType.BOOL,
        "name": PropertyType.STRING,
        "version": PropertyType.INT,
        "uri": PropertyType.STRING,
    }
    description: ClassVar[str] = "A registered model version and the promotion decision."
