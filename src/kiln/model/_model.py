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

``Model.predict_rows(rows)`` (and ``predict_columns``, what ``kiln serve`` calls) is the same
path for a few rows of Python values: the transform compiled for rows
(:mod:`kiln.transform._rows`) builds the feature matrix with no Arrow table, the same trainer call
follows, and the answer is ``predict(table).to_pydict()``'s, or the Arrow path answers.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from kiln._lazy import LazyModule
from kiln._threads import blas_threads, kiln_threads, prefetched, spare_core
from kiln._version import __version__
from kiln.errors import DataError, KilnError, ModelFormatError, TrainingError
from kiln.train import Trainer, get_trainer
from kiln.transform import FittedTransform, TransformGraph

if TYPE_CHECKING:
    from collections.abc import Generator, Mapping, Sequence

    import pyarrow as pa

    from kiln.transform._auto import Family
    from kiln.transform._rows import RowPlan
else:  # neither loading a model nor serving it a few rows needs Arrow (see kiln.transform._ops)
    pa = LazyModule("pyarrow")

__all__ = [
    "FEW_ROWS",
    "FORMAT",
    "FORMAT_VERSION",
    "LeakageWarning",
    "Model",
    "ModelFormatError",
    "preprocessing_for",
]

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
    "catboost_classifier": "tree",
    "catboost_regressor": "tree",
    "dnn_classifier": "dnn",
    "dnn_regressor": "dnn",
}


def preprocessing_for(
    table: pa.Table, model_type: str, *, label: str | None = None
) -> TransformGraph:
    """BigQuery ML's automatic preprocessing for ``model_type``'s family, the label left out."""
    from kiln.transform import auto_transform  # (statistics: not on the load path)

    family = _FAMILY.get(model_type.lower(), "linear")
    return auto_transform(table, family, exclude=[label] if label else [])


PREDICT_CHUNK_ROWS = 65_536
FEW_ROWS = 128
"""Up to this many rows, :meth:`Model.predict_rows` and :meth:`Model.predict_columns` take the
few-row path (no Arrow table)."""


class LeakageWarning(UserWarning):
    """An input column that gives the label away: equal to it, or a one-to-one recoding of it."""


# Not fingerprinted: the model's own manifest (which holds the fingerprint) and the marker the
# artifact store adds when the folder is a Model artifact (kiln.artifacts.MANIFEST).
_UNFINGERPRINTED = ("manifest.json", "kiln-artifact.json")


def _fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(
        p for p in folder.rglob("*") if p.is_file() and p.name not in _UNFINGERPRINTED
    ):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return "sha256:" + digest.hexdigest()


def _overlap_pays(trainer: type[Trainer], params: Mapping[str, Any]) -> bool:
    """Whether a ``trainer`` with settings ``params`` gains when the next chunk is transformed
    beside its prediction: it (or an ensemble member) predicts in native code without the GIL,
    and a core is left beyond its threads (see :func:`_estimator_threads`)."""
    members = [get_trainer(m["model_type"]) for m in params.get("members") or ()]
    native = any(t.predicts_in_native_code for t in (trainer, *members))
    return native and spare_core(_estimator_threads(params))


def _estimator_threads(params: Mapping[str, Any]) -> int:
    """The threads a trainer with settings ``params`` predicts on: its ``num_threads`` (the tree,
    CatBoost and DNN trainers), the most any ensemble member takes, else :func:`kiln_threads`
    (NumPy's BLAS, which :func:`blas_threads` holds to it)."""
    threads = params.get("num_threads")
    own = threads if isinstance(threads, int) and threads > 0 else kiln_threads()
    members = params.get("members") or ()
    return max([own, *(_estimator_threads(m.get("settings") or {}) for m in members)])


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
    info: dict[str, Any] = field(default_factory=dict)
    """Plain JSON about how the model was made, kept in the manifest (``kiln sql`` keeps the
    statement and its options here); the prediction path never reads it."""

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
        fitted_transform: FittedTransform | None = None,
    ) -> Self:
        """Fit the transform (BigQuery ML's automatic one unless given) and the trainer.

        ``fitted_transform`` is a transform already fitted (by the pipeline's Transform step):
        it is used as is, not refitted, and ``transform`` must then be left out.

        Bad training data is one clear message, before anything is learned: fewer than 2 rows, a
        missing or all-null label, a single class, an infinite feature value, or no feature left
        after preprocessing raise; a constant or all-null column is dropped with a
        ``TransformWarning``; an input column equal to the label (or, for a classifier, a
        one-to-one recoding of it) is kept but warned about with a :class:`LeakageWarning`.
        """
        if transform is not None and fitted_transform is not None:
            raise TrainingError("pass transform= (to fit) or fitted_transform= (fitted), not both")
        trainer_cls = get_trainer(model_type)
        supervised = trainer_cls.task in ("regression", "classification")
        if table.num_rows < 2:
            raise TrainingError(
                f"{model_type}: the training data has {table.num_rows} row(s); at least 2 are "
                "needed to learn anything"
            )
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
            _warn_leakage(table, label, classification=trainer_cls.task == "classification")
        elif label and label in table.column_names:
            table = table.drop_columns([label])
        if fitted_transform is not None:
            fitted = fitted_transform
        else:
            graph = transform or preprocessing_for(table, model_type, label=label)
            fitted = graph.fit(table)
        X: Any
        if trainer_cls.fits_one_hot_features:  # one-hot blocks as codes, never a dense matrix
            X, categorical = fitted.one_hot_features(table), []
        else:
            features = fitted.transform(table)
            X, categorical = features.X, features.categorical
        if X.shape[1] == 0:
            raise TrainingError(
                f"{model_type}: no usable feature is left after preprocessing (every input "
                "column was dropped: all null, constant or of an unsupported type); add "
                "informative columns"
            )
        y = _labels(table, label) if supervised and label else None
        kwargs: dict[str, Any] = {"categorical": categorical}
        if eval_table is not None:
            kwargs["X_eval"] = (
                fitted.one_hot_features(eval_table)
                if trainer_cls.fits_one_hot_features
                else fitted.transform(eval_table).X
            )
            if supervised and label:
                kwargs["y_eval"] = _labels(eval_table, label)
        trainer = trainer_cls(**(settings or {}))
        trainer.fit(X, y, **kwargs)
        return cls(trainer, fitted, label if supervised else None, _signature(table, label))

    @classmethod
    def assemble(
        cls,
        trainer: Trainer,
        transform: FittedTransform,
        *,
        table: pa.Table,
        label: str | None,
        metrics: dict[str, Any] | None = None,
        info: dict[str, Any] | None = None,
    ) -> Self:
        """A model from a trainer and transform fitted elsewhere (AutoML, tuning) on ``table``,
        whose columns (the label left out) become the model's input signature."""
        supervised = trainer.task in ("regression", "classification")
        return cls(
            trainer,
            transform,
            label if supervised else None,
            _signature(table, label),
            metrics=dict(metrics or {}),
            info=dict(info or {}),
        )

    # ------------------------------------------------------------------ the prediction path

    @property
    def task(self) -> str:
        return self.trainer.task

    def predict(self, table: pa.Table | pa.RecordBatch) -> pa.Table:
        """Validate, transform, predict, post-process: the path every prediction takes.

        Large tables go through in chunks of :data:`PREDICT_CHUNK_ROWS`: the features of one
        chunk stay in the CPU's cache, and memory stays flat however many rows come in. The next
        chunk is transformed on a second thread while a native estimator (LightGBM, PyTorch)
        predicts this one, when the process has a core beyond the estimator's threads (see
        :meth:`_predict_chunked`). NumPy's BLAS computes on ``KILN_THREADS`` threads (1 unless
        set; see :mod:`kiln._threads`)."""
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        self._validate(table)
        if table.num_rows <= FEW_ROWS:
            return self._predict(table)
        with blas_threads():
            return self._predict_chunked(table, overlap=True)

    def _predict_chunked(
        self, table: pa.Table, *, dictionary: bool = False, overlap: bool = False
    ) -> pa.Table:
        """:meth:`_predict` of a checked table, in zero-copy slices of
        :data:`PREDICT_CHUNK_ROWS` rows (batch prediction calls this too).

        ``overlap``: transform the next slice on a second thread while the estimator predicts
        this one, for estimators that predict in native code without the GIL and when the
        process has a core beyond the estimator's own threads (:func:`_overlap_pays`); then the
        slower of the two sets the pace rather than their sum. A boosted tree predicting
        1,000,000 rows of the training bench spends ~0.19 s transforming beside ~0.61 s in
        LightGBM: 0.77x the bare estimator's rows/s becomes 0.97x. Batch prediction leaves it
        off: its reading and writing already run on threads of their own."""
        if table.num_rows <= PREDICT_CHUNK_ROWS:
            return self._predict(table, dictionary=dictionary)
        chunks = (
            table.slice(start, PREDICT_CHUNK_ROWS)
            for start in range(0, table.num_rows, PREDICT_CHUNK_ROWS)
        )
        features: Generator[Any, None, None] = (self._features(chunk) for chunk in chunks)
        if overlap and _overlap_pays(type(self.trainer), self.trainer.get_params()):
            features = prefetched(features, name="kiln-predict-transform")
        with contextlib.closing(features):  # (a prefetching thread stops on an error too)
            return pa.concat_tables(
                self._answer(self._estimate(X), dictionary=dictionary) for X in features
            )

    def _predict(self, table: pa.Table, *, dictionary: bool = False) -> pa.Table:
        """Transform, estimate, post-process one chunk (``dictionary``: see ``_answer``)."""
        return self._answer(self._estimate(self._features(table)), dictionary=dictionary)

    def _features(self, table: pa.Table) -> Any:
        """The estimator's input for a checked ``table``: the transform's matrix, or the one-hot
        features for a trainer that takes them."""
        if self.trainer.accepts_one_hot_features:
            return self.transform.one_hot_features(table)
        return self.transform.transform(table).X

    def _estimate(self, X: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
        """The estimator's numbers for ``X``: regression values, class probabilities, centroid
        distances or projected components (the one place either path calls the trainer)."""
        if self.task == "classification":
            result = self.trainer.predict_proba(X)  # type: ignore[attr-defined]
        elif self.task == "clustering":
            result = self.trainer.transform(X)  # type: ignore[attr-defined]
        else:
            result = self.trainer.predict(X)
        return np.asarray(result, dtype=np.float64)

    @property
    def prediction_column(self) -> str:
        """The name of the predicted value's column: ``predicted_<label>`` (BigQuery ML's
        name), ``predicted`` for a model without a label; classifiers add ``<it>_probs``."""
        return f"predicted_{self.label}" if self.label else "predicted"

    def _answer(
        self, values: np.ndarray[Any, np.dtype[np.float64]], *, dictionary: bool = False
    ) -> pa.Table:
        """The prediction columns for the estimator's ``values``. ``dictionary``: class labels as
        dictionary arrays over the classes, each label an index rather than a copy of its text
        (what the batch writer stores as Parquet dictionary pages without hashing every row)."""
        out: dict[str, Any] = {}
        name = self.prediction_column
        if self.task == "regression":
            out[name] = pa.array(values)
        elif self.task == "classification":
            proba = values
            labels = self._class_labels
            n, k = proba.shape
            best = pa.array(proba.argmax(axis=1).astype(np.int32))
            each = pa.array(np.tile(np.arange(k, dtype=np.int32), n))
            if dictionary:
                predicted = pa.DictionaryArray.from_arrays(best, labels)
                label = pa.DictionaryArray.from_arrays(each, labels)
            else:
                predicted, label = labels.take(best), labels.take(each)
            out[name] = predicted
            # built column-wise: a Python list of structs per row is ~20x slower on large batches
            out[f"{name}_probs"] = _lists_of_structs(n, k, label=label, prob=proba.ravel())
        elif self.task == "clustering":
            distances = values
            out["centroid_id"] = pa.array(distances.argmin(axis=1) + 1, type=pa.int64())
            order = np.argsort(distances, axis=1)
            n, k = distances.shape
            out["nearest_centroids_distance"] = _lists_of_structs(
                n,
                k,
                centroid_id=(order + 1).astype(np.int64).ravel(),
                distance=np.take_along_axis(distances, order, axis=1).ravel(),
            )
        else:
            for i in range(values.shape[1]):
                out[f"principal_component_{i + 1}"] = pa.array(values[:, i])
        return pa.table(out)

    # ------------------------------------------------------------------ the few-row path

    def predict_rows(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
        """``predict(pa.Table.from_pylist(rows)).to_pydict()``, cheaply for a few rows.

        ``rows``: one mapping (column -> Python value) per row; as for ``from_pylist``, the first
        row names the columns (a column missing from it is missing: the same DataError as
        ``predict``) and a later row without one has null there. Up to :data:`FEW_ROWS` rows go
        through the transform compiled for rows (:mod:`kiln.transform._rows`) and the trainer
        directly, with no Arrow table; more rows, or values that the compiled path does not
        mirror exactly (see there), take ``predict``. Either way the answer is the same."""
        n = len(rows)
        if 0 < n <= FEW_ROWS and self._row_plan is not None:
            first = rows[0]
            if all(name in first for name in self._input_names):
                columns = {c: [r.get(c) for r in rows] for c in self._row_plan.columns}
                few = self.predict_columns(columns, n)
                if few is not None:
                    return few
        answer: dict[str, list[Any]] = self.predict(pa.Table.from_pylist(list(rows))).to_pydict()
        return answer

    def predict_columns(
        self, columns: Mapping[str, Sequence[Any]], num_rows: int
    ) -> dict[str, list[Any]] | None:
        """The few-row path alone: the answer for ``num_rows`` rows given as one list of Python
        values per input column (every column the transform reads), as ``predict(table)
        .to_pydict()`` gives for a table of those values; None where only ``predict`` can answer
        (more than :data:`FEW_ROWS` rows, an op or value the compiled transform does not mirror,
        a missing column) — never a different answer. What ``kiln serve`` calls."""
        plan = self._row_plan
        if plan is None or not 0 < num_rows <= FEW_ROWS:
            return None
        try:
            X: Any = (
                plan.one_hot_features(columns, num_rows)
                if self.trainer.accepts_one_hot_features
                else plan.matrix(columns, num_rows)
            )
        except KeyError:  # a column the transform reads is not there
            return None
        if X is None:
            return None
        try:
            values = self._estimate(X)
        except KilnError:
            return None  # the trainer's own check (say, an infinite value): predict raises it
        return self._answer_lists(values)

    def _answer_lists(self, values: np.ndarray[Any, np.dtype[np.float64]]) -> dict[str, list[Any]]:
        """What ``_answer(values).to_pydict()`` gives, built from Python lists."""
        name = self.prediction_column
        if self.task == "regression":
            return {name: values.tolist()}
        if self.task == "classification":
            labels = self._class_list
            k = len(labels)
            return {
                name: [labels[i] for i in values.argmax(axis=1).tolist()],
                f"{name}_probs": [
                    [{"label": labels[j], "prob": row[j]} for j in range(k)]
                    for row in values.tolist()
                ],
            }
        if self.task == "clustering":
            order = np.argsort(values, axis=1)
            distances = np.take_along_axis(values, order, axis=1).tolist()
            ids = (order + 1).tolist()
            return {
                "centroid_id": (values.argmin(axis=1) + 1).tolist(),
                "nearest_centroids_distance": [
                    [{"centroid_id": c, "distance": d} for c, d in zip(i, v, strict=True)]
                    for i, v in zip(ids, distances, strict=True)
                ],
            }
        return {
            f"principal_component_{i + 1}": values[:, i].tolist() for i in range(values.shape[1])
        }

    @functools.cached_property
    def _row_plan(self) -> RowPlan | None:
        from kiln.transform._rows import compile_rows

        return compile_rows(self.transform)

    @functools.cached_property
    def _input_names(self) -> list[str]:
        return [c["name"] for c in self.signature]

    @functools.cached_property
    def _class_list(self) -> list[Any]:
        """The classes as Python values, without importing Arrow: the few-row path answers in
        Python values."""
        return list(np.asarray(self.trainer.classes_).tolist())  # type: ignore[attr-defined]

    @functools.cached_property
    def _class_labels(self) -> pa.Array:
        """The classes as an Arrow array (built once: every prediction takes from it)."""
        return pa.array(self._class_list)

    def _validate(self, table: pa.Table) -> None:
        present = set(table.column_names)  # (a list is built at each access of column_names)
        for column in self.signature:
            name = column["name"]
            if name not in present:
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
                "info": self.info,
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
            info=manifest.get("info") or {},
        )


def _lists_of_structs(n: int, k: int, **fields: Any) -> pa.ListArray:
    """``n`` lists of ``k`` structs each, from flat (``n * k``) arrays of the structs' fields."""
    arrays = [f if isinstance(f, pa.Array) else pa.array(f) for f in fields.values()]
    structs = pa.StructArray.from_arrays(arrays, names=list(fields))
    offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, structs)


def _warn_leakage(table: pa.Table, label: str, *, classification: bool) -> None:
    """Warn (:class:`LeakageWarning`) about each input column equal to the label, or (for a
    classifier) a one-to-one recoding of it (a discrete column whose values pair with the labels
    one for one). Cheap: one comparison per column, a grouping only when distinct counts match."""
    import pyarrow.compute as pc

    target = _decoded(table[label])
    label_distinct: int | None = None
    for name in table.column_names:
        if name == label:
            continue
        column = _decoded(table[name])
        how = None
        if _equal(column, target):
            how = "is equal to"
        elif classification and _discrete(column.type):
            if label_distinct is None:
                label_distinct = int(pc.count_distinct(target, mode="all").as_py())
            if int(pc.count_distinct(column, mode="all").as_py()) == label_distinct:
                pairs = pa.table({"c": column, "y": target}).group_by(["c", "y"]).aggregate([])
                if pairs.num_rows == label_distinct:
                    how = "maps one-to-one onto"
        if how:
            warnings.warn(
                f"input column {name!r} {how} the label {label!r} (target leakage): the model "
                f"would learn the answer from it; drop {name!r} unless it is really known before "
                "the label is",
                LeakageWarning,
                stacklevel=3,
            )


def _decoded(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column


def _numeric(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


def _discrete(t: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(t)
        or pa.types.is_boolean(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
    )


def _equal(a: pa.ChunkedArray, b: pa.ChunkedArray) -> bool:
    if _numeric(a.type) and _numeric(b.type):
        x = a.cast(pa.float64()).to_numpy()
        y = b.cast(pa.float64()).to_numpy()
        return bool(np.array_equal(x, y, equal_nan=True))
    if a.type != b.type:
        return False
    return bool(a.equals(b))


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
