"""Reading data into Arrow: every format, folders and globs, SQL, data frames, and bad input."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from kiln.data import DEFAULT_NULL_VALUES, iter_batches, read_sql, read_table
from kiln.errors import DataError

TABLE = pa.table(
    {
        "id": pa.array([1, 2, 3], pa.int64()),
        "name": pa.array(["ann", None, "cé"]),
        "score": pa.array([0.5, 1.5, None]),
    }
)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _error(source: object, *needles: str, **options: object) -> str:
    """The message of the DataError that reading ``source`` raises; it must hold every needle."""
    with pytest.raises(DataError) as info:
        read_table(source, **options)  # type: ignore[arg-type]
    message = str(info.value)
    for needle in needles:
        assert needle in message, f"{needle!r} not in: {message}"
    assert "Traceback" not in message
    return message


# ---------------------------------------------------------------------- formats


def test_csv_types_nulls_and_header(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.csv", b"id,name,score\n1,ann,0.5\n2,NA,1.5\n3,c\xc3\xa9,\n")
    table = read_table(path)
    assert table.equals(TABLE)


def test_csv_default_nulls_and_nan(tmp_path: Path) -> None:
    markers = [m for m in DEFAULT_NULL_VALUES if m]
    body = "s,x\n" + "".join(f"{m},{m}\n" for m in markers) + "a,NaN\n"
    table = read_table(_write(tmp_path / "n.csv", body.encode()))
    assert table.column("s").to_pylist() == [None] * len(markers) + ["a"]
    xs = table.column("x").to_pylist()
    assert table.column("x").type == pa.float64()
    assert xs[:-1] == [None] * len(markers)
    assert xs[-1] != xs[-1]  # NaN stays a float NaN, not a missing value


def test_csv_custom_null_values_and_no_header(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.txt", b"1;-\n2;x\n")
    table = read_table(path, delimiter=";", header=False, null_values=["-"])
    assert table.column_names == ["f0", "f1"]
    assert table.column("f1").to_pylist() == [None, "x"]


def test_tsv_by_extension(tmp_path: Path) -> None:
    table = read_table(_write(tmp_path / "d.tsv", b"a\tb\n1\thello, world\n"))
    assert table.to_pylist() == [{"a": 1, "b": "hello, world"}]


def test_csv_quoted_newlines_and_declared_types(tmp_path: Path) -> None:
    path = _write(tmp_path / "q.csv", b'a,b\n"x\ny",007\n"z",8\n')
    table = read_table(path, column_types={"b": pa.string()})
    assert table.to_pylist() == [{"a": "x\ny", "b": "007"}, {"a": "z", "b": "8"}]


def test_parquet_file_folder_and_glob(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    (folder / "sub").mkdir(parents=True)
    pq.write_table(TABLE.slice(0, 1), folder / "a.parquet")
    pq.write_table(TABLE.slice(1, 1), folder / "b.pq")
    pq.write_table(TABLE.slice(2, 1), folder / "sub" / "c.parquet")
    (folder / "_SUCCESS").write_text("")
    (folder / ".a.parquet.crc").write_text("junk")
    assert read_table(folder / "a.parquet").equals(TABLE.slice(0, 1))
    assert read_table(folder).equals(TABLE)
    assert read_table(str(folder / "*.parquet")).equals(TABLE.slice(0, 1))
    assert read_table(f"{folder}/**/*.parquet").num_rows == 2
    assert read_table(folder, columns=["score", "id"]).column_names == ["score", "id"]


def test_parquet_files_with_widening_types_concatenate(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": pa.array([1], pa.int32())}), tmp_path / "1.parquet")
    pq.write_table(pa.table({"x": pa.array([None], pa.null())}), tmp_path / "2.parquet")
    pq.write_table(pa.table({"x": pa.array([2], pa.int64())}), tmp_path / "3.parquet")
    table = read_table(tmp_path)
    assert table.column("x").to_pylist() == [1, None, 2]


def test_parquet_files_that_disagree(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": [1]}), tmp_path / "1.parquet")
    pq.write_table(pa.table({"x": [[1, 2]]}), tmp_path / "2.parquet")
    _error(tmp_path, "2.parquet", "do not agree", "1.parquet")


def test_csv_files_widen_to_a_common_type(tmp_path: Path) -> None:
    _write(tmp_path / "1.csv", b"a,b,c\n1,1,\n2,2,\n")
    _write(tmp_path / "2.csv", b"a,b,c\n3.5,x,\n")
    _write(tmp_path / "3.csv", b"a,b,c\n7x,3,z\n")
    table = read_table(str(tmp_path / "*.csv"))
    assert table.schema == pa.schema([("a", pa.string()), ("b", pa.string()), ("c", pa.string())])
    assert table.column("a").to_pylist() == ["1", "2", "3.5", "7x"]
    assert table.column("c").to_pylist() == [None, None, None, "z"]
    assert pa.Table.from_batches(list(iter_batches(tmp_path))).equals(table)
    _write(tmp_path / "3.csv", b"a,b,c\n4,3,\n")
    assert read_table(tmp_path, columns=["a"]).column("a").type == pa.float64()


def test_jsonl(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "d.jsonl",
        b'{"id": 1, "name": "ann", "score": 0.5}\n\n{"id": 2, "name": null, "score": 1.5}\n'
        b'{"id": 3, "name": "c\xc3\xa9", "score": null}\n',
    )
    assert read_table(path).equals(TABLE)
    assert read_table(path, format="json").equals(TABLE)


@pytest.mark.parametrize("suffix", [".arrow", ".feather", ".ipc"])
def test_arrow_ipc_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"d{suffix}"
    feather.write_feather(TABLE, path)
    assert read_table(path).equals(TABLE)


def test_arrow_ipc_stream(tmp_path: Path) -> None:
    path = tmp_path / "d.arrows"
    with ipc.new_stream(path, TABLE.schema) as writer:
        writer.write_table(TABLE)
    assert read_table(path, format="arrow").equals(TABLE)


def test_format_overrides_extension(tmp_path: Path) -> None:
    path = _write(tmp_path / "data.dat", b"a\n1\n")
    assert read_table(path, format="csv").column("a").to_pylist() == [1]


def test_pandas_polars_and_arrow_sources() -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", None]})
    expected = [{"a": 1, "b": "x"}, {"a": 2, "b": None}]
    assert read_table(frame).to_pylist() == expected
    assert read_table(frame.set_index("a")).column_names == ["b"]  # the index is not a column
    assert read_table(pl.DataFrame({"a": [1, 2], "b": ["x", None]})).to_pylist() == expected
    assert read_table(pl.DataFrame({"a": [1, 2]}).lazy()).column("a").to_pylist() == [1, 2]
    assert read_table(TABLE) is TABLE
    assert read_table(TABLE.to_batches()[0]).equals(TABLE)
    assert read_table(TABLE, columns=["name"]).column_names == ["name"]


def test_read_sql_over_a_csv_file(tmp_path: Path) -> None:
    _write(tmp_path / "d.csv", b"city,n\nParis,1\nLyon,2\nParis,3\n")
    table = read_sql("SELECT city, sum(n) AS total FROM 'd.csv' GROUP BY city ORDER BY city")
    assert table.to_pylist() == [{"city": "Lyon", "total": 2}, {"city": "Paris", "total": 4}]


def test_read_sql_over_in_memory_tables() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3]})
    query = "SELECT sum(t.a) AS s, count(u.name) AS n FROM t JOIN u ON t.a = u.id"
    table = read_sql(query, tables={"t": frame, "u": TABLE})
    assert table.to_pylist() == [{"s": 1 + 2 + 3, "n": 2}]


def test_read_sql_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"SQL query failed.*missing\.csv"):
        read_sql("SELECT * FROM 'missing.csv'")
    with pytest.raises(DataError, match=r"(?s)SQL query failed.*syntax error.*query: SELEC 1"):
        read_sql("SELEC 1")


def test_a_string_that_looks_like_sql_points_to_read_sql() -> None:
    _error("SELECT * FROM 'x.csv'", "looks like a SQL query", "read_sql")


# ---------------------------------------------------------------------- streaming


def test_iter_batches_parquet_is_bounded_and_complete(tmp_path: Path) -> None:
    table = pa.table({"x": range(10_000), "y": [str(i) for i in range(10_000)]})
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=1000)
    pq.write_table(table, tmp_path / "b.parquet", row_group_size=1000)
    batches = list(iter_batches(tmp_path, batch_size=3000, columns=["x"]))
    assert all(b.num_rows <= 3000 for b in batches)
    assert all(b.schema.names == ["x"] for b in batches)
    assert sum(b.num_rows for b in batches) == 20_000
    assert pa.Table.from_batches(batches).column("x").to_pylist() == list(range(10_000)) * 2


def test_iter_batches_csv_settles_types_over_the_whole_file(tmp_path: Path) -> None:
    rows = b"".join(b"%d,%d\n" % (i, i) for i in range(200_000))
    path = _write(tmp_path / "big.csv", b"a,b\n" + rows + b"1.5,x\n,\n")
    batches = list(iter_batches(path, batch_size=50_000))
    assert len(batches) > 4
    assert all(b.num_rows <= 50_000 for b in batches)
    assert {b.schema for b in batches} == {pa.schema([("a", pa.float64()), ("b", pa.string())])}
    assert pa.Table.from_batches(batches).equals(read_table(path))


def test_iter_batches_other_sources(tmp_path: Path) -> None:
    feather.write_feather(TABLE, tmp_path / "d.arrow")
    assert pa.Table.from_batches(list(iter_batches(tmp_path / "d.arrow"))).equals(TABLE)
    assert [b.num_rows for b in iter_batches(TABLE, batch_size=2)] == [2, 1]
    with pytest.raises(DataError, match="batch_size"):
        next(iter_batches(TABLE, batch_size=0))


def test_iter_batches_reports_bad_csv(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.csv", b"a,b\n1,2\n3\n")
    with pytest.raises(DataError, match=r"m\.csv, line 3: expected 2 fields"):
        list(iter_batches(path))


# ---------------------------------------------------------------------- bad input


def test_malformed_csv_row_names_file_line_and_counts(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.csv", b'a,b,c\n1,2,3\n"multi\nline",5,6\n4,5\n7,8,9\n')
    _error(path, "bad.csv, line 5", "expected 3 fields", "found 2", "'4,5'")
    path = _write(tmp_path / "long.csv", b"a,b\n1,2\n3,4,5\n")
    _error(path, "long.csv, line 3", "expected 2 fields", "found 3")


def test_empty_file(tmp_path: Path) -> None:
    for name in ("e.csv", "e.parquet", "e.jsonl", "e.arrow"):
        _error(_write(tmp_path / name, b""), name, "is empty")
    _error(_write(tmp_path / "blank.csv", b"\n\n"), "blank.csv", "is empty")
    _error(_write(tmp_path / "blank.jsonl", b"\n \n"), "blank.jsonl", "is empty")


def test_header_only_csv_is_zero_rows_of_strings(tmp_path: Path) -> None:
    table = read_table(_write(tmp_path / "h.csv", b"a,b\n"))
    assert table.num_rows == 0
    assert table.schema == pa.schema([("a", pa.string()), ("b", pa.string())])


def test_duplicate_column_names_name_both_positions(tmp_path: Path) -> None:
    _error(_write(tmp_path / "dup.csv", b"a,b,a\n1,2,3\n"), "dup.csv", "'a'", "columns 1 and 3")
    pq.write_table(
        pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["x", "x"]),
        tmp_path / "dup.parquet",
    )
    _error(tmp_path / "dup.parquet", "dup.parquet", "'x'", "columns 1 and 2")
    frame = pd.DataFrame([[1, 2, 3]], columns=["p", "q", "q"])
    _error(frame, "pandas DataFrame", "'q'", "columns 2 and 3")


def test_mixed_type_csv_column_reads_as_string(tmp_path: Path) -> None:
    table = read_table(_write(tmp_path / "m.csv", b"a,b\n1,2\nfoo,3\n2.5,4\n"))
    assert table.column("a").type == pa.string()
    assert table.column("a").to_pylist() == ["1", "foo", "2.5"]
    assert table.column("b").type == pa.int64()


def test_declared_type_that_does_not_parse_names_line_and_column(tmp_path: Path) -> None:
    body = b"a,b\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(100)) + b"7,seven\n"
    path = _write(tmp_path / "decl.csv", body)
    _error(
        path, "decl.csv, line 102, column 'b'", "'seven'", "int64", column_types={"b": pa.int64()}
    )


def test_mixed_type_jsonl_names_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.jsonl", b'{"a": 1}\n\n{"a": 2}\n{"a": "two"}\n')
    _error(path, "m.jsonl, line 4, column 'a'", "string", "number")


def test_invalid_json_names_line(tmp_path: Path) -> None:
    _error(_write(tmp_path / "b.jsonl", b'{"a": 1}\n{"a": \n'), "b.jsonl, line 2", "not valid JSON")


def test_mixed_type_pandas_column_names_row_and_column() -> None:
    frame = pd.DataFrame({"ok": [1, 2, 3], "a": [1, 2, "three"]})
    _error(frame, "row 2", "column 'a'", "str", "int")


def test_non_utf8_bytes_name_line_offset_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "latin.csv", b"id,name\n1,ann\n2,caf\xe9\n")
    _error(path, "latin.csv, line 3, column 'name'", "byte offset 19", "UTF-8", "e9")
    path = _write(tmp_path / "latin.jsonl", b'{"a": "x"}\n{"a": "caf\xe9"}\n')
    _error(path, "latin.jsonl, line 2", "byte offset 21", "UTF-8")


def test_non_utf8_bytes_in_a_declared_string_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "l.csv", b"a,b\n1,x\n2,\xff\xfe\n")
    _error(path, "l.csv, line 3, column 'b'", "(ff)", column_types={"b": pa.string()})


def test_all_null_column_reads_typed_null(tmp_path: Path) -> None:
    table = read_table(_write(tmp_path / "n.csv", b"a,b\n1,\n2,NA\n"))
    assert table.column("b").type == pa.null()
    assert table.column("b").null_count == 2
    assert table.column("a").to_pylist() == [1, 2]
    table = read_table(_write(tmp_path / "n.jsonl", b'{"a": 1, "b": null}\n'))
    assert table.column("b").type == pa.null()


def test_missing_file_folder_and_pattern(tmp_path: Path) -> None:
    _error(tmp_path / "nope.csv", "nope.csv", "does not exist")
    _error(str(tmp_path / "nope" / "*.csv"), "*.csv", "no file matches")
    (tmp_path / "empty").mkdir()
    _error(tmp_path / "empty", "empty", "holds no data file")


def test_unsupported_format(tmp_path: Path) -> None:
    _error(_write(tmp_path / "book.xlsx", b"PK"), "book.xlsx", "unsupported format '.xlsx'")
    _error(_write(tmp_path / "d.csv", b"a\n1\n"), "unsupported format 'excel'", format="excel")
    _error(object(), "cannot read a builtins object")


def test_not_really_parquet_or_arrow(tmp_path: Path) -> None:
    _error(_write(tmp_path / "x.parquet", b"not parquet at all"), "x.parquet", "not a readable")
    _error(_write(tmp_path / "x.arrow", b"not arrow at all"), "x.arrow", "not an Arrow IPC")


def test_unknown_columns_are_listed(tmp_path: Path) -> None:
    _error(_write(tmp_path / "d.csv", b"a,b\n1,2\n"), "no column 'c'", "a, b", columns=["a", "c"])


def test_mixed_csv_and_parquet_folder_needs_a_format(tmp_path: Path) -> None:
    _write(tmp_path / "a.csv", b"x\n1\n")
    pq.write_table(pa.table({"x": [2]}), tmp_path / "b.parquet")
    _error(tmp_path, "several formats", "csv, parquet")
    assert read_table(str(tmp_path / "*.csv")).column("x").to_pylist() == [1]


def test_csv_dates_are_typed(tmp_path: Path) -> None:
    table = read_table(_write(tmp_path / "t.csv", b"d\n2024-01-02\n2024-03-04\n"))
    assert table.column("d").to_pylist() == [dt.date(2024, 1, 2), dt.date(2024, 3, 4)]


def test_streaming_a_folder_whose_later_file_lacks_a_column_gives_nulls(tmp_path: Path) -> None:
    """As read_table does: a column missing from one Parquet file of a folder is null there."""
    pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), tmp_path / "0.parquet")
    pq.write_table(pa.table({"a": [3]}), tmp_path / "1.parquet")
    expected = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 3, "b": None}]
    assert pa.Table.from_batches(list(iter_batches(tmp_path))).to_pylist() == expected
    both = iter_batches(tmp_path, columns=["b", "a"])
    assert pa.Table.from_batches(list(both)).to_pylist() == [
        {"b": r["b"], "a": r["a"]} for r in expected
    ]


def test_iter_batches_reads_small_dictionary_strings_as_dictionaries(tmp_path: Path) -> None:
    """``dictionary=`` columns that Parquet stores with a small dictionary come as dictionary
    arrays; a column whose dictionary Arrow's writer gave up on (over 1 MiB) and a column that is
    not text stay as they are; the values are the same either way, and every batch, including
    those of a later file that lacks a column, has one schema."""
    n = 60_000
    table = pa.table(
        {
            "colour": pa.array(["red", "green", None, "blue"] * (n // 4)),
            "serial": pa.array([f"serial-number-{i:012d}" for i in range(n)]),
            "x": pa.array(range(n), pa.int64()),
        }
    )
    pq.write_table(table, tmp_path / "0.parquet")
    pq.write_table(table.slice(0, 10).drop_columns(["colour"]), tmp_path / "1.parquet")
    batches = list(
        iter_batches(tmp_path, batch_size=25_000, dictionary=["colour", "serial", "x", "nope"])
    )
    assert {b.schema for b in batches} == {
        pa.schema(
            [
                ("colour", pa.dictionary(pa.int32(), pa.string())),
                ("serial", pa.string()),
                ("x", pa.int64()),
            ]
        )
    }
    read = pa.Table.from_batches(batches)
    assert read.column("colour").cast(pa.string()).to_pylist() == (
        table.column("colour").to_pylist() + [None] * 10
    )
    assert read.column("serial").to_pylist() == (
        table.column("serial").to_pylist() + table.column("serial").to_pylist()[:10]
    )
    # without dictionary=, plain strings as before; CSV ignores it
    assert pa.types.is_string(next(iter_batches(tmp_path / "0.parquet")).schema.field(0).type)
    table.slice(0, 100).to_pandas().to_csv(tmp_path / "c.csv", index=False)
    csv = next(iter_batches(tmp_path / "c.csv", dictionary=["colour"]))
    assert pa.types.is_string(csv.schema.field("colour").type)
