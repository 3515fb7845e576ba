"""ONNX export of a model's whole prediction path: the fitted transform, then the estimator.

``export_onnx(model, path)`` writes one ONNX file that computes what :meth:`Model.predict
<kiln.model.Model.predict>` computes, from raw input columns to the named outputs, with standard
operators only (``ai.onnx`` and ``ai.onnx.ml``: no custom op, no code, no pickle): any ONNX
runtime can serve it. It needs the extra ``onnx`` (``pip install 'kiln[onnx]'``).

Inputs: one per column of the model's input signature, named after it, shape ``[N, 1]`` (``N``
the batch, dynamic). A column that a numeric op reads (or that passes through) is
``tensor(double)``, a missing value NaN; a column that a categorical op reads is
``tensor(string)``, a missing value the empty string ``""`` (numbers and bools as Arrow writes
them as text: ``"3"``, ``"true"``). A signature column the model does not read is an input all
the same (double for numbers, string for text), so that the same rows can be fed to every model;
one of another type (timestamp, list, binary) that the model does not read is left out.
Numbers are doubles, not floats, because ``Model.predict`` computes in float64: a float32 input
would move predictions and could send a row down another tree branch.

Outputs, named like ``Model.predict``'s columns:

================  ===========================================================================
task              outputs
================  ===========================================================================
regression        ``predicted_<label>``: double ``[N]``
classification    ``predicted_<label>``: the label ``[N]`` (string, int64, double or bool, as the
                  classes are); ``predicted_<label>_probs``: double ``[N, k]``, columns in the
                  model's classes order (the file's metadata ``kiln.classes`` lists them)
clustering        ``centroid_id``: int64 ``[N]`` (1-based, BigQuery ML's);
                  ``nearest_centroids_distance``: double ``[N, k]``, the distance to centroid
                  ``1..k`` in that order (``Model.predict`` lists the same distances sorted)
pca               ``principal_component_<i>``: double ``[N]`` each
================  ===========================================================================

What is exported: the transform ops ``impute`` (mean, median, most_frequent, constant; numbers and
strings), ``standard_scale``, ``min_max_scale``, ``max_abs_scale``, ``robust_scale``, ``clip``,
``log1p``, ``bucketize``, ``quantile_bucketize`` (codes or one-hot), ``one_hot`` and
``label_encode`` (the model's vocabulary; a missing value takes ``<missing>``'s code when training
had one; an unseen value is all zeros / NaN, or the ``<unknown>`` bucket), and passthrough
columns: all that automatic preprocessing makes for these families. Estimators: ``linear_reg``,
``logistic_reg`` (binary and multiclass), ``kmeans`` (Euclidean and cosine), ``pca``, boosted
trees and random forests (LightGBM's trees written as one ``TreeEnsemble`` in double precision,
native categorical splits as set membership, LightGBM's missing-value routing), ``dnn_regressor``
and ``dnn_classifier`` (the network's layers written from its weights, in float32 as PyTorch
runs them). Anything else is a :class:`~kiln.errors.DataError` that names it.

Where the file and ``Model.predict`` part ways, by design: ``Model.predict`` refuses an infinite
value, a value ``<= -1`` under ``log1p`` and a missing input column with a DataError; a graph
cannot raise, so the file computes on (an infinite value flows through, ``log1p`` gives NaN or
-inf) and the runtime refuses a missing input.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from kiln._version import __version__
from kiln.errors import DataError
from kiln.transform import FittedTransform, StackedTransform
from kiln.transform._ops import (
    MISSING,
    Bucketize,
    Clip,
    Impute,
    LabelEncode,
    Log1p,
    MaxAbsScale,
    MinMaxScale,
    OneHot,
    Op,
    QuantileBucketize,
    RobustScale,
    StandardScale,
)

if TYPE_CHECKING:
    import onnx

    from kiln.model._model import Model

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "export_onnx"]

DEFAULT_OPSET = 21
"""The ``ai.onnx`` opset written unless asked otherwise (ONNX 1.16, onnxruntime 1.20 and later)."""
MIN_OPSET = 19
"""The oldest ``ai.onnx`` opset the exporter writes (``Equal`` on strings)."""
ML_OPSET = 5  # ai.onnx.ml: TreeEnsemble (double thresholds and leaves, set membership)
_MAX_PROTO_BYTES = 2**31 - 1  # protobuf's limit on one message

Kind = Literal["number", "string"]
_INSTALL = "pip install 'kiln[onnx]'"

# TreeEnsemble's node modes
_BRANCH_LEQ = 0
_BRANCH_MEMBER = 6


def export_onnx(model: Model, path: Path | str, *, opset: int | None = None) -> Path:
    """Write ``model``'s whole prediction path (transform and estimator) as an ONNX file.

    ``opset`` is the ``ai.onnx`` opset (default :data:`DEFAULT_OPSET`, at least
    :data:`MIN_OPSET`). The file is checked with ONNX's checker before it is written, and
    written completely or not at all (an existing file is replaced). Returns the path.
    Raises :class:`~kiln.errors.DataError` for a transform op, a model family or an input type
    the exporter does not support, and when the ``onnx`` package is not installed.
    """
    onnx = _onnx()
    version = _opset(onnx, opset)
    proto = _build(onnx, model, version)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise DataError(
            f"{model.trainer.model_type}: the exported ONNX graph does not validate ({e}); "
            "this is a bug in Kiln's exporter: please report it with the model"
        ) from e
    if proto.ByteSize() > _MAX_PROTO_BYTES:
        raise DataError(
            f"{model.trainer.model_type}: the ONNX graph is {proto.ByteSize():,} bytes, over "
            "protobuf's 2 GiB limit for one file; train a smaller model (fewer trees or leaves)"
        )
    return _write(proto.SerializeToString(), Path(path))


# ------------------------------------------------------------------------------------------------
# plumbing


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as e:
        raise DataError(
            f"ONNX export needs the onnx package, which is not installed: {_INSTALL}"
        ) from e
    return onnx


def _opset(onnx: Any, opset: int | None) -> int:
    if opset is None:
        return DEFAULT_OPSET
    latest = int(onnx.defs.onnx_opset_version())
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= latest:
        raise DataError(
            f"ONNX opset {opset!r} is not one the exporter writes: choose an integer from "
            f"{MIN_OPSET} to {latest} (the installed onnx's latest), or leave it out for "
            f"{DEFAULT_OPSET}"
        )
    return opset


def _write(data: bytes, final: Path) -> Path:
    if final.is_dir():
        raise DataError(f"{final} is a folder; give the path of the .onnx file to write")
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(prefix=f".{final.name}-", dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(staging, final)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return final


class _Graph:
    """Nodes, constants, inputs and outputs of the graph being built; every value gets a name of
    its own (``kiln:<hint>:<n>``, which no column name is expected to take)."""

    def __init__(self, onnx: Any) -> None:
        self.onnx = onnx
        self.h = onnx.helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.inputs: dict[str, Any] = {}
        self.outputs: list[Any] = []
        self.uses_ml = False
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"kiln:{hint}:{self._count}"

    def const(self, value: Any, hint: str = "const") -> str:
        name = self.name(hint)
        array = np.asarray(value)
        if array.dtype.kind in "USO":
            array = np.asarray(array.tolist(), dtype=object)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def f64(self, value: Any, hint: str = "const") -> str:
        return self.const(np.asarray(value, dtype=np.float64), hint)

    def i64(self, value: Any, hint: str = "const") -> str:
        return self.const(np.asarray(value, dtype=np.int64), hint)

    def op(
        self, op_type: str, inputs: Sequence[str], hint: str, *, domain: str = "", **attrs: Any
    ) -> str:
        out = self.name(hint)
        if domain == "ai.onnx.ml":
            self.uses_ml = True
        self.nodes.append(
            self.h.make_node(op_type, list(inputs), [out], name=out, domain=domain, **attrs)
        )
        return out

    def input(self, name: str, kind: Kind) -> None:
        elem = self.onnx.TensorProto.DOUBLE if kind == "number" else self.onnx.TensorProto.STRING
        self.inputs[name] = self.h.make_tensor_value_info(name, elem, ["N", 1])

    def output(self, name: str, tensor: str, elem_type: int, shape: list[Any]) -> None:
        self.nodes.append(self.h.make_node("Identity", [tensor], [name], name=f"kiln:out:{name}"))
        self.outputs.append(self.h.make_tensor_value_info(name, elem_type, shape))

    def squeeze(self, tensor: str, hint: str) -> str:
        """``[N, 1]`` to ``[N]``."""
        return self.op("Squeeze", [tensor, self.i64([1], "axis")], hint)


# ------------------------------------------------------------------------------------------------
# the transform


def _signature_kind(arrow_type: str) -> str:
    """``number``, ``string``, ``bool`` or ``other``, from an Arrow type as the signature has it."""
    t = arrow_type.strip()
    if t in ("string", "large_string", "utf8", "large_utf8") or (
        t.startswith("dictionary<values=string") or t.startswith("dictionary<values=large_string")
    ):
        return "string"
    if t == "bool":
        return "bool"
    if t.startswith(("int", "uint", "decimal")) or t in ("halffloat", "float", "double"):
        return "number"
    return "other"


@dataclass
class _Features:
    """The working columns while the transform is written: each column's current value (a
    ``[N, 1]`` tensor) and whether it holds numbers (double, NaN missing) or strings (``""``
    missing); and the feature blocks emitted so far, in the order ``FittedTransform`` emits them."""

    g: _Graph
    types: dict[str, str]
    columns: dict[str, tuple[str, Kind]] = field(default_factory=dict)
    blocks: list[tuple[str, int]] = field(default_factory=list)

    def kind_of(self, column: str) -> Kind | None:
        """The column's current kind; None while no op has read it yet."""
        current = self.columns.get(column)
        return current[1] if current is not None else None

    def read(self, column: str, kind: Kind, reader: str) -> str:
        current = self.columns.get(column)
        if current is None:
            if column not in self.types:
                raise DataError(
                    f"{reader} reads column {column!r}, which is not in the model's input "
                    "signature; ONNX export needs every column the transform reads"
                )
            source = _signature_kind(self.types[column])
            if source == "other" or (kind == "number" and source not in ("number", "bool")):
                raise DataError(
                    f"ONNX export does not support input column {column!r} of type "
                    f"{self.types[column]} read by {reader} yet: a number column a numeric op "
                    "reads, or a string, number or bool column a categorical op reads, can be "
                    "exported; cast the column before training"
                )
            self.g.input(column, kind)
            current = (column, kind)
            self.columns[column] = current
        if current[1] != kind:
            raise DataError(
                f"ONNX export does not support column {column!r} read as {current[1]}s by one op "
                f"and as {kind}s by {reader} yet; give it one reading in the transform"
            )
        return current[0]

    def write(self, column: str, tensor: str, kind: Kind) -> None:
        self.columns[column] = (tensor, kind)

    def emit(self, tensor: str, width: int) -> None:
        if width > 0:
            self.blocks.append((tensor, width))


def _emit_points(fitted: FittedTransform) -> dict[int, str]:
    """Where a rewritten column that no later op consumes becomes a feature: at its last rewrite
    (the rule of :class:`~kiln.transform.FittedTransform`, which the feature count check in
    :func:`_build` holds this to)."""
    consumed = {c for op in fitted.ops if not op.rewrites for c in op.inputs()}
    last: dict[str, int] = {}
    for i, op in enumerate(fitted.ops):
        if op.rewrites:
            last[op.inputs()[0]] = i
    return {i: c for c, i in last.items() if c not in consumed}


def _transform(g: _Graph, fitted: FittedTransform, signature: list[dict[str, Any]]) -> _Features:
    if isinstance(fitted, StackedTransform):
        raise DataError(
            "ONNX export does not support a stacked transform (an ensemble's) yet; export a "
            "model with a single transform"
        )
    features = _Features(g, {str(c["name"]): str(c["type"]) for c in signature})
    emit_at = _emit_points(fitted)
    for i, (op, state) in enumerate(zip(fitted.ops, fitted.states, strict=True)):
        _apply(features, op, state)
        column = emit_at.get(i)
        if column is not None:
            features.emit(features.read(column, "number", op.kind), 1)
    for column in fitted.passthrough:
        features.emit(features.read(column, "number", "passthrough"), 1)
    return features


def _apply(f: _Features, op: Op, state: dict[str, Any]) -> None:
    g = f.g
    column = op.inputs()[0] if op.inputs() else ""
    kind = op.kind
    if isinstance(op, Impute):
        _impute(f, op, state)
    elif isinstance(op, Clip):
        x = f.read(column, "number", kind)
        lo = "" if op.min is None else g.f64(op.min, "clip_min")
        hi = "" if op.max is None else g.f64(op.max, "clip_max")
        clipped = g.op("Clip", [x, lo, hi], f"{column}.clip")
        # NaN stays NaN (a runtime's Clip may give a bound)
        f.write(column, g.op("Where", [g.op("IsNaN", [x], "nan"), x, clipped], "clip"), "number")
    elif isinstance(op, Log1p):
        x = f.read(column, "number", kind)
        f.write(column, g.op("Log", [g.op("Add", [x, g.f64(1.0)], "1+x")], "log1p"), "number")
    elif isinstance(op, StandardScale | MinMaxScale | RobustScale | MaxAbsScale):
        x = f.read(column, "number", kind)
        centre = {"standard_scale": "mean", "min_max_scale": "min", "robust_scale": "center"}
        if kind in centre:
            x = g.op("Sub", [x, g.f64(_float(state[centre[kind]]), "centre")], f"{column}.centre")
        f.emit(g.op("Div", [x, g.f64(_float(state["scale"]), "scale")], f"{column}.{kind}"), 1)
    elif isinstance(op, Bucketize | QuantileBucketize):
        x = f.read(column, "number", kind)
        edges = np.asarray(state["edges"], dtype=np.float64)
        if len(edges):  # searchsorted(edges, x, 'right'): how many edges are <= x
            above = g.op("GreaterOrEqual", [x, g.f64(edges.reshape(1, -1), "edges")], "ge")
            counts = g.op("Cast", [above], "ge", to=g.onnx.TensorProto.DOUBLE)
            codes = g.op("ReduceSum", [counts, g.i64([1], "axis")], "bucket", keepdims=1)
        else:
            codes = g.op("Mul", [x, g.f64(0.0)], "bucket")
        nan = g.op("IsNaN", [x], "nan")
        codes = g.op("Where", [nan, g.f64(math.nan, "nan"), codes], f"{column}.bucket")
        k = len(edges) + 1
        if op.one_hot:
            hot = g.op("Equal", [codes, g.f64(np.arange(k, dtype=np.float64).reshape(1, -1))], "eq")
            f.emit(g.op("Cast", [hot], f"{column}.one_hot", to=g.onnx.TensorProto.DOUBLE), k)
        else:
            f.emit(codes, 1)
    elif isinstance(op, OneHot | LabelEncode):
        _categorical(f, op, state)
    else:
        raise DataError(
            f"ONNX export does not support the transform op {kind!r} yet (column(s) "
            f"{', '.join(op.inputs())}); it exports impute, clip, log1p, standard_scale, "
            "min_max_scale, max_abs_scale, robust_scale, bucketize, quantile_bucketize, one_hot "
            "and label_encode: train with those to export the model"
        )


def _impute(f: _Features, op: Impute, state: dict[str, Any]) -> None:
    g = f.g
    fill = state.get("fill")
    current = f.kind_of(op.column)
    if current is None:  # the raw column: numbers unless it is text (or the fill is)
        source = _signature_kind(f.types.get(op.column, "other"))
        current = "number" if source == "number" and not isinstance(fill, str) else "string"
    if current == "number" and not isinstance(fill, str):
        x = f.read(op.column, "number", "impute")
        if fill is not None:
            nan = g.op("IsNaN", [x], "nan")
            x = g.op("Where", [nan, g.f64(float(fill), "fill"), x], f"{op.column}.impute")
        f.write(op.column, x, "number")
        return
    s = f.read(op.column, "string", "impute")
    if fill is not None:
        empty = g.op("Equal", [s, g.const(np.array([""], dtype=object), "missing")], "missing")
        s = g.op("Where", [empty, g.const(np.array([str(fill)], dtype=object), "fill"), s], "fill")
    f.write(op.column, s, "string")


def _categorical(f: _Features, op: OneHot | LabelEncode, state: dict[str, Any]) -> None:
    """Vocabulary codes (int64, -1 for a value not in the vocabulary), then the op's block."""
    g = f.g
    vocab: list[str] = list(state["vocabulary"])
    if "" in vocab:
        raise DataError(
            f"ONNX export of {op.kind}({op.column!r}): the vocabulary holds the empty string "
            "as a value, and the exported file reads '' as a missing value; map empty strings "
            "to null (or another value) before training"
        )
    s = f.read(op.column, "string", op.kind)
    keys = ["" if v == MISSING else v for v in vocab] or [MISSING]
    values = list(range(len(vocab))) or [-1]
    codes = g.op(
        "LabelEncoder",
        [s],
        f"{op.column}.codes",
        domain="ai.onnx.ml",
        keys_strings=keys,
        values_int64s=values,
        default_int64=-1,
    )
    unseen = g.op("Equal", [codes, g.i64(-1)], "unseen")
    k = len(vocab)
    if op.unknown == "bucket":
        codes = g.op("Where", [unseen, g.i64(k, "unknown"), codes], f"{op.column}.bucket")
        k += 1
    if isinstance(op, OneHot):
        hot = g.op("Equal", [codes, g.i64(np.arange(k).reshape(1, -1), "vocab")], "eq")
        f.emit(g.op("Cast", [hot], f"{op.column}.one_hot", to=g.onnx.TensorProto.DOUBLE), k)
        return
    as_float = g.op("Cast", [codes], "codes", to=g.onnx.TensorProto.DOUBLE)
    if op.unknown != "bucket":
        as_float = g.op("Where", [unseen, g.f64(math.nan, "nan"), as_float], "codes")
    f.emit(as_float, 1)


def _float(v: Any) -> float:
    return math.nan if v is None else float(v)


# ------------------------------------------------------------------------------------------------
# the estimators


def _build(onnx: Any, model: Model, opset: int) -> onnx.ModelProto:
    from kiln.train import (
        BoostedTreeClassifier,
        BoostedTreeRegressor,
        KMeansTrainer,
        LinearRegTrainer,
        LogisticRegTrainer,
        PCATrainer,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from kiln.train.dl import DnnClassifierTrainer, DnnRegressorTrainer  # (imports no torch)

    trainer = model.trainer
    mt = trainer.model_type
    g = _Graph(onnx)
    features = _transform(g, model.transform, model.signature)
    width = sum(w for _, w in features.blocks)
    X = (
        features.blocks[0][0]
        if len(features.blocks) == 1
        else g.op("Concat", [t for t, _ in features.blocks], "X", axis=1)
    )
    name = model.prediction_column
    # exact types: a subclass (a custom trainer) may predict otherwise
    if type(trainer) is LinearRegTrainer:
        _check_width(mt, width, np.asarray(trainer.coef_).shape[0])
        _regression(g, name, g.squeeze(_linear(g, trainer, X), "prediction"))
    elif type(trainer) is LogisticRegTrainer:
        _check_width(mt, width, np.asarray(trainer.coef_).shape[0])
        _classification(g, name, trainer.classes_, _linear(g, trainer, X), logits=True)
    elif type(trainer) in (
        BoostedTreeClassifier,
        BoostedTreeRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    ):
        trees: Any = trainer
        _check_width(mt, width, int(trees.n_features_in_))
        raw, logits = _trees(g, mt, trees.booster_.dump_model(num_iteration=-1), X)
        if trees.task == "regression":
            _regression(g, name, g.squeeze(raw, "prediction"))
        else:
            _classification(g, name, trees.classes_, raw, logits=logits)
    elif type(trainer) is KMeansTrainer:
        _check_width(mt, width, np.asarray(trainer.centroids_).shape[1])
        _kmeans(g, trainer, X)
    elif type(trainer) is PCATrainer:
        _check_width(mt, width, np.asarray(trainer.components_).shape[1])
        _pca(g, trainer, X)
    elif type(trainer) is DnnRegressorTrainer:
        _check_width(mt, width, int(trainer.n_features_in_))
        # the label was standardised for training
        y_scale, y_mean = _private(trainer, "_y_scale"), _private(trainer, "_y_mean")
        y = g.op("Mul", [_dnn(g, trainer, X), g.f64(float(y_scale), "y_scale")], "y")
        y = g.op("Add", [y, g.f64(float(y_mean), "y_mean")], "y")
        _regression(g, name, g.squeeze(y, "prediction"))
    elif type(trainer) is DnnClassifierTrainer:
        _check_width(mt, width, int(trainer.n_features_in_))
        _classification(g, name, trainer.classes_, _dnn(g, trainer, X), logits=True)
    else:
        raise DataError(
            f"ONNX export does not support model type {mt!r} yet; it exports linear_reg, "
            "logistic_reg, kmeans, pca, boosted_tree_* and random_forest_* (LightGBM) and "
            "dnn_* models"
        )
    return _model_proto(g, model, opset)


def _private(trainer: Any, attribute: str) -> Any:
    """A trainer's fitted state that it keeps to itself (the exporter writes it into the graph:
    k-means' standardised centroids, a DNN's network and scalings)."""
    return getattr(trainer, attribute)


def _check_width(model_type: str, width: int, expected: int) -> None:
    if width != expected:
        raise DataError(
            f"{model_type}: the exported transform gives {width} features but the estimator "
            f"takes {expected}; this is a bug in Kiln's exporter: please report it with the model"
        )


def _model_proto(g: _Graph, model: Model, opset: int) -> onnx.ModelProto:
    h = g.h
    # every signature column is an input, in signature order (those the model does not read too)
    inputs = []
    for column in model.signature:
        column_name = str(column["name"])
        if column_name not in g.inputs:
            source = _signature_kind(str(column["type"]))
            if source == "other":
                continue
            g.input(column_name, "number" if source == "number" else "string")
        inputs.append(g.inputs[column_name])
    clash = [o.name for o in g.outputs if o.name in g.inputs]
    if clash:
        raise DataError(
            f"ONNX export: input column {clash[0]!r} has the name of an output of the model; "
            "rename the column before training"
        )
    graph = h.make_graph(
        g.nodes,
        f"kiln.{model.trainer.model_type}",
        inputs,
        g.outputs,
        initializer=g.initializers,
        doc_string=(
            "Kiln model: transform and estimator. Inputs [N, 1]: double (NaN missing) or string "
            "('' missing)."
        ),
    )
    opsets = [h.make_opsetid("", opset)]
    if g.uses_ml:
        opsets.append(h.make_opsetid("ai.onnx.ml", ML_OPSET))
    proto: onnx.ModelProto = h.make_model(graph, opset_imports=opsets, producer_name="kiln")
    proto.producer_version = __version__
    proto.ir_version = h.find_min_ir_version_for(opsets)
    proto.doc_string = f"{model.trainer.model_type} exported by Kiln {__version__}"
    meta = {
        "kiln.model_type": model.trainer.model_type,
        "kiln.task": model.task,
        "kiln.label": model.label or "",
        "kiln.kiln_version": __version__,
    }
    classes = getattr(model.trainer, "classes_", None)
    if classes is not None:
        meta["kiln.classes"] = json.dumps(_classes(g, classes)[0].tolist())
    h.set_model_props(proto, meta)
    return proto


def _regression(g: _Graph, name: str, value: str) -> None:
    g.output(name, value, g.onnx.TensorProto.DOUBLE, ["N"])


def _classes(g: _Graph, classes: Any) -> tuple[np.ndarray[Any, Any], int]:
    """The classes as an array ONNX can hold, and its element type."""
    values = np.asarray(classes).tolist()
    T = g.onnx.TensorProto
    if all(isinstance(v, str) for v in values):
        return np.asarray(values, dtype=object), int(T.STRING)
    if all(isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=bool), int(T.BOOL)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.int64), int(T.INT64)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.float64), int(T.DOUBLE)
    raise DataError(
        "ONNX export supports class labels that are all strings, all integers, all numbers or "
        f"all bools; these are mixed: {values[:5]}"
    )


def _classification(g: _Graph, name: str, classes: Any, scores: str, *, logits: bool) -> None:
    """``scores`` is ``[N, 1]`` (binary: the positive class's logit, or its probability when
    ``logits`` is false) or ``[N, k]`` (logits, or probabilities). Outputs the label and the
    probabilities in the classes' order."""
    values, elem = _classes(g, classes)
    if len(values) == 2:
        p = g.op("Sigmoid", [scores], "p") if logits else scores
        probs = g.op("Concat", [g.op("Sub", [g.f64(1.0), p], "1-p"), p], "probs", axis=1)
    else:
        probs = g.op("Softmax", [scores], "probs", axis=1) if logits else scores
    best = g.op("ArgMax", [probs], "argmax", axis=1, keepdims=0)
    label = g.op("Gather", [g.const(values, "classes"), best], "label", axis=0)
    g.output(name, label, elem, ["N"])
    g.output(f"{name}_probs", probs, g.onnx.TensorProto.DOUBLE, ["N", len(values)])


def _linear(g: _Graph, trainer: Any, X: str) -> str:
    coef = np.asarray(trainer.coef_, dtype=np.float64)
    W = coef.reshape(coef.shape[0], -1)
    b = np.atleast_1d(np.asarray(trainer.intercept_, dtype=np.float64)).reshape(1, -1)
    return g.op("Add", [g.op("MatMul", [X, g.f64(W, "weights")], "xw"), g.f64(b, "bias")], "score")


def _kmeans(g: _Graph, trainer: Any, X: str) -> None:
    """Distances as ``KMeansTrainer.transform`` computes them, then the nearest centroid."""
    centers = np.asarray(_private(trainer, "_centers"), dtype=np.float64)  # standardised
    Z = g.op("Sub", [X, g.f64(np.asarray(trainer.means_).reshape(1, -1), "means")], "z")
    Z = g.op("Div", [Z, g.f64(np.asarray(trainer.stds_).reshape(1, -1), "stds")], "z")
    axis = g.i64([1], "axis")
    if trainer.distance_type == "COSINE":
        norms = g.op("Sqrt", [g.op("ReduceSum", [g.op("Mul", [Z, Z], "zz"), axis], "n2")], "norm")
        positive = g.op("Greater", [norms, g.f64(0.0)], "positive")
        Z = g.op("Div", [Z, g.op("Where", [positive, norms, g.f64(1.0)], "norm")], "z")
    zz = g.op("ReduceSum", [g.op("Mul", [Z, Z], "zz"), axis], "zz", keepdims=1)
    cross = g.op("MatMul", [Z, g.f64(centers.T, "centers_t")], "cross")
    twice = g.op("Mul", [g.f64(2.0), cross], "2cross")
    cc = (centers * centers).sum(axis=1).reshape(1, -1)
    squared = g.op("Add", [g.op("Sub", [zz, twice], "d"), g.f64(cc, "cc")], "d2")
    squared = g.op("Max", [squared, g.f64(0.0)], "d2")
    if trainer.distance_type == "COSINE":
        distances = g.op("Div", [squared, g.f64(2.0)], "distance")
    else:
        distances = g.op("Sqrt", [squared], "distance")
    nearest = g.op("ArgMin", [distances], "argmin", axis=1, keepdims=0)
    T = g.onnx.TensorProto
    g.output("centroid_id", g.op("Add", [nearest, g.i64(1)], "centroid_id"), T.INT64, ["N"])
    g.output("nearest_centroids_distance", distances, T.DOUBLE, ["N", centers.shape[0]])


def _pca(g: _Graph, trainer: Any, X: str) -> None:
    components = np.asarray(trainer.components_, dtype=np.float64)
    Z = g.op("Sub", [X, g.f64(np.asarray(trainer.means_).reshape(1, -1), "means")], "z")
    Z = g.op("Div", [Z, g.f64(np.asarray(trainer.scales_).reshape(1, -1), "scales")], "z")
    projected = g.op("MatMul", [Z, g.f64(components.T, "components_t")], "projected")
    for i in range(components.shape[0]):
        column = g.op("Gather", [projected, g.i64(i, "component")], "component", axis=1)
        g.output(f"principal_component_{i + 1}", column, g.onnx.TensorProto.DOUBLE, ["N"])


def _dnn(g: _Graph, trainer: Any, X: str) -> str:
    """The network's outputs, ``[N, outputs]`` as doubles: standardised in double, then its layers
    in float32 (as PyTorch runs them), written from its weights with standard operators. (Not
    ``torch.onnx.export``: only :mod:`kiln.train.dl` imports torch, and this needs none.)"""
    T = g.onnx.TensorProto
    mean = np.asarray(_private(trainer, "_x_mean"), dtype=np.float64).reshape(1, -1)
    scale = np.asarray(_private(trainer, "_x_scale"), dtype=np.float64).reshape(1, -1)
    Z = g.op("Div", [g.op("Sub", [X, g.f64(mean, "x_mean")], "z"), g.f64(scale, "x_scale")], "z")
    h = g.op("Cast", [Z], "z32", to=T.FLOAT)
    for layer in _private(trainer, "_net"):
        layer_type = type(layer).__name__
        if layer_type == "Linear":
            weight = layer.weight.detach().cpu().numpy().astype(np.float32)
            bias = layer.bias.detach().cpu().numpy().astype(np.float32)
            h = g.op(
                "Gemm",
                [h, g.const(weight, "weight"), g.const(bias, "bias")],
                "linear",
                transB=1,
            )
        elif layer_type == "Dropout":
            continue  # off when predicting
        elif layer_type == "ReLU6":
            lo, hi = g.const(np.float32(0.0), "zero"), g.const(np.float32(6.0), "six")
            h = g.op("Clip", [h, lo, hi], "relu6")
        elif layer_type == "CReLU":
            positive = g.op("Relu", [h], "relu")
            negative = g.op("Relu", [g.op("Neg", [h], "neg")], "relu")
            h = g.op("Concat", [positive, negative], "crelu", axis=-1)
        elif layer_type in ("ReLU", "ELU", "SELU", "Sigmoid", "Tanh"):
            op_type = {"ReLU": "Relu", "ELU": "Elu", "SELU": "Selu"}.get(layer_type, layer_type)
            h = g.op(op_type, [h], op_type.lower())
        else:
            raise DataError(
                f"{trainer.model_type}: ONNX export does not support the network layer "
                f"{layer_type} yet"
            )
    return g.op("Cast", [h], "outputs", to=T.DOUBLE)


# ------------------------------------------------------------------------------------------------
# LightGBM trees


@dataclass
class _Ensemble:
    """TreeEnsemble's attributes, filled tree by tree (nodes are split nodes; leaves apart)."""

    roots: list[int] = field(default_factory=list)
    features: list[int] = field(default_factory=list)
    modes: list[int] = field(default_factory=list)
    splits: list[float] = field(default_factory=list)
    true_ids: list[int] = field(default_factory=list)
    true_leafs: list[int] = field(default_factory=list)
    false_ids: list[int] = field(default_factory=list)
    false_leafs: list[int] = field(default_factory=list)
    missing_true: list[int] = field(default_factory=list)
    members: list[float] = field(default_factory=list)
    leaf_targets: list[int] = field(default_factory=list)
    leaf_weights: list[float] = field(default_factory=list)

    def node(self, feature: int, mode: int, split: float, missing_true: bool) -> int:
        self.features.append(feature)
        self.modes.append(mode)
        self.splits.append(split)
        self.missing_true.append(int(missing_true))
        for ids in (self.true_ids, self.true_leafs, self.false_ids, self.false_leafs):
            ids.append(0)
        return len(self.features) - 1

    def link(self, node: int, left: tuple[int, bool], right: tuple[int, bool]) -> None:
        self.true_ids[node], self.true_leafs[node] = left[0], int(left[1])
        self.false_ids[node], self.false_leafs[node] = right[0], int(right[1])

    def leaf(self, target: int, value: float) -> tuple[int, bool]:
        self.leaf_targets.append(target)
        self.leaf_weights.append(value)
        return len(self.leaf_weights) - 1, True


def _trees(g: _Graph, model_type: str, dump: dict[str, Any], X: str) -> tuple[str, bool]:
    """LightGBM's trees as one ``TreeEnsemble`` (doubles throughout, as LightGBM predicts), then
    the objective's output transform. Returns ``[N, targets]`` and whether it holds logits
    (classifiers) rather than the final values."""
    objective = str(dump.get("objective", "")).split()
    per_iteration = int(dump.get("num_tree_per_iteration", 1))
    trees = list(dump.get("tree_info", []))
    if not objective or not trees:
        raise DataError(f"{model_type}: the LightGBM model has no trees or no objective to export")
    ensemble = _Ensemble()
    for i, tree in enumerate(trees):
        target = i % per_iteration
        root = tree["tree_structure"]
        if "split_index" not in root:  # a single leaf: a split whose two branches reach it
            node = ensemble.node(0, _BRANCH_LEQ, 0.0, missing_true=True)
            leaf = ensemble.leaf(target, float(root["leaf_value"]))
            ensemble.link(node, leaf, leaf)
            ensemble.roots.append(node)
        else:
            ensemble.roots.append(_tree_node(ensemble, model_type, root, target)[0])
    nh = g.onnx.numpy_helper
    raw = g.op(
        "TreeEnsemble",
        [X],
        "trees",
        domain="ai.onnx.ml",
        tree_roots=ensemble.roots,
        nodes_featureids=ensemble.features,
        nodes_modes=nh.from_array(np.asarray(ensemble.modes, dtype=np.uint8)),
        nodes_splits=nh.from_array(np.asarray(ensemble.splits, dtype=np.float64)),
        nodes_truenodeids=ensemble.true_ids,
        nodes_trueleafs=ensemble.true_leafs,
        nodes_falsenodeids=ensemble.false_ids,
        nodes_falseleafs=ensemble.false_leafs,
        nodes_missing_value_tracks_true=ensemble.missing_true,
        leaf_targetids=ensemble.leaf_targets,
        leaf_weights=nh.from_array(np.asarray(ensemble.leaf_weights, dtype=np.float64)),
        n_targets=per_iteration,
        aggregate_function=1,  # SUM
        post_transform=0,  # NONE
        **(
            {"membership_values": nh.from_array(np.asarray(ensemble.members, dtype=np.float64))}
            if ensemble.members
            else {}
        ),
    )
    if dump.get("average_output"):  # a random forest: the mean of its iterations' trees
        iterations = len(trees) // per_iteration
        raw = g.op("Div", [raw, g.f64(float(iterations), "iterations")], "average")
    if objective[0] == "regression" and len(objective) == 1:
        return raw, False
    if objective[0] == "binary":
        sigmoid = 1.0
        for part in objective[1:]:
            key, _, value = part.partition(":")
            if key == "sigmoid":
                sigmoid = float(value)
        scaled = g.op("Mul", [raw, g.f64(sigmoid, "sigmoid")], "logit")
        return g.op("Sigmoid", [scaled], "p"), False
    if objective[0] == "multiclass":
        return raw, True
    raise DataError(
        f"{model_type}: ONNX export does not support the LightGBM objective "
        f"{' '.join(objective)!r} yet (regression, binary and multiclass are supported)"
    )


def _tree_node(
    ensemble: _Ensemble, model_type: str, node: dict[str, Any], target: int
) -> tuple[int, bool]:
    if "split_index" not in node:
        if "leaf_coeff" in node:
            raise DataError(f"{model_type}: ONNX export does not support linear trees yet")
        return ensemble.leaf(target, float(node["leaf_value"]))
    feature = int(node["split_feature"])
    decision = node.get("decision_type")
    if decision == "<=":
        threshold = float(node["threshold"])
        missing = node.get("missing_type")
        if missing == "NaN":  # NaN takes the default side
            missing_true = bool(node["default_left"])
        elif missing == "None":  # NaN is read as 0
            missing_true = threshold >= 0.0
        else:
            raise DataError(
                f"{model_type}: ONNX export does not support LightGBM splits with missing type "
                f"{missing!r} (zero_as_missing) yet"
            )
        index = ensemble.node(feature, _BRANCH_LEQ, threshold, missing_true)
    elif decision == "==":  # categorical: the categories in the set go left; NaN goes right
        categories = [float(int(c)) for c in str(node["threshold"]).split("||")]
        ensemble.members.extend([*categories, math.nan])
        index = ensemble.node(feature, _BRANCH_MEMBER, math.nan, missing_true=False)
    else:
        raise DataError(f"{model_type}: ONNX export does not support the split {decision!r}")
    left = _tree_node(ensemble, model_type, node["left_child"], target)
    right = _tree_node(ensemble, model_type, node["right_child"], target)
    ensemble.link(index, left, right)
    return index, False
