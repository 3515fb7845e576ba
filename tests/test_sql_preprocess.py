"""The TRANSFORM clause: BigQuery ML's preprocessing functions fitted with DuckDB, replayed from a
saved model, and checked against values computed independently (numpy, by hand, or BigQuery's
documented examples)."""

from __future__ import annotations

import json
import math
import statistics
import warnings

import numpy as np
import pyarrow as pa
import pytest
import sqlglot

from kiln.errors import DataError, SqlError
from kiln.model import Model, ModelFormatError
from kiln.sql._model import SqlModel
from kiln.sql._preprocess import (
    PREPROCESSING_FUNCTIONS,
    compile_transform,
    ml_transform,
    rewrite_standalone,
)
from kiln.transform import FittedTransform, SqlSelect, SqlThenTransform, auto_transform
from kiln.transform._sql import farm_fingerprint, sandboxed_connection


def items(select_list: str) -> list[sqlglot.exp.Expr]:
    return list(sqlglot.parse_one(f"SELECT {select_list} FROM t", read="bigquery").expressions)


def fit(select_list: str, table: pa.Table, label: str | None = None) -> tuple[SqlSelect, pa.Table]:
    pre = compile_transform(items(select_list), table, label=label)
    return pre, pre.apply(table)


X = [3.0, 7.0, None, 1.0, 12.0, 5.5, 8.0]
NUMS = pa.table({"x": X})
FINITE = np.array([v for v in X if v is not None])


def approx_quantile(values: list[float], q: float) -> float:
    """The smallest value with a fraction >= q of the values at or below it."""
    s = sorted(values)
    for i, v in enumerate(s, start=1):
        if i / len(s) >= q - 1e-12:
            return v
    return s[-1]


# ------------------------------------------------------------------------------------------------
# scalers


def test_standard_scaler_uses_the_sample_std_and_keeps_null() -> None:
    pre, out = fit("ML.STANDARD_SCALER(x) OVER() AS xs", NUMS)
    expected = (FINITE - FINITE.mean()) / FINITE.std(ddof=1)
    got = out["xs"].to_pylist()
    assert out.schema.field("xs").type == pa.float64()
    assert got[2] is None
    np.testing.assert_allclose([v for v in got if v is not None], expected, rtol=1e-12)
    assert pre.input_columns == ["x"]


def test_min_max_scaler_is_capped_to_0_1_at_prediction() -> None:
    pre, out = fit("ML.MIN_MAX_SCALER(x) OVER() AS m", NUMS)
    got = [v for v in out["m"].to_pylist() if v is not None]
    np.testing.assert_allclose(got, (FINITE - 1.0) / 11.0)
    assert pre.apply(pa.table({"x": [-5.0, 100.0, 6.5, None]}))["m"].to_pylist() == [
        0.0,
        1.0,
        0.5,
        None,
    ]


def test_max_abs_and_robust_scalers() -> None:
    table = pa.table({"x": [-8.0, 2.0, 4.0, None, 6.0, 1.0]})
    vals = [-8.0, 2.0, 4.0, 6.0, 1.0]
    _, out = fit(
        "ML.MAX_ABS_SCALER(x) OVER() AS a, ML.ROBUST_SCALER(x) OVER() AS r, "
        "ML.ROBUST_SCALER(x, [10, 90], FALSE, TRUE) OVER() AS r2",
        table,
    )
    assert out["a"].to_pylist() == [-1.0, 0.25, 0.5, None, 0.75, 0.125]
    med = statistics.median_low(vals)  # 2.0: APPROX_QUANTILES' discrete median
    iqr = approx_quantile(vals, 0.75) - approx_quantile(vals, 0.25)
    assert (med, iqr) == (2.0, 3.0)  # sorted: -8, 1, 2, 4, 6
    np.testing.assert_allclose(
        [v for v in out["r"].to_pylist() if v is not None], [(v - med) / iqr for v in vals]
    )
    iqr2 = approx_quantile(vals, 0.9) - approx_quantile(vals, 0.1)
    np.testing.assert_allclose(
        [v for v in out["r2"].to_pylist() if v is not None], [v / iqr2 for v in vals]
    )


def test_nested_calls_fit_on_the_inner_output() -> None:
    _, out = fit("ML.STANDARD_SCALER(ML.IMPUTER(x, 'mean') OVER()) OVER() AS z", NUMS)
    filled = np.array([FINITE.mean() if v is None else v for v in X])
    np.testing.assert_allclose(
        out["z"].to_pylist(), (filled - filled.mean()) / filled.std(ddof=1), rtol=1e-12
    )


# ------------------------------------------------------------------------------------------------
# bucketizing and imputing


def test_quantile_bucketize_matches_bigquerys_example() -> None:
    # the ML.QUANTILE_BUCKETIZE page: [1..5] into 3 buckets
    _, out = fit("ML.QUANTILE_BUCKETIZE(f, 3) OVER() AS bucket", pa.table({"f": [3, 5, 2, 1, 4]}))
    assert out["bucket"].to_pylist() == ["bin_2", "bin_3", "bin_2", "bin_1", "bin_3"]
    assert out.schema.field("bucket").type == pa.string()


def test_bucketize_names_ranges_and_boundaries() -> None:
    table = pa.table({"x": [0.5, 1.0, 2.5, 4.0, None]})
    _, out = fit(
        "ML.BUCKETIZE(x, [1, 2, 3]) AS b, ML.BUCKETIZE(x, [1, 2, 3], TRUE) AS inner_b, "
        "ML.BUCKETIZE(x, [1, 2.5], FALSE, 'bucket_ranges') AS r, "
        "ML.BUCKETIZE(x, [1], FALSE, 'bucket_ranges_json') AS j",
        table,
    )
    assert out["b"].to_pylist() == ["bin_1", "bin_2", "bin_3", "bin_4", None]
    assert out["inner_b"].to_pylist() == ["bin_1", "bin_1", "bin_2", "bin_2", None]
    assert out["r"].to_pylist() == ["(-inf, 1)", "[1, 2.5)", "[2.5, +inf)", "[2.5, +inf)", None]
    assert json.loads(out["j"][0].as_py()) == {"start": "-Infinity", "end": "1"}
    assert json.loads(out["j"][3].as_py()) == {"start": "1", "end": "Infinity"}


def test_imputer_strategies() -> None:
    table = pa.table({"x": [1.0, None, 4.0, 4.0, 10.0], "s": ["b", "a", None, "b", "a"]})
    _, out = fit(
        "ML.IMPUTER(x, 'mean') OVER() AS m, ML.IMPUTER(x, 'median') OVER() AS md, "
        "ML.IMPUTER(x, 'most_frequent') OVER() AS f, ML.IMPUTER(s, 'most_frequent') OVER() AS s",
        table,
    )
    assert out["m"].to_pylist() == [1.0, statistics.mean([1, 4, 4, 10]), 4.0, 4.0, 10.0]
    assert out["md"][1].as_py() == statistics.median_low([1, 4, 4, 10])
    assert out["f"][1].as_py() == 4.0
    assert out["s"].to_pylist() == ["b", "a", "a", "b", "a"]  # tie a/b: the smaller value


# ------------------------------------------------------------------------------------------------
# encoders

CITIES = pa.table({"c": ["paris", "rome", "paris", None, "oslo", "paris", "rome", "lima"]})
INDEX_VALUE = pa.list_(pa.struct([("index", pa.int64()), ("value", pa.float64())]))


def test_one_hot_encoder_vocabulary_threshold_and_unknown() -> None:
    pre, out = fit(
        "ML.ONE_HOT_ENCODER(c, 'none', 10, 2) OVER() AS oh, "
        "ML.ONE_HOT_ENCODER(c, 'most_frequent', 10, 1) OVER() AS dummy",
        CITIES,
    )
    assert out.schema.field("oh").type == INDEX_VALUE
    # seen >= 2 times: paris (3), rome (2) -> sorted: paris 1, rome 2; others and NULL: 0
    assert [r[0]["index"] for r in out["oh"].to_pylist()] == [1, 2, 1, 0, 0, 1, 2, 0]
    assert {r[0]["value"] for r in out["oh"].to_pylist()} == {1.0}
    # dummy: vocabulary lima 1, oslo 2, paris 3, rome 4; paris (the most frequent) has value 0
    dummy = out["dummy"].to_pylist()
    assert [r[0]["index"] for r in dummy] == [3, 4, 3, 0, 2, 3, 4, 1]
    assert [r[0]["value"] for r in dummy] == [0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0]
    assert pre.apply(pa.table({"c": ["tokyo"]}))["oh"].to_pylist() == [[{"index": 0, "value": 1.0}]]


def test_label_encoder_default_threshold_and_top_k() -> None:
    table = pa.table({"c": ["a"] * 6 + ["b"] * 5 + ["c"] * 4 + [None]})
    _, out = fit("ML.LABEL_ENCODER(c) OVER() AS d, ML.LABEL_ENCODER(c, 1, 0) OVER() AS top1", table)
    assert out.schema.field("d").type == pa.int64()
    # default frequency_threshold 5: c (4 times) is unknown
    assert out["d"].to_pylist() == [1] * 6 + [2] * 5 + [0] * 4 + [0]
    assert out["top1"].to_pylist() == [1] * 6 + [0] * 10


def test_multi_hot_encoder_matches_bigquerys_example() -> None:
    table = pa.table({"f": [["a", "b", "b", "c", None], ["c", "c", "d", "d", None]]})
    _, out = fit("ML.MULTI_HOT_ENCODER(f, 3, 1) OVER() AS output", table)
    assert out.schema.field("output").type == INDEX_VALUE
    got = [[(e["index"], e["value"]) for e in row] for row in out["output"].to_pylist()]
    assert got == [[(1, 1.0), (2, 1.0), (3, 1.0), (0, 1.0)], [(3, 1.0), (0, 1.0)]]


DOCS = pa.table({"d": [["a", "b", "b"], ["b", "c"], None, ["a", "z", "a", "a"]]})


def test_bag_of_words_counts_by_document_frequency_vocabulary() -> None:
    _, out = fit("ML.BAG_OF_WORDS(d, 2, 1) OVER() AS bow", DOCS)
    # document frequency: a 2, b 2, c 1, z 1 -> top 2: a 1, b 2; c and z are unknown (0)
    rows = [
        None if r is None else {e["index"]: e["value"] for e in r} for r in out["bow"].to_pylist()
    ]
    assert rows == [{1: 1.0, 2: 2.0}, {0: 1.0, 2: 1.0}, None, {0: 1.0, 1: 3.0}]


def test_tf_idf_follows_the_documented_formula() -> None:
    _, out = fit("ML.TF_IDF(d, 2, 1) OVER() AS t", DOCS)
    n = 3  # documents (a NULL document is none)

    def idf(df: int) -> float:
        return math.log(1 + n / (1 + df))

    # unknown term (0): c in document 2, z in document 4 -> in 2 documents
    expected = [
        {1: 1 / 3 * idf(2), 2: 2 / 3 * idf(2)},
        {0: 1 / 2 * idf(2), 2: 1 / 2 * idf(2)},
        None,
        {0: 1 / 4 * idf(2), 1: 3 / 4 * idf(2)},
    ]
    rows = [
        None if r is None else {e["index"]: e["value"] for e in r} for r in out["t"].to_pylist()
    ]
    for got, want in zip(rows, expected, strict=True):
        assert (got is None) == (want is None)
        if got is not None and want is not None:
            assert got.keys() == want.keys()
            np.testing.assert_allclose([got[k] for k in want], list(want.values()), rtol=1e-12)


# ------------------------------------------------------------------------------------------------
# scalar functions


def test_feature_cross_and_polynomial_expand_match_bigquerys_examples() -> None:
    table = pa.table({"f1": ["a", None], "f2": ["b", "x"], "f3": ["c", "y"], "n": [2, 1]})
    _, out = fit(
        "ML.FEATURE_CROSS(STRUCT(f1, f2, f3)) AS fc, "
        "ML.POLYNOMIAL_EXPAND(STRUCT(n AS f1, n + 1 AS f2)) AS pe, "
        "ML.FEATURE_CROSS(STRUCT(f1, f2, f3), 3) AS fc3",
        table,
    )
    assert out["fc"][0].as_py() == {"f1_f2": "a_b", "f1_f3": "a_c", "f2_f3": "b_c"}
    assert out["fc"][1].as_py() == {"f1_f2": None, "f1_f3": None, "f2_f3": "x_y"}
    assert out["pe"][0].as_py() == {"f1": 2.0, "f1_f1": 4.0, "f1_f2": 6.0, "f2": 3.0, "f2_f2": 9.0}
    assert out.schema.field("pe").type.field(0).type == pa.float64()
    assert list(out["fc3"][0].as_py()) == ["f1_f2", "f1_f2_f3", "f1_f3", "f2_f3"]
    assert out["fc3"][0].as_py()["f1_f2_f3"] == "a_b_c"


def test_farm_fingerprint_and_hash_bucketize_match_bigquery() -> None:
    # FARM_FINGERPRINT's documented values, and ML.HASH_BUCKETIZE's example
    assert farm_fingerprint("1footrue") == -1541654101129638711
    assert farm_fingerprint("2applefalse") == 2794438866806483259
    assert farm_fingerprint("3true") == -4880158226897771312
    table = pa.table({"f": ["a", "b", "c", "d", None]})
    _, out = fit("ML.HASH_BUCKETIZE(f, 3) AS bucket, ML.HASH_BUCKETIZE(f, 0) AS h", table)
    assert out["bucket"].to_pylist() == [0, 1, 1, 2, None]
    assert out["h"].to_pylist()[:4] == [farm_fingerprint(c) for c in "abcd"]
    # every length branch of Fingerprint64 runs (and is deterministic)
    for n in (0, 3, 7, 15, 31, 63, 64, 65, 200):
        assert farm_fingerprint("q" * n) == farm_fingerprint(b"q" * n)


def test_ngrams() -> None:
    table = pa.table({"t": [["a", "b", "c"], ["x"], None]})
    _, out = fit("ML.NGRAMS(t, [2, 3], '#') AS g, ML.NGRAMS(t, [1, 2]) AS g12", table)
    assert out["g"].to_pylist() == [["a#b", "a#b#c", "b#c"], [], None]
    assert out["g12"].to_pylist()[0] == ["a", "a b", "b", "b c", "c"]
    assert out.schema.field("g").type == pa.list_(pa.string())


def test_plain_sql_items_pass_through_transpiled() -> None:
    table = pa.table({"x": [1, 2], "d": pa.array([0, 40_000], pa.date32()), "s": ["a", "b"]})
    pre, out = fit(
        "x, x * 2 AS x2, EXTRACT(YEAR FROM d) AS yr, IF(x > 1, 'big', 'small') AS size, "
        "CAST(x AS STRING) AS xs",
        table,
    )
    assert out.column_names == ["x", "x2", "yr", "size", "xs"]
    assert out.to_pydict() == {
        "x": [1, 2],
        "x2": [2, 4],
        "yr": [1970, 2079],
        "size": ["small", "big"],
        "xs": ["1", "2"],
    }
    assert pre.input_columns == ["x", "d"]


def test_star_except_expands_to_the_training_columns() -> None:
    table = pa.table({"a": [1.0, 2.0], "b": ["u", "v"], "y": [0.0, 1.0]})
    _, out = fit("* EXCEPT (b), ML.LABEL_ENCODER(b, 10, 0) OVER() AS b_code", table, label="y")
    assert out.column_names == ["a", "y", "b_code"]
    assert out["b_code"].to_pylist() == [1, 2]


# ------------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("select_list", "label", "message"),
    [
        ("ML.NOT_A_FN(x) OVER() AS z, y", "y", "ML.NOT_A_FN is not a BigQuery ML preprocessing"),
        ("ML.STANDARD_SCALER(x) AS z, y", "y", "analytic function: write ML.STANDARD_SCALER"),
        ("ML.BUCKETIZE(x, [1]) OVER() AS z, y", "y", "not an analytic function"),
        ("ML.IMPUTER(x, 'avg') OVER() AS z, y", "y", "argument strategy is 'avg'"),
        ("ML.QUANTILE_BUCKETIZE(x, 'a') OVER() AS z, y", "y", "argument num_buckets"),
        ("ML.BUCKETIZE(x, [3, 1]) AS z, y", "y", "ascending"),
        ("ML.POLYNOMIAL_EXPAND(STRUCT(x), 9) AS z, y", "y", "degree must be in [1, 4]"),
        ("ML.STANDARD_SCALER(x) OVER() AS z", "y", "The label column 'y' must be in the TRANSFORM"),
        ("x + 1, y", "y", "has no name"),
        ("x AS a, y AS a, y", "y", "names 'a' twice"),
        ("nope AS z, y", "y", "does not apply to the training data"),
    ],
)
def test_bad_transforms_are_sql_errors(select_list: str, label: str, message: str) -> None:
    table = pa.table({"x": [1.0, 2.0, 3.0], "y": [0.0, 1.0, 0.0]})
    with pytest.raises(SqlError, match=message.replace("(", r"\(").replace("[", r"\[")):
        compile_transform(items(select_list), table, label=label)


# ------------------------------------------------------------------------------------------------
# saving, loading, tampering

TRAIN = pa.table(
    {
        "x": [1.0, 2.0, 3.0, None, 5.0, 6.0, 7.0, 8.0],
        "city": ["a", "b", "a", "c", "b", "a", "c", "a"],
        "tags": [["u"], ["v", "u"], [], ["w"], ["u", "u"], None, ["v"], ["u", "w"]],
        "y": [2.1, 4.2, 5.9, 8.1, 9.8, 12.2, 13.9, 16.1],
    }
)
TRANSFORM = (
    "ML.STANDARD_SCALER(ML.IMPUTER(x, 'mean') OVER()) OVER() AS xs, "
    "ML.ONE_HOT_ENCODER(city, 'none', 10, 1) OVER() AS city_oh, "
    "ML.QUANTILE_BUCKETIZE(x, 2) OVER() AS xb, ML.BAG_OF_WORDS(tags, 10, 1) OVER() AS bow, "
    "ML.FEATURE_CROSS(STRUCT(city, ML.BUCKETIZE(x, [4]) AS xb2)) AS fc, "
    "ML.HASH_BUCKETIZE(city, 5) AS hb, y"
)


def test_sql_then_transform_saves_and_loads_identically(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pre = compile_transform(items(TRANSFORM), TRAIN, label="y")
    out = pre.apply(TRAIN)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        then = auto_transform(out, "linear", exclude=["y"]).fit(out)
    fitted = SqlThenTransform(pre, then)
    fitted.save(tmp_path / "t")
    loaded = FittedTransform.load(tmp_path / "t")
    assert isinstance(loaded, SqlThenTransform)
    raw = TRAIN.drop_columns(["y"])  # prediction rows: no label
    a, b = fitted.transform(raw), loaded.transform(raw)
    assert a.names == b.names
    assert {"city_oh[1]", "fc.city_xb2=a_bin_1", "bow[2]"} <= set(a.names)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(
        fitted.one_hot_features(raw).toarray(), loaded.one_hot_features(raw).toarray()
    )
    again = FittedTransform.from_json(fitted.to_json())
    np.testing.assert_array_equal(again.transform(raw).X, a.X)
    assert loaded.input_columns == ["x", "city", "tags"]


def test_apply_leaves_the_label_out_when_its_columns_are_missing() -> None:
    pre = compile_transform(items("x, y * 10 AS y"), TRAIN, label="y")
    assert pre.label_inputs == ["y"]
    assert pre.input_columns == ["x"]
    assert pre.apply(TRAIN)["y"].to_pylist()[0] == pytest.approx(21.0)
    assert pre.apply(TRAIN.select(["x"])).column_names == ["x"]
    with pytest.raises(DataError, match="column 'x' is missing"):
        pre.apply(TRAIN.select(["y"]))


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("(SELECT 1)", "Subquery"),
        ("(SELECT count(*) FROM read_csv('/etc/passwd'))", "not allowed"),
        ("read_csv('/etc/passwd')", "not allowed"),
        ("getenv('HOME')", "not allowed"),
        ("x + other", "reads 'other', not an input column"),
        ("t.x", "qualified column"),
        ("1; COPY (SELECT 1) TO '/tmp/kiln_pwned.csv'", "does not parse|not allowed"),
        ("x FROM t", "not allowed|does not parse"),
    ],
)
def test_from_json_refuses_tampered_expressions(expression: str, message: str) -> None:
    body = SqlSelect([("z", "x")], input_columns=["x"], label=None).to_json()
    assert SqlSelect.from_json(body).items == [("z", "x")]
    body["items"] = [["z", expression]]
    with pytest.raises(ModelFormatError, match=message):
        SqlSelect.from_json(body)


def test_every_fitted_expression_passes_the_load_validation() -> None:
    pre = compile_transform(items(TRANSFORM), TRAIN, label="y")
    reloaded = SqlSelect.from_json(json.loads(json.dumps(pre.to_json())))
    assert reloaded.apply(TRAIN).equals(pre.apply(TRAIN))


def test_the_sandbox_refuses_file_access() -> None:
    con = sandboxed_connection()
    with pytest.raises(Exception, match=r"disabled by configuration|Permission"):
        con.sql("SELECT * FROM read_csv('/etc/passwd')").fetchall()
    with pytest.raises(Exception, match="lock"):
        con.execute("SET enable_external_access = true")


# ------------------------------------------------------------------------------------------------
# end to end: a model trained on the TRANSFORM's output predicts from raw rows


def _sql_model(tmp_path) -> tuple[Model, SqlThenTransform]:  # type: ignore[no-untyped-def]
    pre = compile_transform(items(TRANSFORM), TRAIN, label="y")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inner = Model.fit(pre.apply(TRAIN), model_type="linear_reg", label="y")
    wrapped = SqlThenTransform(pre, inner.transform)
    model = Model(
        inner.trainer,
        wrapped,
        "y",
        [{"name": c, "type": "any", "nullable": True} for c in pre.input_columns],
    )
    return model, wrapped


def test_end_to_end_predicts_from_raw_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model, _ = _sql_model(tmp_path)
    raw = TRAIN.drop_columns(["y"])
    pred = model.predict(raw)["predicted_y"].to_numpy()
    assert pred.shape == (8,)
    assert np.isfinite(pred).all()
    assert np.corrcoef(pred, TRAIN["y"].to_numpy())[0, 1] > 0.9
    path = model.save(tmp_path / "m")
    again = Model.load(path)
    assert isinstance(again.transform, SqlThenTransform)
    np.testing.assert_allclose(again.predict(raw)["predicted_y"].to_numpy(), pred)


def test_ml_transform_returns_the_transform_columns(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model, _ = _sql_model(tmp_path)
    sql_model = SqlModel("ds.m", 1, model)
    out = ml_transform(sql_model, TRAIN, {}, [])
    assert out.column_names == ["xs", "city_oh", "xb", "bow", "fc", "hb", "y"]
    assert ml_transform(sql_model, TRAIN.drop_columns(["y"]), {}, []).column_names[-1] == "hb"
    plain = Model.fit(TRAIN.select(["x", "y"]), model_type="linear_reg", label="y")
    with pytest.raises(SqlError, match=r"Model ds\.plain has no TRANSFORM clause"):
        ml_transform(SqlModel("ds.plain", 1, plain), TRAIN, {}, [])


# ------------------------------------------------------------------------------------------------
# the automatic preprocessing takes the encoded types


def test_auto_transform_expands_index_values_and_struct_fields() -> None:
    table = pa.table(
        {
            "oh": pa.array(
                [[{"index": 2, "value": 1.0}], [{"index": 0, "value": 1.0}], None],
                INDEX_VALUE,
            ),
            "st": pa.array([{"a": 1.0, "b": "u"}, {"a": 3.0, "b": "v"}, {"a": None, "b": "u"}]),
        }
    )
    m = auto_transform(table, "linear").fit(table).transform(table)
    assert m.names == ["oh[0]", "oh[1]", "oh[2]", "st.a", "st.b=u", "st.b=v"]
    np.testing.assert_allclose(m.X[:, :3], [[0, 0, 1], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_allclose(m.X[:, 3], [-1.0, 1.0, 0.0])  # mean-imputed, z-scored
    np.testing.assert_allclose(m.X[:, 4:], [[1, 0], [0, 1], [1, 0]])
    tree = auto_transform(table, "tree").fit(table).transform(table)
    assert tree.names == ["oh[0]", "oh[1]", "oh[2]", "st.a", "st.b"]
    assert tree.categorical == [4]


# ------------------------------------------------------------------------------------------------
# standalone use in a SELECT


def test_rewrite_standalone_gives_duckdb_equivalents() -> None:
    tree = sqlglot.parse_one(
        "SELECT ML.BUCKETIZE(x, [2]) AS b, ML.FEATURE_CROSS(STRUCT(s, s AS t)) AS fc, "
        "ML.HASH_BUCKETIZE(s, 3) AS h FROM tbl",
        read="bigquery",
    )
    sql = rewrite_standalone(tree).sql("duckdb")
    con = sandboxed_connection()
    tbl = pa.table({"x": [1.0, 3.0], "s": ["a", "d"]})
    con.register("tbl", tbl)
    try:
        rows = con.sql(sql).fetchall()
    finally:
        con.unregister("tbl")
    assert rows == [("bin_1", {"s_t": "a_a"}, 0), ("bin_2", {"s_t": "d_d"}, 2)]
    with pytest.raises(SqlError, match="outside a TRANSFORM"):
        rewrite_standalone(
            sqlglot.parse_one("SELECT ML.STANDARD_SCALER(x) OVER() FROM t", read="bigquery")
        )


def test_the_function_list() -> None:
    assert len(PREPROCESSING_FUNCTIONS) == 16
    assert {"STANDARD_SCALER", "TF_IDF", "NGRAMS", "HASH_BUCKETIZE"} <= PREPROCESSING_FUNCTIONS


@pytest.mark.parametrize(
    ("text", "expected"),
    [  # Google's FarmHash Fingerprint64 (the C++ reference, through pyfarmhash 0.5.1)
        ("", 11160318154034397263),
        ("a", 12917804110809363939),
        ("hello", 13009744463427800296),
        ("abcdefghijklmnop", 6080716761534418621),
        ("abcdefghijklmnopq", 11394395984755135400),
        ("x" * 33, 12270365409943098935),
        ("y" * 64, 4471793200125962424),
        ("z" * 65, 8299915583762718517),
        ("The quick brown fox jumps over the lazy dog" * 5, 7867177600520443285),
    ],
)
def test_farm_fingerprint_matches_the_reference_for_every_length_branch(
    text: str, expected: int
) -> None:
    assert farm_fingerprint(text) % 2**64 == expected
