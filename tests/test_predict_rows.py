"""The few-row prediction path (``Model.predict_rows`` / ``predict_columns``, the transform compiled
for rows in ``kiln.transform._rows``) gives what the Arrow path gives, for every model family the
automatic preprocessing feeds and every op the row plan compiles — or steps aside."""

from __future__ import annotations

import math
import re
import warnings
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from kiln.errors import DataError
from kiln.model import Model
from kiln.model._model import FEW_ROWS
from kiln.transform import (
    FittedTransform,
    TransformGraph,
    bucketize,
    clip,
    datetime_parts,
    feature_cross,
    hash_bucketize,
    impute,
    label_encode,
    log1p,
    max_abs_scale,
    min_max_scale,
    one_hot,
    polynomial_expand,
    quantile_bucketize,
    robust_scale,
    standard_scale,
)
from kiln.transform._rows import FloatColumns, compile_rows

N = 240
CITIES = ["Paris", "Lyon", "Nice", "Lille"]


def _table(seed: int = 0) -> pa.Table:
    """Floats with nulls, ints, bools, strings with nulls, and labels of each kind."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=N)
    z = rng.uniform(0, 10, size=N)
    n = rng.integers(0, 50, size=N)
    city = rng.choice(CITIES, size=N)
    flag = rng.random(N) < 0.4
    y = 2.0 * x - 0.3 * z + (city == "Paris") + rng.normal(scale=0.1, size=N)
    x_list: list[float | None] = x.tolist()
    city_list: list[str | None] = city.tolist()
    for i in range(0, N, 17):
        x_list[i] = None
    for i in range(3, N, 23):
        city_list[i] = None
    return pa.table(
        {
            "x": pa.array(x_list, pa.float64()),
            "z": pa.array(z),
            "n": pa.array(n, pa.int64()),
            "flag": pa.array(flag),
            "city": pa.array(city_list, pa.string()),
            "y": pa.array(y),
            "yes": pa.array(np.where(y > np.median(y), "yes", "no")),
            "kind": pa.array(
                np.array(["a", "b", "c"])[np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))]
            ),
        }
    )


TABLE = _table()
FEATURES = ["x", "z", "n", "flag", "city"]


def _fit(
    model_type: str,
    label: str | None,
    settings: dict[str, Any] | None = None,
    transform: TransformGraph | None = None,
) -> Model:
    keep = [*FEATURES, label] if label else FEATURES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Model.fit(
            TABLE.select(keep),
            model_type=model_type,
            label=label,
            settings=settings,
            transform=transform,
        )


FAMILIES: list[tuple[str, str | None, dict[str, Any]]] = [
    ("linear_reg", "y", {}),
    ("logistic_reg", "yes", {}),
    ("logistic_reg", "kind", {}),
    ("boosted_tree_classifier", "kind", {"max_iterations": 5}),
    ("boosted_tree_classifier", "yes", {"max_iterations": 5}),
    ("boosted_tree_regressor", "y", {"max_iterations": 5}),
    ("random_forest_classifier", "yes", {"num_parallel_tree": 5}),
    ("random_forest_regressor", "y", {"num_parallel_tree": 5}),
    ("kmeans", None, {"num_clusters": 3}),
    ("pca", None, {"num_principal_components": 2}),
]


def _rows() -> list[dict[str, Any]]:
    """Training rows, then the awkward ones: null and NaN, unknown and null categories, ints
    for floats, bools, extremes."""
    rows: list[dict[str, Any]] = TABLE.select(FEATURES).slice(0, 40).to_pylist()
    odd: list[dict[str, Any]] = [
        {"x": None, "z": 1.5, "n": 3, "flag": True, "city": "Paris"},
        {"x": math.nan, "z": 2, "n": 0, "flag": False, "city": None},
        {"x": 3, "z": 0, "n": 49, "flag": None, "city": "Tokyo"},
        {"x": -1e30, "z": 1e-300, "n": -7, "flag": True, "city": ""},
        {"x": 0.1, "z": 2.5, "n": None, "flag": False, "city": "\x00"},
        {"x": -0.0, "z": 9.99, "n": 2**40, "flag": True, "city": "lyon"},
    ]
    return rows + odd


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _arrow(model: Model, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    answer: dict[str, list[Any]] = model.predict(pa.Table.from_pylist(rows)).to_pydict()
    return answer


def _same_outcome(model: Model, rows: list[dict[str, Any]]) -> None:
    """``predict_rows`` answers what the Arrow path answers, or raises what it raises."""
    error: Exception | None = None
    try:
        expected: Any = _arrow(model, rows)
    except Exception as e:  # whatever the Arrow path raises, the few-row path must raise
        error = e
    if error is not None:
        with pytest.raises(type(error), match=f"^{re.escape(str(error))}$"):
            model.predict_rows(rows)
        return
    assert _same(model.predict_rows(rows), expected), rows


def _columns(model: Model, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    plan = model._row_plan
    assert plan is not None
    return {c: [r.get(c) for r in rows] for c in plan.columns}


@pytest.fixture(scope="module", params=FAMILIES, ids=lambda f: f"{f[0]}-{f[1]}")
def model(request: pytest.FixtureRequest) -> Model:
    model_type, label, settings = request.param
    return _fit(model_type, label, settings)


def test_each_family_answers_as_the_arrow_path(model: Model) -> None:
    rows = _rows()
    for size in (1, 2, 7, 46):
        for start in range(0, len(rows) - size + 1, max(size, 5)):
            batch = rows[start : start + size]
            fast = model.predict_columns(_columns(model, batch), len(batch))
            assert fast is not None, batch  # these values are all ones the row plan mirrors
            assert _same(fast, _arrow(model, batch)), batch
            assert _same(model.predict_rows(batch), _arrow(model, batch))


@pytest.mark.parametrize(
    ("model_type", "label"),
    [("linear_reg", "y"), ("logistic_reg", "yes"), ("boosted_tree_classifier", "kind")],
)
def test_columns_marked_all_floats_answer_the_same(model_type: str, label: str) -> None:
    """What kiln serve hands over for a request of numbers (FloatColumns: types checked once)."""
    numeric = ["x", "z"]
    table = TABLE.select([*numeric, label]).filter(
        pc.and_(TABLE["x"].is_valid(), TABLE["z"].is_valid())
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Model.fit(table, model_type=model_type, label=label)
    rows = table.select(numeric).slice(0, 40).to_pylist()
    columns = _columns(model, rows)
    assert all(type(v) is float for values in columns.values() for v in values)
    marked = model.predict_columns(FloatColumns(columns), len(rows))
    assert marked is not None
    assert _same(marked, model.predict_columns(dict(columns), len(rows)))
    assert _same(marked, _arrow(model, rows))


def test_many_rows_take_the_arrow_path(model: Model) -> None:
    rows = TABLE.select(FEATURES).to_pylist()[: FEW_ROWS + 1]
    assert model.predict_columns(_columns(model, rows), len(rows)) is None
    assert _same(model.predict_rows(rows), _arrow(model, rows))


@pytest.mark.parametrize("label", ["kind", "yes", "y"])
def test_lightgbms_single_row_entry_gives_booster_predicts_numbers(label: str) -> None:
    model_type = "boosted_tree_regressor" if label == "y" else "boosted_tree_classifier"
    model = _fit(model_type, label, {"max_iterations": 8})
    X = model.transform.transform(TABLE).X
    booster = model.trainer.booster_  # type: ignore[attr-defined]
    assert model.trainer._single_row() is not None  # type: ignore[attr-defined]
    for start in range(0, 60, 3):
        for n in (1, 2, 8):
            rows = X[start : start + n]
            got = model.trainer._raw(rows)  # type: ignore[attr-defined]
            expected = booster.predict(np.ascontiguousarray(rows), num_threads=1)
            assert got.shape == expected.shape
            assert np.array_equal(got, expected)


def test_wrong_types_give_the_arrow_paths_error() -> None:
    model = _fit("linear_reg", "y")
    base = {"x": 1.0, "z": 2.0, "n": 3, "flag": True, "city": "Paris"}
    for bad in ({"x": "abc"}, {"z": float("inf")}, {"n": [1, 2]}, {"city": b"Paris"}):
        rows = [{**base, **bad}]
        with pytest.raises(DataError) as arrow_error:
            _arrow(model, rows)
        with pytest.raises(DataError) as fast_error:
            model.predict_rows(rows)
        assert str(fast_error.value) == str(arrow_error.value)
    missing = {k: v for k, v in base.items() if k != "city"}
    with pytest.raises(DataError, match="missing column 'city'") as fast_error:
        model.predict_rows([missing])
    with pytest.raises(DataError) as arrow_error:
        _arrow(model, [missing])
    assert str(fast_error.value) == str(arrow_error.value)


def test_values_the_plan_does_not_mirror_take_the_arrow_path() -> None:
    model = _fit("boosted_tree_classifier", "yes", {"max_iterations": 3})
    base = {"x": 1.0, "z": 2.0, "n": 3, "flag": True, "city": "Paris"}
    for odd in ({"x": "1.5"}, {"n": 2**60}, {"city": 3}, {"city": 2.5}, {"flag": 1}):
        rows = [{**base, **odd}]
        assert model.predict_columns(_columns(model, rows), 1) is None
        _same_outcome(model, rows)  # (an int past 2**53: Arrow's ArrowInvalid, for now)


# ------------------------------------------------------------------------- every compiled op


GRAPHS = {
    "scalers": [
        impute("x", "median"),
        standard_scale("x"),
        min_max_scale("z"),
        max_abs_scale("n"),
        robust_scale("z"),
        one_hot("city", unknown="bucket"),
    ],
    "rewrites": [
        impute("x", "constant", value=0.5),
        clip("x", -1.0, 1.0),
        clip("z", 1.0),
        log1p("z"),
        impute("city", "most_frequent"),
        label_encode("city", unknown="bucket"),
    ],
    "buckets": [
        bucketize("x", [-1.0, 0.0, 1.0]),
        bucketize("z", [2.0, 5.0], one_hot=True),
        quantile_bucketize("n", 4, one_hot=True),
        quantile_bucketize("z", 3),
        one_hot("flag"),
    ],
    "hashes": [
        hash_bucketize("city", 7),
        hash_bucketize("city", 5, one_hot=True),
        feature_cross(["city", "flag"], 11),
        polynomial_expand(["z", "n"], 2),
        impute("x", "mean"),
    ],
}


@pytest.mark.parametrize("name", list(GRAPHS))
def test_each_compiled_op_gives_the_same_matrix(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = TransformGraph(GRAPHS[name], exclude=["y", "yes", "kind"]).fit(TABLE)
    plan = compile_rows(fitted)
    assert plan is not None
    rows = _rows()
    for size in (1, 3, 46):
        for start in range(0, len(rows) - size + 1, max(size, 9)):
            batch = rows[start : start + size]
            columns = {c: [r.get(c) for r in batch] for c in plan.columns}
            table = pa.Table.from_pylist(batch)
            X = plan.matrix(columns, len(batch))
            assert X is not None, batch
            expected = fitted.transform(table).X
            assert X.shape == expected.shape
            assert np.array_equal(X, expected, equal_nan=True), batch
            assert X.flags.f_contiguous
            hot = plan.one_hot_features(columns, len(batch))
            expected_hot = fitted.one_hot_features(table)
            assert hot is not None
            assert np.array_equal(hot.toarray(), expected_hot.toarray(), equal_nan=True)
            assert np.array_equal(hot.dense, expected_hot.dense, equal_nan=True)


def test_models_on_compiled_ops_answer_as_the_arrow_path() -> None:
    rows = _rows()
    for name, ops in GRAPHS.items():
        # (a linear model refuses the NaN that bucketizing a null leaves)
        labels = [("boosted_tree_regressor", "y")] + [("logistic_reg", "kind")] * (
            name != "buckets"
        )
        for model_type, label in labels:
            model = _fit(model_type, label, transform=TransformGraph(ops, exclude=[label]))
            for batch in (rows[:1], rows[5:25]):
                assert model.predict_columns(_columns(model, batch), len(batch)) is not None
                assert _same(model.predict_rows(batch), _arrow(model, batch)), (name, batch)
            for i in range(40, len(rows)):  # NaN left for a linear model: its error
                _same_outcome(model, rows[i : i + 1])
            _same_outcome(model, rows[40:])


def test_an_op_without_a_row_form_compiles_to_none() -> None:
    table = TABLE.append_column("when", pa.array(np.arange(N) * 86_400_000_000, pa.timestamp("us")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = TransformGraph([datetime_parts("when"), standard_scale("x")]).fit(table)
    assert compile_rows(fitted) is None
    assert compile_rows(FittedTransform([], [], ["x"])) is not None


def test_a_dnn_answers_as_the_arrow_path() -> None:
    pytest.importorskip("torch")
    model = _fit("dnn_classifier", "kind", {"hidden_units": [8], "max_iterations": 3})
    rows = _rows()
    for batch in (rows[:1], rows[40:46]):
        assert model.predict_columns(_columns(model, batch), len(batch)) is not None
        assert _same(model.predict_rows(batch), _arrow(model, batch))


# ------------------------------------------------------------------------- fuzzed


def test_fuzzed_rows_answer_or_fail_as_the_arrow_path() -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    models = [
        _fit("logistic_reg", "kind"),
        _fit("boosted_tree_classifier", "yes", {"max_iterations": 3}),
        _fit(
            "linear_reg",
            "y",
            transform=TransformGraph([*GRAPHS["rewrites"], *GRAPHS["buckets"][:2]], exclude=["y"]),
        ),
    ]
    value = st.one_of(
        st.none(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(-1e3, 1e3),
        st.integers(-(2**70), 2**70),
        st.integers(-5, 60),
        st.booleans(),
        st.sampled_from([*CITIES, "Tokyo", "", "\x00", "1.5", "nan"]),
        st.text(max_size=4),
    )
    row = st.fixed_dictionaries({c: value for c in FEATURES})

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(row, min_size=1, max_size=5), st.integers(0, len(models) - 1))
    def check(rows: list[dict[str, Any]], which: int) -> None:
        _same_outcome(models[which], rows)

    check()
