"""The model artifact: a self-contained folder, and the one prediction path.

::

    model/
      manifest.json      format, version, Kiln's version, task, label, model_type, settings,
                         input signature, classes, training info, metrics, fingerprint
      transform/         the fitted transform graph (transform.json + arrays.npz)
      estimator/         the trainer's own safe format (npz without pickle, JSON, LightGBM text)

``fingerprint`` is the sha256 over every file but the manifest: a folder edited after it was
saved is refused on load. Loading reads JSON, NumPy arrays with ``allow_pickle=False`` and the
estimators' own text formats; it never executes code from the folder.

``Model.predict(table)`` validates the input against the signature (a missing column or a value of
the wrong type is an error naming it; extra columns are ignored), applies the transform, runs the
estimator and post-processes the answer the way BigQuery ML's ``ML.PREDICT`` names it:
``predicted_<label>`` (and ``predicted_<label>_probs``: a list of ``{label, prob}``) for
regression and classification, ``centroid_id`` and ``nearest_centroids_distance`` for k-means,
``principal_component_<i>`` for PCA.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np
import pyarrow as pa

from kiln._version import __version__
from kiln.errors import DataError, TrainingError
from kiln.train import Trainer, get_trainer
from kiln.transform import FittedTransform, TransformGraph, auto_transform
from kiln.transform._auto import Family

__all__ = ["FORMAT", "FORMAT_VERSION", "Model", "ModelFormatError"]

FORMAT = "kiln.model"
FORMAT_VERSION = 1

# BigQuery ML model types -> the automatic preprocessing family
_FAMILY: dict[str, Family] = {
    "linear_reg": "linear",
    "logistic_reg": "linear",
    "kmeans": "kmeans",
    "pca": "pca",
    "boosted_tree_classifier": "tree",
    "boosted_tree_regressor": "tree",
    "random_forest_classifier": "tree",
    "random_forest_regressor": "tree",
    "dnn_classifier": "dnn",
    "dnn_regressor": "dnn",
}


class ModelFormatError(DataError):
    """A model folder that is not one, was edited after it was saved, or is from a newer Kiln."""


def _fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json"):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return "sha256:" + digest.hexdigest()


def _signature(table: pa.Table, label: str | None) -> list[dict[str, Any]]:
    return [
        {"name": f.name, "type": str(f.type), "nullable": f.nullable}
        for f in table.schema
        if f.name != label
    ]


@dataclass
class Model:
    """A fitted transform and estimator, with everything needed to predict and to explain it."""

    trainer: Trainer
    transform: FittedTransform
    label: str | None
    signature: list[dict[str, Any]]
    metrics: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    # ------------------------------------------------------------------ training

    @classmethod
    def fit(
        cls,
        table: pa.Table,
        *,
        model_type: str,
        label: str | None = None,
        settings: dict[str, Any] | None = None,
        transform: TransformGraph | None = None,
        eval_table: pa.Table | None = None,
    ) -> Self:
        """Fit the transform (BigQuery ML's automatic one unless given) and the trainer."""
        trainer_cls = get_trainer(model_type)
        supervised = trainer_cls.task in ("regression", "classification")
        if supervised:
            if not label:
                raise TrainingError(f"{model_type} needs a label column: pass label=")
            if label not in table.column_names:
                raise TrainingError(
                    f"label column {label!r} is not in the data; its columns: "
                    f"{', '.join(table.column_names)}"
                )
            if table[label].null_count == len(table):
                raise TrainingError(f"label column {label!r} is all null: nothing to learn")
        elif label and label in table.column_names:
            table = table.drop_columns([label])
        family = _FAMILY.get(model_type.lower(), "linear")
        graph = transform or auto_transform(table, family, exclude=[label] if label else [])
        fitted = graph.fit(table)
        features = fitted.transform(table)
        y = _labels(table, label) if supervised and label else None
        kwargs: dict[str, Any] = {"categorical": features.categorical}
        if eval_table is not None:
            kwargs["X_eval"] = fitted.transform(eval_table).X
            if supervised and label:
                kwargs["y_eval"] = _labels(eval_table, label)
        trainer = trainer_cls(**(settings or {}))
        trainer.fit(features.X, y, **kwargs)
        return cls(trainer, fitted, label if supervised else None, _signature(table, label))

    # ------------------------------------------------------------------ the prediction path

    @property
    def task(self) -> str:
        return self.trainer.task

    def predict(self, table: pa.Table | pa.RecordBatch) -> pa.Table:
        """Validate, transform, predict, post-process: the path every prediction takes."""
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        self._validate(table)
        X = self.transform.transform(table).X
        out: dict[str, Any] = {}
        name = f"predicted_{self.label}" if self.label else "predicted"
        if self.task == "regression":
            out[name] = pa.array(np.asarray(self.trainer.predict(X), dtype=np.float64))
        elif self.task == "classification":
            proba = np.asarray(self.trainer.predict_proba(X), dtype=np.float64)  # type: ignore[attr-defined]
            classes = list(self.trainer.classes_)  # type: ignore[attr-defined]
            out[name] = pa.array([classes[i] for i in proba.argmax(axis=1)])
            labels = pa.array(classes)
            out[f"{name}_probs"] = pa.array(
                [
                    [{"label": c, "prob": float(p)} for c, p in zip(classes, row, strict=True)]
                    for row in proba
                ],
                type=pa.list_(pa.struct([("label", labels.type), ("prob", pa.float64())])),
            )
        elif self.task == "clustering":
            distances = np.asarray(self.trainer.transform(X), dtype=np.float64)  # type: ignore[attr-defined]
            out["centroid_id"] = pa.array(distances.argmin(axis=1) + 1, type=pa.int64())
            order = np.argsort(distances, axis=1)
            out["nearest_centroids_distance"] = pa.array(
                [
                    [{"centroid_id": int(c) + 1, "distance": float(d[c])} for c in o]
                    for o, d in zip(order, distances, strict=True)
                ]
            )
        else:
            projected = np.asarray(self.trainer.predict(X), dtype=np.float64)
            for i in range(projected.shape[1]):
                out[f"principal_component_{i + 1}"] = pa.array(projected[:, i])
        return pa.table(out)

    def _validate(self, table: pa.Table) -> None:
        for column in self.signature:
            name = column["name"]
            if name not in table.column_names:
                raise DataError(
                    f"input is missing column {name!r} ({column['type']}), which the model was "
                    "trained with; add it (null where unknown)"
                )

    # ------------------------------------------------------------------ saving and loading

    def save(self, path: Path | str) -> Path:
        """Write the model folder at ``path`` (completely, or not at all)."""
        final = Path(path)
        if final.exists() and any(final.iterdir()):
            raise DataError(f"{final} exists and is not empty; choose a new folder for the model")
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".kiln-model-", dir=final.parent))
        try:
            self.transform.save(staging / "transform")
            (staging / "estimator").mkdir()
            saved = self.trainer.save(staging / "estimator")
            manifest = {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "kiln_version": __version__,
                "created": self.created,
                "task": self.task,
                "label": self.label,
                "model_type": self.trainer.model_type,
                "settings": self.trainer.get_params(),
                "signature": self.signature,
                "estimator": saved,
                "training_info": [i.to_dict() for i in getattr(self.trainer, "training_info_", [])],
                "metrics": self.metrics,
                "fingerprint": _fingerprint(staging),
            }
            (staging / "manifest.json").write_text(json.dumps(manifest, indent=1, default=_json))
            if final.exists():
                final.rmdir()
            os.replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return final

    @classmethod
    def load(cls, path: Path | str) -> Self:
        """Read a model folder; refuses one that was edited since it was saved, or is newer."""
        folder = Path(path)
        try:
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise ModelFormatError(f"{folder} is not a Kiln model (no manifest.json)") from e
        except (OSError, ValueError) as e:
            raise ModelFormatError(f"{folder}/manifest.json is unreadable: {e}") from e
        if manifest.get("format") != FORMAT:
            raise ModelFormatError(
                f"{folder} is not a Kiln model (format {manifest.get('format')!r})"
            )
        if int(manifest.get("version", 0)) > FORMAT_VERSION:
            raise ModelFormatError(
                f"{folder} is model format {manifest['version']}, newer than this Kiln "
                f"({__version__}) reads ({FORMAT_VERSION}); upgrade Kiln"
            )
        if manifest.get("fingerprint") != _fingerprint(folder):
            raise ModelFormatError(
                f"{folder}: the model's files do not match its fingerprint; it was modified "
                "after it was saved. Retrain or restore it."
            )
        trainer = get_trainer(manifest["model_type"]).load(
            folder / "estimator", manifest["estimator"]
        )
        return cls(
            trainer=trainer,
            transform=FittedTransform.load(folder / "transform"),
            label=manifest.get("label"),
            signature=manifest["signature"],
            metrics=manifest.get("metrics") or {},
            created=manifest.get("created", 0.0),
        )


def _labels(table: pa.Table, label: str) -> np.ndarray[Any, np.dtype[Any]]:
    column = table[label]
    if column.null_count:
        raise TrainingError(
            f"label column {label!r} has {column.null_count} null value(s); drop those rows or "
            "fill them"
        )
    return np.asarray(column.to_numpy(zero_copy_only=False))


def _json(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")
