"""Dataset statistics: exact values on small tables, edge cases, and the merge property."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import statistics as pystats
from collections import Counter

import datasketches as ds
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiln.data import (
    DatasetStatistics,
    FeatureStatistics,
    Statistics,
    StatisticsAccumulator,
    _stats,
    generate_split_statistics,
    generate_statistics,
)
from kiln.data._stats import KLL_K
from kiln.errors import DataError

RANK_ERROR = 0.01


def _feature(table: pa.Table | list[pa.RecordBatch], name: str) -> FeatureStatistics:
    stats = generate_statistics(table).dataset()
    feature = stats.feature(name)
    assert feature is not None
    return feature


def _rank_ok(values: np.ndarray, q: float, rank: float, tol: float = RANK_ERROR) -> bool:
    """Whether ``q`` sits at normalized rank ``rank`` of ``values`` within ``tol``."""
    s = np.sort(values)
    lo = np.searchsorted(s, q, side="left") / len(s)
    hi = np.searchsorted(s, q, side="right") / len(s)
    return lo - tol <= rank <= hi + tol


def test_kll_k_meets_the_rank_error_bound() -> None:
    assert ds.kll_doubles_sketch.get_normalized_rank_error(KLL_K, False) <= RANK_ERROR


def test_numeric_statistics_match_numpy_exactly_on_a_small_table() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(10, 3, size=200)
    x[:7] = 0.0
    f = _feature(pa.table({"x": x}), "x")
    assert f.type == "FLOAT"
    assert (f.count, f.num_missing) == (200, 0)
    n = f.numeric
    assert n is not None
    assert n.mean == pytest.approx(np.mean(x), rel=1e-12)
    assert n.std_dev == pytest.approx(np.std(x), rel=1e-12)
    assert n.std_dev == pytest.approx(pystats.pstdev(x.tolist()), rel=1e-12)
    assert (n.min, n.max, n.num_zeros) == (x.min(), x.max(), 7)
    s = np.sort(x)
    assert n.median in (s[99], s[100])  # the sketch holds every value below k: exact
    # Equal-width histogram: same buckets and counts as numpy's.
    counts, edges = np.histogram(x, bins=10)
    assert [b.count for b in n.histogram] == counts.tolist()
    assert [b.low for b in n.histogram] == pytest.approx(edges[:-1].tolist())
    assert [b.high for b in n.histogram] == pytest.approx(edges[1:].tolist())
    # Quantiles histogram: 10 equal-mass buckets from min to max.
    assert [b.count for b in n.quantiles] == [20.0] * 10
    assert n.quantiles[0].low == x.min()
    assert n.quantiles[-1].high == x.max()
    for i, b in enumerate(n.quantiles[:-1]):
        assert b.high == n.quantiles[i + 1].low
        assert _rank_ok(x, b.high, (i + 1) / 10, tol=1 / 200)


def test_int_column_with_nulls() -> None:
    f = _feature(pa.table({"i": [3, None, 1, 0, 2, None]}), "i")
    assert f.type == "INT"
    assert (f.count, f.num_missing) == (4, 2)
    assert f.numeric is not None
    assert f.numeric.mean == 1.5
    assert f.numeric.std_dev == pytest.approx(math.sqrt(1.25))
    assert (f.numeric.min, f.numeric.max, f.numeric.num_zeros) == (0, 3, 1)
    assert f.string is None
    assert f.values_per_row is None


def test_nan_and_infinities_are_counted_apart() -> None:
    inf = math.inf
    col = pa.array([1.0, math.nan, inf, -inf, 3.0, None, inf, 0.0])
    f = _feature(pa.table({"x": col}), "x")
    n = f.numeric
    assert n is not None
    assert (f.count, f.num_missing) == (7, 1)
    assert (n.num_nan, n.num_pos_inf, n.num_neg_inf) == (1, 2, 1)
    assert n.mean == pytest.approx(4 / 3)
    assert (n.min, n.max, n.num_zeros) == (0.0, 3.0, 1)
    assert sum(b.count for b in n.histogram) == 3
    assert sum(b.count for b in n.quantiles) == pytest.approx(3)


def test_only_nan_values_give_counts_and_no_moments() -> None:
    f = _feature(pa.table({"x": [math.nan, math.nan]}), "x")
    assert f.numeric is not None
    assert f.numeric.num_nan == 2
    assert f.numeric.mean is None
    assert f.numeric.median is None
    assert f.numeric.histogram == []
    assert f.numeric.quantiles == []
    Statistics.from_json(generate_statistics(pa.table({"x": [math.nan]})).to_json())


def test_values_near_the_float_limits_do_not_break_the_json() -> None:
    big = np.finfo(np.float64).max
    f = _feature(pa.table({"x": [big, -big, big, 0.0]}), "x")
    assert f.numeric is not None
    assert (f.numeric.min, f.numeric.max) == (-big, big)
    assert f.numeric.std_dev is None
    assert len(f.numeric.histogram) == 10
    assert sum(b.count for b in f.numeric.histogram) == 4
    assert all(math.isfinite(b.low) and math.isfinite(b.high) for b in f.numeric.histogram)
    Statistics.from_json(generate_statistics(pa.table({"x": [big, -big]})).to_json())


def test_constant_column_has_one_histogram_bucket() -> None:
    f = _feature(pa.table({"x": [5.0] * 4}), "x")
    assert f.numeric is not None
    assert [(b.low, b.high, b.count) for b in f.numeric.histogram] == [(5.0, 5.0, 4.0)]
    assert f.numeric.std_dev == 0.0


def test_string_statistics() -> None:
    values = ["paris", "lyon", "paris", None, "nice", "paris", "lyon", "é"]
    f = _feature(pa.table({"city": values}), "city")
    assert f.type == "STRING"
    assert (f.count, f.num_missing) == (7, 1)
    s = f.string
    assert s is not None
    assert f.numeric is None
    assert s.unique == 4
    assert [(t.value, t.count) for t in s.top_values] == [
        ("paris", 3),
        ("lyon", 2),
        ("nice", 1),
        ("é", 1),
    ]
    present = [v for v in values if v is not None]
    assert s.avg_length == pytest.approx(sum(len(v) for v in present) / 7)  # characters
    assert s.invalid_utf8 == 0


def test_dictionary_and_large_strings_are_strings() -> None:
    table = pa.table(
        {
            "d": pa.array(["a", "b", "a", None]).dictionary_encode(),
            "l": pa.array(["a", "b", "a", None], pa.large_string()),
        }
    )
    stats = generate_statistics(table).dataset()
    for name in ("d", "l"):
        f = stats.feature(name)
        assert f is not None
        assert f.type == "STRING"
        assert f.string is not None
        assert [(t.value, t.count) for t in f.string.top_values] == [("a", 2), ("b", 1)]


def test_bytes_count_invalid_utf8() -> None:
    col = pa.array([b"ok", b"\xff\xfe", b"ok", None, b"\xc3\xa9", b"\xff\xfe"], pa.binary())
    f = _feature(pa.table({"b": col}), "b")
    assert f.type == "BYTES"
    s = f.string
    assert s is not None
    assert s.invalid_utf8 == 2
    assert s.unique == 3
    assert s.top_values[0].value in ("ok", "\\xff\\xfe")
    assert {t.value: t.count for t in s.top_values} == {"ok": 2, "\\xff\\xfe": 2, "é": 1}
    assert s.avg_length == pytest.approx((2 + 2 + 2 + 2 + 2) / 5)  # bytes


def test_bool_has_fraction_true_and_top_values() -> None:
    f = _feature(pa.table({"b": [True, False, True, None, True]}), "b")
    assert f.type == "BOOL"
    assert (f.count, f.num_missing) == (4, 1)
    assert f.numeric is not None
    assert f.string is not None
    assert f.numeric.mean == 0.75
    assert f.numeric.num_zeros == 1
    assert [(t.value, t.count) for t in f.string.top_values] == [("true", 3), ("false", 1)]
    assert f.string.unique == 2


def test_datetimes_are_seconds_since_the_epoch() -> None:
    ts = [
        dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        None,
        dt.datetime(2024, 1, 3, tzinfo=dt.UTC),
    ]
    table = pa.table(
        {
            "ts": pa.array(ts, pa.timestamp("ms", tz="UTC")),
            "day": pa.array([dt.date(1970, 1, 2), dt.date(1970, 1, 4), None], pa.date32()),
        }
    )
    stats = generate_statistics(table).dataset()
    f = stats.feature("ts")
    assert f is not None
    assert f.type == "DATETIME"
    assert f.numeric is not None
    assert (f.count, f.num_missing) == (2, 1)
    assert f.numeric.min == ts[0].timestamp()  # type: ignore[union-attr]
    assert f.numeric.max == ts[2].timestamp()  # type: ignore[union-attr]
    assert f.numeric.mean == pytest.approx(dt.datetime(2024, 1, 2, tzinfo=dt.UTC).timestamp())
    d = stats.feature("day")
    assert d is not None
    assert d.type == "DATETIME"
    assert d.numeric is not None
    assert (d.numeric.min, d.numeric.max) == (86400.0, 3 * 86400.0)


def test_list_columns_have_values_per_row_and_item_statistics() -> None:
    table = pa.table(
        {
            "l": pa.array([[1, 2, 3], [], None, [4], [0, 0]], pa.list_(pa.int64())),
            "tags": pa.array([["a"], ["a", "b"], None, None, []], pa.large_list(pa.string())),
        }
    )
    stats = generate_statistics(table).dataset()
    f = stats.feature("l")
    assert f is not None
    assert f.type == "INT"
    assert (f.count, f.num_missing) == (4, 1)
    assert f.values_per_row is not None
    assert (f.values_per_row.min, f.values_per_row.max) == (0, 3)
    assert f.values_per_row.avg == 6 / 4
    assert f.numeric is not None
    assert f.numeric.mean == pytest.approx(10 / 6)
    assert f.numeric.num_zeros == 2
    t = stats.feature("tags")
    assert t is not None
    assert t.type == "STRING"
    assert t.string is not None
    assert t.values_per_row is not None
    assert t.values_per_row.avg == 1.0
    assert [(v.value, v.count) for v in t.string.top_values] == [("a", 2), ("b", 1)]


def test_all_null_columns() -> None:
    table = pa.table(
        {
            "n": pa.nulls(5),
            "f": pa.array([None] * 5, pa.float64()),
            "s": pa.array([None] * 5, pa.string()),
        }
    )
    stats = generate_statistics(table).dataset()
    for name in ("n", "f", "s"):
        f = stats.feature(name)
        assert f is not None
        assert (f.count, f.num_missing) == (0, 5)
    f = stats.feature("f")
    assert f is not None
    assert f.type == "FLOAT"
    assert f.numeric is not None
    assert f.numeric.mean is None
    assert f.numeric.histogram == []
    n = stats.feature("n")
    assert n is not None
    assert n.type == "STRING"
    assert n.string is not None
    assert n.string.unique == 0
    assert Statistics.from_json(Statistics([stats]).to_json()).dataset() == stats


def test_null_column_takes_the_type_of_a_later_batch() -> None:
    batches = [
        pa.record_batch({"x": pa.nulls(2)}),
        pa.record_batch({"x": pa.array([1.5, 2.5])}),
    ]
    f = _feature(batches, "x")
    assert f.type == "FLOAT"
    assert (f.count, f.num_missing) == (2, 2)
    assert f.numeric is not None
    assert f.numeric.mean == 2.0


def test_mixed_types_arrive_as_strings() -> None:
    # What a CSV reader hands over for a column holding numbers and words alike.
    values = ["1", "a", "2.5", None, "1", "true", ""]
    f = _feature(pa.table({"mixed": values}), "mixed")
    assert f.type == "STRING"
    assert f.string is not None
    assert f.string.unique == 5
    assert f.string.top_values[0].value == "1"
    assert f.string.top_values[0].count == 2
    assert f.string.avg_length == pytest.approx(sum(len(v) for v in values if v) / 6)


def test_top_values_keep_1000_and_break_ties_by_value() -> None:
    values = [f"v{i:05d}" for i in range(1500)] * 2 + ["z"] * 3
    f = _feature(pa.table({"s": values}), "s")
    assert f.string is not None
    top = f.string.top_values
    assert len(top) == 1000
    assert (top[0].value, top[0].count) == ("z", 3)
    assert [t.value for t in top[1:4]] == ["v00000", "v00001", "v00002"]
    assert f.string.unique == 1501


def test_int_and_float_batches_merge_to_float() -> None:
    batches = [pa.record_batch({"x": [1, 2]}), pa.record_batch({"x": [0.5]})]
    f = _feature(batches, "x")
    assert f.type == "FLOAT"
    assert f.numeric is not None
    assert f.numeric.mean == pytest.approx(3.5 / 3)


def test_a_column_missing_from_a_batch_counts_as_missing() -> None:
    batches = [pa.record_batch({"a": [1, 2], "b": ["x", "y"]}), pa.record_batch({"a": [3]})]
    stats = generate_statistics(batches).dataset()
    assert stats.num_examples == 3
    b = stats.feature("b")
    assert b is not None
    assert (b.count, b.num_missing) == (2, 1)


def test_bad_input_raises_data_error() -> None:
    with pytest.raises(DataError, match="Arrow"):
        generate_statistics(42)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="Arrow"):
        generate_statistics([{"x": 1}])  # type: ignore[list-item]
    with pytest.raises(DataError, match=r"'s'.*struct"):
        generate_statistics(pa.table({"s": [{"a": 1}]}))
    with pytest.raises(DataError, match="'x' is INT in one batch and STRING"):
        generate_statistics([pa.record_batch({"x": [1]}), pa.record_batch({"x": ["a"]})])
    dup = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["x", "x"])
    with pytest.raises(DataError, match="more than once"):
        generate_statistics(dup)
    with pytest.raises(DataError, match="exact_keys_cap"):
        StatisticsAccumulator(exact_keys_cap=10)


def test_split_statistics_and_json_round_trip() -> None:
    stats = generate_split_statistics(
        {
            "train": pa.table({"x": [1.0, 2.0, math.nan], "s": ["a", None, "b"]}),
            "eval": pa.table({"x": [3.0], "s": ["c"]}),
        }
    )
    assert [d.name for d in stats.datasets] == ["train", "eval"]
    assert stats.dataset("eval").num_examples == 1
    text = stats.to_json()
    assert Statistics.from_json(text) == stats
    assert '"format": "kiln.statistics"' in text


def test_empty_stream_gives_an_empty_dataset() -> None:
    stats = generate_statistics(iter([]), name="none").dataset()
    assert stats == DatasetStatistics(name="none", num_examples=0, features=[])


# --- the merge property --------------------------------------------------------------------------

_floats = st.one_of(
    st.none(),
    st.floats(-1e6, 1e6),
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.sampled_from([0.0, 1.0, -2.5]),
)
_ints = st.one_of(st.none(), st.integers(-(2**40), 2**40), st.just(0))
_strings = st.one_of(st.none(), st.sampled_from(["a", "bb", "ccc", "é", ""]), st.text(max_size=4))
_lists = st.one_of(st.none(), st.lists(st.integers(-5, 5), max_size=4))


@st.composite
def _tables_and_cuts(draw: st.DrawFn) -> tuple[pa.Table, list[int]]:
    n = draw(st.integers(0, 60))
    table = pa.table(
        {
            "f": pa.array(draw(st.lists(_floats, min_size=n, max_size=n)), pa.float64()),
            "i": pa.array(draw(st.lists(_ints, min_size=n, max_size=n)), pa.int64()),
            "s": pa.array(draw(st.lists(_strings, min_size=n, max_size=n)), pa.string()),
            "b": pa.array(
                draw(st.lists(st.one_of(st.none(), st.booleans()), min_size=n, max_size=n)),
                pa.bool_(),
            ),
            "l": pa.array(draw(st.lists(_lists, min_size=n, max_size=n)), pa.list_(pa.int64())),
        }
    )
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=4)))
    return table, cuts


def _shards(table: pa.Table, cuts: list[int]) -> list[pa.Table]:
    edges = [0, *cuts, table.num_rows]
    return [table.slice(a, b - a) for a, b in itertools.pairwise(edges)]


def _assert_same(one: DatasetStatistics, merged: DatasetStatistics) -> None:
    assert merged.num_examples == one.num_examples
    assert [f.name for f in merged.features] == [f.name for f in one.features]
    for a, b in zip(one.features, merged.features, strict=True):
        assert (a.type, a.count, a.num_missing) == (b.type, b.count, b.num_missing), a.name
        assert a.values_per_row == b.values_per_row or (
            a.values_per_row is not None
            and b.values_per_row is not None
            and (a.values_per_row.min, a.values_per_row.max)
            == (b.values_per_row.min, b.values_per_row.max)
            and a.values_per_row.avg == pytest.approx(b.values_per_row.avg)
        )
        if a.numeric is not None:
            x, y = a.numeric, b.numeric
            assert y is not None
            exact = ("num_zeros", "min", "max", "num_nan", "num_pos_inf", "num_neg_inf")
            for field in exact:
                assert getattr(x, field) == getattr(y, field), (a.name, field)
            for field in ("mean", "std_dev"):
                xv, yv = getattr(x, field), getattr(y, field)
                assert (xv is None) == (yv is None)
                if xv is not None:
                    assert yv == pytest.approx(xv, rel=1e-9, abs=1e-9 * (1 + abs(x.max or 0)))
            # Below k values the sketch is exact, so shards change nothing.
            assert x.median == y.median
            assert x.histogram == y.histogram
            assert x.quantiles == pytest.approx(y.quantiles) if x.quantiles else not y.quantiles
        else:
            assert b.numeric is None
        if a.string is not None:
            assert b.string is not None
            assert a.string.top_values == b.string.top_values
            assert a.string.unique == b.string.unique
            assert a.string.invalid_utf8 == b.string.invalid_utf8
            if a.string.avg_length is None:
                assert b.string.avg_length is None
            else:
                assert b.string.avg_length == pytest.approx(a.string.avg_length)
        else:
            assert b.string is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tables_and_cuts())
def test_merged_shards_equal_one_pass(case: tuple[pa.Table, list[int]]) -> None:
    table, cuts = case
    one = generate_statistics(table).dataset()
    shards = _shards(table, cuts)
    # Merging per-shard accumulators ...
    merged = StatisticsAccumulator()
    for shard in shards:
        acc = StatisticsAccumulator()
        acc.update(shard)
        merged.merge(acc)
    _assert_same(one, merged.result())
    # ... and streaming the shards as batches through one accumulator, give the one-pass result.
    if table.num_rows == 0:
        return  # no batches at all: no columns either
    streamed = generate_statistics(b for s in shards for b in s.to_batches()).dataset()
    _assert_same(one, streamed)


@pytest.mark.parametrize("cap", [None, 10_000], ids=["exact", "sketch"])
def test_merged_sketches_stay_within_one_percent_rank_error(
    cap: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below the cap values are kept exactly; past it (forced small here) the KLL sketch answers,
    shards mixing both included."""
    if cap is not None:
        monkeypatch.setattr(_stats, "EXACT_VALUES_CAP", cap)
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.lognormal(0, 1, 150_000), rng.normal(-3, 0.5, 50_000)])
    rng.shuffle(x)
    table = pa.table({"x": x, "s": (x * 3).astype(np.int64).astype(str)})
    one = generate_statistics(table).dataset()
    merged = StatisticsAccumulator()
    for shard in _shards(table, [1, 30_000, 31_000, 120_000]):
        acc = StatisticsAccumulator()
        acc.update(shard)
        merged.merge(acc)
    result = merged.result()
    _assert_exact_fields(one, result)
    for stats in (one, result):
        f = stats.feature("x")
        assert f is not None
        assert f.numeric is not None
        assert f.numeric.median is not None
        assert _rank_ok(x, f.numeric.median, 0.5)
        for i, b in enumerate(f.numeric.quantiles[:-1]):
            assert _rank_ok(x, b.high, (i + 1) / 10)
        # Histogram counts from the sketch's CDF: each edge within the rank error.
        cum = np.cumsum([b.count for b in f.numeric.histogram])
        for b, c in zip(f.numeric.histogram, cum, strict=True):
            true = np.count_nonzero(x <= b.high) if b is f.numeric.histogram[-1] else None
            below = np.count_nonzero(x < b.high) if true is None else true
            assert abs(c - below) <= RANK_ERROR * len(x)
    top = Counter((x * 3).astype(np.int64).astype(str).tolist()).most_common()
    s = result.feature("s")
    assert s is not None
    assert s.string is not None
    assert s.string.unique == len(top)
    expected = sorted(top, key=lambda kv: (-kv[1], kv[0]))[:1000]
    assert [(t.value, t.count) for t in s.string.top_values] == expected


def test_statistics_are_deterministic_below_the_exact_cap() -> None:
    """Two runs on the same data give the same bytes: artifacts fingerprint stably."""
    rng = np.random.default_rng(3)
    table = pa.table({"x": rng.normal(size=300_000), "k": rng.integers(0, 9, 300_000)})
    runs = {generate_statistics(table).to_json() for _ in range(3)}
    assert len(runs) == 1
    median = generate_statistics(table).dataset().feature("x")
    assert median is not None
    assert median.numeric is not None
    values = table["x"].to_numpy()
    assert median.numeric.median == float(np.quantile(values, 0.5, method="inverted_cdf"))


def _assert_exact_fields(one: DatasetStatistics, merged: DatasetStatistics) -> None:
    for a, b in zip(one.features, merged.features, strict=True):
        assert (a.count, a.num_missing) == (b.count, b.num_missing)
        if a.numeric is not None and b.numeric is not None:
            assert (a.numeric.min, a.numeric.max) == (b.numeric.min, b.numeric.max)
            assert a.numeric.mean == pytest.approx(b.numeric.mean, rel=1e-12)
            assert a.numeric.std_dev == pytest.approx(b.numeric.std_dev, rel=1e-12)
        if a.string is not None and b.string is not None:
            assert a.string.top_values == b.string.top_values


def test_high_cardinality_counts_are_capped_and_distinct_comes_from_the_sketch() -> None:
    # 5,000 distinct values with a cap of 1,000 exact keys, in shards and batches.
    values = np.array([f"id{i}" for i in range(5000)] + ["hot"] * 50)
    rng = np.random.default_rng(3)
    rng.shuffle(values)
    table = pa.table({"id": values})
    merged = StatisticsAccumulator(exact_keys_cap=1000)
    for shard in _shards(table, [700, 2500, 4000]):
        acc = StatisticsAccumulator(exact_keys_cap=1000)
        for batch in shard.to_batches(max_chunksize=500):
            acc.update(batch)
        merged.merge(acc)
    f = merged.result().feature("id")
    assert f is not None
    assert f.string is not None
    assert f.count == 5050
    assert abs(f.string.unique - 5001) <= 0.05 * 5001  # HLL, lg_k 12: ~1.6 % error
    assert (f.string.top_values[0].value, f.string.top_values[0].count) == ("hot", 50)
    assert len(f.string.top_values) == 1000
    assert merged._features["id"].values is not None
    counts = merged._features["id"].values.counts
    assert counts is not None
    assert counts.height <= 1000


def test_a_million_distinct_ids_keep_memory_bounded() -> None:
    n = 1_000_000
    ids = pa.array(np.char.add("user-", np.arange(n).astype(str)))
    acc = StatisticsAccumulator()
    acc.update(pa.table({"id": ids}))
    f = acc.result().feature("id")
    assert f is not None
    assert f.string is not None
    assert abs(f.string.unique - n) <= 0.05 * n
    assert len(f.string.top_values) == 1000
    assert all(t.count == 1 for t in f.string.top_values)
    values = acc._features["id"].values
    assert values is not None
    assert values.counts is not None
    assert values.counts.height <= acc.exact_keys_cap


def test_threads_give_the_same_statistics() -> None:
    rng = np.random.default_rng(11)
    n = 70_000  # large enough for the thread pool
    x = rng.normal(size=n)
    table = pa.table({"x": x, "i": rng.integers(0, 9, n), "s": rng.integers(0, 50, n).astype(str)})
    one = generate_statistics(table, threads=1).dataset()
    two = generate_statistics(table, threads=2).dataset()
    _assert_exact_fields(one, two)
    f = two.feature("x")
    assert f is not None
    assert f.numeric is not None
    assert f.numeric.median is not None
    assert _rank_ok(x, f.numeric.median, 0.5)
