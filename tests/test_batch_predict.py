"""Batch prediction: ``kiln predict`` and ``kiln.model.predict_batches`` on real files, with small
real models trained on the penguins; every output must equal Model.predict on the same rows."""

from __future__ import annotations

import importlib.resources
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
import pytest

from conftest import assert_clean_error, kiln
from kiln.data import read_table
from kiln.errors import DataError
from kiln.model import Model, PredictionSummary, predict_batches

CLASSIFIER = "logistic_reg"  # species, with class probabilities
REGRESSOR = "boosted_tree_regressor"  # body_mass_g


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two saved models: a classifier of species and a regressor of body mass."""
    folder = tmp_path_factory.mktemp("models")
    src = importlib.resources.files("palmerpenguins") / "data/penguins.csv"
    with src.open("rb") as f:
        (folder / "penguins.csv").write_bytes(f.read())
    table = read_table(folder / "penguins.csv")
    out: dict[str, Path] = {}
    for model_type, label in ((CLASSIFIER, "species"), (REGRESSOR, "body_mass_g")):
        train = table.filter(pc.is_valid(table[label]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. the constant-column notice
            model = Model.fit(train, model_type=model_type, label=label)
        out[model_type] = model.save(folder / model_type)
    return out


def expected(model_folder: Path, data: Path | str) -> pa.Table:
    return Model.load(model_folder).predict(read_table(data))


def read_output(path: Path) -> pa.Table:
    """The output as written: Parquet as is, CSV and JSON Lines read back."""
    if path.suffix == ".parquet":
        return pq.read_table(path)
    if path.suffix == ".csv":
        return pacsv.read_csv(path)
    return pajson.read_json(path)


def probabilities(column: pa.ChunkedArray) -> list[Any]:
    """Class probabilities as Python lists, whether stored as lists or (CSV) as JSON text."""
    if pa.types.is_string(column.type):
        return [json.loads(text) for text in column.to_pylist()]
    return column.to_pylist()


def only_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- every format ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_every_format_round_trips_the_classifier_and_its_probabilities(
    tmp_path: Path, penguins: Path, models: dict[str, Path], fmt: str
) -> None:
    out = tmp_path / f"predictions.{fmt}"
    proc = kiln("predict", str(models[CLASSIFIER]), "--input", str(penguins), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "predicted 344 rows in" in proc.stdout
    assert str(out) in proc.stdout
    assert proc.stderr == ""  # no progress bar: stderr is not a terminal
    want = expected(models[CLASSIFIER], penguins)
    got = read_output(out)
    assert got.column_names == ["predicted_species", "predicted_species_probs"]
    assert got["predicted_species"].to_pylist() == want["predicted_species"].to_pylist()
    probs = probabilities(got["predicted_species_probs"])
    assert probs == want["predicted_species_probs"].to_pylist()
    assert [p["label"] for p in probs[0]] == ["Adelie", "Chinstrap", "Gentoo"]
    if fmt == "parquet":
        assert got.equals(want)
    assert only_files(tmp_path) == sorted(["penguins.csv", out.name])


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_every_format_round_trips_the_regressor_exactly(
    tmp_path: Path, penguins: Path, models: dict[str, Path], fmt: str
) -> None:
    out = tmp_path / "predictions.out"
    proc = kiln(
        "predict",
        str(models[REGRESSOR]),
        "--input",
        str(penguins),
        "--output",
        str(out),
        "--format",
        fmt,
    )
    assert proc.returncode == 0, proc.stderr
    renamed = out.rename(out.with_suffix(f".{fmt}"))
    got = read_output(renamed)["predicted_body_mass_g"].to_pylist()
    assert got == expected(models[REGRESSOR], penguins)["predicted_body_mass_g"].to_pylist()


def test_csv_input_writes_parquet_and_jsonl_input_is_streamed(
    tmp_path: Path, penguins: Path, models: dict[str, Path]
) -> None:
    jsonl = tmp_path / "penguins.jsonl"
    jsonl.write_text(
        "".join(json.dumps(row) + "\n" for row in read_table(penguins).to_pylist()),
        encoding="utf-8",
    )
    summary = predict_batches(
        Model.load(models[CLASSIFIER]), jsonl, tmp_path / "out.parquet", batch_size=50
    )
    assert isinstance(summary, PredictionSummary)
    assert summary.rows == 344
    assert summary.output == tmp_path / "out.parquet"
    assert summary.rows_per_second > 0
    assert pq.read_table(summary.output).equals(expected(models[CLASSIFIER], penguins))


# --- options --------------------------------------------------------------------------------------


def test_keep_puts_the_chosen_input_columns_first(
    tmp_path: Path, penguins: Path, models: dict[str, Path]
) -> None:
    out = tmp_path / "out.csv"
    proc = kiln(
        "predict",
        str(models[CLASSIFIER]),
        "--input",
        str(penguins),
        "--output",
        str(out),
        "--keep",
        "year",
        "--keep",
        "island",
    )
    assert proc.returncode == 0, proc.stderr
    got = read_output(out)
    assert got.column_names == ["year", "island", "predicted_species", "predicted_species_probs"]
    source = read_table(penguins)
    assert got["year"].to_pylist() == source["year"].to_pylist()
    assert got["island"].to_pylist() == source["island"].to_pylist()


def _encodings(path: Path, column: str) -> tuple[set[str], str]:
    """The Parquet encodings and compression of ``column``'s chunk in the first row group."""
    group = pq.ParquetFile(path).metadata.row_group(0)
    chunk = next(
        group.column(i)
        for i in range(group.num_columns)
        if group.column(i).path_in_schema == column
    )
    return set(chunk.encodings), chunk.compression


def test_parquet_labels_are_stored_as_dictionaries_but_read_back_as_strings(
    tmp_path: Path, penguins: Path, models: dict[str, Path]
) -> None:
    """The class labels are written from dictionary arrays (no per-row hashing); the file's Arrow
    schema still says string, for pyarrow and Polars alike. A kept column that is a dictionary
    in the input stays one; floating-point columns are not compressed."""
    import polars as pl

    source = read_table(penguins)
    island = source.column_names.index("island")
    source = source.set_column(island, "island", pc.dictionary_encode(source["island"]))
    pq.write_table(source, tmp_path / "in.parquet")
    out = tmp_path / "out.parquet"
    model = Model.load(models[CLASSIFIER])
    predict_batches(model, tmp_path / "in.parquet", out, keep=["island"], batch_size=100)
    want = model.predict(source)
    got = pq.read_table(out)
    assert got.schema.field("island").type == pa.dictionary(pa.int32(), pa.string())
    assert got.drop(["island"]).equals(want)
    assert got.schema.field("predicted_species").type == pa.string()
    frame = pl.read_parquet(out)
    assert frame.schema["predicted_species"] == pl.String
    assert frame.schema["predicted_species_probs"] == pl.List(
        pl.Struct({"label": pl.String, "prob": pl.Float64})
    )
    encodings, _ = _encodings(out, "predicted_species")
    assert "RLE_DICTIONARY" in encodings
    _, compression = _encodings(out, "predicted_species_probs.list.element.prob")
    assert compression == "UNCOMPRESSED"


def test_a_pyarrow_that_cannot_add_file_metadata_gets_decoded_labels(
    tmp_path: Path, penguins: Path, models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyarrow before ParquetWriter.add_key_value_metadata: the labels are decoded before they
    are written, and the file is the same to its readers."""
    monkeypatch.delattr(pq.ParquetWriter, "add_key_value_metadata")
    out = tmp_path / "out.parquet"
    model = Model.load(models[CLASSIFIER])
    predict_batches(model, penguins, out, batch_size=100)
    assert pq.read_table(out).equals(model.predict(read_table(penguins)))


def test_a_missing_keep_column_is_named_with_the_available_ones(
    tmp_path: Path, penguins: Path, models: dict[str, Path]
) -> None:
    out = tmp_path / "out.parquet"
    proc = kiln(
        "predict",
        str(models[CLASSIFIER]),
        "--input",
        str(penguins),
        "--output",
        str(out),
        "--keep",
        "penguin_id",
    )
    assert_clean_error(proc, "'penguin_id'", "bill_length_mm, bill_depth_mm")
    assert not out.exists()


def test_small_batches_give_the_same_output_as_one_batch(
    tmp_path: Path, penguins: Path, models: dict[str, Path]
) -> None:
    outputs = []
    for size in ("7", "100000"):
        out = tmp_path / f"out-{size}.parquet"
        proc = kiln(
            "predict",
            str(models[REGRESSOR]),
            "--input",
            str(penguins),
            "--output",
            str(out),
            "--batch-size",
            size,
            "--keep",
            "sex",
        )
        assert proc.returncode == 0, proc.stderr
        outputs.append(pq.read_table(out))
    assert outputs[0].num_rows == 344
    assert outputs[0].equals(outputs[1])


def test_a_folder_of_parquet_files_is_one_input(
    tmp_path: Path, penguins: Path, models: dict[str, Path]
) -> None:
    table = read_table(penguins)
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, start in enumerate(range(0, table.num_rows, 120)):
        pq.write_table(table.slice(start, 120), folder / f"part-{i}.parquet")
    out = tmp_path / "out.parquet"
    proc = kiln("predict", str(models[CLASSIFIER]), "--input", str(folder), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert pq.read_table(out).equals(expected(models[CLASSIFIER], penguins))


# --- atomicity and refusals -----------------------------------------------------------------------


def test_a_bad_value_in_a_later_batch_leaves_nothing_behind(
    tmp_path: Path, penguins: Path, models: dict[str, Path]
) -> None:
    lines = penguins.read_text(encoding="utf-8").splitlines(keepends=True)
    fields = lines[300].split(",")  # data row 300 (the header is line 1)
    fields[2] = "abc"  # bill_length_mm
    lines[300] = ",".join(fields)
    bad = tmp_path / "bad.csv"
    bad.write_text("".join(lines), encoding="utf-8")
    out = tmp_path / "out.parquet"
    proc = kiln(
        "predict",
        str(models[CLASSIFIER]),
        "--input",
        str(bad),
        "--output",
        str(out),
        "--batch-size",
        "7",  # 42 batches are written before the one with row 300
    )
    assert_clean_error(proc, "'bill_length_mm'", "row 300", "'abc'")
    assert only_files(tmp_path) == ["bad.csv", "penguins.csv"]  # no output, no temporary file


def test_a_json_lines_column_that_changes_type_is_named_with_its_row(
    tmp_path: Path, penguins: Path, models: dict[str, Path]
) -> None:
    rows = read_table(penguins).to_pylist()
    rows[299]["bill_length_mm"] = "abc"
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    proc = kiln(
        "predict", str(models[CLASSIFIER]), "--input", str(bad), "--output", "out.csv", cwd=tmp_path
    )
    assert_clean_error(proc, str(bad), "row 300", "'bill_length_mm'", "a string")
    assert only_files(tmp_path) == ["bad.jsonl", "penguins.csv"]


def test_a_later_file_without_a_column_reads_it_as_null(
    tmp_path: Path, penguins: Path, models: dict[str, Path]
) -> None:
    """As read_table does for a folder: the rows of a file that lacks a column get nulls there,
    and are predicted like any row with a missing value."""
    table = read_table(penguins)
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(table.slice(0, 200), folder / "a.parquet")
    pq.write_table(table.slice(200).drop_columns(["sex"]), folder / "b.parquet")
    out = tmp_path / "out.parquet"
    proc = kiln(
        "predict",
        str(models[CLASSIFIER]),
        "--input",
        str(folder),
        "--output",
        str(out),
        "--batch-size",
        "50",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    expected = Model.load(models[CLASSIFIER]).predict(read_table(folder))
    assert pq.read_table(out).equals(expected)


def test_an_interrupt_leaves_nothing_behind(
    tmp_path: Path, penguins: Path, models: dict[str, Path]
) -> None:
    def interrupt_at_row_100(rows: int) -> None:
        if rows >= 100:
            raise KeyboardInterrupt

    out = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        predict_batches(
            Model.load(models[REGRESSOR]),
            penguins,
            out,
            batch_size=10,
            progress=interrupt_at_row_100,
        )
    assert only_files(tmp_path) == ["penguins.csv"]


def test_an_existing_output_is_refused_without_overwrite(
    tmp_path: Path, penguins: Path, models: dict[str, Path]
) -> None:
    out = tmp_path / "out.parquet"
    out.write_bytes(b"precious")
    args = ["predict", str(models[REGRESSOR]), "--input", str(penguins), "--output", str(out)]
    assert_clean_error(kiln(*args), "already exists", "--overwrite")
    assert out.read_bytes() == b"precious"
    proc = kiln(*args, "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert pq.read_table(out).num_rows == 344
    assert only_files(tmp_path) == ["out.parquet", "penguins.csv"]


def test_a_missing_model_folder_is_a_clean_error(tmp_path: Path, penguins: Path) -> None:
    proc = kiln("predict", "no-such-model", "--input", str(penguins), "--output", "out.parquet")
    assert_clean_error(proc, "no-such-model", "does not exist")
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    proc = kiln("predict", str(not_a_model), "--input", str(penguins), "--output", "out.parquet")
    assert_clean_error(proc, "is not a Kiln model")
    assert not (tmp_path / "out.parquet").exists()


def test_a_bad_model_uri_is_a_clean_error(tmp_path: Path, penguins: Path) -> None:
    proc = kiln(
        "predict", "models:/", "--input", str(penguins), "--output", "out.parquet", cwd=tmp_path
    )
    assert_clean_error(proc, "model name ''", "not valid")
    assert not (tmp_path / "out.parquet").exists()


def test_a_missing_input_column_is_a_clean_error(
    tmp_path: Path, penguins: Path, models: dict[str, Path]
) -> None:
    data = tmp_path / "no_sex.parquet"
    pq.write_table(read_table(penguins).drop_columns(["sex"]), data)
    out = tmp_path / "out.parquet"
    proc = kiln("predict", str(models[CLASSIFIER]), "--input", str(data), "--output", str(out))
    assert_clean_error(proc, "missing column 'sex'", "trained with")
    assert only_files(tmp_path) == ["no_sex.parquet", "penguins.csv"]


def test_an_unknown_output_format_is_a_clean_error(
    tmp_path: Path, penguins: Path, models: dict[str, Path]
) -> None:
    args = ["predict", str(models[REGRESSOR]), "--input", str(penguins)]
    assert_clean_error(kiln(*args, "--output", "out.xlsx"), "'.xlsx'", "parquet, csv, jsonl")
    assert_clean_error(
        kiln(*args, "--output", "out.parquet", "--format", "xml"), "'xml'", "parquet, csv, jsonl"
    )


def test_the_library_refuses_bad_arguments(
    tmp_path: Path, penguins: Path, models: dict[str, Path]
) -> None:
    model = Model.load(models[REGRESSOR])
    with pytest.raises(DataError, match="batch_size"):
        predict_batches(model, penguins, tmp_path / "o.parquet", batch_size=0)
    with pytest.raises(DataError, match="one string"):
        predict_batches(model, penguins, tmp_path / "o.parquet", keep="island")
    with pytest.raises(DataError, match="is a folder"):
        predict_batches(model, penguins, tmp_path)
    assert only_files(tmp_path) == ["penguins.csv"]


# --- the registry ---------------------------------------------------------------------------------


def test_a_registry_uri_loads_the_registered_model(
    tmp_path: Path, penguins: Path, models: dict[str, Path]
) -> None:
    from kiln.registry import ModelRegistry
    from kiln.workspace import Workspace

    ws, _ = Workspace.init(tmp_path)
    try:
        folder = tmp_path / "classifier"
        shutil.copytree(models[CLASSIFIER], folder)
        ModelRegistry(ws).register_folder("penguins", folder, aliases=["prod"])
    finally:
        ws.close()
    want = expected(models[CLASSIFIER], penguins)
    for uri, out in (("models:/penguins@prod", "a.parquet"), ("models:/penguins/1", "b.parquet")):
        proc = kiln("predict", uri, "--input", str(penguins), "--output", out, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert pq.read_table(tmp_path / out).equals(want)
    proc = kiln(
        "predict",
        "models:/penguins@staging",
        "--input",
        str(penguins),
        "--output",
        "c.parquet",
        cwd=tmp_path,
    )
    assert_clean_error(proc, "staging")
    assert not (tmp_path / "c.parquet").exists()


# --- the progress bar -----------------------------------------------------------------------------


def _stderr_in_a_terminal(*args: str, cwd: Path) -> tuple[int, str, str]:
    """Run kiln with stderr on a pseudo-terminal: exit code, stdout, what the terminal got."""
    import os
    import pty
    import subprocess

    from conftest import KILN

    leader, follower = pty.openpty()
    with subprocess.Popen(
        [KILN, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=follower,
        env={**os.environ, "COLUMNS": "120"},
    ) as proc:
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        os.close(leader)
        stdout = proc.stdout.read().decode() if proc.stdout else ""
        code = proc.wait()
    return code, stdout, seen.decode(errors="replace")


def test_a_progress_bar_with_rows_per_second_on_a_terminal_unless_quiet(
    tmp_path: Path, penguins: Path, models: dict[str, Path]
) -> None:
    args = ["predict", str(models[REGRESSOR]), "--input", str(penguins), "--batch-size", "50"]
    code, stdout, terminal = _stderr_in_a_terminal(*args, "--output", "a.csv", cwd=tmp_path)
    assert code == 0, terminal
    assert "344 rows" in terminal
    assert "rows/s" in terminal
    assert "predicted 344 rows" in stdout
    code, stdout, terminal = _stderr_in_a_terminal(
        *args, "--output", "b.csv", "--quiet", cwd=tmp_path
    )
    assert code == 0, terminal
    assert terminal == ""
    assert "predicted 344 rows" in stdout
