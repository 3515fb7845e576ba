"""The TRANSFORM clause of CREATE MODEL, and BigQuery ML's preprocessing functions.

:func:`compile_transform` fits every ``ML.*`` preprocessing call of a TRANSFORM list over the
whole training data with DuckDB (one pass each) and replaces it by a constant-folded scalar
DuckDB expression; the other items (``x * 2 AS x2``, ``CAST``, a passed-through column) are
transpiled from BigQuery to DuckDB as they are. The result is a :class:`~kiln.transform.SqlSelect`
that replays the same SELECT at prediction time.

What each function computes (BigQuery ML's documented semantics):

=======================  ====================================================================
STANDARD_SCALER(x)       ``(x - AVG(x)) / STDDEV_SAMP(x)`` (sample std dev), FLOAT64
MIN_MAX_SCALER(x)        ``(x - MIN) / (MAX - MIN)`` capped to [0, 1], FLOAT64
MAX_ABS_SCALER(x)        ``x / MAX(ABS(x))``, FLOAT64
ROBUST_SCALER(x, [lo,    ``(x - median) / (q_hi - q_lo)``, quantiles as APPROX_QUANTILES(x, 100)
  hi], with_median,
  with_quantile_range)
BUCKETIZE(x, points,     ``'bin_1'`` below the first point, ``'bin_i+1'`` from point i; or the
  exclude_boundaries,    range (``[1, 2)``) / JSON range formats
  output_format)
QUANTILE_BUCKETIZE(x,    BUCKETIZE over APPROX_QUANTILES(x, n)'s inner points
  n, output_format)
IMPUTER(x, strategy)     ``COALESCE(x, mean | median | most_frequent)``
ONE_HOT_ENCODER(s,       ``[(index, 1.0)]``; vocabulary: ``top_k`` most frequent values seen at
  drop, top_k, thresh)   least ``frequency_threshold`` times, sorted, from 1; NULL/unseen: 0
MULTI_HOT_ENCODER(a,     ``[(index, 1.0)]`` per distinct element (document frequency)
  top_k, thresh)
LABEL_ENCODER(s, top_k,  the vocabulary index (INT64), 0 for NULL/unseen
  thresh)
FEATURE_CROSS(STRUCT(    STRUCT of every cross of 2..degree distinct fields, ``a_b``: ``'x_y'``
  a, b), degree)
POLYNOMIAL_EXPAND(       STRUCT of every monomial of degree 1..degree, ``a``, ``a_a``, ``a_b``
  STRUCT(a, b), degree)
HASH_BUCKETIZE(s, n)     FarmHash Fingerprint64 (BigQuery's FARM_FINGERPRINT) as unsigned, mod n
NGRAMS(a, [lo, hi], sep) every n-gram, n in lo..hi, by start position then length
BAG_OF_WORDS(a, top_k,   ``[(index, count)]``, vocabulary by document frequency, unknown: 0
  thresh)
TF_IDF(a, top_k, thresh) ``[(index, count / len(a) * LN(1 + N / (1 + df)))]``
=======================  ====================================================================
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from kiln.errors import DataError, SqlError
from kiln.transform._sql import SqlSelect, SqlThenTransform, quote, sandboxed_connection

if TYPE_CHECKING:
    from kiln.sql._model import SqlModel

__all__ = ["PREPROCESSING_FUNCTIONS", "compile_transform", "ml_transform", "rewrite_standalone"]

ANALYTIC = frozenset(
    {
        "STANDARD_SCALER",
        "MIN_MAX_SCALER",
        "MAX_ABS_SCALER",
        "ROBUST_SCALER",
        "QUANTILE_BUCKETIZE",
        "IMPUTER",
        "ONE_HOT_ENCODER",
        "MULTI_HOT_ENCODER",
        "LABEL_ENCODER",
        "BAG_OF_WORDS",
        "TF_IDF",
    }
)
SCALAR = frozenset({"BUCKETIZE", "FEATURE_CROSS", "POLYNOMIAL_EXPAND", "HASH_BUCKETIZE", "NGRAMS"})
PREPROCESSING_FUNCTIONS: frozenset[str] = ANALYTIC | SCALAR
"""BigQuery ML's preprocessing functions (``ML.<name>``) that a TRANSFORM may call."""

TRAIN_TABLE = "__kiln_train"
DEFAULT_TOP_K = 32_000
DEFAULT_THRESHOLD = 5


def _ml_call(node: exp.Expr) -> tuple[str, list[exp.Expr], bool] | None:
    """``(NAME, args, has OVER)`` when ``node`` is ``ML.NAME(args) [OVER()]`` (the call inside
    an OVER() is the window's, not a call of its own)."""
    if isinstance(node.parent, exp.Window) and node.parent.this is node:
        return None
    window = isinstance(node, exp.Window)
    inner = node.this if window else node
    if (
        isinstance(inner, exp.Dot)
        and isinstance(inner.this, exp.Identifier | exp.Column)
        and inner.this.name.upper() == "ML"
        and isinstance(inner.expression, exp.Anonymous)
    ):
        fn = inner.expression
        return fn.name.upper(), list(fn.expressions), window
    return None


def _num(v: float) -> str:
    """A float literal DuckDB types as DOUBLE (not DECIMAL)."""
    if not math.isfinite(v):
        raise SqlError(f"a fitted value is {v}; the training data has infinite values")
    text = repr(float(v))
    return text if "e" in text else text + "e0"


def _str(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


def _list(values: Sequence[str]) -> str:
    return "[" + ", ".join(values) + "]"


class _Fitter:
    """Runs the fitting queries over the training table."""

    def __init__(self, train: pa.Table) -> None:
        self.train = train
        self.con = sandboxed_connection()

    def query(self, sql: str, what: str) -> list[tuple[Any, ...]]:
        import duckdb

        self.con.register(TRAIN_TABLE, self.train)
        try:
            rows: list[tuple[Any, ...]] = self.con.sql(sql).fetchall()
        except duckdb.Error as e:  # a type or column the training data does not have
            raise SqlError(f"{what}: cannot be fitted on the training data: {e}") from e
        finally:
            self.con.unregister(TRAIN_TABLE)
        return rows

    def one(self, select: str, what: str) -> tuple[Any, ...]:
        return self.query(f"SELECT {select} FROM {TRAIN_TABLE}", what)[0]

    def sorted_values(self, arg: str, what: str) -> list[float]:
        rows = self.query(
            f"SELECT CAST(v AS DOUBLE) FROM (SELECT {arg} AS v FROM {TRAIN_TABLE}) "
            "WHERE v IS NOT NULL ORDER BY 1",
            what,
        )
        return [r[0] for r in rows]

    def vocabulary(
        self, arg: str, top_k: int, threshold: int, what: str, *, array: bool = False
    ) -> list[str]:
        """The ``top_k`` most frequent values (documents, for arrays) seen at least
        ``threshold`` times, ties by value, then sorted."""
        source = (
            f"SELECT UNNEST(list_distinct(CAST({arg} AS VARCHAR[]))) AS v FROM {TRAIN_TABLE}"
            if array
            else f"SELECT CAST({arg} AS VARCHAR) AS v FROM {TRAIN_TABLE}"
        )
        rows = self.query(
            f"SELECT v FROM ({source}) WHERE v IS NOT NULL GROUP BY v "
            f"HAVING COUNT(*) >= {int(threshold)} ORDER BY COUNT(*) DESC, v LIMIT {int(top_k)}",
            what,
        )
        return sorted(r[0] for r in rows)


def _approx_quantile(values: Sequence[float], q: float) -> float:
    """The smallest value with at least a fraction ``q`` of the values at or below it (what
    BigQuery's APPROX_QUANTILES returns where it is exact)."""
    n = len(values)
    return values[min(n - 1, max(0, math.ceil(q * n - 1e-9) - 1))]


def _int_arg(name: str, args: list[exp.Expr], i: int, arg: str, default: int) -> int:
    if len(args) <= i:
        return default
    node = args[i]
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
        return -int(node.this.this)
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return int(node.this)
        except ValueError:
            pass
    raise SqlError(
        f"ML.{name}: argument {arg} must be an INT64 literal, not {node.sql('bigquery')}"
    )


def _str_arg(
    name: str, args: list[exp.Expr], i: int, arg: str, default: str, choices: Sequence[str]
) -> str:
    if len(args) <= i:
        return default
    node = args[i]
    if not (isinstance(node, exp.Literal) and node.is_string):
        raise SqlError(f"ML.{name}: argument {arg} must be a STRING literal")
    value = str(node.this).lower()
    if value not in choices:
        raise SqlError(
            f"ML.{name}: argument {arg} is {node.this!r}; use one of {', '.join(choices)}"
        )
    return value


def _bool_arg(name: str, args: list[exp.Expr], i: int, arg: str, default: bool) -> bool:
    if len(args) <= i:
        return default
    node = args[i]
    if not isinstance(node, exp.Boolean):
        raise SqlError(f"ML.{name}: argument {arg} must be TRUE or FALSE")
    return bool(node.this)


def _numbers_arg(name: str, node: exp.Expr, arg: str) -> list[float]:
    if not isinstance(node, exp.Array):
        raise SqlError(f"ML.{name}: argument {arg} must be an array of numbers, like [1, 2]")
    out: list[float] = []
    for e in node.expressions:
        sign = 1.0
        if isinstance(e, exp.Neg):
            sign, e = -1.0, e.this
        if not (isinstance(e, exp.Literal) and not e.is_string):
            raise SqlError(f"ML.{name}: argument {arg} must hold number literals only")
        out.append(sign * float(e.this))
    return out


def _format_point(v: float) -> str:
    return str(int(v)) if v == int(v) and abs(v) < 1e15 else repr(v)


def _buckets(x: str, points: Sequence[float], output_format: str) -> str:
    """CASE giving each bucket's name for ``x`` (NULL stays NULL)."""
    bounds = ["-inf", *(_format_point(p) for p in points), "+inf"]
    labels: list[str] = []
    for i in range(len(points) + 1):
        lo, hi = bounds[i], bounds[i + 1]
        if output_format == "bucket_names":
            labels.append(f"bin_{i + 1}")
        elif output_format == "bucket_ranges":
            labels.append(f"{'(' if i == 0 else '['}{lo}, {hi})")
        else:
            start = "-Infinity" if i == 0 else lo
            end = "Infinity" if i == len(points) else hi
            labels.append(json.dumps({"start": start, "end": end}))
    whens = " ".join(
        f"WHEN {x} < {_num(p)} THEN {_str(label)}" for p, label in zip(points, labels, strict=False)
    )
    return f"CASE WHEN {x} IS NULL THEN NULL {whens} ELSE {_str(labels[-1])} END"


def _struct_fields(name: str, node: exp.Expr) -> list[tuple[str, str]]:
    if not isinstance(node, exp.Struct):
        raise SqlError(f"ML.{name}: the first argument must be a STRUCT of named columns")
    fields: list[tuple[str, str]] = []
    for e in node.expressions:
        if isinstance(e, exp.PropertyEQ):
            fields.append((e.this.name, e.expression.sql("duckdb")))
        elif isinstance(e, exp.Alias):
            fields.append((e.alias, e.this.sql("duckdb")))
        elif isinstance(e, exp.Column):
            fields.append((e.name, e.sql("duckdb")))
        else:
            raise SqlError(
                f"ML.{name}: the STRUCT field {e.sql('bigquery')} has no name; "
                "write it as `expression AS name`"
            )
    names = [f for f, _ in fields]
    if len(set(names)) != len(names):
        raise SqlError(f"ML.{name}: the STRUCT names a field twice ({', '.join(names)})")
    if not 1 <= len(fields) <= 10:
        raise SqlError(f"ML.{name}: takes 1 to 10 features, got {len(fields)}")
    return fields


def _index_value(index: str, value: str) -> str:
    return f"{{'index': CAST({index} AS BIGINT), 'value': CAST({value} AS DOUBLE)}}"


def _lookup(vocab: Sequence[str], value: str) -> str:
    """The 1-based index of ``value`` in the vocabulary, 0 for NULL or unseen."""
    if not vocab:
        return "0"
    return f"COALESCE(list_position({_list([_str(v) for v in vocab])}, {value}), 0)"


def _fit_call(name: str, args: list[exp.Expr], window: bool, fitter: _Fitter) -> str:
    """The fitted DuckDB expression replacing ``ML.name(args)``."""
    if name in ANALYTIC and not window:
        raise SqlError(f"ML.{name} is an analytic function: write ML.{name}(...) OVER()")
    if name in SCALAR and window:
        raise SqlError(f"ML.{name} is not an analytic function: remove OVER()")
    if not args:
        raise SqlError(f"ML.{name} needs at least one argument")
    what = f"ML.{name}"
    x = args[0].sql("duckdb")
    xd = f"CAST({x} AS DOUBLE)"
    if name == "STANDARD_SCALER":
        _arity(name, args, 1)
        mean, sd = fitter.one(f"AVG({xd}), STDDEV_SAMP({xd})", what)
        if mean is None:
            return "CAST(NULL AS DOUBLE)"
        return f"(({xd} - {_num(mean)}) / {_num(sd if sd else 1.0)})"
    if name == "MIN_MAX_SCALER":
        _arity(name, args, 1)
        lo, hi = fitter.one(f"MIN({xd}), MAX({xd})", what)
        if lo is None:
            return "CAST(NULL AS DOUBLE)"
        span = hi - lo if hi > lo else 1.0
        scaled = f"(({xd} - {_num(lo)}) / {_num(span)})"
        return f"CASE WHEN {xd} IS NULL THEN NULL ELSE LEAST(GREATEST({scaled}, 0.0e0), 1.0e0) END"
    if name == "MAX_ABS_SCALER":
        _arity(name, args, 1)
        (m,) = fitter.one(f"MAX(ABS({xd}))", what)
        if m is None:
            return "CAST(NULL AS DOUBLE)"
        return f"({xd} / {_num(m if m else 1.0)})"
    if name == "ROBUST_SCALER":
        _arity(name, args, 4)
        q = _numbers_arg(name, args[1], "quantile_range") if len(args) > 1 else [25.0, 75.0]
        if len(q) != 2 or not 0 <= q[0] < q[1] <= 100:
            raise SqlError(
                f"{what}: quantile_range must be [low, high] with 0 <= low < high <= 100"
            )
        with_median = _bool_arg(name, args, 2, "with_median", True)
        with_range = _bool_arg(name, args, 3, "with_quantile_range", True)
        values = fitter.sorted_values(x, what)
        if not values:
            return "CAST(NULL AS DOUBLE)"
        median = _approx_quantile(values, 0.5) if with_median else 0.0
        iqr = _approx_quantile(values, q[1] / 100) - _approx_quantile(values, q[0] / 100)
        scale = iqr if with_range and iqr > 0 else 1.0
        return f"(({xd} - {_num(median)}) / {_num(scale)})"
    if name in ("BUCKETIZE", "QUANTILE_BUCKETIZE"):
        formats = ("bucket_names", "bucket_ranges", "bucket_ranges_json")
        if name == "BUCKETIZE":
            _arity(name, args, 4, least=2)
            points = _numbers_arg(name, args[1], "array_split_points")
            if points != sorted(points) or not points:
                raise SqlError(f"{what}: array_split_points must be a non-empty ascending array")
            if _bool_arg(name, args, 2, "exclude_boundaries", False):
                points = points[1:-1]
            output_format = _str_arg(name, args, 3, "output_format", "bucket_names", formats)
        else:
            _arity(name, args, 3, least=2)
            n = _int_arg(name, args, 1, "num_buckets", 0)
            if n < 1:
                raise SqlError(f"{what}: num_buckets must be a positive INT64")
            output_format = _str_arg(name, args, 2, "output_format", "bucket_names", formats)
            values = fitter.sorted_values(x, what)
            inner = [_approx_quantile(values, i / n) for i in range(1, n)] if values else []
            points = sorted(set(inner))
        return _buckets(xd, points, output_format)
    if name == "IMPUTER":
        _arity(name, args, 2, least=2)
        strategy = _str_arg(name, args, 1, "strategy", "", ("mean", "median", "most_frequent"))
        if strategy == "mean":
            (fill,) = fitter.one(f"AVG({xd})", what)
            return x if fill is None else f"COALESCE({xd}, {_num(fill)})"
        if strategy == "median":
            values = fitter.sorted_values(x, what)
            return f"COALESCE({xd}, {_num(_approx_quantile(values, 0.5))})" if values else x
        rows = fitter.query(
            f"SELECT v FROM (SELECT {x} AS v FROM {TRAIN_TABLE}) WHERE v IS NOT NULL "
            "GROUP BY v ORDER BY COUNT(*) DESC, v LIMIT 1",
            what,
        )
        if not rows:
            return x
        v = rows[0][0]
        if isinstance(v, bool):
            literal = "TRUE" if v else "FALSE"
        elif isinstance(v, int):
            literal = str(v)
        elif isinstance(v, float):
            literal = _num(v)
        elif isinstance(v, str):
            literal = _str(v)
        else:
            raise SqlError(
                f"{what}: strategy 'most_frequent' takes numbers, strings or bools, not "
                f"{type(v).__name__} values; CAST the column first"
            )
        return f"COALESCE({x}, {literal})"
    if name in ("ONE_HOT_ENCODER", "LABEL_ENCODER"):
        s = f"CAST({x} AS VARCHAR)"
        if name == "ONE_HOT_ENCODER":
            _arity(name, args, 4)
            drop = _str_arg(name, args, 1, "drop", "none", ("none", "most_frequent"))
            top_k = _int_arg(name, args, 2, "top_k", DEFAULT_TOP_K)
            threshold = _int_arg(name, args, 3, "frequency_threshold", DEFAULT_THRESHOLD)
        else:
            _arity(name, args, 3)
            drop = "none"
            top_k = _int_arg(name, args, 1, "top_k", DEFAULT_TOP_K)
            threshold = _int_arg(name, args, 2, "frequency_threshold", DEFAULT_THRESHOLD)
        _check_top_k(what, top_k, threshold)
        vocab = fitter.vocabulary(x, top_k, threshold, what)
        index = _lookup(vocab, s)
        if name == "LABEL_ENCODER":
            return f"CAST({index} AS BIGINT)"
        value = "1.0e0"
        if drop == "most_frequent" and vocab:
            top = fitter.vocabulary(x, 1, threshold, what)
            if top:
                value = f"CASE WHEN {s} = {_str(top[0])} THEN 0.0e0 ELSE 1.0e0 END"
        return f"[{_index_value(index, value)}]"
    if name in ("MULTI_HOT_ENCODER", "BAG_OF_WORDS", "TF_IDF"):
        _arity(name, args, 3)
        top_k = _int_arg(name, args, 1, "top_k", DEFAULT_TOP_K)
        threshold = _int_arg(name, args, 2, "frequency_threshold", DEFAULT_THRESHOLD)
        _check_top_k(what, top_k, threshold)
        a = f"CAST({x} AS VARCHAR[])"
        vocab = fitter.vocabulary(x, top_k, threshold, what, array=True)
        idxs = f"list_transform({a}, lambda e: {_lookup(vocab, 'e')})"
        if name == "MULTI_HOT_ENCODER":
            distinct = f"list_filter({idxs}, lambda v, i: list_position({idxs}, v) = i)"
            return f"list_transform({distinct}, lambda k: {_index_value('k', '1.0e0')})"
        count = f"len(list_filter({idxs}, lambda j: j = k))"
        keys = f"list_sort(list_distinct({idxs}))"
        if name == "BAG_OF_WORDS":
            return f"list_transform({keys}, lambda k: {_index_value('k', count)})"
        vocab_list = _list([_str(v) for v in vocab]) if vocab else "CAST([] AS VARCHAR[])"
        n_docs, unknown_df = fitter.one(
            f"COUNT({a}), COUNT(*) FILTER (WHERE len(list_filter({a}, lambda e: e IS NULL "
            f"OR NOT list_contains({vocab_list}, e))) > 0)",
            what,
        )
        dfs = dict(
            fitter.query(
                f"SELECT v, COUNT(*) FROM (SELECT UNNEST(list_distinct({a})) AS v "
                f"FROM {TRAIN_TABLE}) WHERE v IS NOT NULL GROUP BY v",
                what,
            )
        )
        idf = [math.log(1 + n_docs / (1 + unknown_df))] + [
            math.log(1 + n_docs / (1 + dfs.get(v, 0))) for v in vocab
        ]
        idf_list = _list([_num(v) for v in idf])
        value = f"{count} / len({a}) * list_extract({idf_list}, k + 1)"
        return f"list_transform({keys}, lambda k: {_index_value('k', value)})"
    if name == "FEATURE_CROSS":
        _arity(name, args, 2)
        fields = _struct_fields(name, args[0])
        degree = _int_arg(name, args, 1, "degree", 2)
        if not 2 <= degree <= 4:
            raise SqlError(f"{what}: degree must be in [2, 4], not {degree}")
        crossed = sorted(  # as POLYNOMIAL_EXPAND: f1_f2, f1_f2_f3, f1_f3, f2_f3
            c for d in range(2, degree + 1) for c in itertools.combinations(range(len(fields)), d)
        )
        crosses = [
            (
                "_".join(fields[i][0] for i in c),
                " || '_' || ".join(f"CAST({fields[i][1]} AS VARCHAR)" for i in c),
            )
            for c in crossed
        ]
        return _struct(crosses)
    if name == "POLYNOMIAL_EXPAND":
        _arity(name, args, 2)
        fields = _struct_fields(name, args[0])
        degree = _int_arg(name, args, 1, "degree", 2)
        if not 1 <= degree <= 4:
            raise SqlError(f"{what}: degree must be in [1, 4], not {degree}")
        combos = sorted(
            c
            for d in range(1, degree + 1)
            for c in itertools.combinations_with_replacement(range(len(fields)), d)
        )
        terms = [
            (
                "_".join(fields[i][0] for i in c),
                " * ".join(f"CAST({fields[i][1]} AS DOUBLE)" for i in c),
            )
            for c in combos
        ]
        return _struct(terms)
    if name == "HASH_BUCKETIZE":
        _arity(name, args, 2, least=2)
        size = _int_arg(name, args, 1, "hash_bucket_size", 0)
        if size < 0:
            raise SqlError(f"{what}: hash_bucket_size must be >= 0, not {size}")
        h = f"kiln_farm_fingerprint(CAST({x} AS VARCHAR))"
        if size == 0:
            return h
        return f"CAST((CAST({h} AS HUGEINT) + {1 << 64}) % {1 << 64} % {size} AS BIGINT)"
    if name == "NGRAMS":
        _arity(name, args, 3, least=2)
        bounds = _numbers_arg(name, args[1], "range")
        if (
            len(bounds) != 2
            or not 1 <= bounds[0] <= bounds[1]
            or bounds != [int(b) for b in bounds]
        ):
            raise SqlError(f"{what}: range must be [min, max] with 1 <= min <= max, integers")
        lo, hi = int(bounds[0]), int(bounds[1])
        sep = "' '"
        if len(args) > 2:
            if not (isinstance(args[2], exp.Literal) and args[2].is_string):
                raise SqlError(f"{what}: separator must be a STRING literal")
            sep = _str(str(args[2].this))
        a = f"CAST({x} AS VARCHAR[])"
        grams = (
            f"list_transform(list_filter(range({lo}, {hi + 1}), lambda n: i + n - 1 <= len({a})), "
            f"lambda n: array_to_string({a}[i:i + n - 1], {sep}))"
        )
        return f"flatten(list_transform(range(1, len({a}) + 1), lambda i: {grams}))"
    raise SqlError(f"ML.{name} is not a BigQuery ML preprocessing function")  # pragma: no cover


def _struct(fields: Sequence[tuple[str, str]]) -> str:
    return "{" + ", ".join(f"{_str(k)}: {v}" for k, v in fields) + "}"


def _arity(name: str, args: list[exp.Expr], most: int, *, least: int = 1) -> None:
    if not least <= len(args) <= most:
        want = f"{least}" if least == most else f"{least} to {most}"
        raise SqlError(f"ML.{name} takes {want} arguments, got {len(args)}")


def _check_top_k(what: str, top_k: int, threshold: int) -> None:
    if not 0 < top_k < 1_000_000:
        raise SqlError(f"{what}: top_k must be in [1, 1000000), not {top_k}")
    if threshold < 0:
        raise SqlError(f"{what}: frequency_threshold must be >= 0, not {threshold}")


def _fit_expression(expression: exp.Expr, fitter: _Fitter) -> exp.Expr:
    """``expression`` with every ML.* call (innermost first) replaced by its fitted form."""
    tree = expression.copy()
    calls = [n for n in tree.walk() if _ml_call(n) is not None]
    for node in reversed(calls):  # pre-order reversed: arguments before the calls using them
        call = _ml_call(node)
        assert call is not None
        name, args, window = call
        if name not in PREPROCESSING_FUNCTIONS:
            raise SqlError(
                f"ML.{name} is not a BigQuery ML preprocessing function; the TRANSFORM clause "
                f"takes {', '.join(sorted(PREPROCESSING_FUNCTIONS))}"
            )
        if window and (node.args.get("partition_by") or node.args.get("order")):
            raise SqlError(f"ML.{name}: OVER() must be empty in a TRANSFORM")
        fitted = sqlglot.parse_one(_fit_call(name, args, window, fitter), read="duckdb")
        if node is tree:
            tree = fitted
        else:
            node.replace(fitted)
    return tree


def _columns(tree: exp.Expr) -> list[str]:
    params = {
        i.name
        for lam in tree.find_all(exp.Lambda)
        for i in lam.expressions
        if isinstance(i, exp.Identifier)
    }
    return list(dict.fromkeys(c.name for c in tree.find_all(exp.Column) if c.name not in params))


def compile_transform(
    items: Sequence[exp.Expr], train: pa.Table, *, label: str | None
) -> SqlSelect:
    """Fit the TRANSFORM ``items`` (sqlglot BigQuery select items) on ``train``; the fitted
    :class:`~kiln.transform.SqlSelect`. SqlError for an unknown ML.* function, bad arguments, an
    item without a name, or a label not in the list."""
    fitter = _Fitter(train)
    compiled: list[tuple[str, str]] = []
    reads: dict[str, list[str]] = {}
    for item in items:
        if isinstance(item, exp.Star):
            excluded = {e.name for e in item.args.get("except_") or item.args.get("except") or []}
            for column in train.column_names:
                if column not in excluded:
                    compiled.append((column, quote(column)))
                    reads[column] = [column]
            continue
        if isinstance(item, exp.Alias):
            name, body = item.alias, item.this
        elif isinstance(item, exp.Column):
            name, body = item.name, item
        else:
            raise SqlError(
                f"the TRANSFORM item {item.sql('bigquery')} has no name; add `AS name` to it"
            )
        tree = _fit_expression(body, fitter)
        compiled.append((name, tree.sql("duckdb")))
        reads[name] = _columns(tree)
    names = [n for n, _ in compiled]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise SqlError(f"the TRANSFORM clause names {dup!r} twice; give each output its own name")
    if label is not None and label not in names:
        raise SqlError(
            f"The label column {label!r} must be in the TRANSFORM clause: add {label} (or "
            f"`expression AS {label}`) to the TRANSFORM list"
        )
    inputs = list(dict.fromkeys(c for n in names if n != label for c in reads[n]))
    label_inputs = reads[label] if label is not None else []
    select = SqlSelect(compiled, input_columns=inputs, label=label, label_inputs=label_inputs)
    # a misspelt column or a type error shows now, at CREATE MODEL, not at the first prediction
    try:
        select.apply(train.slice(0, 0))
    except DataError as e:
        raise SqlError(f"the TRANSFORM clause does not apply to the training data: {e}") from e
    return select


def ml_transform(
    model: SqlModel, table: pa.Table | None, settings: dict[str, Any], extra: list[Any]
) -> pa.Table:
    """``ML.TRANSFORM(MODEL m, (query))``: the TRANSFORM clause's output columns for the input
    rows, in the clause's order (the label's when the input has the columns it reads)."""
    transform = model.model.transform
    if not isinstance(transform, SqlThenTransform):
        raise SqlError(
            f"Model {model.name} has no TRANSFORM clause; ML.TRANSFORM needs a model created "
            "with TRANSFORM(...)"
        )
    if table is None:
        raise SqlError(f"ML.TRANSFORM(MODEL {model.name}, ...) needs a table or query of rows")
    if settings or extra:
        raise SqlError("ML.TRANSFORM takes a model and a table or query, nothing else")
    try:
        return transform.pre.apply(table)
    except DataError as e:
        raise SqlError(f"ML.TRANSFORM(MODEL {model.name}): {e}") from e


def rewrite_standalone(expression: exp.Expr) -> exp.Expr:
    """A SELECT whose items call the scalar ML.* preprocessing functions (``ML.BUCKETIZE``,
    ``ML.FEATURE_CROSS``, ``ML.POLYNOMIAL_EXPAND``, ``ML.HASH_BUCKETIZE``, ``ML.NGRAMS``)
    rewritten to their DuckDB equivalents. The analytic ones need the rows: SqlError."""
    tree = expression.copy()
    calls = [n for n in tree.walk() if _ml_call(n) is not None]
    for node in reversed(calls):
        call = _ml_call(node)
        assert call is not None
        name, args, window = call
        if name not in SCALAR:
            if name in ANALYTIC:
                raise SqlError(
                    f"ML.{name}(...) OVER() outside a TRANSFORM clause is not supported yet; "
                    "use it in CREATE MODEL ... TRANSFORM(...)"
                )
            continue
        fitted = sqlglot.parse_one(_fit_call(name, args, window, _NoFit()), read="duckdb")
        if node is tree:
            tree = fitted
        else:
            node.replace(fitted)
    return tree


class _NoFit(_Fitter):
    def __init__(self) -> None:  # scalar functions never query the data
        pass
