"""ONNX export: every supported family's file, run in onnxruntime on the penguins (rows with nulls
and unseen categories included), predicts what Model.predict does; every transform op the
exporter supports is checked the same way; what it does not support says so; and the CLI."""

from __future__ import annotations

import importlib.resources
import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from conftest import assert_clean_error, kiln
from kiln.errors import DataError
from kiln.model import Model, export_onnx, preprocessing_for
from kiln.transform import (
    TransformGraph,
    bucketize,
    clip,
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

Settings = dict[str, Any]

# model type, label, settings, the outputs of the file (those of Model.predict)
FAMILIES: list[tuple[str, str | None, Settings, list[str]]] = [
    ("linear_reg", "body_mass_g", {}, ["predicted_body_mass_g"]),
    ("logistic_reg", "species", {}, ["predicted_species", "predicted_species_probs"]),
    ("logistic_reg", "sex", {}, ["predicted_sex", "predicted_sex_probs"]),
    ("boosted_tree_classifier", "species", {}, ["predicted_species", "predicted_species_probs"]),
    ("boosted_tree_classifier", "sex", {}, ["predicted_sex", "predicted_sex_probs"]),
    ("boosted_tree_regressor", "body_mass_g", {}, ["predicted_body_mass_g"]),
    (
        "boosted_tree_regressor",
        "body_mass_g",
        {"booster_type": "DART", "dropout": 0.3, "max_iterations": 10},
        ["predicted_body_mass_g"],
    ),
    ("random_forest_classifier", "sex", {}, ["predicted_sex", "predicted_sex_probs"]),
    ("random_forest_classifier", "species", {}, ["predicted_species", "predicted_species_probs"]),
    ("random_forest_regressor", "body_mass_g", {}, ["predicted_body_mass_g"]),
    ("kmeans", None, {"num_clusters": 3}, ["centroid_id", "nearest_centroids_distance"]),
    (
        "kmeans",
        None,
        {"num_clusters": 4, "distance_type": "COSINE"},
        ["centroid_id", "nearest_centroids_distance"],
    ),
    (
        "pca",
        None,
        {"num_principal_components": 2},
        ["principal_component_1", "principal_component_2"],
    ),
    ("dnn_regressor", "body_mass_g", {}, ["predicted_body_mass_g"]),
    ("dnn_classifier", "species", {}, ["predicted_species", "predicted_species_probs"]),
    (
        "dnn_classifier",
        "sex",
        {"hidden_units": [8, 4], "activation_fn": "CRELU"},
        ["predicted_sex", "predicted_sex_probs"],
    ),
]


@pytest.fixture(scope="module")
def table() -> pa.Table:
    """The 344 penguins, a missing string read as null (11 sexes, 2 rows of measurements)."""
    src = importlib.resources.files("palmerpenguins") / "data/penguins.csv"
    options = pacsv.ConvertOptions(null_values=["NA"], strings_can_be_null=True)
    with src.open("rb") as f:
        return pacsv.read_csv(f, convert_options=options)


@pytest.fixture(scope="module")
def rows(table: pa.Table) -> pa.Table:
    """What the models predict on: every penguin, plus unseen categories and an empty row."""
    extra = pa.table(
        {
            "species": ["Adelie", "Gentoo", None],
            "island": ["Atlantis", None, None],
            "bill_length_mm": [40.0, None, None],
            "bill_depth_mm": [None, 15.0, None],
            "flipper_length_mm": [None, 210, None],
            "body_mass_g": [4000, None, None],
            "sex": ["unknown", None, None],
            "year": [2010, 2008, 2008],
        }
    ).cast(table.schema)
    return pa.concat_tables([table, extra])


def _fit(table: pa.Table, model_type: str, label: str | None, **kwargs: Any) -> Model:
    if label is not None:
        table = table.filter(pc.is_valid(table[label]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the constant-column notice, leakage notices
        return Model.fit(table, model_type=model_type, label=label, **kwargs)


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _feeds(session: ort.InferenceSession, table: pa.Table) -> dict[str, np.ndarray[Any, Any]]:
    """The file's inputs from ``table``: strings with '' for null, doubles with NaN for null."""
    feeds: dict[str, np.ndarray[Any, Any]] = {}
    for entry in session.get_inputs():
        column = table[entry.name]
        if entry.type == "tensor(string)":
            values = ["" if v is None else str(v) for v in column.to_pylist()]
            feeds[entry.name] = np.array(values, dtype=object).reshape(-1, 1)
        else:
            assert entry.type == "tensor(double)", entry
            as_float = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
            feeds[entry.name] = np.asarray(as_float, dtype=np.float64).reshape(-1, 1)
    return feeds


def _run(path: Path, table: pa.Table) -> dict[str, np.ndarray[Any, Any]]:
    session = _session(path)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, _feeds(session, table)), strict=True))


def _expected(predicted: pa.Table) -> dict[str, np.ndarray[Any, Any]]:
    """Model.predict's columns as the file gives them: probabilities in the classes' order and
    distances in centroid order, as matrices."""
    out: dict[str, np.ndarray[Any, Any]] = {}
    for name in predicted.column_names:
        values = predicted[name].to_pylist()
        if name.endswith("_probs"):
            out[name] = np.array([[p["prob"] for p in row] for row in values])
        elif name == "nearest_centroids_distance":
            ordered = [sorted(row, key=lambda d: d["centroid_id"]) for row in values]
            out[name] = np.array([[d["distance"] for d in row] for row in ordered])
        else:
            out[name] = np.asarray(values)
    return out


def _assert_same(got: dict[str, Any], predicted: pa.Table, *, tolerance: float) -> None:
    expected = _expected(predicted)
    assert sorted(got) == sorted(expected)
    for name, want in expected.items():
        have = got[name]
        assert have.shape == want.shape, name
        if want.dtype.kind == "f":
            np.testing.assert_allclose(have, want, rtol=tolerance, atol=tolerance, err_msg=name)
        else:  # labels and centroid ids: exactly
            assert have.tolist() == want.tolist(), name


@pytest.mark.parametrize(
    ("model_type", "label", "settings", "outputs"),
    FAMILIES,
    ids=[f"{m}-{label}-{i}" for i, (m, label, _, _) in enumerate(FAMILIES)],
)
def test_every_family_predicts_in_onnxruntime_what_model_predict_does(
    tmp_path: Path,
    table: pa.Table,
    rows: pa.Table,
    model_type: str,
    label: str | None,
    settings: Settings,
    outputs: list[str],
) -> None:
    model = _fit(table, model_type, label, settings=settings)
    path = export_onnx(model, tmp_path / "model.onnx")
    assert path == tmp_path / "model.onnx"
    got = _run(path, rows)
    assert list(got) == outputs
    # the DNN's layers run in float32 (as PyTorch runs them); everything else in float64
    _assert_same(got, model.predict(rows), tolerance=1e-5 if "dnn" in model_type else 1e-9)


def test_the_file_reads_raw_columns_and_names_its_outputs(tmp_path: Path, table: pa.Table) -> None:
    model = _fit(table, "logistic_reg", "species")
    proto = onnx.load(str(export_onnx(model, tmp_path / "m.onnx")))
    onnx.checker.check_model(proto, full_check=True)
    T = onnx.TensorProto
    inputs = {
        i.name: (
            i.type.tensor_type.elem_type,
            [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim],
        )
        for i in proto.graph.input
    }
    assert inputs == {
        "island": (T.STRING, ["N", 1]),
        "bill_length_mm": (T.DOUBLE, ["N", 1]),
        "bill_depth_mm": (T.DOUBLE, ["N", 1]),
        "flipper_length_mm": (T.DOUBLE, ["N", 1]),
        "body_mass_g": (T.DOUBLE, ["N", 1]),
        "sex": (T.STRING, ["N", 1]),
        "year": (T.DOUBLE, ["N", 1]),
    }
    assert [o.name for o in proto.graph.output] == ["predicted_species", "predicted_species_probs"]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["kiln.classes"]) == ["Adelie", "Chinstrap", "Gentoo"]
    assert meta["kiln.model_type"] == "logistic_reg"
    # a safe format: standard operators only, no functions, nothing but a graph of tensors
    assert {n.domain for n in proto.graph.node} <= {"", "ai.onnx.ml"}
    assert not proto.functions
    # the batch is dynamic: one row and many rows both run
    one = _run(tmp_path / "m.onnx", table.slice(0, 1))
    assert one["predicted_species"].tolist() == ["Adelie"]
    assert one["predicted_species_probs"].shape == (1, 3)


def test_a_saved_and_loaded_model_exports_the_same_predictions(
    tmp_path: Path, table: pa.Table, rows: pa.Table
) -> None:
    model = _fit(table, "boosted_tree_classifier", "species")
    loaded = Model.load(model.save(tmp_path / "model"))
    got = _run(export_onnx(loaded, tmp_path / "out" / "model.onnx", opset=19), rows)
    _assert_same(got, model.predict(rows), tolerance=1e-9)


def _every_op(*, trees: bool) -> TransformGraph:
    """Each op the exporter writes, on the penguins (columns rewritten, then read again)."""
    ops = [
        impute("bill_length_mm", "median"),
        robust_scale("bill_length_mm"),
        quantile_bucketize("bill_length_mm", 4),
        quantile_bucketize("bill_length_mm", 3, one_hot=True),
        impute("bill_depth_mm", "constant", 17.0),
        min_max_scale("bill_depth_mm"),
        standard_scale("bill_depth_mm"),
        impute("flipper_length_mm", "mean"),
        clip("flipper_length_mm", 180, 220),
        log1p("flipper_length_mm"),  # a rewritten column no other op reads: a feature itself
        impute("body_mass_g", "most_frequent"),
        max_abs_scale("body_mass_g"),
        bucketize("year", [2008, 2009], one_hot=True),
        bucketize("year", [2008.5]),
        one_hot("island", unknown="bucket"),
        label_encode("island", unknown="bucket"),
        impute("sex", "most_frequent"),
        one_hot("sex"),
        label_encode("sex", unknown="bucket"),
    ]
    if trees:  # NaN codes for unseen values: only trees take them
        ops += [label_encode("island"), label_encode("sex")]
    return TransformGraph(ops, exclude=["species"])


@pytest.mark.parametrize(
    "model_type", ["logistic_reg", "random_forest_classifier", "boosted_tree_classifier"]
)
def test_every_supported_op_exports_exactly(
    tmp_path: Path, table: pa.Table, rows: pa.Table, model_type: str
) -> None:
    trees = model_type != "logistic_reg"
    model = _fit(table, model_type, "species", transform=_every_op(trees=trees))
    got = _run(export_onnx(model, tmp_path / "m.onnx"), rows)
    _assert_same(got, model.predict(rows), tolerance=1e-9)


def test_native_categorical_splits_are_exported_as_set_membership(
    tmp_path: Path, table: pa.Table, rows: pa.Table
) -> None:
    model = _fit(table, "random_forest_classifier", "species")
    dump = json.dumps(model.trainer.booster_.dump_model())  # type: ignore[attr-defined]
    assert '"decision_type": "=="' in dump  # the forest does split on island's codes
    path = export_onnx(model, tmp_path / "m.onnx")
    modes = next(
        a for n in onnx.load(str(path)).graph.node for a in n.attribute if a.name == "nodes_modes"
    )
    assert 6 in onnx.numpy_helper.to_array(modes.t).tolist()  # BRANCH_MEMBER
    unseen = rows.filter(pc.equal(rows["island"], "Atlantis"))
    _assert_same(_run(path, unseen), model.predict(unseen), tolerance=1e-9)


# ------------------------------------------------------------------------------------------------
# what is not supported


def test_an_unsupported_transform_op_is_named(tmp_path: Path, table: pa.Table) -> None:
    graph = TransformGraph(
        [
            impute("bill_length_mm"),
            impute("bill_depth_mm"),
            polynomial_expand(["bill_length_mm", "bill_depth_mm"]),
        ],
        passthrough=False,
    )
    model = _fit(table, "linear_reg", "body_mass_g", transform=graph)
    with pytest.raises(
        DataError, match="ONNX export does not support the transform op 'polynomial_expand' yet"
    ):
        export_onnx(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_an_unsupported_family_is_named(tmp_path: Path, table: pa.Table) -> None:
    train = table.filter(pc.is_valid(table["body_mass_g"]))
    width = preprocessing_for(train, "linear_reg", label="body_mass_g").fit(train).transform(train)
    members = [{"model_type": "linear_reg", "columns": [0, width.X.shape[1]]}]
    model = _fit(table, "ensemble_regressor", "body_mass_g", settings={"members": members})
    with pytest.raises(DataError, match="does not support model type 'ensemble_regressor'"):
        export_onnx(model, tmp_path / "m.onnx")


def test_a_bad_opset_or_path_is_refused(tmp_path: Path, table: pa.Table) -> None:
    model = _fit(table, "linear_reg", "body_mass_g")
    with pytest.raises(DataError, match="opset 7 is not one the exporter writes"):
        export_onnx(model, tmp_path / "m.onnx", opset=7)
    with pytest.raises(DataError, match="is a folder"):
        export_onnx(model, tmp_path)


def test_an_empty_string_category_is_refused(tmp_path: Path, table: pa.Table) -> None:
    """'' is how the file spells a missing string; a vocabulary holding '' would be ambiguous."""
    island = pc.if_else(pc.equal(table["island"], "Dream"), "", table["island"])
    emptied = table.set_column(table.column_names.index("island"), "island", island)
    model = _fit(emptied, "logistic_reg", "species")
    with pytest.raises(DataError, match="holds the empty string"):
        export_onnx(model, tmp_path / "m.onnx")


def test_without_onnx_the_error_names_the_extra(tmp_path: Path, table: pa.Table) -> None:
    folder = _fit(table, "linear_reg", "body_mass_g").save(tmp_path / "model")
    probe = (
        "import sys; sys.modules['onnx'] = None\n"  # as if onnx were not installed
        "from kiln.errors import DataError\n"
        "from kiln.model import Model, export_onnx\n"
        f"model = Model.load({str(folder)!r})\n"
        "try:\n"
        f"    export_onnx(model, {str(tmp_path / 'm.onnx')!r})\n"
        "except DataError as e:\n"
        "    print(e)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert "pip install 'kiln[onnx]'" in proc.stdout
    assert not (tmp_path / "m.onnx").exists()


# ------------------------------------------------------------------------------------------------
# the command line


def test_kiln_export_writes_an_onnx_file(tmp_path: Path, table: pa.Table, rows: pa.Table) -> None:
    model = _fit(table, "kmeans", None, settings={"num_clusters": 3})
    folder = model.save(tmp_path / "model")
    out = tmp_path / "exported" / "model.onnx"
    assert "export" in kiln("--help").stdout
    proc = kiln("export", str(folder), "--format", "onnx", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"wrote {out}" in proc.stdout
    assert "centroid_id (int64[N])" in proc.stdout
    assert "island (string[N,1])" in proc.stdout
    _assert_same(_run(out, rows), model.predict(rows), tolerance=1e-9)


def test_kiln_export_errors_are_clean(tmp_path: Path, table: pa.Table) -> None:
    folder = _fit(table, "linear_reg", "body_mass_g").save(tmp_path / "model")
    out = str(tmp_path / "m.onnx")
    assert_clean_error(
        kiln("export", str(tmp_path / "nowhere"), "--out", out), "nowhere", "does not exist"
    )
    assert_clean_error(kiln("export", str(folder), "--format", "pmml", "--out", out), "onnx")
    assert_clean_error(kiln("export", str(folder), "--out", out, "--opset", "3"), "opset 3")
    assert_clean_error(kiln("export", str(folder)), "--out")
    assert not Path(out).exists()
