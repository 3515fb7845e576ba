"""Bad training input through Model.fit, as the issue lists it: each gives one clear message (an
error naming what is wrong, or a warning naming the column) and writes nothing."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from kiln.errors import DataError, TrainingError
from kiln.model import LeakageWarning, Model
from kiln.transform import TransformWarning

N = 60
REGRESSORS = ["linear_reg", "boosted_tree_regressor"]
CLASSIFIERS = ["logistic_reg", "boosted_tree_classifier"]


def _regression(**extra: object) -> pa.Table:
    rng = np.random.default_rng(0)
    x = rng.normal(size=N)
    w = rng.normal(size=N)
    columns: dict[str, object] = {"x": x, "w": w, "y": 2 * x - w + rng.normal(0, 0.1, N)}
    columns.update(extra)
    return pa.table(columns)


def _classification(**extra: object) -> pa.Table:
    rng = np.random.default_rng(1)
    x = rng.normal(size=N)
    columns: dict[str, object] = {
        "x": x,
        "city": rng.choice(["Paris", "Lyon", "Nice"], size=N).tolist(),
        "y": np.where(x + rng.normal(0, 0.5, N) > 0, "yes", "no").tolist(),
    }
    columns.update(extra)
    return pa.table(columns)


def _fit_and_save(tmp_path: Path, table: pa.Table, model_type: str) -> Model:
    """What a user does: fit, then save; the folder must not exist when fit fails."""
    model = Model.fit(table, model_type=model_type, label="y")
    model.save(tmp_path / "model")
    return model


def _nothing_written(tmp_path: Path) -> None:
    assert not (tmp_path / "model").exists()
    assert list(tmp_path.iterdir()) == []


# -- constant and all-null features: dropped with a warning --------------------------------------


@pytest.mark.parametrize("model_type", REGRESSORS)
@pytest.mark.parametrize(
    ("column", "values", "why"),
    [
        ("const", np.full(N, 3.0), "const (constant)"),
        ("empty", pa.nulls(N, pa.float64()), "empty (all null)"),
        ("tag", ["same"] * N, "tag (constant)"),
    ],
)
def test_a_constant_or_all_null_feature_is_dropped_with_a_warning(
    tmp_path: Path, model_type: str, column: str, values: object, why: str
) -> None:
    table = _regression(**{column: values})
    with pytest.warns(TransformWarning, match="dropped: " + re.escape(why)):
        model = _fit_and_save(tmp_path, table, model_type)
    assert column not in model.transform.input_columns
    # still predicts, with the dropped column present or not
    assert model.predict(table).num_rows == N


# -- NaN and infinity in features ----------------------------------------------------------------


@pytest.mark.parametrize("model_type", REGRESSORS)
def test_nan_and_null_features_are_imputed_or_routed(model_type: str) -> None:
    table = _regression()
    x = table["x"].to_numpy().copy()
    x[::7] = np.nan
    table = table.set_column(0, "x", pa.array(x, mask=np.arange(N) % 11 == 0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning either
        model = Model.fit(table, model_type=model_type, label="y")
    predicted = model.predict(table)["predicted_y"].to_numpy()
    assert np.isfinite(predicted).all()


@pytest.mark.parametrize("model_type", [*REGRESSORS, *CLASSIFIERS])
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_an_infinite_feature_is_a_data_error_naming_the_column(
    tmp_path: Path, model_type: str, value: float
) -> None:
    maker = _classification if model_type in CLASSIFIERS else _regression
    table = maker()
    x = table["x"].to_numpy().copy()
    x[5] = value
    table = table.set_column(0, "x", pa.array(x))
    with pytest.raises(DataError, match=r"column 'x', row 5: value -?inf is infinite"):
        _fit_and_save(tmp_path, table, model_type)
    _nothing_written(tmp_path)


# -- target leakage ----------------------------------------------------------------------------


@pytest.mark.parametrize("model_type", REGRESSORS)
def test_a_feature_equal_to_the_label_warns_naming_it(tmp_path: Path, model_type: str) -> None:
    table = _regression()
    table = table.append_column("copy_of_y", table["y"])
    with pytest.warns(LeakageWarning, match=r"'copy_of_y' is equal to the label 'y'"):
        _fit_and_save(tmp_path, table, model_type)


def test_an_integer_copy_of_a_float_label_counts_as_equal() -> None:
    table = _regression()
    table = table.set_column(2, "y", pa.array(np.arange(N, dtype=np.float64)))
    table = table.append_column("row_number", pa.array(np.arange(N)))
    with pytest.warns(LeakageWarning, match="'row_number' is equal to the label"):
        Model.fit(table, model_type="linear_reg", label="y")


@pytest.mark.parametrize("model_type", CLASSIFIERS)
def test_a_one_to_one_recoding_of_a_categorical_label_warns(model_type: str) -> None:
    table = _classification()
    recoded = ["Y" if v == "yes" else "N" for v in table["y"].to_pylist()]
    table = table.append_column("answer_code", pa.array(recoded))
    codes = [1 if v == "yes" else 0 for v in table["y"].to_pylist()]
    table = table.append_column("answer_int", pa.array(codes))
    with pytest.warns(LeakageWarning) as record:
        Model.fit(table, model_type=model_type, label="y")
    messages = [str(w.message) for w in record if issubclass(w.category, LeakageWarning)]
    assert len(messages) == 2
    assert "'answer_code' maps one-to-one onto the label 'y'" in messages[0]
    assert "'answer_int' maps one-to-one onto the label 'y'" in messages[1]


def test_honest_features_do_not_warn_about_leakage() -> None:
    # a two-valued column that only partly agrees with the label is not a recoding of it
    table = _classification()
    partly = [v if i % 5 else "other" for i, v in enumerate(table["y"].to_pylist())]
    table = table.append_column("partly", pa.array(partly))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Model.fit(table, model_type="logistic_reg", label="y")
        Model.fit(_regression(), model_type="linear_reg", label="y")


# -- the label ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model_type", REGRESSORS)
def test_a_missing_label_column_is_an_error_naming_it(tmp_path: Path, model_type: str) -> None:
    table = _regression().drop_columns(["y"])
    with pytest.raises(TrainingError, match="label column 'y' is not in the data"):
        _fit_and_save(tmp_path, table, model_type)
    _nothing_written(tmp_path)


@pytest.mark.parametrize("model_type", [*REGRESSORS, *CLASSIFIERS])
def test_an_all_null_label_is_an_error(tmp_path: Path, model_type: str) -> None:
    table = _regression().set_column(2, "y", pa.nulls(N, pa.float64()))
    with pytest.raises(TrainingError, match="label column 'y' is all null"):
        _fit_and_save(tmp_path, table, model_type)
    _nothing_written(tmp_path)


@pytest.mark.parametrize("model_type", CLASSIFIERS)
def test_a_single_class_is_an_error(tmp_path: Path, model_type: str) -> None:
    table = _classification().set_column(2, "y", pa.array(["yes"] * N))
    with pytest.raises(TrainingError, match=r"single class \('yes'\)"):
        _fit_and_save(tmp_path, table, model_type)
    _nothing_written(tmp_path)


# -- too few rows, no features -------------------------------------------------------------------


@pytest.mark.parametrize("model_type", [*REGRESSORS, *CLASSIFIERS, "kmeans"])
@pytest.mark.parametrize("rows", [0, 1])
def test_fewer_than_two_rows_is_an_error(tmp_path: Path, model_type: str, rows: int) -> None:
    maker = _classification if model_type in CLASSIFIERS else _regression
    table = maker().slice(0, rows)
    with pytest.raises(TrainingError, match=rf"has {rows} row\(s\); at least 2 are needed"):
        _fit_and_save(tmp_path, table, model_type)
    _nothing_written(tmp_path)


@pytest.mark.parametrize("model_type", REGRESSORS)
def test_no_usable_feature_left_is_an_error(tmp_path: Path, model_type: str) -> None:
    table = pa.table({"const": np.ones(N), "empty": pa.nulls(N, pa.float64()), "y": np.arange(N)})
    with (
        pytest.warns(TransformWarning, match="dropped"),
        pytest.raises(TrainingError, match="no usable feature is left after preprocessing"),
    ):
        _fit_and_save(tmp_path, table, model_type)
    _nothing_written(tmp_path)
