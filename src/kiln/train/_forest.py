"""LightGBM's trees, predicted by Kiln's own compiled walker (``kiln.train._treewalk``).

LightGBM's predictor walks every tree for one row, then the next row: each row reads the whole
model again, and each step waits on a branch the CPU cannot guess. Kiln's walker takes the rows in
blocks, tree by tree, 16 rows walking a tree together without a branch (the C file says how). The
numbers are LightGBM's own: the same leaf values added in the same order, the same decisions for
NaN, zero-as-missing and categorical splits, and the same arithmetic for the sigmoid or softmax
that turns them into probabilities: the very bits ``Booster.predict`` gives.

Measured on one thread: 2.3-6.3x LightGBM's rows/s in ``bench/tree_predict.py``; on AutoML's 60 s
ensembles 4.6x (HI), 8.6x (digits) and 1.9x (flights, whose many categorical splits are decided
in place, with a branch).

The walker reads flat arrays built here from the booster's model text, the format Kiln stores the
booster in; nothing is compiled or loaded from a model. A booster this walker does not cover
(linear trees, an objective other than regression, binary or multiclass, a build of Kiln without a
C compiler) predicts through LightGBM as before: :func:`compiled_forest` returns ``None``.
"""

from __future__ import annotations

import itertools
import re
import weakref
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from kiln.errors import TrainingError

if TYPE_CHECKING:
    import lightgbm

_treewalk: ModuleType | None
try:
    from kiln.train import _treewalk as _built

    _treewalk = _built
except ImportError:  # Kiln built without a C compiler: LightGBM predicts
    _treewalk = None

__all__ = [
    "CompiledForest",
    "build_estimate",
    "compiled_forest",
    "lightgbm_spent",
    "paid_forest",
]

Array = np.ndarray[Any, Any]

# the walker's split flags and tree kinds (see _treewalk.c)
NAN_RIGHT, ZERO_MISSING, DEFAULT_RIGHT, CATEGORICAL = 1, 2, 4, 8
PLAIN, MIXED = 0, 1  # MIXED: a zero-missing or in-place categorical split too

TEST_MIN_SPLITS = 2
"""A tree's categorical splits become tests, computed once per row, when the forest holds each of
their (column, bitset) this many times or more, so the tree walks PLAIN; a tree with a rarer set
decides its categorical splits in place, when a row reaches one (MIXED). Tests that would spare
no tree are not made: on 100,000 rows of 8 string columns with 10-1000 values, 524 such tests held
the walker at 2.0x LightGBM's rows/s, against 2.2x without them (bench/tree_predict.py's table)."""

# LightGBM's decision_type bits
_CATEGORICAL_MASK = 1
_DEFAULT_LEFT_MASK = 2
_MISSING_ZERO, _MISSING_NAN = 1, 2

THREAD_ROWS = 4096
"""Rows a thread is given at least, when the trainer predicts on several threads: below it,
starting a thread costs more than it saves."""


class _Unsupported(Exception):
    """The model text holds something the walker does not do: LightGBM predicts."""


class CompiledForest:
    """One booster's trees as the walker's arrays, and the objective's output transform."""

    def __init__(self, text: str) -> None:
        parsed = _Text(text)
        header = parsed.header
        self.width = int(header["max_feature_idx"]) + 1
        self.outputs = int(header.get("num_tree_per_iteration", "1"))
        objective = header.get("objective", "").split()
        if not objective:
            raise _Unsupported("no objective")
        self.objective = objective[0]
        self.sigmoid = 1.0
        for part in objective[1:]:
            key, _, value = part.partition(":")
            if key == "sigmoid":
                self.sigmoid = float(value)
            elif key != "num_class":
                raise _Unsupported(f"objective option {part}")
        if self.objective not in ("regression", "binary", "multiclass"):
            raise _Unsupported(f"objective {self.objective}")
        self.iterations = max(parsed.leaves.size // self.outputs, 1)
        self.average = "average_output" in header
        self._arrays = _arrays(parsed, self.outputs, self.width)
        assert _treewalk is not None
        self._forest = _treewalk.Forest(self.width, self.outputs, *self._arrays)

    def raw(self, X: Array, threads: int = 1) -> Array:
        """The raw scores, rows x outputs, as ``Booster.predict(raw_score=True)`` gives them (for
        a random forest, the sum of its trees, as LightGBM gives it there)."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.width:
            raise TrainingError(
                f"the trees read {self.width} columns; got an array of shape {X.shape}"
            )
        out = np.zeros((X.shape[0], self.outputs))
        parts = min(threads, X.shape[0] // THREAD_ROWS)
        if parts <= 1:
            self._forest.walk(X, out)
        else:  # the walker lets go of the GIL: threads walk their own rows at once
            bounds = np.linspace(0, X.shape[0], parts + 1).astype(int)
            with ThreadPoolExecutor(parts, thread_name_prefix="kiln-trees") as pool:
                walks = [
                    pool.submit(self._forest.walk, X[a:b], out[a:b])
                    for a, b in itertools.pairwise(bounds)
                ]
                for walk in walks:
                    walk.result()  # (a thread's error, here)
        return out

    def predict(self, X: Array, threads: int = 1) -> Array:
        """What ``Booster.predict(X)`` gives: a regression's values or the positive class's
        probability (one column dropped to a vector), or the classes' probabilities."""
        values = self.raw(X, threads)
        if self.average:  # a random forest: the mean of its iterations, as LightGBM predicts
            values /= self.iterations
        assert _treewalk is not None
        if self.objective == "binary":  # (in C, with LightGBM's arithmetic: its very bits)
            _treewalk.sigmoid(values, self.sigmoid)
        elif self.objective == "multiclass":
            _treewalk.softmax(values, self.outputs)
        return values[:, 0] if self.outputs == 1 else values


class _Text:
    """The model text's header lines, and each per-tree key's lines for all trees at once (one
    regular-expression pass per key over the text, not a Python loop per tree)."""

    def __init__(self, text: str) -> None:
        body, end, _ = text.partition("\nend of trees")
        head, tree, _ = body.partition("\nTree=")
        if not end or not tree:
            raise _Unsupported("no trees")
        self.header = dict(line.partition("=")[::2] for line in head.splitlines() if line)
        self.body = body[len(head) :]
        self.leaves = self.ints("num_leaves")

    def lines(self, key: str) -> list[str]:
        return re.findall(rf"\n{key}=([^\n]*)", self.body)  # (5x "^...$" with MULTILINE)

    def ints(self, key: str) -> Array:
        return self._join(key, np.int64)

    def floats(self, key: str) -> Array:
        return self._join(key, np.float64)

    def _join(self, key: str, dtype: Any) -> Array:
        return np.array(" ".join(self.lines(key)).split(), dtype=dtype)


def _arrays(text: _Text, outputs: int, width: int) -> list[Array]:
    """The walker's arrays, in the order ``_treewalk.Forest`` takes them after its two sizes:
    feature, threshold, child, value, flags, cat_start, cat_words, roots, depth, kind, output,
    test_column, test_start, bits. Per tree, its split nodes come first, then its leaves; a leaf's
    children are itself.

    A categorical split of a tree whose every set recurs (:data:`TEST_MIN_SPLITS`) becomes a
    numerical split at 0.5 on a test's column (``width`` + the test's number; the test is 0 for a
    category in the set, 1 outside it), computed once per row; the others are decided in place
    (CATEGORICAL), which makes their tree MIXED."""
    if any(line.strip() != "0" for line in text.lines("is_linear")):
        raise _Unsupported("linear trees")
    leaves = text.leaves
    splits = leaves - 1
    trees = leaves.size
    base = np.concatenate([[0], np.cumsum(2 * leaves - 1)])
    total = int(base[-1])
    if total >= 2**31 - 1:
        raise _Unsupported("more nodes than 32-bit indices hold")
    base = base[:-1]
    # every split's tree and node, every leaf's tree and node
    split_tree, split_local = _numbered(splits)
    split_node = base[split_tree] + split_local
    leaf_tree, leaf_local = _numbered(leaves)
    leaf_node = base[leaf_tree] + splits[leaf_tree] + leaf_local

    column = text.ints("split_feature")
    decision = text.ints("decision_type")
    t = text.floats("threshold")
    value_of_leaf = text.floats("leaf_value")
    if not (column.size == decision.size == t.size == split_tree.size) or (
        value_of_leaf.size != leaf_tree.size
    ):
        raise _Unsupported("trees whose lines do not agree in length")
    child = np.repeat(np.arange(total, dtype=np.int64), 2).reshape(-1, 2)  # leaves: themselves
    for side, key in enumerate(("left_child", "right_child")):
        c = text.ints(key)
        child[split_node, side] = np.where(
            c >= 0, base[split_tree] + c, base[split_tree] + splits[split_tree] + ~c
        )
    categorical = (decision & _CATEGORICAL_MASK) != 0
    missing = (decision >> 2) & 3
    left = (decision & _DEFAULT_LEFT_MASK) != 0
    nan_right = np.where(missing == _MISSING_NAN, ~left, ~(t >= 0.0))  # None: NaN reads as 0
    zero = ~categorical & (missing == _MISSING_ZERO)
    split_flags = np.where(~categorical & ~zero & nan_right, NAN_RIGHT, 0)
    split_flags |= np.where(zero, ZERO_MISSING | np.where(left, 0, DEFAULT_RIGHT), 0)

    feature = np.zeros(total, dtype=np.int64)
    threshold = np.zeros(total)
    value = np.zeros(total)
    flags = np.zeros(total, dtype=np.uint8)
    feature[split_node] = column
    threshold[split_node] = np.where(categorical, 0.5, t)
    flags[split_node] = split_flags
    value[leaf_node] = value_of_leaf
    kinds = np.zeros(trees, dtype=np.uint8)
    kinds[np.unique(split_tree[zero])] = MIXED

    cat_start = np.zeros(total, dtype=np.int64)
    cat_words = np.zeros(total, dtype=np.int64)
    tests: dict[tuple[int, bytes], int] = {}  # (column, bitset) -> test
    test_column, test_start, bits = [], [0], [np.zeros(0, dtype=np.uint32)]
    if categorical.any():
        sets = _bitsets(text, split_tree, categorical, t)
        keys = [(int(column[i]), bitset.tobytes()) for i, bitset in sets]
        uses = Counter(keys)
        # a tree with a rare set, or a zero-missing split, is MIXED: tests would not spare it
        mixed = {
            int(split_tree[i])
            for (i, _), key in zip(sets, keys, strict=True)
            if uses[key] < TEST_MIN_SPLITS
        }
        mixed.update(int(tree) for tree in np.flatnonzero(kinds == MIXED))
        in_place: list[Array] = []
        in_place_words = 0
        for (i, bitset), test in zip(sets, keys, strict=True):
            node = split_node[i]
            if int(split_tree[i]) not in mixed:
                if test not in tests:
                    tests[test] = len(tests)
                    test_column.append(test[0])
                    bits.append(bitset)
                    test_start.append(test_start[-1] + bitset.size)
                feature[node] = width + tests[test]
            else:
                flags[node] |= CATEGORICAL
                cat_start[node] = in_place_words
                cat_words[node] = bitset.size
                in_place.append(bitset)
                in_place_words += bitset.size
                kinds[split_tree[i]] = MIXED
        cat_start[(flags & CATEGORICAL) != 0] += test_start[-1]  # after every test's bitset
        bits.extend(in_place)
    children = child.ravel()
    return [
        feature.astype(np.int32),
        threshold,
        children.astype(np.int32),
        value,
        flags,
        cat_start.astype(np.int32),
        cat_words.astype(np.int32),
        base.astype(np.int32),
        _depths(base, children),
        kinds,
        (np.arange(trees) % outputs).astype(np.int32),
        np.asarray(test_column, dtype=np.int32),
        np.asarray(test_start, dtype=np.int32),
        np.concatenate(bits),
    ]


def _bitsets(
    text: _Text, split_tree: Array, categorical: Array, t: Array
) -> list[tuple[int, Array]]:
    """Each categorical split (its index among all splits) and its bitset. LightGBM sizes a bitset
    to its largest category, so two equal sets have equal words."""
    with_sets = np.flatnonzero(text.ints("num_cat") > 0)
    boundaries = text.lines("cat_boundaries")
    words = text.lines("cat_threshold")
    if not (len(boundaries) == len(words) == with_sets.size):
        raise _Unsupported("categorical splits without their bitsets")
    # every tree's boundaries and words, end to end, and where each tree's begin
    bound_sizes = np.array([line.count(" ") + 1 for line in boundaries], dtype=np.int64)
    word_sizes = np.array([line.count(" ") + 1 for line in words], dtype=np.int64)
    all_bounds = np.array(" ".join(boundaries).split(), dtype=np.int64)
    all_words = np.array(" ".join(words).split(), dtype=np.uint32)
    slot = np.full(split_tree.max(initial=0) + 1, -1, dtype=np.int64)
    slot[with_sets] = np.arange(with_sets.size)
    splits = np.flatnonzero(categorical)
    k = slot[split_tree[splits]]
    if (k < 0).any():
        raise _Unsupported("a categorical split without its bitset")
    at = _starts(bound_sizes)[k] + t[splits].astype(np.int64)
    first = _starts(word_sizes)[k]
    starts, ends = first + all_bounds[at], first + all_bounds[at + 1]
    return [(int(i), all_words[a:b]) for i, a, b in zip(splits, starts, ends, strict=True)]


def _depths(roots: Array, child: Array) -> Array:
    """Each tree's depth: the steps from its root to its deepest leaf (a leaf is its own child)."""
    depth = np.zeros(roots.size, dtype=np.int32)
    node, tree = roots, np.arange(roots.size)
    for level in range(1, child.size + 2):
        inner = (child[2 * node] != node) | (child[2 * node + 1] != node)
        node, tree = node[inner], tree[inner]
        if not node.size:
            return depth
        depth[tree] = level
        node = np.concatenate([child[2 * node], child[2 * node + 1]])
        tree = np.concatenate([tree, tree])
    raise _Unsupported("a tree that does not end")


def _starts(sizes: Array) -> Array:
    """Where each of consecutive runs of these sizes begins."""
    return np.cumsum(sizes) - sizes


def _numbered(sizes: Array) -> tuple[Array, Array]:
    """For every item of consecutive runs of these sizes: its run, and its place in the run."""
    run = np.repeat(np.arange(sizes.size), sizes)
    return run, np.arange(run.size) - np.repeat(_starts(sizes), sizes)


# boosters -> their walker (weak keys: a walker lives as long as its booster)
_FORESTS: weakref.WeakKeyDictionary[Any, CompiledForest | None] = weakref.WeakKeyDictionary()
# boosters without a walker yet -> [seconds LightGBM spent predicting them, the walker's cost]
_SPENT: weakref.WeakKeyDictionary[Any, list[float]] = weakref.WeakKeyDictionary()

BUILD_S = (0.005, 15e-6, 5e-6)
"""What making a walker costs, estimated: a fixed part, then per tree and per split (the model
text's writing and reading; measured 0.05-0.45 s for AutoML's members of 66-7,300 trees and
2,000-84,000 splits)."""


def compiled_forest(booster: lightgbm.Booster, text: str | None = None) -> CompiledForest | None:
    """The booster's trees for Kiln's walker, made now if not yet (from ``text``, the booster's
    model text, when the caller holds it); ``None`` where LightGBM must predict (see the module
    docstring). A booster is complete when a trainer assigns it and is never trained further (a
    refit assigns a new one), so the walker never goes stale."""
    if _treewalk is None:
        return None
    try:
        return _FORESTS[booster]
    except KeyError:
        pass
    try:
        forest: CompiledForest | None = CompiledForest(text or booster.model_to_string())
    except (_Unsupported, ValueError, KeyError, IndexError):  # text it cannot read: LightGBM's
        forest = None
    _FORESTS[booster] = forest
    _SPENT.pop(booster, None)
    return forest


def paid_forest(booster: lightgbm.Booster) -> CompiledForest | None:
    """The booster's walker once it pays: made when LightGBM has spent as long predicting the
    booster (:func:`lightgbm_spent`) as making the walker is estimated to take (:data:`BUILD_S`),
    so a model predicted once, like an AutoML candidate on its validation rows, never pays for a
    walker it would not use, and one predicted on and on pays at most twice what it had to.
    ``None`` until then, and where LightGBM must predict."""
    if _treewalk is None:
        return None
    if booster in _FORESTS:
        return _FORESTS[booster]
    spent = _SPENT.get(booster)
    if spent is not None and spent[0] >= spent[1]:
        return compiled_forest(booster)
    return None


def lightgbm_spent(booster: lightgbm.Booster, seconds: float) -> None:
    """Record that LightGBM spent ``seconds`` predicting ``booster`` (see :func:`paid_forest`)."""
    if _treewalk is None or booster in _FORESTS:
        return
    spent = _SPENT.get(booster)
    if spent is None:
        spent = _SPENT[booster] = [0.0, build_estimate(booster)]
    spent[0] += seconds


def build_estimate(booster: lightgbm.Booster) -> float:
    """Seconds :func:`compiled_forest` is estimated to take on ``booster`` (:data:`BUILD_S`); 0.0
    once it has its walker (or where it never will)."""
    if _treewalk is None or booster in _FORESTS:
        return 0.0
    fixed, per_tree, per_split = BUILD_S
    splits = float(booster.feature_importance(importance_type="split").sum())
    return fixed + per_tree * booster.num_trees() + per_split * splits
