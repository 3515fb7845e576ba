"""Deterministic splits: by hash of a key or the whole row, and in time order."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.data import split_by_time, split_hashes, split_table
from kiln.errors import DataError


def _table(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "id": pa.array(np.arange(n)),
            "user": pa.array([f"u{i % 97}" for i in range(n)]),
            "x": pa.array(rng.normal(size=n)),
            "when": pa.array(
                (np.datetime64("2024-01-01T00:00:00") + rng.integers(0, 10**6, n)).astype(
                    "datetime64[us]"
                )
            ),
        }
    )


def _ids(parts: dict[str, pa.Table]) -> dict[str, list[int]]:
    return {name: sorted(t.column("id").to_pylist()) for name, t in parts.items()}


# ---------------------------------------------------------------------- hash split


def test_the_hash_is_md5_of_the_documented_canonical_text() -> None:
    table = pa.table({"a": [1, None], "b": ["x|y", ""], "c": [None, 2.5]})
    expected = []
    for text in ("7|v1:1v3:x|yn", "7|nv0:v3:2.5"):
        top = int(hashlib.md5(text.encode()).hexdigest()[:16], 16)
        expected.append(top / 2.0**64)
    assert split_hashes(table, seed=7).tolist() == expected


def test_a_value_hashes_by_its_text_whatever_its_type() -> None:
    ints = pa.table({"k": pa.array([5, 6], pa.int64())})
    small = pa.table({"k": pa.array([5, 6], pa.int8())})
    text = pa.table({"k": ["5", "6"]})
    assert split_hashes(ints).tolist() == split_hashes(small).tolist()
    assert split_hashes(ints).tolist() == split_hashes(text).tolist()


def test_null_differs_from_the_string_null_and_from_empty() -> None:
    table = pa.table({"k": [None, "NULL", "", "n"]})
    assert len(set(split_hashes(table).tolist())) == 4


def test_split_is_the_same_whatever_the_row_order() -> None:
    table = _table(5000)
    parts = split_table(table, {"train": 0.6, "eval": 0.3, "test": 0.1})
    shuffled = table.take(np.random.default_rng(1).permutation(table.num_rows))
    assert _ids(split_table(shuffled, {"train": 0.6, "eval": 0.3, "test": 0.1})) == _ids(parts)


def test_split_is_the_same_whatever_the_chunking() -> None:
    table = _table(5000)
    ratios = {"train": 0.7, "eval": 0.3}
    parts = split_table(table, ratios)
    pieces = [table.slice(i, 137) for i in range(0, table.num_rows, 137)]
    chunked = pa.concat_tables(pieces)
    assert chunked.column("id").num_chunks > 30
    assert _ids(split_table(chunked, ratios)) == _ids(parts)
    per_piece: dict[str, list[int]] = {"train": [], "eval": []}
    for piece in pieces:  # splitting each file or batch apart gives the same result
        for name, part in split_table(piece.to_batches()[0], ratios).items():
            per_piece[name] += part.column("id").to_pylist()
    assert {k: sorted(v) for k, v in per_piece.items()} == _ids(parts)


def test_each_split_keeps_the_input_order() -> None:
    table = _table(2000).take(np.random.default_rng(3).permutation(2000))
    position = {row_id: i for i, row_id in enumerate(table.column("id").to_pylist())}
    for part in split_table(table).values():
        positions = [position[i] for i in part.column("id").to_pylist()]
        assert positions == sorted(positions)
    assert sum(p.num_rows for p in split_table(table).values()) == 2000


def test_ratios_are_accurate_on_100k_rows() -> None:
    table = pa.table({"id": np.arange(100_000)})
    ratios = {"train": 0.7, "eval": 0.2, "test": 0.1}
    parts = split_table(table, ratios)
    assert list(parts) == ["train", "eval", "test"]
    for name, ratio in ratios.items():
        assert abs(parts[name].num_rows / 100_000 - ratio) < 0.01, (name, parts[name].num_rows)
    assert sorted(np.concatenate([p.column("id").to_numpy() for p in parts.values()])) == list(
        range(100_000)
    )


def test_key_split_keeps_all_rows_of_a_key_together() -> None:
    table = _table(5000)
    parts = split_table(table, {"train": 0.5, "eval": 0.5}, key="user")
    users = {name: set(t.column("user").to_pylist()) for name, t in parts.items()}
    assert users["train"]
    assert users["eval"]
    assert not users["train"] & users["eval"]
    assert sum(t.num_rows for t in parts.values()) == 5000


def test_the_seed_changes_the_assignment_deterministically() -> None:
    table = _table(2000)
    zero, one = split_table(table, seed=0), split_table(table, seed=1)
    assert _ids(zero) != _ids(one)
    assert _ids(split_table(table, seed=1)) == _ids(one)


def test_identical_rows_share_a_split() -> None:
    table = pa.table({"a": [1, 2, 1, 2, 1, 2] * 50, "b": ["x", "y", "x", "y", "x", "y"] * 50})
    parts = split_table(table, {"a": 0.5, "b": 0.5})
    for part in parts.values():
        assert part.num_rows in (0, 150, 300)


def test_many_types_hash() -> None:
    table = pa.table(
        {
            "list": [[1, 2], None],
            "struct": [{"p": 1}, {"p": None}],
            "bin": [b"\xff\x00", b""],
            "date": [dt.date(2024, 1, 1), None],
            "ts": pa.array(
                [dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC), None], pa.timestamp("s", "UTC")
            ),
            "null": pa.nulls(2),
            "bool": [True, False],
        }
    )
    hashes = split_hashes(table)
    assert len(set(hashes.tolist())) == 2
    assert all(0 <= h < 1 for h in hashes)


def test_empty_tables_split_into_empty_tables() -> None:
    parts = split_table(pa.table({"a": pa.array([], pa.int64())}))
    assert {k: v.num_rows for k, v in parts.items()} == {"train": 0, "eval": 0}
    assert parts["train"].schema == pa.schema([("a", pa.int64())])


@pytest.mark.parametrize(
    ("ratios", "needle"),
    [
        ({"train": 0.8, "eval": 0.3}, "sum to 1"),
        ({"train": 0.5}, "sum to 1"),
        ({"train": 1.2, "eval": -0.2}, "'eval' must be positive"),
        ({"train": 1.0, "eval": 0.0}, "'eval' must be positive"),
        ({"train": float("nan"), "eval": 0.5}, "'train' must be positive"),
        ({}, "non-empty mapping"),
        ({"": 1.0}, "non-empty strings"),
        ({"train": "0.8", "eval": 0.2}, "must be a number"),
    ],
)
def test_bad_ratios(ratios: dict[str, float], needle: str) -> None:
    with pytest.raises(DataError, match=needle):
        split_table(_table(10), ratios)
    with pytest.raises(DataError, match=needle):
        split_by_time(_table(10), "when", ratios)


def test_ratios_within_tolerance_are_accepted() -> None:
    parts = split_table(_table(100), {"a": 0.1, "b": 0.2, "c": 0.7 + 1e-12})
    assert sum(p.num_rows for p in parts.values()) == 100


def test_unknown_key_column() -> None:
    with pytest.raises(DataError, match=r"no key column 'nope'.*id, user, x, when"):
        split_table(_table(10), key="nope")


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(-5, 5)), st.one_of(st.none(), st.text(max_size=3))
        ),
        min_size=1,
        max_size=40,
    ),
    cut=st.integers(1, 39),
    seed=st.integers(0, 2**31),
)
def test_hash_is_a_function_of_the_row_alone(
    values: list[tuple[int | None, str | None]], cut: int, seed: int
) -> None:
    table = pa.table(
        {
            "a": pa.array([v[0] for v in values], pa.int64()),
            "b": pa.array([v[1] for v in values], pa.string()),
        }
    )
    whole = split_hashes(table, seed=seed)
    cut = min(cut, len(values))
    head, tail = (
        split_hashes(table.slice(0, cut), seed=seed),
        split_hashes(table.slice(cut), seed=seed),
    )
    assert np.concatenate([head, tail]).tolist() == whole.tolist()
    reversed_ = split_hashes(table.take(pa.array(range(len(values) - 1, -1, -1))), seed=seed)
    assert reversed_[::-1].tolist() == whole.tolist()
    for row, value in enumerate(values):
        for other in range(row):
            if values[other] == value:
                assert whole[other] == whole[row]


def test_a_million_rows_split_in_proportion() -> None:
    """Speed is measured in bench/data_validation.py; here, that a large table splits right."""
    table = pa.table({"id": np.arange(1_000_000), "x": np.arange(1_000_000) * 0.5})
    parts = split_table(table)
    assert sum(p.num_rows for p in parts.values()) == 1_000_000
    assert abs(parts["train"].num_rows / 1_000_000 - 0.8) < 0.002


# ---------------------------------------------------------------------- time split


def test_time_split_orders_by_the_column() -> None:
    table = _table(1000)
    parts = split_by_time(table, "when", {"train": 0.6, "eval": 0.3, "test": 0.1})
    assert [p.num_rows for p in parts.values()] == [600, 300, 100]
    train, eval_, test = (p.column("when").to_pylist() for p in parts.values())
    assert max(train) < min(eval_)
    assert max(eval_) < min(test)


def test_time_split_keeps_input_order_within_each_split() -> None:
    table = _table(500)
    for part in split_by_time(table, "when").values():
        ids = part.column("id").to_pylist()
        assert ids == sorted(ids)


def test_time_split_ties_at_a_boundary_go_to_the_earlier_split() -> None:
    days = [dt.date(2024, 1, d) for d in (1, 1, 2, 2, 2, 2, 3, 3, 4, 5)]
    table = pa.table({"day": days, "i": range(10)})
    parts = split_by_time(table, "day", {"train": 0.3, "eval": 0.5, "test": 0.2})
    assert parts["train"].column("i").to_pylist() == [0, 1, 2, 3, 4, 5]
    assert parts["eval"].column("i").to_pylist() == [6, 7]
    assert parts["test"].column("i").to_pylist() == [8, 9]


def test_time_split_all_ties_leaves_later_splits_empty() -> None:
    table = pa.table({"t": [1] * 10})
    parts = split_by_time(table, "t", {"train": 0.5, "eval": 0.5})
    assert parts["train"].num_rows == 10
    assert parts["eval"].num_rows == 0


def test_time_split_nulls_are_an_error_naming_column_and_count() -> None:
    table = pa.table({"t": [1, None, 3, None]})
    with pytest.raises(DataError, match="column 't' has 2 null"):
        split_by_time(table, "t")
    with pytest.raises(DataError, match="column 'f' has 1 null or NaN"):
        split_by_time(pa.table({"f": [1.0, float("nan")]}), "f")


def test_time_split_unknown_or_unordered_column() -> None:
    with pytest.raises(DataError, match="no column 'nope'"):
        split_by_time(_table(5), "nope")
    with pytest.raises(DataError, match="no time order"):
        split_by_time(pa.table({"l": [[1], [2]]}), "l")
