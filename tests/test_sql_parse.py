"""kiln.sql._parse and kiln.sql._dialect: BigQuery ML statements parsed with sqlglot, and
queries transpiled to DuckDB returning what BigQuery documents (checked on a real DuckDB)."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sqlglot import exp

from kiln.errors import SqlError
from kiln.sql._dialect import table_references, to_duckdb
from kiln.sql._model import HParamCandidates, HParamRange
from kiln.sql._parse import (
    CreateModel,
    DropModel,
    KilnBigQuery,
    MLCall,
    ModelName,
    Query,
    literal_value,
    ml_calls,
    ml_extra,
    ml_model,
    ml_name,
    ml_settings,
    parse_script,
)

PENGUINS = """CREATE OR REPLACE MODEL `bqml_tutorial.penguins_model`
OPTIONS (model_type='linear_reg', input_label_cols=['body_mass_g']) AS
SELECT * FROM `bigquery-public-data.ml_datasets.penguins`
WHERE body_mass_g IS NOT NULL"""


def one(text: str) -> Any:
    statements = parse_script(text)
    assert len(statements) == 1
    return statements[0]


def query(text: str) -> exp.Expr:
    statement = one(text)
    assert isinstance(statement, Query)
    return statement.expression


def call(text: str) -> MLCall:
    calls = ml_calls(query(text))
    assert len(calls) == 1
    return calls[0]


# ----------------------------------------------------------------------------- CREATE MODEL


def test_penguins_linear_reg_tutorial() -> None:
    statement = one(PENGUINS)
    assert isinstance(statement, CreateModel)
    assert statement.model == ModelName(dataset="bqml_tutorial", name="penguins_model")
    assert statement.model.qualified == "bqml_tutorial.penguins_model"
    assert statement.replace is True
    assert statement.if_not_exists is False
    assert statement.options == {"model_type": "linear_reg", "input_label_cols": ["body_mass_g"]}
    assert statement.transform is None
    assert statement.text == PENGUINS
    assert statement.query is not None
    assert to_duckdb(statement.query) == (
        'SELECT * FROM "ml_datasets"."penguins" WHERE NOT body_mass_g IS NULL'
    )


def test_census_logistic_reg_with_data_split_options() -> None:
    statement = one(
        """CREATE MODEL IF NOT EXISTS `census.census_model`
        OPTIONS
          ( model_type='LOGISTIC_REG',
            auto_class_weights=TRUE,
            data_split_method='RANDOM',
            data_split_eval_fraction=0.2,
            data_split_col='split',
            input_label_cols=['income_bracket'],
            max_iterations=15,
            l2_reg=0
          ) AS
        SELECT * EXCEPT(dataframe) FROM `census.input_data` WHERE dataframe = 'training'"""
    )
    assert isinstance(statement, CreateModel)
    assert statement.replace is False
    assert statement.if_not_exists is True
    assert statement.options == {
        "model_type": "LOGISTIC_REG",
        "auto_class_weights": True,
        "data_split_method": "RANDOM",
        "data_split_eval_fraction": 0.2,
        "data_split_col": "split",
        "input_label_cols": ["income_bracket"],
        "max_iterations": 15,
        "l2_reg": 0,
    }
    assert isinstance(statement.options["max_iterations"], int)


def test_kmeans_with_num_clusters_and_a_with_query() -> None:
    statement = one(
        """CREATE OR REPLACE MODEL bqml_tutorial.london_station_clusters
        OPTIONS(model_type='kmeans', num_clusters=4, KMEANS_INIT_METHOD='KMEANS++') AS
        WITH hs AS (SELECT * FROM `bigquery-public-data.london_bicycles.cycle_hire` AS h),
        stationstats AS (SELECT start_station_name AS station_name, COUNT(*) AS n FROM hs
                         GROUP BY start_station_name)
        SELECT * EXCEPT(station_name) FROM stationstats"""
    )
    assert isinstance(statement, CreateModel)
    assert statement.options == {
        "model_type": "kmeans",
        "num_clusters": 4,
        "kmeans_init_method": "KMEANS++",
    }
    assert statement.query is not None
    assert table_references(statement.query) == ["london_bicycles.cycle_hire"]


def test_transform_items_are_kept_as_written() -> None:
    statement = one(
        """CREATE MODEL ds.m
        TRANSFORM(ML.QUANTILE_BUCKETIZE(x, 10) OVER() AS b,
                  ML.FEATURE_CROSS(STRUCT(a, b)) AS c,
                  ML.STANDARD_SCALER(x) OVER() AS s,
                  label)
        OPTIONS(model_type='linear_reg', input_label_cols=['label'])
        AS SELECT x, a, b, label FROM ds.t"""
    )
    assert isinstance(statement, CreateModel)
    assert statement.transform is not None
    items = [item.sql("bigquery") for item in statement.transform]
    assert items == [
        "ML.QUANTILE_BUCKETIZE(x, 10) OVER () AS b",
        "ML.FEATURE_CROSS(STRUCT(a, b)) AS c",
        "ML.STANDARD_SCALER(x) OVER () AS s",
        "label",
    ]
    assert [item.alias_or_name for item in statement.transform] == ["b", "c", "s", "label"]


def test_create_model_without_options_or_query_is_left_to_the_options_layer() -> None:
    statement = one("CREATE MODEL `my-project.ds.m`")
    assert isinstance(statement, CreateModel)
    assert statement.model == ModelName(dataset="ds", name="m", project="my-project")
    assert statement.options == {}
    assert statement.query is None


def test_option_values_become_python_values() -> None:
    statement = one(
        """CREATE MODEL m OPTIONS(
            class_weights=[('a', 0.3), ('b', 0.7)],
            struct_weights=[STRUCT('a', 0.25)],
            hidden_units=[32, 16],
            l1_reg=HPARAM_RANGE(0, 10.5),
            learn_rate=HPARAM_CANDIDATES([0.1, 0.3]),
            booster=HPARAM_CANDIDATES(['gbtree', 'dart']),
            neg=-1.5,
            nothing=NULL,
            early_stop=FALSE,
            named=STRUCT(1 AS a, 'x' AS b),
            since=DATE '2024-01-07'
        )"""
    )
    assert isinstance(statement, CreateModel)
    assert statement.options == {
        "class_weights": [("a", 0.3), ("b", 0.7)],
        "struct_weights": [("a", 0.25)],
        "hidden_units": [32, 16],
        "l1_reg": HParamRange(low=0, high=10.5),
        "learn_rate": HParamCandidates(values=(0.1, 0.3)),
        "booster": HParamCandidates(values=("gbtree", "dart")),
        "neg": -1.5,
        "nothing": None,
        "early_stop": False,
        "named": {"a": 1, "b": "x"},
        "since": datetime.date(2024, 1, 7),
    }


def test_an_option_that_is_not_constant_names_the_option() -> None:
    with pytest.raises(SqlError, match=r"OPTIONS\(l1_reg\) of CREATE MODEL ds.m: .*`x \+ 1`"):
        parse_script("CREATE MODEL ds.m OPTIONS(l1_reg=x + 1) AS SELECT 1")


def test_a_duplicate_option_is_an_error() -> None:
    with pytest.raises(SqlError, match="Duplicate option model_type in OPTIONS of CREATE MODEL"):
        parse_script("CREATE MODEL m OPTIONS(model_type='kmeans', MODEL_TYPE='pca')")


def test_drop_model() -> None:
    statement = one("DROP MODEL IF EXISTS `p.ds.m`")
    assert statement == DropModel(
        model=ModelName(dataset="ds", name="m", project="p"),
        if_exists=True,
        text="DROP MODEL IF EXISTS `p.ds.m`",
    )
    plain = one("DROP MODEL m")
    assert isinstance(plain, DropModel)
    assert (plain.model.qualified, plain.if_exists) == ("m", False)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("CREATE SCHEMA IF NOT EXISTS bqml", exp.Create),
        ("CREATE TABLE bqml.t AS SELECT 1 AS x", exp.Create),
        ("CREATE OR REPLACE VIEW bqml.v AS SELECT 1 AS x", exp.Create),
        ("INSERT INTO bqml.t (x) VALUES (2)", exp.Insert),
        ("DROP TABLE IF EXISTS bqml.t", exp.Drop),
        ("WITH a AS (SELECT 1 AS x) SELECT x FROM a", exp.Select),
    ],
)
def test_other_statements_are_queries(text: str, kind: type[exp.Expr]) -> None:
    statement = one(text)
    assert isinstance(statement, Query)
    assert isinstance(statement.expression, kind)
    assert statement.text == text


# ----------------------------------------------------------------------------- ML.* calls


@pytest.mark.parametrize(
    ("text", "name", "source", "settings", "extra"),
    [
        ("ML.EVALUATE(MODEL ds.m)", "EVALUATE", None, {}, []),
        ("ML.EVALUATE(MODEL ds.m, TABLE ds.t)", "EVALUATE", "ds.t", {}, []),
        (
            "ML.EVALUATE(MODEL ds.m, (SELECT * FROM ds.t), STRUCT(0.55 AS threshold))",
            "EVALUATE",
            "(SELECT * FROM ds.t)",
            {"threshold": 0.55},
            [],
        ),
        (
            "ML.PREDICT(MODEL ds.m, (SELECT 1 AS x), STRUCT(0.5 AS threshold, TRUE AS keep))",
            "PREDICT",
            "(SELECT 1 AS x)",
            {"threshold": 0.5, "keep": True},
            [],
        ),
        ("ML.TRAINING_INFO(MODEL ds.m)", "TRAINING_INFO", None, {}, []),
        ("ML.FEATURE_INFO(MODEL `ds.m`)", "FEATURE_INFO", None, {}, []),
        (
            "ML.WEIGHTS(MODEL ds.m, STRUCT(true AS standardize))",
            "WEIGHTS",
            None,
            {"standardize": True},
            [],
        ),
        ("ML.ADVANCED_WEIGHTS(MODEL ds.m)", "ADVANCED_WEIGHTS", None, {}, []),
        (
            "ML.CONFUSION_MATRIX(MODEL ds.m, TABLE ds.t, STRUCT(0.4 AS threshold))",
            "CONFUSION_MATRIX",
            "ds.t",
            {"threshold": 0.4},
            [],
        ),
        (
            "ML.ROC_CURVE(MODEL ds.m, TABLE ds.t, GENERATE_ARRAY(0.0, 1.0, 0.25))",
            "ROC_CURVE",
            "ds.t",
            {},
            [[0.0, 0.25, 0.5, 0.75, 1.0]],
        ),
        ("ML.ROC_CURVE(MODEL ds.m, TABLE ds.t, [0.3, 0.7])", "ROC_CURVE", "ds.t", {}, [[0.3, 0.7]]),
        (
            "ML.CENTROIDS(MODEL ds.m, STRUCT(TRUE AS standardize))",
            "CENTROIDS",
            None,
            {"standardize": True},
            [],
        ),
        (
            "ML.EXPLAIN_PREDICT(MODEL ds.m, (SELECT 2 AS x), STRUCT(3 AS top_k_features))",
            "EXPLAIN_PREDICT",
            "(SELECT 2 AS x)",
            {"top_k_features": 3},
            [],
        ),
        (
            "ML.GLOBAL_EXPLAIN(MODEL ds.m, STRUCT(TRUE AS class_level_explain))",
            "GLOBAL_EXPLAIN",
            None,
            {"class_level_explain": True},
            [],
        ),
        ("ML.TRANSFORM(MODEL ds.m, TABLE ds.t)", "TRANSFORM", "ds.t", {}, []),
        (
            "ML.DETECT_ANOMALIES(MODEL ds.m, STRUCT(0.02 AS contamination), TABLE ds.t)",
            "DETECT_ANOMALIES",
            "ds.t",
            {"contamination": 0.02},
            [],
        ),
        (
            "ML.DETECT_ANOMALIES(MODEL ds.m, STRUCT(0.9 AS anomaly_prob_threshold), (SELECT 1))",
            "DETECT_ANOMALIES",
            "(SELECT 1)",
            {"anomaly_prob_threshold": 0.9},
            [],
        ),
        ("ML.PRINCIPAL_COMPONENTS(MODEL ds.m)", "PRINCIPAL_COMPONENTS", None, {}, []),
        ("ML.PRINCIPAL_COMPONENT_INFO(MODEL ds.m)", "PRINCIPAL_COMPONENT_INFO", None, {}, []),
        ("ML.FORECAST(MODEL ds.m, STRUCT(30 AS horizon))", "FORECAST", None, {"horizon": 30}, []),
        ("ml.made_up(MODEL ds.m, 1, 'two')", "MADE_UP", None, {}, [1, "two"]),
    ],
)
def test_every_ml_function_form_parses(
    text: str, name: str, source: str | None, settings: dict[str, Any], extra: list[Any]
) -> None:
    found = call(f"SELECT * FROM {text} AS r")
    assert ml_name(found) == name
    assert ml_model(found) == ModelName(dataset="ds", name="m")
    given = found.args.get("input")
    assert (given.sql("bigquery") if given is not None else None) == source
    assert ml_settings(found) == settings
    assert ml_extra(found) == extra
    table = found.parent
    assert isinstance(table, exp.Table)
    assert table.alias == "r"
    assert not table.args.get("db")  # ML is the call's, not a dataset


def test_ml_calls_in_joins_and_inputs_come_innermost_first() -> None:
    tree = query(
        """SELECT * FROM ML.PREDICT(MODEL ds.outer_m,
               (SELECT * FROM ML.TRANSFORM(MODEL ds.inner_m, TABLE ds.t))) AS p
           JOIN ML.EVALUATE(MODEL `proj.ds.e`) AS e ON TRUE"""
    )
    calls = ml_calls(tree)
    assert [ml_model(c).qualified for c in calls] == ["ds.inner_m", "ds.outer_m", "ds.e"]
    assert ml_model(calls[2]).project == "proj"
    assert calls[0].find_ancestor(MLCall) is calls[1]


def test_an_ml_call_prints_back_as_bigquery() -> None:
    text = (
        "SELECT * FROM ML.DETECT_ANOMALIES(MODEL ds.m, STRUCT(0.02 AS contamination), "
        "TABLE ds.t) AS a"
    )
    assert query(text).sql(dialect=KilnBigQuery) == text


def test_ml_settings_need_named_fields() -> None:
    found = call("SELECT * FROM ML.PREDICT(MODEL m, TABLE t, STRUCT(0.5))")
    with pytest.raises(SqlError, match=r"ML.PREDICT: each field of its STRUCT needs a name"):
        ml_settings(found)


def test_ml_extra_must_be_constant() -> None:
    found = call("SELECT * FROM ML.ROC_CURVE(MODEL m, TABLE t, GENERATE_ARRAY(0, x, 1))")
    with pytest.raises(SqlError, match=r"ML\.ROC_CURVE: Expected a constant value but got `x`"):
        ml_extra(found)


def test_a_dataset_named_ml_is_still_a_table() -> None:
    tree = query("SELECT * FROM ML.predictions JOIN ml.t USING (id)")
    assert ml_calls(tree) == []
    assert table_references(tree) == ["ML.predictions", "ml.t"]


# ---------------------------------------------------------------------------------- literals


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1),
        ("-2.5", -2.5),
        ("1e3", 1000.0),
        ("'x'", "x"),
        ("TRUE", True),
        ("NULL", None),
        ("[1, 2]", [1, 2]),
        ("ARRAY<INT64>[]", []),
        ("(1, 'a')", (1, "a")),
        ("STRUCT(0.5 AS t)", {"t": 0.5}),
        ("GENERATE_ARRAY(0, 1, 0.1)", [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]),
        ("GENERATE_ARRAY(5, 1)", []),
        ("GENERATE_ARRAY(6, 0, -3)", [6, 3, 0]),
        ("TIMESTAMP '2024-01-07 10:11:12'", datetime.datetime(2024, 1, 7, 10, 11, 12)),
    ],
)
def test_literal_value(text: str, value: Any) -> None:
    select = query(f"SELECT {text}")
    assert isinstance(select, exp.Select)
    assert literal_value(select.expressions[0]) == value


def test_literal_value_of_a_column_is_an_error() -> None:
    select = query("SELECT\n  a")
    assert isinstance(select, exp.Select)
    with pytest.raises(SqlError, match=r"Expected a constant value but got `a` at \[2:3\]"):
        literal_value(select.expressions[0])


# ------------------------------------------------------------------------------------ scripts


def test_a_script_of_several_statements_with_comments_and_semicolons_in_strings() -> None:
    script = f"""
    -- train; then look
    {PENGUINS};;
    /* a block comment; with a semicolon */
    SELECT 'a;b' AS s, "c;d" AS t, r'''e;f''' AS u FROM x;  # hash comment; too
    SELECT * FROM ML.EVALUATE(MODEL `bqml_tutorial.penguins_model`);
    DROP MODEL bqml_tutorial.penguins_model
    ;
    """
    statements = parse_script(script)
    assert [type(s).__name__ for s in statements] == [
        "CreateModel",
        "Query",
        "Query",
        "DropModel",
    ]
    assert statements[0].text == PENGUINS
    assert statements[1].text == """SELECT 'a;b' AS s, "c;d" AS t, r'''e;f''' AS u FROM x"""
    second = statements[1]
    assert isinstance(second, Query)
    assert [literal_value(e.this) for e in second.expression.expressions] == ["a;b", "c;d", "e;f"]
    assert statements[2].text == "SELECT * FROM ML.EVALUATE(MODEL `bqml_tutorial.penguins_model`)"


def test_an_empty_script_has_no_statements() -> None:
    assert parse_script("  ;\n -- nothing\n ; ") == []


def test_a_syntax_error_gives_the_scripts_line_and_column() -> None:
    with pytest.raises(SqlError) as info:
        parse_script("SELECT 1;\nSELECT * FROM t WHERE (x = 1")
    message = str(info.value)
    assert message.startswith("Syntax error: ")
    assert "at [2:" in message
    assert "\n  SELECT * FROM t WHERE (x = 1\n" in message
    assert message.endswith("^")


def test_a_syntax_error_points_at_the_token() -> None:
    with pytest.raises(SqlError, match=r"near `3` at \[3:13\]") as info:
        parse_script("SELECT 1;\n\nSELECT 1, 2 3")
    assert str(info.value).endswith("\n  SELECT 1, 2 3\n              ^")


def test_a_model_name_missing_in_an_ml_call_is_a_syntax_error() -> None:
    with pytest.raises(SqlError, match=r"Syntax error: Expected table name but got `\)`.*\[1:32\]"):
        parse_script("SELECT * FROM ML.EVALUATE(MODEL)")


def test_an_unclosed_string_gives_where_it_opens() -> None:
    with pytest.raises(SqlError, match=r"Unclosed string literal or quoted name at \[2:13\]"):
        parse_script("SELECT 1;\nSELECT 'a', 'b")


def test_an_unclosed_comment_gives_where_it_opens() -> None:
    with pytest.raises(SqlError, match=r"Unclosed comment at \[1:10\]"):
        parse_script("SELECT 1 /* never closed")


# ------------------------------------------------------------------------------- to DuckDB


@pytest.fixture(scope="module")
def db() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute("CREATE SCHEMA ds")
    connection.execute(
        "CREATE TABLE ds.t AS SELECT * FROM (VALUES (1, 'a', 2.0), (2, 'b', NULL), (3, 'c', 6.0))"
        " AS v(id, name, x)"
    )
    return connection


def run(db: duckdb.DuckDBPyConnection, text: str, **kwargs: Any) -> list[tuple[Any, ...]]:
    return db.execute(to_duckdb(query(text), **kwargs)).fetchall()


def first(db: duckdb.DuckDBPyConnection, text: str) -> Any:
    return run(db, text)[0][0]


def test_project_is_dropped_from_names(db: duckdb.DuckDBPyConnection) -> None:
    for name in ("`my-project.ds.t`", "`my-project`.ds.t", "`my-project`.`ds`.`t`", "ds.t"):
        assert run(db, f"SELECT COUNT(*) FROM {name}") == [(3,)], name
    assert to_duckdb(query("SELECT * FROM `my-project.ds.t`")) == 'SELECT * FROM "ds"."t"'


def test_project_is_kept_when_it_is_an_attached_database() -> None:
    connection = duckdb.connect()
    connection.execute("ATTACH ':memory:' AS other")
    connection.execute("CREATE SCHEMA other.ds")
    connection.execute("CREATE TABLE other.ds.t AS SELECT 42 AS v")
    sql = to_duckdb(query("SELECT v FROM `other.ds.t`"), catalogs=["other"])
    assert connection.execute(sql).fetchall() == [(42,)]


def test_files_are_read_by_their_suffix(db: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    db.execute(f"COPY (SELECT 1 AS a, 'x' AS b) TO '{tmp_path / 'pen.csv'}' (HEADER)")
    db.execute(
        f"COPY (SELECT 2 AS a, 'y' AS b) TO '{tmp_path / 'part-1.parquet'}' (FORMAT parquet)"
    )
    (tmp_path / "rows.jsonl").write_text(json.dumps({"a": 3, "b": "z"}) + "\n")
    assert run(db, f"SELECT * FROM '{tmp_path / 'pen.csv'}'") == [(1, "x")]
    assert run(db, f"SELECT pen.b FROM `{tmp_path / 'pen.csv'}`") == [("x",)]
    assert run(db, f"SELECT a FROM `{tmp_path}/*.parquet` AS p WHERE p.b = 'y'") == [(2,)]
    assert run(db, f"SELECT a, b FROM '{tmp_path / 'rows.jsonl'}'") == [(3, "z")]
    assert to_duckdb(query("SELECT * FROM 'data/x.parquet'")) == (
        "SELECT * FROM READ_PARQUET('data/x.parquet') AS x"
    )
    assert table_references(query("SELECT * FROM 'penguins.csv' JOIN ds.t ON TRUE")) == ["ds.t"]


@pytest.mark.parametrize(
    ("part", "value", "expected"),
    [
        ("DAYOFWEEK", "DATE '2024-01-07'", 1),  # a Sunday
        ("DAYOFWEEK", "DATE '2024-01-06'", 7),  # a Saturday
        ("DAYOFWEEK", "TIMESTAMP '2024-01-07 23:00:00'", 1),
        ("DAYOFYEAR", "DATE '2024-02-01'", 32),
        ("QUARTER", "DATE '2024-05-07'", 2),
        ("WEEK", "DATE '2016-01-01'", 0),  # BigQuery's EXTRACT example table
        ("WEEK", "DATE '2016-01-03'", 1),
        ("WEEK", "DATE '2015-12-23'", 51),
        ("ISOWEEK", "DATE '2016-01-03'", 53),
        ("ISOWEEK", "DATE '2016-01-04'", 1),
        ("ISOYEAR", "DATE '2016-01-03'", 2015),
        ("WEEK(SUNDAY)", "DATE '2017-11-05'", 45),
        ("WEEK(MONDAY)", "DATE '2017-11-05'", 44),
        ("MILLISECOND", "TIMESTAMP '2024-01-01 10:00:12.345678'", 345),
        ("MICROSECOND", "TIMESTAMP '2024-01-01 10:00:12.345678'", 345678),
        ("DATE", "TIMESTAMP '2024-05-07 10:00:00'", datetime.date(2024, 5, 7)),
        ("DATETIME", "TIMESTAMP '2024-05-07 10:00:00'", datetime.datetime(2024, 5, 7, 10)),
    ],
)
def test_extract_matches_bigquery(
    db: duckdb.DuckDBPyConnection, part: str, value: str, expected: Any
) -> None:
    assert first(db, f"SELECT EXTRACT({part} FROM {value})") == expected


def test_extract_dayofweek_of_a_column_inside_a_function(db: duckdb.DuckDBPyConnection) -> None:
    rows = run(
        db,
        "SELECT EXTRACT(DAYOFWEEK FROM DATE_ADD(DATE '2024-01-06', INTERVAL id DAY)) FROM ds.t "
        "ORDER BY id",
    )
    assert rows == [(1,), (2,), (3,)]


def test_star_except_and_replace(db: duckdb.DuckDBPyConnection) -> None:
    assert run(db, "SELECT * EXCEPT(name, x) FROM ds.t ORDER BY id") == [(1,), (2,), (3,)]
    assert run(db, "SELECT * REPLACE(id * 10 AS id) FROM ds.t WHERE id = 1") == [(10, "a", 2.0)]


def test_conditionals_and_safe_functions(db: duckdb.DuckDBPyConnection) -> None:
    rows = run(
        db,
        "SELECT IF(x > 3, 'big', 'small'), IFNULL(x, -1), SAFE_DIVIDE(x, id - 1), COUNTIF(x > 1) "
        "OVER () FROM ds.t ORDER BY id",
    )
    assert rows == [("small", 2.0, None, 2), ("small", -1.0, None, 2), ("big", 6.0, 3.0, 2)]
    assert first(db, "SELECT SAFE.SUBSTR('abc', 2)") == "bc"


def test_safe_cast_with_bigquery_type_names(db: duckdb.DuckDBPyConnection) -> None:
    row = run(
        db,
        "SELECT SAFE_CAST('x' AS INT64), SAFE_CAST('12' AS INT64), SAFE_CAST('1.5' AS FLOAT64), "
        "SAFE_CAST('2.25' AS NUMERIC), SAFE_CAST(7 AS STRING), SAFE_CAST('true' AS BOOL), "
        "SAFE_CAST('ab' AS BYTES), SAFE_CAST('2024-01-07' AS DATE), "
        "SAFE_CAST('2024-01-07 10:00:00' AS DATETIME), SAFE_CAST('nope' AS TIMESTAMP)",
    )[0]
    assert row[:3] == (None, 12, 1.5)
    assert row[3] == Decimal("2.25")
    assert row[4:] == (
        "7",
        True,
        b"ab",
        datetime.date(2024, 1, 7),
        datetime.datetime(2024, 1, 7, 10),
        None,
    )


def test_numeric_keeps_nine_decimals_as_in_bigquery(db: duckdb.DuckDBPyConnection) -> None:
    row = run(db, "SELECT CAST('1.123456789' AS NUMERIC), SAFE_CAST('0.0001' AS NUMERIC) * 3")
    assert row == [(Decimal("1.123456789"), Decimal("0.000300000"))]


def test_parse_and_format_dates_with_bigquery_format_elements(
    db: duckdb.DuckDBPyConnection,
) -> None:
    row = run(
        db,
        "SELECT PARSE_DATE('%A %b %e %Y', 'Thursday Dec 25 2008'), "
        "PARSE_DATE('%F', '2024-01-07'), "
        "PARSE_TIMESTAMP('%c', 'Thu Dec 25 07:30:00 2008'), "
        "PARSE_TIMESTAMP('%Y-%m-%d %H:%M:%E*S', '2024-01-07 10:11:12.5'), "
        "FORMAT_DATE('%x', DATE '2008-12-25'), FORMAT_DATE('%b-%d-%Y', DATE '2008-12-25'), "
        "FORMAT_DATE('%Y-Q%Q', DATE '2008-12-25'), "
        "FORMAT_TIMESTAMP('%c', TIMESTAMP '2050-12-25 15:30:55+00'), "
        "FORMAT_TIMESTAMP('%H:%M:%E3S', TIMESTAMP '2050-12-25 15:30:55.123456+00')",
    )[0]
    assert row[0] == datetime.date(2008, 12, 25)
    assert row[1] == datetime.date(2024, 1, 7)
    assert row[2].replace(tzinfo=None) == datetime.datetime(2008, 12, 25, 7, 30)
    assert row[3].replace(tzinfo=None) == datetime.datetime(2024, 1, 7, 10, 11, 12, 500000)
    assert row[4:] == (
        "12/25/08",
        "Dec-25-2008",
        "2008-Q4",
        "Sun Dec 25 15:30:55 2050",
        "15:30:55.123",
    )


def test_arrays_and_structs(db: duckdb.DuckDBPyConnection) -> None:
    row = run(
        db,
        "SELECT [1, 2], ARRAY<INT64>[3, 4], ARRAY_LENGTH([1, 2, 3]), STRUCT(1 AS a, 'x' AS b), "
        "GENERATE_ARRAY(0, 10, 3), GENERATE_ARRAY(0.0, 1.0, 0.25), GENERATE_ARRAY(0, 0.3, 0.1), "
        "GENERATE_ARRAY(5, 1), [10, 20][OFFSET(1)], [10, 20][ORDINAL(1)], "
        "[10, 20][SAFE_OFFSET(5)]",
    )[0]
    assert row == (
        [1, 2],
        [3, 4],
        3,
        {"a": 1, "b": "x"},
        [0, 3, 6, 9],
        [0.0, 0.25, 0.5, 0.75, 1.0],
        [0.0, 0.1, 0.2, 0.3],
        [],
        20,
        10,
        None,
    )


def test_unnest_offsets_count_from_zero(db: duckdb.DuckDBPyConnection) -> None:
    assert run(db, "SELECT x, o FROM UNNEST(['p', 'q']) AS x WITH OFFSET AS o ORDER BY o") == [
        ("p", 0),
        ("q", 1),
    ]
    rows = run(
        db,
        "SELECT id, v, pos FROM ds.t, UNNEST(GENERATE_ARRAY(1, id)) AS v WITH OFFSET AS pos "
        "WHERE id >= 2 ORDER BY id, pos",
    )
    assert rows == [(2, 1, 0), (2, 2, 1), (3, 1, 0), (3, 2, 1), (3, 3, 2)]
    assert run(db, "SELECT SUM(v) FROM UNNEST([1, 2, 3]) AS v") == [(6,)]


def test_aggregates(db: duckdb.DuckDBPyConnection) -> None:
    row = run(
        db,
        "SELECT COUNTIF(x > 1), APPROX_QUANTILES(v, 4), STRING_AGG(name, '-' ORDER BY name), "
        "LOGICAL_AND(id > 0) FROM ds.t, UNNEST([id * 3 - 2, id * 3 - 1, id * 3]) AS v",
    )[0]
    assert row == (6, [1, 3, 5, 7, 9], "a-a-a-b-b-b-c-c-c", True)


def test_division(db: duckdb.DuckDBPyConnection) -> None:
    assert run(db, "SELECT 5 / 2, DIV(20, 3), DIV(12, -7), MOD(-5, 2), IEEE_DIVIDE(1, 0)") == [
        (2.5, 6, -1, -1, float("inf"))
    ]


def test_string_functions(db: duckdb.DuckDBPyConnection) -> None:
    row = run(
        db,
        "SELECT CONCAT('a', 'b', 'c'), CONCAT('a', NULL), STARTS_WITH('abc', 'ab'), "
        "ENDS_WITH('abc', 'bc'), REGEXP_CONTAINS('foo@example.com', r'@[a-zA-Z0-9-]+\\.[a-z.]+'), "
        "REGEXP_EXTRACT('abc123', r'\\d+'), SPLIT('a,b,c', ','), SPLIT('b a'), "
        "SUBSTR('abcdef', 2, 3), STRPOS('abc', 'c'), FORMAT('%d-%s', 7, 'x')",
    )[0]
    assert row == ("abc", None, True, True, True, "123", ["a", "b", "c"], ["b a"], "bcd", 3, "7-x")


def test_dates_arithmetic_keeps_dates(db: duckdb.DuckDBPyConnection) -> None:
    row = run(
        db,
        "SELECT DATE_ADD(DATE '2024-01-31', INTERVAL 1 MONTH), "
        "DATE_SUB(DATE '2024-01-01', INTERVAL 1 DAY), "
        "DATE_DIFF(DATE '2024-01-10', DATE '2024-01-01', DAY)",
    )[0]
    assert row == (datetime.date(2024, 2, 29), datetime.date(2023, 12, 31), 9)


def test_farm_fingerprint_is_a_stable_signed_hash(db: duckdb.DuckDBPyConnection) -> None:
    rows = run(
        db,
        "SELECT MOD(ABS(FARM_FINGERPRINT(CAST(id AS STRING))), 10) < 8, "
        "FARM_FINGERPRINT('a') = FARM_FINGERPRINT('a') FROM ds.t",
    )
    assert len(rows) == 3
    assert all(isinstance(split, bool) and same for split, same in rows)


def test_ml_calls_must_be_computed_before_transpiling() -> None:
    with pytest.raises(SqlError, match=r"ML.EVALUATE cannot run inside DuckDB"):
        to_duckdb(query("SELECT * FROM ML.EVALUATE(MODEL ds.m)"))


def test_table_references_leave_out_ctes_targets_and_models() -> None:
    tree = query(
        """CREATE TABLE ds.out AS
        WITH a AS (SELECT * FROM `p.ds.t`), b AS (SELECT * FROM a JOIN ds.u USING (id))
        SELECT * FROM b JOIN ML.PREDICT(MODEL ds.m, TABLE ds.v) USING (id)"""
    )
    assert table_references(tree) == ["ds.t", "ds.u", "ds.v"]
    assert table_references(query("DROP TABLE ds.t")) == []
