"""kiln.transform: each op against scikit-learn where it has the same op, serialisation, no skew
between batch and single rows, unseen / missing categories, automatic preprocessing, errors."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.preprocessing import (
    KBinsDiscretizer,
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    PolynomialFeatures,
    RobustScaler,
    StandardScaler,
)

import kiln.transform as T
from kiln.errors import DataError, NotFittedError
from kiln.transform import FeatureMatrix, FittedTransform, TransformGraph, TransformWarning

Array = np.ndarray[Any, np.dtype[Any]]


def _rng() -> np.random.Generator:
    return np.random.default_rng(7)


def _numeric_table(n: int = 500) -> pa.Table:
    rng = _rng()
    return pa.table(
        {
            "x": rng.normal(10, 3, n),
            "y": rng.exponential(2.0, n),
            "k": rng.integers(-5, 20, n),
        }
    )


def _fit(ops: list[T.Op], table: pa.Table, **kw: Any) -> FeatureMatrix:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TransformWarning)
        return TransformGraph(ops, **kw).fit(table).transform(table)


def _col(m: FeatureMatrix, name: str) -> Array:
    return m.X[:, m.names.index(name)]


# -- scaling against scikit-learn -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "sk"),
    [
        (T.standard_scale, StandardScaler),
        (T.min_max_scale, MinMaxScaler),
        (T.max_abs_scale, MaxAbsScaler),
        (T.robust_scale, RobustScaler),
    ],
)
def test_scalers_match_sklearn(op: Any, sk: Any) -> None:
    table = _numeric_table()
    m = _fit([op("x"), op("k")], table, passthrough=False)
    raw = np.column_stack([table["x"].to_numpy(), table["k"].to_numpy().astype(float)])
    np.testing.assert_allclose(m.X, sk().fit_transform(raw), rtol=1e-10, atol=1e-12)
    assert m.names == ["x", "k"]
    assert m.source == ["x", "k"]
    assert m.categorical == []


def test_constant_column_scales_like_sklearn() -> None:
    table = pa.table({"c": [3.0, 3.0, 3.0]})
    for op, sk in [(T.standard_scale, StandardScaler), (T.min_max_scale, MinMaxScaler)]:
        m = _fit([op("c")], table)
        np.testing.assert_allclose(m.X, sk().fit_transform(np.full((3, 1), 3.0)))


def test_scalers_keep_nan_like_sklearn() -> None:
    values = [1.0, None, 3.0, 7.0]
    m = _fit([T.standard_scale("v")], pa.table({"v": values}))
    expected = StandardScaler().fit_transform(np.array([[1.0], [np.nan], [3.0], [7.0]]))
    np.testing.assert_allclose(m.X, expected)


# -- imputation -----------------------------------------------------------------------------------


def test_impute_strategies() -> None:
    table = pa.table({"v": [1.0, None, 3.0, 3.0, float("nan"), 9.0]})
    got = {s: _fit([T.impute("v", s)], table).X[:, 0] for s in ("mean", "median", "most_frequent")}
    np.testing.assert_allclose(got["mean"], [1, 4, 3, 3, 4, 9])
    np.testing.assert_allclose(got["median"], [1, 3, 3, 3, 3, 9])
    np.testing.assert_allclose(got["most_frequent"], [1, 3, 3, 3, 3, 9])
    const = _fit([T.impute("v", "constant", -1.0)], table).X[:, 0]
    np.testing.assert_allclose(const, [1, -1, 3, 3, -1, 9])


def test_impute_then_scale_scales_the_imputed_column() -> None:
    table = pa.table({"v": [1.0, None, 3.0, 8.0]})
    m = _fit([T.impute("v"), T.standard_scale("v")], table)
    filled = np.array([[1.0], [4.0], [3.0], [8.0]])
    np.testing.assert_allclose(m.X, StandardScaler().fit_transform(filled))


def test_impute_strings_most_frequent_then_one_hot() -> None:
    table = pa.table({"c": ["a", None, "b", "b"]})
    m = _fit([T.impute("c", "most_frequent"), T.one_hot("c")], table)
    assert m.names == ["c=b", "c=a"]
    np.testing.assert_array_equal(m.X, [[0, 1], [1, 0], [1, 0], [1, 0]])


def test_impute_mean_on_strings_is_an_error() -> None:
    with pytest.raises(DataError, match=r"'c'.*not numeric"):
        _fit([T.impute("c", "mean")], pa.table({"c": ["a", None]}))


# -- bucketizing ----------------------------------------------------------------------------------


def test_bucketize_fixed_edges() -> None:
    table = pa.table({"v": [-1.0, 0.0, 0.5, 1.0, 5.0, None]})
    m = _fit([T.bucketize("v", edges=[0.0, 1.0])], table)
    np.testing.assert_array_equal(m.X[:, 0], [0, 1, 1, 2, 2, np.nan])
    assert m.categorical == [0]
    oh = _fit([T.bucketize("v", edges=[0.0, 1.0], one_hot=True)], table)
    assert oh.names == ["v_bucket=0", "v_bucket=1", "v_bucket=2"]
    np.testing.assert_array_equal(oh.X[5], [0, 0, 0])


def test_quantile_bucketize_matches_kbins() -> None:
    table = _numeric_table(1000)
    m = _fit([T.quantile_bucketize("x", num_buckets=5)], table)
    sk = KBinsDiscretizer(
        n_bins=5, encode="ordinal", strategy="quantile", quantile_method="linear"
    ).fit_transform(table["x"].to_numpy().reshape(-1, 1))
    np.testing.assert_array_equal(m.X[:, 0], sk[:, 0])


def test_hash_bucketize_is_stable_and_in_range() -> None:
    table = pa.table({"id": [f"user{i}" for i in range(1000)] + [None]})
    m = _fit([T.hash_bucketize("id", num_buckets=50)], table)
    codes = m.X[:, 0]
    assert codes.min() >= 0
    assert codes.max() < 50
    assert len(np.unique(codes)) > 40
    # FNV-1a 64 of known strings (reference values of the published algorithm)
    h = T.stable_hash(pa.array(["", "a", "foobar"]))
    assert [int(v) for v in h] == [0xCBF29CE484222325, 0xAF63DC4C8601EC8C, 0x85944171F73967E8]
    again = _fit([T.hash_bucketize("id", num_buckets=50)], table.slice(3, 1))
    assert again.X[0, 0] == codes[3]


def test_feature_cross_combines_values() -> None:
    table = pa.table({"a": ["x", "x", "y", "y"], "b": [1, 2, 1, 1]})
    m = _fit([T.feature_cross(["a", "b"], num_buckets=10_000)], table, passthrough=False)
    codes = m.X[:, 0]
    assert codes[2] == codes[3]
    assert len({codes[0], codes[1], codes[2]}) == 3
    assert m.names == ["a_x_b"]
    assert m.categorical == [0]


# -- categorical encodings ------------------------------------------------------------------------


def test_one_hot_matches_sklearn() -> None:
    rng = _rng()
    cities = rng.choice(["Paris", "Lyon", "Nice", "Lille"], 300).tolist()
    table = pa.table({"city": cities})
    m = _fit([T.one_hot("city")], table)
    enc = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    sk = enc.fit_transform(np.array(cities).reshape(-1, 1))
    sk_names = [f"city={c}" for c in enc.categories_[0]]
    np.testing.assert_array_equal(m.X[:, [m.names.index(n) for n in sk_names]], sk)
    assert m.source == ["city"] * 4


def test_one_hot_unseen_is_zeros_missing_is_its_own_category() -> None:
    train = pa.table({"city": ["a", "b", None, "a"]})
    fitted = TransformGraph([T.one_hot("city")]).fit(train)
    m = fitted.transform(train)
    assert m.names == ["city=a", "city=<missing>", "city=b"]
    np.testing.assert_array_equal(m.X[2], [0, 1, 0])
    unseen = fitted.transform(pa.table({"city": ["zzz", None]}))
    np.testing.assert_array_equal(unseen.X, [[0, 0, 0], [0, 1, 0]])


def test_one_hot_top_k_threshold_and_unknown_bucket() -> None:
    table = pa.table({"c": ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"]})
    assert _fit([T.one_hot("c", top_k=2)], table).names == ["c=a", "c=b"]
    assert _fit([T.one_hot("c", frequency_threshold=2)], table).names == ["c=a", "c=b", "c=c"]
    m = _fit([T.one_hot("c", top_k=2, unknown="bucket")], table)
    assert m.names == ["c=a", "c=b", "c=<unknown>"]
    np.testing.assert_array_equal(m.X[-1], [0, 0, 1])


def test_label_encode() -> None:
    train = pa.table({"c": ["b", "a", "b", None]})
    fitted = TransformGraph([T.label_encode("c")]).fit(train)
    m = fitted.transform(train)
    assert m.categorical == [0]
    # by count, then value (a null's own category sorts first among equals)
    np.testing.assert_array_equal(m.X[:, 0], [0, 2, 0, 1])
    np.testing.assert_array_equal(fitted.transform(pa.table({"c": ["q"]})).X[:, 0], [np.nan])
    bucket = TransformGraph([T.label_encode("c", unknown="bucket")]).fit(train)
    assert bucket.transform(pa.table({"c": ["q"]})).X[0, 0] == 3


def test_multi_hot() -> None:
    table = pa.table({"tags": [["x", "y"], None, ["y", None], []]})
    m = _fit([T.multi_hot("tags")], table)
    assert m.names == ["tags=y", "tags=x"]
    np.testing.assert_array_equal(m.X, [[1, 1], [0, 0], [1, 0], [0, 0]])


# -- numeric expansions, dates, text --------------------------------------------------------------


def test_polynomial_matches_sklearn() -> None:
    table = _numeric_table(50)
    m = _fit([T.polynomial_expand(["x", "y"], degree=3)], table, passthrough=False)
    raw = np.column_stack([table["x"].to_numpy(), table["y"].to_numpy()])
    pf = PolynomialFeatures(degree=3, include_bias=False)
    np.testing.assert_allclose(m.X, pf.fit_transform(raw))
    sk_names = [n.replace(" ", "*") for n in pf.get_feature_names_out(["x", "y"])]
    assert m.names == sk_names
    assert m.source[:3] == ["x", "y", "x"]
    assert m.source[3] == "x*y"


def test_log1p_and_clip() -> None:
    table = pa.table({"v": [0.0, 1.0, float("inf"), -float("inf"), 9.0]})
    m = _fit([T.clip("v", -0.5, 5.0), T.log1p("v")], table)
    np.testing.assert_allclose(m.X[:, 0], np.log1p([0.0, 1.0, 5.0, -0.5, 5.0]))
    with pytest.raises(DataError, match=r"'v', row 1.*> -1"):
        _fit([T.log1p("v")], pa.table({"v": [0.0, -2.0]}))


def test_datetime_parts() -> None:
    ts = [dt.datetime(2024, 2, 29, 13, 5), None, dt.datetime(2023, 12, 31, 0, 0)]
    table = pa.table({"ts": pa.array(ts, pa.timestamp("us"))})
    m = _fit([T.datetime_parts("ts", ["year", "month", "day", "dayofweek", "hour"])], table)
    assert m.names == ["ts.year", "ts.month", "ts.day", "ts.dayofweek", "ts.hour"]
    np.testing.assert_array_equal(m.X[0], [2024, 2, 29, 3, 13])  # a Thursday (Monday = 0)
    assert np.isnan(m.X[1]).all()
    np.testing.assert_array_equal(m.X[2], [2023, 12, 31, 6, 0])


_DOCS = [
    "The cat sat on the mat",
    "the dog ate the cat's dinner",
    "A dog and a cat",
    "Dinner is served, dog!",
    "",
]


def test_bag_of_words_matches_count_vectorizer() -> None:
    table = pa.table({"t": _DOCS})
    m = _fit([T.ngrams("t", ngram_range=(1, 2))], table)
    cv = CountVectorizer(ngram_range=(1, 2))
    sk = cv.fit_transform(_DOCS).toarray()
    assert m.names == [f"t={w}" for w in cv.get_feature_names_out()]
    np.testing.assert_array_equal(m.X, sk)
    top = _fit([T.bag_of_words("t", top_k=3)], table)
    cv3 = CountVectorizer(max_features=3)
    np.testing.assert_array_equal(top.X, cv3.fit_transform(_DOCS).toarray())


def test_tfidf_matches_tfidf_vectorizer() -> None:
    table = pa.table({"t": _DOCS})
    m = _fit([T.bag_of_words("t", tfidf=True)], table)
    np.testing.assert_allclose(m.X, TfidfVectorizer().fit_transform(_DOCS).toarray(), atol=1e-12)


def test_null_text_has_no_terms() -> None:
    m = _fit([T.bag_of_words("t")], pa.table({"t": ["hello world", None]}))
    np.testing.assert_array_equal(m.X[1], [0, 0])


# -- graph behaviour ------------------------------------------------------------------------------


def _mixed_table(n: int = 200) -> pa.Table:
    rng = _rng()
    age = rng.normal(40, 10, n)
    age[::7] = np.nan
    cities = rng.choice(["Paris", "Lyon", "Nice"], n).astype(object)
    cities[::5] = None
    start = np.datetime64("2024-01-01T00:00:00", "us")
    stamps = start + rng.integers(0, 365 * 24 * 3600, n).astype("timedelta64[s]")
    return pa.table(
        {
            "age": pa.array(age, from_pandas=True),
            "income": rng.exponential(1000, n),
            "city": pa.array(cities.tolist(), pa.string()),
            "ts": pa.array(stamps),
            "text": rng.choice(["red fox", "blue fox jumps", "red red hen"], n).tolist(),
            "label": rng.integers(0, 2, n),
        }
    )


def _full_graph() -> TransformGraph:
    return TransformGraph(
        [
            T.impute("age", "median"),
            T.standard_scale("age"),
            T.quantile_bucketize("income", 4),
            T.one_hot("city", unknown="bucket"),
            T.label_encode("city"),
            T.hash_bucketize("city", 17),
            T.feature_cross(["city", "text"], 31),
            T.datetime_parts("ts", ["epoch", "month", "dayofweek"], standardize=True),
            T.bag_of_words("text", ngram_range=(1, 2), tfidf=True),
        ],
        exclude=["label"],
    )


def test_passthrough_and_exclude() -> None:
    table = _mixed_table()
    m = _full_graph().fit(table).transform(table)
    assert "label" not in m.names
    assert m.X.dtype == np.float64
    assert m.X.shape == (table.num_rows, len(m.names))
    assert len(m.source) == len(m.names)
    assert [m.names[i] for i in m.categorical] == [
        "income_bucket",
        "city",
        "city_hash",
        "city_x_text",
    ]


def test_unnamed_numeric_columns_pass_through() -> None:
    table = pa.table({"a": [1.0, 2.0], "b": [3, 4], "flag": [True, False], "label": [0, 1]})
    m = _fit([T.standard_scale("a")], table, exclude=["label"])
    assert m.names == ["a", "b", "flag"]
    np.testing.assert_array_equal(m.X[:, 1:], [[3, 1], [4, 0]])


def test_non_numeric_unused_columns_warn() -> None:
    with pytest.warns(TransformWarning, match="city"):
        TransformGraph([]).fit(pa.table({"x": [1.0], "city": ["a"]}))


def test_json_round_trip_and_save_load(tmp_path: Path) -> None:
    table = _mixed_table()
    fitted = _full_graph().fit(table)
    before = fitted.transform(table)
    body = json.loads(json.dumps(fitted.to_json(), allow_nan=False))
    after = FittedTransform.from_json(body).transform(table)
    np.testing.assert_array_equal(after.X, before.X)
    assert after.names == before.names
    assert after.categorical == before.categorical
    fitted.save(tmp_path / "tf")
    assert sorted(p.name for p in (tmp_path / "tf").iterdir()) == ["arrays.npz", "transform.json"]
    loaded = FittedTransform.load(tmp_path / "tf").transform(table)
    np.testing.assert_array_equal(loaded.X, before.X)
    assert loaded.source == before.source


def test_bad_json_is_a_data_error() -> None:
    with pytest.raises(DataError, match="unknown op 'eval'"):
        FittedTransform.from_json(
            {"format": "kiln.transform", "version": 1, "ops": [{"op": "eval"}], "passthrough": []}
        )
    with pytest.raises(DataError, match=r"not a kiln\.transform"):
        FittedTransform.from_json({"format": "something"})


def test_no_skew_batch_twice_and_single_rows() -> None:
    table = _mixed_table(60)
    fitted = _full_graph().fit(table)
    first = fitted.transform(table)
    np.testing.assert_array_equal(fitted.transform(table).X, first.X)
    for row in (0, 5, 7, 59):
        single = fitted.transform(table.slice(row, 1))
        np.testing.assert_array_equal(single.X[0], first.X[row])
        assert single.names == first.names


def test_extra_columns_are_ignored_and_order_does_not_matter() -> None:
    table = _mixed_table(30)
    fitted = _full_graph().fit(table)
    shuffled = table.select(list(reversed(table.column_names))).append_column(
        "extra", pa.array(["z"] * 30)
    )
    np.testing.assert_array_equal(fitted.transform(shuffled).X, fitted.transform(table).X)


# -- errors ---------------------------------------------------------------------------------------


def test_missing_column_is_named() -> None:
    table = _mixed_table(20)
    fitted = _full_graph().fit(table)
    with pytest.raises(DataError, match="column 'city' is missing"):
        fitted.transform(table.drop_columns(["city"]))


def test_string_where_number_expected_names_column_and_row() -> None:
    fitted = TransformGraph([T.standard_scale("x")]).fit(pa.table({"x": [1.0, 2.0]}))
    with pytest.raises(DataError, match=r"column 'x', row 2: expected a number.*'abc'"):
        fitted.transform(pa.table({"x": ["1.5", None, "abc"]}))
    ok = fitted.transform(pa.table({"x": ["2.0", None]}))  # numbers sent as text parse
    np.testing.assert_allclose(ok.X[:, 0], [1.0, np.nan])


def test_infinity_is_an_error_unless_clipped() -> None:
    table = pa.table({"x": [1.0, 2.0, float("inf")]})
    with pytest.raises(DataError, match=r"column 'x', row 2: value inf is infinite"):
        _fit([T.standard_scale("x")], table)
    with pytest.raises(DataError, match=r"column 'x', row 2"):
        _fit([], table)  # passthrough checks too
    m = _fit([T.clip("x", max=2.0), T.standard_scale("x")], table)
    assert np.isfinite(m.X).all()


def test_bad_op_settings() -> None:
    with pytest.raises(DataError, match="strategy"):
        T.impute("x", "mode")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="ascending"):
        T.bucketize("x", [2.0, 1.0])
    with pytest.raises(DataError, match="unknown parts"):
        T.datetime_parts("ts", ["century"])
    with pytest.raises(DataError, match="unknown must be"):
        T.one_hot("c", unknown="error")  # type: ignore[arg-type]


def test_transform_graph_before_fit() -> None:
    with pytest.raises(NotFittedError, match="call fit"):
        TransformGraph([T.standard_scale("x")]).transform(pa.table({"x": [1.0]}))


# -- automatic preprocessing ----------------------------------------------------------------------


def _auto_table() -> pa.Table:
    table = _mixed_table(100).drop_columns(["text"])
    return table.append_column("const", pa.array([1.0] * 100)).append_column(
        "empty", pa.nulls(100, pa.float64())
    )


@pytest.mark.parametrize("family", ["linear", "dnn", "kmeans", "pca"])
def test_auto_transform_scaled_families(family: Any) -> None:
    table = _auto_table()
    with pytest.warns(TransformWarning, match=r"const \(constant\).*empty \(all null\)"):
        graph = T.auto_transform(table, family, exclude=["label"])
    m = graph.fit(table).transform(table)
    assert "label" not in m.names
    assert "const" not in m.names
    assert "empty" not in m.names
    assert m.categorical == []
    assert not np.isnan(m.X).any()
    for name in ("age", "income", "ts.epoch", "ts.hour"):
        col = _col(m, name)
        assert abs(col.mean()) < 1e-9
        assert abs(col.std() - 1) < 1e-9
    assert {"city=Paris", "city=Lyon", "city=Nice", "city=<missing>"} <= set(m.names)
    unseen = graph.fit(table).transform(table.slice(0, 1).set_column(2, "city", pa.array(["Rome"])))
    assert all(_col(unseen, f"city={c}")[0] == 0 for c in ("Paris", "Lyon", "Nice", "<missing>"))


def test_auto_transform_tree() -> None:
    table = _auto_table()
    with pytest.warns(TransformWarning):
        graph = T.auto_transform(table, "tree", exclude=["label"])
    fitted = graph.fit(table)
    m = fitted.transform(table)
    assert [m.names[i] for i in m.categorical] == ["city"]
    age = _col(m, "age")
    assert np.isnan(age).sum() == np.isnan(table["age"].to_numpy(zero_copy_only=False)).sum()
    codes = _col(m, "city")
    assert set(np.unique(codes)) == {0.0, 1.0, 2.0, 3.0}  # three cities and missing
    rome = table.slice(0, 1).set_column(2, "city", pa.array(["Rome"]))
    assert np.isnan(_col(fitted.transform(rome), "city")[0])


def test_auto_transform_unknown_family() -> None:
    with pytest.raises(DataError, match="unknown model family"):
        T.auto_transform(pa.table({"x": [1.0]}), "svm")  # type: ignore[arg-type]


# -- scale ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_million_rows_twenty_columns() -> None:
    rng = _rng()
    n = 1_000_000
    cols: dict[str, Any] = {f"n{i}": rng.normal(size=n) for i in range(16)}
    cats = np.array(["a", "b", "c", "d", "e"])
    for i in range(4):
        cols[f"c{i}"] = pa.array(cats[rng.integers(0, 5, n)])
    table = pa.table(cols)
    graph = T.auto_transform(table, "linear")
    m = graph.fit(table).transform(table)
    assert m.X.shape == (n, 16 + 4 * 5)


def test_serving_row_with_untyped_nulls() -> None:
    table = _mixed_table(40)
    fitted = _full_graph().fit(table)
    row = {name: [None] for name in table.column_names}  # JSON nulls: Arrow's null type
    m = fitted.transform(pa.table(row))
    assert m.X.shape == (1, len(m.names))
    assert _col(m, "city=<missing>")[0] == 1


# -- the op contract, checked for every registered op ---------------------------------------------

_SAMPLES: dict[str, T.Op] = {
    "index_values": T.index_values("codes"),
    "struct_fields": T.struct_fields("cross", top_k=5),
    "standard_scale": T.standard_scale("age"),
    "min_max_scale": T.min_max_scale("age"),
    "max_abs_scale": T.max_abs_scale("age"),
    "robust_scale": T.robust_scale("age"),
    "impute": T.impute("age", "median"),
    "clip": T.clip("income", 0.0, 500.0),
    "log1p": T.log1p("income"),
    "bucketize": T.bucketize("age", [30.0, 50.0], one_hot=True),
    "quantile_bucketize": T.quantile_bucketize("income", 3),
    "hash_bucketize": T.hash_bucketize("city", 8),
    "feature_cross": T.feature_cross(["city", "text"], 8, one_hot=True),
    "one_hot": T.one_hot("city", top_k=2, unknown="bucket"),
    "label_encode": T.label_encode("city", unknown="bucket"),
    "multi_hot": T.multi_hot("tags"),
    "polynomial_expand": T.polynomial_expand(["age", "income"], 2, interaction_only=True),
    "datetime_parts": T.datetime_parts("ts", ["epoch", "quarter", "dayofyear", "minute"]),
    "bag_of_words": T.ngrams("text", top_k=4, tfidf=True),
}


def test_every_op_has_a_conformance_sample() -> None:
    from kiln.transform._ops import OPS

    assert set(OPS) == set(_SAMPLES)


@pytest.mark.parametrize("kind", sorted(_SAMPLES))
def test_op_contract(kind: str) -> None:
    """Fit once, then: JSON round trip identical, batch == single rows, serving nulls accepted."""
    table = _mixed_table(40)
    tags = [["a", "b"] if i % 3 else None for i in range(40)]
    table = table.append_column("tags", pa.array(tags, pa.list_(pa.string())))
    # what BigQuery's ONE_HOT_ENCODER and FEATURE_CROSS give (kiln sql's TRANSFORM outputs)
    index_value = pa.list_(pa.struct([("index", pa.int64()), ("value", pa.float64())]))
    codes = [[{"index": i % 4, "value": 1.0}] if i % 5 else None for i in range(40)]
    table = table.append_column("codes", pa.array(codes, index_value))
    crosses = [{"a": float(i) if i % 7 else None, "b": "u" if i % 2 else None} for i in range(40)]
    table = table.append_column("cross", pa.array(crosses))
    fitted = TransformGraph([_SAMPLES[kind]], passthrough=False).fit(table)
    batch = fitted.transform(table)
    assert batch.X.shape == (40, len(batch.names))
    assert batch.X.dtype == np.float64
    assert len(batch.source) == len(batch.names)
    again = FittedTransform.from_json(json.loads(json.dumps(fitted.to_json(), allow_nan=False)))
    np.testing.assert_array_equal(again.transform(table).X, batch.X)
    for row in (0, 1, 39):
        np.testing.assert_array_equal(fitted.transform(table.slice(row, 1)).X[0], batch.X[row])
    nulls = pa.table({name: [None] for name in table.column_names})
    assert fitted.transform(nulls).X.shape == (1, len(batch.names))


def test_one_hot_features_equal_the_dense_matrix() -> None:
    """What linear models predict from: one-hot blocks as codes, the rest dense; ``@ W`` and
    ``toarray()`` agree with the dense matrix, unseen and missing values included."""
    table = _mixed_table()
    graph = TransformGraph(
        [
            *_full_graph().ops,
            T.bucketize("income", [500.0, 1500.0], one_hot=True),
            T.one_hot("text", top_k=2),  # a trimmed vocabulary: its other values are all zeros
            T.feature_cross(["city", "text"], 7, one_hot=True),
        ],
        exclude=["label"],
    )
    fitted = graph.fit(table)
    unseen = pa.table(
        {
            "age": [1.0, None],
            "income": [100.0, 2000.0],
            "city": ["Marseille", None],
            "ts": table["ts"].slice(0, 2),
            "text": ["green fox", None],
            "label": [0, 1],
        }
    )
    for t in (table, unseen):
        dense = fitted.transform(t).X
        compact = fitted.one_hot_features(t)
        assert compact.shape == dense.shape
        assert compact.hot, "the one-hot blocks stay codes"
        np.testing.assert_array_equal(compact.toarray(), dense)
        W = _rng().normal(size=(dense.shape[1], 3))
        np.testing.assert_allclose(compact @ W, dense @ W, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="matmul"):
        compact @ np.ones((3, 1))
    # rows and column ranges taken from the codes are those of the dense matrix
    dense, compact = fitted.transform(table).X, fitted.one_hot_features(table)
    rows = np.array([5, 0, 17, 17, 3])
    np.testing.assert_array_equal(compact.take(rows).toarray(), dense[rows])
    first = compact.hot[0][0]
    for start, stop in [(0, first), (first, dense.shape[1]), (0, dense.shape[1])]:
        part = compact.column_range(start, stop)
        np.testing.assert_array_equal(part.toarray(), dense[:, start:stop])
    with pytest.raises(ValueError, match="split the one-hot block"):
        compact.column_range(0, first + 1)


def test_dictionary_encoded_strings_transform_like_plain_ones() -> None:
    table = _mixed_table()
    fitted = _full_graph().fit(table)
    city = table["city"]
    chunked = pa.chunked_array(
        [city.slice(0, 70).combine_chunks(), city.slice(70).combine_chunks()]
    )
    encoded = table.set_column(
        table.column_names.index("city"),
        "city",
        pa.chunked_array([c.dictionary_encode() for c in chunked.chunks]),
    )
    assert pa.types.is_dictionary(encoded["city"].type)
    np.testing.assert_array_equal(fitted.transform(encoded).X, fitted.transform(table).X)
