"""``kiln sql`` end to end: BigQuery ML's tutorials on local data, through the Python connection
and the real ``kiln sql`` command. Column names and types are checked exactly; metrics against
an independent computation or within tolerances of what the tutorials show."""

from __future__ import annotations

import importlib.resources
import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from conftest import KILN, assert_clean_error, kiln
from kiln.errors import SqlError
from kiln.sql import Connection, connect
from kiln.workspace import Workspace

PENGUINS_CSV = importlib.resources.files("palmerpenguins") / "data/penguins.csv"

# BigQuery's public `bigquery-public-data.ml_datasets.penguins`, made from the package's CSV
# (it writes missing values as NA) with BigQuery SQL, as an analyst would load it.
LOAD_PENGUINS = f"""
CREATE SCHEMA IF NOT EXISTS ml_datasets;
CREATE OR REPLACE TABLE ml_datasets.penguins AS
SELECT species, island,
       SAFE_CAST(NULLIF(bill_length_mm, 'NA') AS FLOAT64) AS culmen_length_mm,
       SAFE_CAST(NULLIF(bill_depth_mm, 'NA') AS FLOAT64) AS culmen_depth_mm,
       SAFE_CAST(NULLIF(flipper_length_mm, 'NA') AS FLOAT64) AS flipper_length_mm,
       SAFE_CAST(NULLIF(body_mass_g, 'NA') AS FLOAT64) AS body_mass_g,
       IF(sex = 'NA', NULL, UPPER(sex)) AS sex
FROM '{PENGUINS_CSV}';
"""

# The tutorial's statement, unchanged ("Create a linear regression model", BigQuery ML).
PENGUINS_MODEL = """
CREATE OR REPLACE MODEL `bqml_tutorial.penguins_model`
OPTIONS
  (model_type='linear_reg',
  input_label_cols=['body_mass_g']) AS
SELECT
  *
FROM
  `bigquery-public-data`.ml_datasets.penguins
WHERE
  body_mass_g IS NOT NULL
"""


# ML.EVALUATE's columns, in BigQuery's order
REGRESSION_METRICS = [
    "mean_absolute_error",
    "mean_squared_error",
    "mean_squared_log_error",
    "median_absolute_error",
    "r2_score",
    "explained_variance",
]
CLASSIFICATION_METRICS = ["precision", "recall", "accuracy", "f1_score", "log_loss", "roc_auc"]


@pytest.fixture
def conn(workspace: Workspace) -> Iterator[Connection]:
    with connect(workspace) as c:
        c.sql(LOAD_PENGUINS)
        yield c


def _types(table: pa.Table) -> dict[str, pa.DataType]:
    return {f.name: f.type for f in table.schema}


# ---------------------------------------------------------------------- penguins: linear_reg


def test_penguins_linear_regression_tutorial(conn: Connection) -> None:
    conn.sql("CREATE SCHEMA bqml_tutorial")
    conn.sql(PENGUINS_MODEL)
    assert "bqml_tutorial.penguins_model" in conn.models()

    evaluation = conn.sql("SELECT * FROM ML.EVALUATE(MODEL `bqml_tutorial.penguins_model`)")
    assert evaluation is not None
    assert evaluation.num_rows == 1
    assert evaluation.column_names == REGRESSION_METRICS
    assert set(_types(evaluation).values()) == {pa.float64()}
    row = evaluation.to_pylist()[0]
    # 342 rows (< 500): no evaluation split, so BigQuery evaluates on the training rows; the
    # tutorial's model explains about 87 % of the variance with an MAE near 230 g
    assert 0.82 < row["r2_score"] < 0.92
    assert 200 < row["mean_absolute_error"] < 270

    # the same fit by least squares on the same one-hot features (BigQuery's normal equation)
    data = conn.sql(
        "SELECT * FROM ml_datasets.penguins WHERE body_mass_g IS NOT NULL AND sex IS NOT NULL"
    )
    assert data is not None
    predicted = conn.sql(
        "SELECT * FROM ML.PREDICT(MODEL bqml_tutorial.penguins_model, (SELECT * FROM "
        "ml_datasets.penguins WHERE body_mass_g IS NOT NULL AND sex IS NOT NULL))"
    )
    assert predicted is not None
    assert predicted.column_names[0] == "predicted_body_mass_g"
    assert predicted.column_names[1:] == data.column_names  # then every input column
    assert predicted.schema.field("predicted_body_mass_g").type == pa.float64()
    X = _one_hot(data, ["species", "island", "sex"])
    X = np.column_stack(
        [X]
        + [data[c].to_numpy() for c in ("culmen_length_mm", "culmen_depth_mm", "flipper_length_mm")]
    )
    X1 = np.column_stack([np.ones(len(X)), X])
    y = data["body_mass_g"].to_numpy()
    beta, *_ = np.linalg.lstsq(X1, y, rcond=None)
    reference_rmse = math.sqrt(np.mean((X1 @ beta - y) ** 2))
    ours = predicted["predicted_body_mass_g"].to_numpy()
    rmse = math.sqrt(np.mean((ours - predicted["body_mass_g"].to_numpy()) ** 2))
    assert rmse <= reference_rmse * 1.05  # as good as the least-squares fit, within 5 %

    # ML.PREDICT composes like a table: GROUP BY, ORDER BY around it
    by_island = conn.sql(
        "SELECT island, AVG(predicted_body_mass_g) AS mass FROM ML.PREDICT(MODEL "
        "`bqml_tutorial.penguins_model`, (SELECT * FROM `bigquery-public-data.ml_datasets."
        "penguins` WHERE body_mass_g IS NOT NULL)) GROUP BY island ORDER BY island"
    )
    assert by_island is not None
    assert by_island.column_names == ["island", "mass"]
    assert by_island["island"].to_pylist() == ["Biscoe", "Dream", "Torgersen"]
    biscoe = by_island.to_pylist()[0]["mass"]
    assert 4500 < biscoe < 5000  # Gentoos live on Biscoe: the heaviest island on average


def test_training_info_weights_and_feature_info(conn: Connection) -> None:
    conn.sql("CREATE SCHEMA bqml_tutorial")
    conn.sql(PENGUINS_MODEL)
    info = conn.sql("SELECT * FROM ML.TRAINING_INFO(MODEL bqml_tutorial.penguins_model)")
    assert info is not None
    assert info.num_rows >= 1
    for column in ("training_run", "iteration", "loss", "eval_loss", "learning_rate"):
        assert column in info.column_names
    assert info.schema.field("iteration").type == pa.int64()
    assert info.schema.field("loss").type == pa.float64()

    weights = conn.sql("SELECT * FROM ML.WEIGHTS(MODEL bqml_tutorial.penguins_model)")
    assert weights is not None
    assert weights.column_names[:2] == ["processed_input", "weight"]
    inputs = weights["processed_input"].to_pylist()
    assert "__INTERCEPT__" in inputs
    assert "island" in inputs
    assert "flipper_length_mm" in inputs

    features = conn.sql("SELECT * FROM ML.FEATURE_INFO(MODEL bqml_tutorial.penguins_model)")
    assert features is not None
    assert features.column_names[0] == "input"
    by_name = {r["input"]: r for r in features.to_pylist()}
    assert by_name["flipper_length_mm"]["min"] == 172.0
    assert by_name["flipper_length_mm"]["max"] == 231.0
    assert by_name["island"]["category_count"] == 3


def test_create_model_if_not_exists_replace_and_drop(conn: Connection) -> None:
    conn.sql("CREATE SCHEMA bqml_tutorial")
    conn.sql(PENGUINS_MODEL)
    with pytest.raises(SqlError, match=r"Already Exists: Model bqml_tutorial.penguins_model"):
        conn.sql(PENGUINS_MODEL.replace("CREATE OR REPLACE MODEL", "CREATE MODEL"))
    results = conn.execute(
        PENGUINS_MODEL.replace("CREATE OR REPLACE", "CREATE MODEL IF NOT").replace(
            "MODEL IF NOT MODEL", "MODEL IF NOT EXISTS"
        )
    )
    assert results[0].message is not None
    assert "already exists" in results[0].message
    conn.sql(PENGUINS_MODEL)  # OR REPLACE: a second version in the registry
    from kiln.registry import ModelRegistry

    registry = ModelRegistry(conn.workspace)
    assert [v.version for v in registry.versions("bqml_tutorial.penguins_model")] == [1, 2]
    conn.sql("DROP MODEL bqml_tutorial.penguins_model")
    assert "bqml_tutorial.penguins_model" not in conn.models()
    with pytest.raises(SqlError, match=r"Not found: Model bqml_tutorial.penguins_model"):
        conn.sql("DROP MODEL bqml_tutorial.penguins_model")
    conn.sql("DROP MODEL IF EXISTS bqml_tutorial.penguins_model")
    with pytest.raises(SqlError, match=r"Not found: Model bqml_tutorial.penguins_model"):
        conn.sql("SELECT * FROM ML.EVALUATE(MODEL bqml_tutorial.penguins_model)")


# ---------------------------------------------------------------------- census: logistic_reg


def _census(n: int = 4000, seed: int = 7) -> pa.Table:
    """A census-style table (the tutorial's columns), income from a known logistic model."""
    rng = np.random.default_rng(seed)
    age = rng.integers(17, 80, n)
    education = rng.choice(["HS-grad", "Some-college", "Bachelors", "Masters", "Doctorate"], n)
    edu_effect = {
        "HS-grad": -1.0,
        "Some-college": -0.5,
        "Bachelors": 0.5,
        "Masters": 1.0,
        "Doctorate": 1.5,
    }
    occupation = rng.choice(["Sales", "Exec-managerial", "Craft-repair", "Other-service"], n)
    occ_effect = {"Sales": 0.0, "Exec-managerial": 1.0, "Craft-repair": -0.3, "Other-service": -1.2}
    hours = rng.integers(10, 70, n)
    logit = (
        -1.5
        + 0.04 * (age - 40)
        + np.array([edu_effect[e] for e in education])
        + np.array([occ_effect[o] for o in occupation])
        + 0.05 * (hours - 40)
    )
    income = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), ">50K", "<=50K")
    return pa.table(
        {
            "age": age,
            "workclass": rng.choice(["Private", "Self-emp", "Gov"], n),
            "education": education,
            "occupation": occupation,
            "hours_per_week": hours,
            "functional_weight": rng.integers(10_000, 500_000, n),
            "income_bracket": income,
        }
    )


def test_census_logistic_regression_tutorial(conn: Connection, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(_census(), tmp_path / "census.parquet")
    conn.sql(
        f"""
        CREATE SCHEMA census;
        CREATE TABLE census.adult AS SELECT * FROM '{tmp_path / "census.parquet"}';
        CREATE OR REPLACE VIEW `census.input_data` AS
        SELECT age, workclass, education, occupation, hours_per_week, income_bracket,
          CASE
            WHEN MOD(functional_weight, 10) < 8 THEN 'training'
            WHEN MOD(functional_weight, 10) = 8 THEN 'evaluation'
            WHEN MOD(functional_weight, 10) = 9 THEN 'prediction'
          END AS dataframe
        FROM `census.adult`;
        CREATE OR REPLACE MODEL `census.census_model`
        OPTIONS
          ( model_type='LOGISTIC_REG',
            auto_class_weights=TRUE,
            data_split_method='NO_SPLIT',
            input_label_cols=['income_bracket'],
            max_iterations=15) AS
        SELECT * EXCEPT(dataframe)
        FROM `census.input_data`
        WHERE dataframe = 'training'
        """
    )
    evaluation = conn.sql(
        "SELECT * FROM ML.EVALUATE(MODEL `census.census_model`, (SELECT * EXCEPT(dataframe) "
        "FROM `census.input_data` WHERE dataframe = 'evaluation'))"
    )
    assert evaluation is not None
    assert evaluation.column_names == CLASSIFICATION_METRICS
    row = evaluation.to_pylist()[0]
    # an independent fit of the same data (scikit-learn) sets the bar
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    data = conn.sql("SELECT * FROM census.input_data")
    assert data is not None
    frame = data.to_pandas()
    import pandas as pd

    X = pd.get_dummies(
        frame[["age", "workclass", "education", "occupation", "hours_per_week"]], dtype=float
    )
    X = (X - X.mean()) / X.std()
    y = (frame["income_bracket"] == ">50K").to_numpy()
    train, test = (
        (frame["dataframe"] == "training").to_numpy(),
        (frame["dataframe"] == "evaluation").to_numpy(),
    )
    reference = roc_auc_score(
        y[test],
        LogisticRegression(max_iter=1000, class_weight="balanced")
        .fit(X[train], y[train])
        .predict_proba(X[test])[:, 1],
    )
    assert row["roc_auc"] > reference - 0.02
    assert 0.0 < row["log_loss"] < 0.7

    predicted = conn.sql(
        "SELECT * FROM ML.PREDICT(MODEL `census.census_model`, (SELECT * FROM "
        "`census.input_data` WHERE dataframe = 'prediction'))"
    )
    assert predicted is not None
    assert predicted.column_names[:2] == [
        "predicted_income_bracket",
        "predicted_income_bracket_probs",
    ]
    probs_type = predicted.schema.field("predicted_income_bracket_probs").type
    assert probs_type == pa.list_(pa.struct([("label", pa.string()), ("prob", pa.float64())]))
    first = predicted.to_pylist()[0]["predicted_income_bracket_probs"]
    assert {p["label"] for p in first} == {">50K", "<=50K"}
    assert sum(p["prob"] for p in first) == pytest.approx(1.0)

    # a threshold moves the decision, and ML.CONFUSION_MATRIX / ML.ROC_CURVE agree with it
    strict = conn.sql(
        "SELECT COUNTIF(predicted_income_bracket = '>50K') AS n FROM ML.PREDICT(MODEL "
        "census.census_model, (SELECT * FROM census.input_data WHERE dataframe = "
        "'prediction'), STRUCT(0.9 AS threshold))"
    )
    loose = conn.sql(
        "SELECT COUNTIF(predicted_income_bracket = '>50K') AS n FROM ML.PREDICT(MODEL "
        "census.census_model, (SELECT * FROM census.input_data WHERE dataframe = "
        "'prediction'), STRUCT(0.1 AS threshold))"
    )
    assert strict is not None
    assert loose is not None
    assert strict["n"][0].as_py() < loose["n"][0].as_py()
    roc = conn.sql(
        "SELECT * FROM ML.ROC_CURVE(MODEL census.census_model, (SELECT * FROM "
        "census.input_data WHERE dataframe = 'evaluation'))"
    )
    assert roc is not None
    assert {"threshold", "recall", "false_positive_rate"} <= set(roc.column_names)


# ---------------------------------------------------------------------- k-means


def test_kmeans_on_a_table_you_make(conn: Connection) -> None:
    conn.sql(
        """
        CREATE SCHEMA shop;
        CREATE TABLE shop.visits AS
        SELECT i AS visitor,
               CASE i % 3 WHEN 0 THEN 10.0 WHEN 1 THEN 50.0 ELSE 90.0 END
                 + SIN(i) * 3 AS spend,
               CASE i % 3 WHEN 0 THEN 1.0 WHEN 1 THEN 5.0 ELSE 9.0 END
                 + COS(i) * 0.5 AS visits
        FROM UNNEST(GENERATE_ARRAY(0, 599)) AS i;
        CREATE MODEL shop.segments
        OPTIONS(model_type='kmeans', num_clusters=3, kmeans_init_method='kmeans++') AS
        SELECT * EXCEPT(visitor) FROM shop.visits;
        """
    )
    centroids = conn.sql("SELECT * FROM ML.CENTROIDS(MODEL shop.segments) ORDER BY centroid_id")
    assert centroids is not None
    assert centroids.column_names[:3] == ["centroid_id", "feature", "numerical_value"]
    spend = sorted(r["numerical_value"] for r in centroids.to_pylist() if r["feature"] == "spend")
    assert spend == pytest.approx([10.0, 50.0, 90.0], abs=1.0)

    assigned = conn.sql(
        "SELECT visitor % 3 AS truth, COUNT(DISTINCT centroid_id) AS ids FROM "
        "ML.PREDICT(MODEL shop.segments, (SELECT * FROM shop.visits)) GROUP BY 1 ORDER BY 1"
    )
    assert assigned is not None
    assert assigned["ids"].to_pylist() == [1, 1, 1]  # each true group in one cluster

    evaluation = conn.sql("SELECT * FROM ML.EVALUATE(MODEL shop.segments)")
    assert evaluation is not None
    assert evaluation.column_names == ["davies_bouldin_index", "mean_squared_distance"]
    assert evaluation["davies_bouldin_index"][0].as_py() < 0.2  # well separated blobs

    anomalies = conn.sql(
        "SELECT * FROM ML.DETECT_ANOMALIES(MODEL shop.segments, STRUCT(0.02 AS contamination),"
        " (SELECT * FROM shop.visits UNION ALL SELECT 1000, 500.0, 40.0))"
    )
    assert anomalies is not None
    assert anomalies.column_names[0] == "is_anomaly"
    outlier = [r for r in anomalies.to_pylist() if r["visitor"] == 1000]
    assert outlier
    assert outlier[0]["is_anomaly"] is True


# ---------------------------------------------------------------------- TRANSFORM


TRANSFORM_MODEL = """
CREATE OR REPLACE MODEL bqml_tutorial.mass_transform
TRANSFORM(
  body_mass_g,
  species,
  ML.STANDARD_SCALER(culmen_length_mm) OVER() AS culmen_length_std,
  ML.QUANTILE_BUCKETIZE(flipper_length_mm, 4) OVER() AS flipper_bucket,
  ML.FEATURE_CROSS(STRUCT(island, sex)) AS island_sex
)
OPTIONS(model_type='linear_reg', input_label_cols=['body_mass_g']) AS
SELECT * FROM ml_datasets.penguins WHERE body_mass_g IS NOT NULL AND sex IS NOT NULL
"""


def test_transform_tutorial_replays_on_raw_columns(conn: Connection) -> None:
    conn.sql("CREATE SCHEMA bqml_tutorial")
    conn.sql(TRANSFORM_MODEL)
    transformed = conn.sql(
        "SELECT * FROM ML.TRANSFORM(MODEL bqml_tutorial.mass_transform, (SELECT * FROM "
        "ml_datasets.penguins WHERE body_mass_g IS NOT NULL AND sex IS NOT NULL))"
    )
    assert transformed is not None
    for column in ("culmen_length_std", "flipper_bucket", "island_sex"):
        assert column in transformed.column_names
    std = transformed["culmen_length_std"].to_numpy()
    assert std.mean() == pytest.approx(0.0, abs=1e-9)
    assert std.std(ddof=1) == pytest.approx(1.0, abs=1e-9)  # the sample standard deviation
    assert set(transformed["flipper_bucket"].to_pylist()) == {"bin_1", "bin_2", "bin_3", "bin_4"}

    # ML.PREDICT takes the RAW columns; the TRANSFORM is replayed inside the model
    predicted = conn.sql(
        "SELECT predicted_body_mass_g, body_mass_g FROM ML.PREDICT(MODEL "
        "bqml_tutorial.mass_transform, (SELECT * EXCEPT(body_mass_g), body_mass_g FROM "
        "ml_datasets.penguins WHERE body_mass_g IS NOT NULL AND sex IS NOT NULL))"
    )
    assert predicted is not None
    error = predicted["predicted_body_mass_g"].to_numpy() - predicted["body_mass_g"].to_numpy()
    assert math.sqrt(np.mean(error**2)) < 400

    # an ordinary registry model: loaded by URI, it predicts the same from raw rows
    from kiln.registry import load_model

    model = load_model("models:/bqml_tutorial.mass_transform", conn.workspace)
    rows = conn.sql(
        "SELECT * EXCEPT(body_mass_g) FROM ml_datasets.penguins WHERE body_mass_g IS NOT NULL "
        "AND sex IS NOT NULL"
    )
    assert rows is not None
    direct = model.predict(rows)["predicted_body_mass_g"].to_numpy()
    np.testing.assert_allclose(direct, predicted["predicted_body_mass_g"].to_numpy())


# ---------------------------------------------------------------------- dialect, composition


def test_dialect_traps_and_ctes_around_ml_functions(conn: Connection) -> None:
    day = conn.sql("SELECT EXTRACT(DAYOFWEEK FROM DATE '2024-01-07') AS d")  # a Sunday
    assert day is not None
    assert day["d"].to_pylist() == [1]
    conn.sql("CREATE SCHEMA bqml_tutorial")
    conn.sql(PENGUINS_MODEL)
    result = conn.sql(
        """
        WITH dream AS (
          SELECT * FROM ml_datasets.penguins WHERE island = 'Dream' AND body_mass_g IS NOT NULL
        ),
        predicted AS (
          SELECT * FROM ML.PREDICT(MODEL bqml_tutorial.penguins_model, (SELECT * FROM dream))
        )
        SELECT p.species, COUNT(*) AS n, AVG(p.predicted_body_mass_g - p.body_mass_g) AS bias
        FROM predicted AS p JOIN (SELECT DISTINCT species FROM dream) AS s USING (species)
        GROUP BY p.species ORDER BY n DESC
        """
    )
    assert result is not None
    assert result.column_names == ["species", "n", "bias"]
    assert result["species"].to_pylist() == ["Chinstrap", "Adelie"]
    assert result["n"].to_pylist() == [68, 56]
    assert all(abs(b) < 200 for b in result["bias"].to_pylist())


def test_connection_converts_to_polars_and_pandas(conn: Connection) -> None:
    frame = conn.pl("SELECT island, COUNT(*) AS n FROM ml_datasets.penguins GROUP BY 1")
    assert sorted(frame["n"].to_list()) == [52, 124, 168]
    assert conn.df("SELECT 1 AS one")["one"].tolist() == [1]
    assert "ml_datasets.penguins" in conn.tables()


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        (
            "SELECT * FROM ml_datasets.nothing",
            "Not found: Table",
        ),
        (
            "CREATE MODEL ml_datasets.m OPTIONS(model_type='linear_reg', "
            "input_label_cols=['weight']) AS SELECT * FROM ml_datasets.penguins",
            "weight",
        ),
        (
            "CREATE MODEL ml_datasets.m OPTIONS(model_type='super_model') AS "
            "SELECT * FROM ml_datasets.penguins",
            "super_model",
        ),
        (
            "CREATE MODEL ml_datasets.m OPTIONS(model_type='linear_reg', l2_reg='lots', "
            "input_label_cols=['body_mass_g']) AS SELECT * FROM ml_datasets.penguins",
            "l2_reg",
        ),
        (
            "CREATE MODEL ml_datasets.penguins OPTIONS(model_type='linear_reg', "
            "input_label_cols=['body_mass_g']) AS SELECT * FROM ml_datasets.penguins",
            "Already Exists: Table ml_datasets.penguins",
        ),
        (
            "SELECT * FROM ML.PREDICT(MODEL ml_datasets.missing, (SELECT 1))",
            "Not found: Model ml_datasets.missing",
        ),
        (
            "CREATE MODEL ml_datasets.m OPTIONS(model_type='matrix_factorization') AS "
            "SELECT * FROM ml_datasets.penguins",
            "not supported yet",
        ),
    ],
)
def test_errors_are_one_clear_message(conn: Connection, statement: str, message: str) -> None:
    with pytest.raises(SqlError, match=message.replace(".", r"\.")):
        conn.sql(statement)
    assert conn.models() == []  # nothing half-made


def test_a_table_cannot_take_a_models_name(conn: Connection) -> None:
    conn.sql("CREATE SCHEMA bqml_tutorial")
    conn.sql(PENGUINS_MODEL)
    with pytest.raises(SqlError, match=r"Already Exists: Model bqml_tutorial\.penguins_model"):
        conn.sql("CREATE TABLE bqml_tutorial.penguins_model AS SELECT 1 AS x")


# ---------------------------------------------------------------------- the command


def test_kiln_sql_command_formats_and_errors(workspace: Workspace, tmp_path: Path) -> None:
    script = tmp_path / "tutorial.sql"
    script.write_text(LOAD_PENGUINS + "CREATE SCHEMA bqml_tutorial;\n" + PENGUINS_MODEL + ";\n")
    proc = kiln("sql", str(script), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Created model bqml_tutorial.penguins_model" in proc.stderr
    assert "training bqml_tutorial.penguins_model: iteration" in proc.stderr

    proc = kiln(
        "sql",
        "--format",
        "json",
        "-e",
        "SELECT * FROM ML.EVALUATE(MODEL bqml_tutorial.penguins_model)",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert isinstance(rows, list)
    assert set(rows[0]) >= {"r2_score", "mean_absolute_error"}

    proc = kiln(
        "sql",
        "--format",
        "csv",
        "-e",
        "SELECT island, COUNT(*) AS n FROM ml_datasets.penguins GROUP BY 1 ORDER BY 1",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["island,n", "Biscoe,168", "Dream,124", "Torgersen,52"]

    proc = kiln("sql", "-e", "SELECT * FROM ML.EVALUATE(MODEL bqml_tutorial.nope)", cwd=tmp_path)
    assert_clean_error(proc, "Not found: Model bqml_tutorial.nope")
    proc = kiln("sql", "-e", "SELEC 1", cwd=tmp_path)
    assert_clean_error(proc)


def test_kiln_sql_shell_reads_multiline_statements_and_dot_commands(
    workspace: Workspace, tmp_path: Path
) -> None:
    import subprocess

    script = (
        "CREATE SCHEMA s;\n"
        "CREATE TABLE s.t AS\n  SELECT 1 AS a\n  UNION ALL SELECT 2;\n"
        ".tables\n"
        ".format csv\n"
        "SELECT SUM(a) AS total\nFROM s.t;\n"
        ".quit\n"
    )
    proc = subprocess.run(
        [KILN, "sql"],
        input=script,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "s.t" in proc.stdout
    assert "total\n3\n" in proc.stdout

    proc = subprocess.run(
        [KILN, "sql"],
        input="SELECT * FROM s.missing;\nSELECT 1 AS ok;\n",
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2  # a failed statement fails piped input...
    assert "Not found: Table" in proc.stderr
    assert "ok" in proc.stdout  # ...after the statements that follow it ran
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------- helpers


def _one_hot(table: pa.Table, columns: list[str]) -> np.ndarray:
    blocks = []
    for c in columns:
        values = table[c].to_pylist()
        for level in sorted(set(values))[1:]:  # drop one level: full rank with the intercept
            blocks.append(np.array([v == level for v in values], dtype=float))
    return np.column_stack(blocks)


# ---------------------------------------------------------------------- every model type


@pytest.mark.parametrize(
    ("options", "label", "evaluation_columns"),
    [
        (
            "model_type='boosted_tree_classifier', input_label_cols=['species']",
            "species",
            CLASSIFICATION_METRICS,
        ),
        (
            "model_type='random_forest_regressor', input_label_cols=['body_mass_g'], "
            "num_parallel_tree=20",
            "body_mass_g",
            REGRESSION_METRICS,
        ),
        (
            "model_type='dnn_classifier', input_label_cols=['species'], hidden_units=[8], "
            "learn_rate=0.05, max_iterations=30",
            "species",
            CLASSIFICATION_METRICS,
        ),
        (
            "model_type='pca', num_principal_components=2",
            None,
            ["total_explained_variance_ratio"],
        ),
        (
            "model_type='automl_regressor', input_label_cols=['body_mass_g'], budget_hours=0.001",
            "body_mass_g",
            REGRESSION_METRICS,
        ),
    ],
)
def test_model_types_train_predict_and_evaluate(
    conn: Connection, options: str, label: str | None, evaluation_columns: list[str]
) -> None:
    conn.sql(
        f"CREATE MODEL ml_datasets.m OPTIONS({options}) AS SELECT * FROM ml_datasets.penguins "
        "WHERE body_mass_g IS NOT NULL AND sex IS NOT NULL"
    )
    evaluation = conn.sql("SELECT * FROM ML.EVALUATE(MODEL ml_datasets.m)")
    assert evaluation is not None
    assert evaluation.column_names == evaluation_columns
    assert all(v is not None for v in evaluation.to_pylist()[0].values())
    predicted = conn.sql(
        "SELECT * FROM ML.PREDICT(MODEL ml_datasets.m, (SELECT * FROM ml_datasets.penguins "
        "WHERE body_mass_g IS NOT NULL AND sex IS NOT NULL))"
    )
    assert predicted is not None
    assert predicted.num_rows == 333
    if label is None:
        assert predicted.column_names[:2] == ["principal_component_1", "principal_component_2"]
    else:
        assert predicted.column_names[0] == f"predicted_{label}"
        if label == "species":
            accuracy = np.mean(
                np.array(predicted[f"predicted_{label}"].to_pylist())
                == np.array(predicted[label].to_pylist())
            )
            assert accuracy > 0.8


def test_a_sql_model_is_an_ordinary_registry_model(conn: Connection, tmp_path: Path) -> None:
    """kiln evaluate evaluates it and kiln predict predicts with it, by its models:/ URI."""
    conn.sql("CREATE SCHEMA bqml_tutorial")
    conn.sql(TRANSFORM_MODEL)
    rows = conn.sql(
        "SELECT * FROM ml_datasets.penguins WHERE body_mass_g IS NOT NULL AND sex IS NOT NULL"
    )
    assert rows is not None
    import pyarrow.parquet as pq

    pq.write_table(rows, tmp_path / "rows.parquet")
    conn.close()
    proc = kiln(
        "evaluate",
        "models:/bqml_tutorial.mass_transform",
        "rows.parquet",
        "--out",
        "m.json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert "root_mean_squared_error" in json.dumps(metrics)
    proc = kiln(
        "predict",
        "models:/bqml_tutorial.mass_transform",
        "--input",
        "rows.parquet",
        "--output",
        "p.parquet",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert pq.read_table(tmp_path / "p.parquet").num_rows == rows.num_rows


def test_kiln_serve_serves_a_sql_model_with_its_transform(conn: Connection, tmp_path: Path) -> None:
    from test_serving import serve

    conn.sql("CREATE SCHEMA bqml_tutorial")
    conn.sql(TRANSFORM_MODEL)
    raw = conn.sql(
        "SELECT * EXCEPT(body_mass_g) FROM ml_datasets.penguins WHERE sex IS NOT NULL LIMIT 3"
    )
    expected = conn.sql(
        "SELECT predicted_body_mass_g FROM ML.PREDICT(MODEL bqml_tutorial.mass_transform, "
        "(SELECT * EXCEPT(body_mass_g) FROM ml_datasets.penguins WHERE sex IS NOT NULL "
        "LIMIT 3))"
    )
    assert raw is not None
    assert expected is not None
    conn.close()
    with serve("models:/bqml_tutorial.mass_transform", cwd=tmp_path) as server:
        status, body = server.call(
            "POST",
            "/v1/models/bqml_tutorial.mass_transform:predict",
            {"instances": raw.to_pylist()},
        )
    assert status == 200, body
    served = [p["predicted_body_mass_g"] if isinstance(p, dict) else p for p in body["predictions"]]
    np.testing.assert_allclose(served, expected["predicted_body_mass_g"].to_pylist())


def test_tuning_with_hparam_range_and_trial_info(conn: Connection) -> None:
    conn.sql(
        "CREATE MODEL ml_datasets.tuned OPTIONS(model_type='linear_reg', "
        "input_label_cols=['body_mass_g'], num_trials=3, l2_reg=HPARAM_RANGE(0, 10)) AS "
        "SELECT * FROM ml_datasets.penguins WHERE body_mass_g IS NOT NULL"
    )
    trials = conn.sql("SELECT * FROM ML.TRIAL_INFO(MODEL ml_datasets.tuned) ORDER BY trial_id")
    assert trials is not None
    assert trials.column_names == [
        "trial_id",
        "hyperparameters",
        "hparam_tuning_evaluation_metrics",
        "training_loss",
        "eval_loss",
        "status",
        "error_message",
        "is_optimal",
    ]
    assert trials.num_rows == 3
    assert trials["is_optimal"].to_pylist().count(True) == 1
    for text in trials["hyperparameters"].to_pylist():
        assert 0 <= json.loads(text)["l2_reg"] <= 10
    conn.sql("CREATE SCHEMA bqml_tutorial; " + PENGUINS_MODEL)
    with pytest.raises(SqlError, match="not trained with hyperparameter tuning"):
        conn.sql("SELECT * FROM ML.TRIAL_INFO(MODEL bqml_tutorial.penguins_model)")
