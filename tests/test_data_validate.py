"""Validation against a schema and a baseline: TFDV's anomaly types, and its drift/skew numbers."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Literal

import pytest

from conftest import ANOMALY_KEYS
from kiln.data import (
    Anomaly,
    Bucket,
    Comparator,
    DatasetStatistics,
    FeatureStatistics,
    NumericStatistics,
    Range,
    Schema,
    Statistics,
    StringStatistics,
    TopValue,
    ValueCount,
    ValuesPerRow,
    infer_schema,
    jensen_shannon_divergence,
    linf_distance,
    validate_statistics,
)
from kiln.errors import DataError


def histogram(bounds: list[float], counts: list[float]) -> list[Bucket]:
    return [Bucket(lo, hi, c) for lo, hi, c in zip(bounds, bounds[1:], counts, strict=False)]


def num_feature(
    name: str,
    type_: str = "INT",
    *,
    count: int = 100,
    missing: int = 0,
    lo: float = 0.0,
    hi: float = 10.0,
    counts: list[float] | None = None,
    nan: int = 0,
    inf: int = 0,
) -> FeatureStatistics:
    counts = counts if counts is not None else [10.0] * 10
    width = (hi - lo) / len(counts)
    bounds = [lo + i * width for i in range(len(counts) + 1)]
    return FeatureStatistics(
        name,
        type_,
        count,
        missing,
        numeric=NumericStatistics(
            mean=(lo + hi) / 2,
            std_dev=1.0,
            num_zeros=0,
            min=lo,
            median=(lo + hi) / 2,
            max=hi,
            num_nan=nan,
            num_pos_inf=inf,
            histogram=histogram(bounds, counts),
        ),
    )


def str_feature(name: str, values: dict[str, int], *, missing: int = 0) -> FeatureStatistics:
    tops = [TopValue(v, c) for v, c in sorted(values.items(), key=lambda kv: -kv[1])]
    return FeatureStatistics(
        name,
        "STRING",
        sum(values.values()),
        missing,
        string=StringStatistics(unique=len(values), top_values=tops),
    )


def clean() -> DatasetStatistics:
    return DatasetStatistics(
        "train",
        100,
        [
            num_feature("age", "INT", lo=18, hi=68),
            num_feature("score", "FLOAT", lo=0.0, hi=1.0),
            str_feature("city", {"Paris": 50, "Lyon": 30, "Nice": 20}),
            FeatureStatistics(
                "tags",
                "STRING",
                100,
                0,
                values_per_row=ValuesPerRow(2, 2, 2.0),
                string=StringStatistics(2, [TopValue("a", 120), TopValue("b", 80)]),
            ),
            num_feature("label", "INT", lo=0, hi=1, counts=[60, 40]),
        ],
    )


def schema_for(stats: DatasetStatistics) -> Schema:
    schema = infer_schema(stats, infer_ranges=True)
    schema.set_drift_threshold("city", 0.1)
    schema.set_drift_threshold("score", 0.1)
    schema.set_skew_threshold("city", 0.1)
    schema.set_skew_threshold("score", 0.1)
    schema.set_environments("label", not_in_environment=["SERVING"])
    return schema


def only(anomalies: list[Anomaly]) -> Anomaly:
    assert len(anomalies) == 1, [a.to_dict() for a in anomalies]
    return anomalies[0]


# -- clean data -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["drift", "skew"])
def test_clean_data_has_no_anomaly(mode: Literal["drift", "skew"]) -> None:
    stats = clean()
    schema = schema_for(stats)
    assert validate_statistics(stats, schema) == []
    assert validate_statistics(stats, schema, baseline=clean(), mode=mode) == []
    assert validate_statistics(Statistics([stats]), schema, environment="TRAINING") == []


# -- every anomaly type, each from one crafted change -----------------------------------------


def drop(name: str) -> Callable[[DatasetStatistics], None]:
    def change(d: DatasetStatistics) -> None:
        d.features = [f for f in d.features if f.name != name]

    return change


def add_feature(d: DatasetStatistics) -> None:
    d.features.append(num_feature("surprise"))


def new_city(d: DatasetStatistics) -> None:
    d.features[2] = str_feature("city", {"Paris": 50, "Lyon": 30, "Nice": 10, "Metz": 10})


def fewer_present(d: DatasetStatistics) -> None:
    d.features[0] = num_feature("age", lo=18, hi=68, count=90, missing=10)


def nan_scores(d: DatasetStatistics) -> None:
    d.features[1] = num_feature("score", "FLOAT", lo=0.0, hi=1.0, nan=3)


def inf_scores(d: DatasetStatistics) -> None:
    d.features[1] = num_feature("score", "FLOAT", lo=0.0, hi=1.0, inf=2)


def scores_as_strings(d: DatasetStatistics) -> None:
    d.features[1] = str_feature("score", {"0.5": 60, "n/a": 40})


def ages_as_strings(d: DatasetStatistics) -> None:
    d.features[0] = str_feature("age", {"42": 60, "unknown": 40})


def ages_as_floats(d: DatasetStatistics) -> None:
    d.features[0] = num_feature("age", "FLOAT", lo=18, hi=68)


def cities_as_ints(d: DatasetStatistics) -> None:
    d.features[2] = num_feature("city", "INT")


def young(d: DatasetStatistics) -> None:
    d.features[0] = num_feature("age", lo=3, hi=68)


def old(d: DatasetStatistics) -> None:
    d.features[0] = num_feature("age", lo=18, hi=130)


def negative_scores(d: DatasetStatistics) -> None:
    d.features[1] = num_feature("score", "FLOAT", lo=-0.5, hi=1.0)


def big_scores(d: DatasetStatistics) -> None:
    d.features[1] = num_feature("score", "FLOAT", lo=0.0, hi=2.5)


def short_tags(d: DatasetStatistics) -> None:
    assert d.features[3].values_per_row is not None
    d.features[3].values_per_row = ValuesPerRow(1, 2, 1.5)


def long_tags(d: DatasetStatistics) -> None:
    assert d.features[3].values_per_row is not None
    d.features[3].values_per_row = ValuesPerRow(2, 4, 2.5)


@pytest.mark.parametrize(
    ("change", "feature", "anomaly_type", "value", "threshold"),
    [
        (drop("age"), "age", "SCHEMA_MISSING_COLUMN", None, None),
        (add_feature, "surprise", "SCHEMA_NEW_COLUMN", None, None),
        (new_city, "city", "ENUM_TYPE_UNEXPECTED_STRING_VALUES", 0.1, 0.0),
        (fewer_present, "age", "FEATURE_TYPE_LOW_FRACTION_PRESENT", 0.9, 1.0),
        (nan_scores, "score", "FLOAT_TYPE_HAS_NAN", 3, 0),
        (inf_scores, "score", "FLOAT_TYPE_HAS_INF", 2, 0),
        (scores_as_strings, "score", "FLOAT_TYPE_STRING_NOT_FLOAT", None, None),
        (ages_as_strings, "age", "INT_TYPE_NOT_INT_STRING", None, None),
        (ages_as_floats, "age", "INT_TYPE_INT_EXPECTED", None, None),
        (cities_as_ints, "city", "ENUM_TYPE_INT_NOT_STRING", None, None),
        (young, "age", "INT_TYPE_SMALL_INT", 3, 18),
        (old, "age", "INT_TYPE_BIG_INT", 130, 68),
        (negative_scores, "score", "FLOAT_TYPE_SMALL_FLOAT", -0.5, 0.0),
        (big_scores, "score", "FLOAT_TYPE_BIG_FLOAT", 2.5, 1.0),
        (short_tags, "tags", "FEATURE_TYPE_LOW_NUMBER_VALUES", 1, 2),
        (long_tags, "tags", "FEATURE_TYPE_HIGH_NUMBER_VALUES", 4, 2),
    ],
)
def test_each_anomaly_type(
    change: Callable[[DatasetStatistics], None],
    feature: str,
    anomaly_type: str,
    value: float | None,
    threshold: float | None,
) -> None:
    schema = schema_for(clean())
    stats = clean()
    change(stats)
    anomaly = only(validate_statistics(stats, schema))
    assert anomaly.feature == feature
    assert anomaly.types == [anomaly_type]
    assert anomaly.severity == "ERROR"
    assert anomaly.short_description
    assert anomaly.description
    if value is None:
        assert anomaly.value is None
    else:
        assert anomaly.value == pytest.approx(value)
    assert anomaly.threshold == (None if threshold is None else pytest.approx(threshold))


def test_unexpected_values_are_named_in_the_description() -> None:
    stats = clean()
    new_city(stats)
    anomaly = only(validate_statistics(stats, schema_for(clean())))
    assert "Metz (~10%)" in anomaly.description


def test_string_that_is_no_number_is_named() -> None:
    stats = clean()
    scores_as_strings(stats)
    anomaly = only(validate_statistics(stats, schema_for(clean())))
    assert "'n/a'" in anomaly.description
    assert "'0.5'" not in anomaly.description


def test_numbers_written_as_strings_are_an_unexpected_data_type() -> None:
    stats = clean()
    stats.features[1] = str_feature("score", {"0.5": 60, "0.25": 40})
    anomaly = only(validate_statistics(stats, schema_for(clean())))
    assert anomaly.types == ["UNEXPECTED_DATA_TYPE"]
    assert "numbers written as strings" in anomaly.description


def test_low_number_present() -> None:
    schema = schema_for(clean())
    schema.feature("age").presence.min_count = 95
    stats = clean()
    fewer_present(stats)
    anomaly = only(validate_statistics(stats, schema))
    assert anomaly.types == [
        "FEATURE_TYPE_LOW_NUMBER_PRESENT",
        "FEATURE_TYPE_LOW_FRACTION_PRESENT",
    ]
    assert anomaly.short_description == "Multiple errors"
    assert (anomaly.value, anomaly.threshold) == (90, 95)


def test_optional_feature_missing_is_no_anomaly() -> None:
    schema = schema_for(clean())
    schema.feature("age").presence.min_count = 0
    schema.feature("age").presence.min_fraction = None
    stats = clean()
    drop("age")(stats)
    assert validate_statistics(stats, schema) == []


def test_to_dict_has_exactly_the_documented_keys() -> None:
    stats = clean()
    young(stats)
    d = only(validate_statistics(stats, schema_for(clean()))).to_dict()
    assert set(d) == ANOMALY_KEYS
    assert d["types"] == ["INT_TYPE_SMALL_INT"]
    assert (d["value"], d["threshold"]) == (3.0, 18.0)


# -- environments -----------------------------------------------------------------------------


def test_label_not_expected_in_serving() -> None:
    schema = schema_for(clean())
    serving = clean()
    drop("label")(serving)
    assert validate_statistics(serving, schema, environment="SERVING") == []
    missing = only(validate_statistics(serving, schema, environment="TRAINING"))
    assert (missing.feature, missing.types) == ("label", ["SCHEMA_MISSING_COLUMN"])
    assert only(validate_statistics(serving, schema)).types == ["SCHEMA_MISSING_COLUMN"]


def test_unknown_environment_is_refused() -> None:
    with pytest.raises(DataError, match=r"'SERVNG'.*TRAINING, SERVING"):
        validate_statistics(clean(), schema_for(clean()), environment="SERVNG")


# -- drift and skew ---------------------------------------------------------------------------


def test_categorical_drift_reports_linf_and_the_value() -> None:
    schema = schema_for(clean())
    current = clean()
    current.features[2] = str_feature("city", {"Paris": 30, "Lyon": 50, "Nice": 20})
    anomaly = only(validate_statistics(current, schema, baseline=clean()))
    assert anomaly.types == ["COMPARATOR_L_INFTY_HIGH"]
    assert anomaly.value == pytest.approx(0.2)
    assert anomaly.threshold == pytest.approx(0.1)
    assert "between current and previous" in anomaly.short_description
    assert anomaly.description.endswith("maximum difference is: Paris")


def test_numeric_skew_reports_jsd() -> None:
    schema = schema_for(clean())
    serving = clean()
    serving.features[1] = num_feature("score", "FLOAT", lo=0.5, hi=1.5)
    anomaly = only(validate_statistics(clean(), schema, baseline=serving, mode="skew"))
    assert anomaly.types == ["COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"]
    assert anomaly.value == pytest.approx(0.5)  # half the mass on each side is disjoint
    assert "between training and serving" in anomaly.description


def test_drift_comparator_is_not_used_for_skew() -> None:
    schema = schema_for(clean())
    schema.feature("city").skew_comparator = None
    current = clean()
    current.features[2] = str_feature("city", {"Paris": 30, "Lyon": 50, "Nice": 20})
    assert validate_statistics(current, schema, baseline=clean(), mode="skew") == []
    assert len(validate_statistics(current, schema, baseline=clean(), mode="drift")) == 1


def test_several_reasons_keep_the_distance_as_value() -> None:
    schema = schema_for(clean())
    current = clean()
    current.features[2] = str_feature("city", {"Paris": 30, "Lyon": 50, "Metz": 20})
    anomaly = only(validate_statistics(current, schema, baseline=clean()))
    assert anomaly.types == ["ENUM_TYPE_UNEXPECTED_STRING_VALUES", "COMPARATOR_L_INFTY_HIGH"]
    assert anomaly.short_description == "Multiple errors"
    assert "Metz (~20%)" in anomaly.description
    assert "Linfty distance" in anomaly.description
    assert (anomaly.value, anomaly.threshold) == (pytest.approx(0.2), pytest.approx(0.1))


def test_feature_missing_from_baseline() -> None:
    schema = schema_for(clean())
    previous = clean()
    drop("city")(previous)
    anomaly = only(validate_statistics(clean(), schema, baseline=previous))
    assert anomaly.types == ["COMPARATOR_CONTROL_DATA_MISSING"]
    assert anomaly.short_description == "previous data missing"


def test_threshold_is_exclusive() -> None:
    schema = schema_for(clean())
    schema.feature("city").drift_comparator = Comparator(infinity_norm=0.2)
    current = clean()
    current.features[2] = str_feature("city", {"Paris": 30, "Lyon": 50, "Nice": 20})
    assert validate_statistics(current, schema, baseline=clean()) == []


# -- L-infinity, against TFDV's own test cases and the definition -----------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [  # tensorflow_data_validation/anomalies/metrics_test.cc, LInftyDistanceTest
        ({}, {}, 0.0),
        ({"hello": 0.1, "world": 0.9}, {"hello": 0.3, "world": 0.7}, 0.2),
        ({"b": 0.9, "c": 0.1}, {"a": 0.3, "b": 0.7}, 0.3),
        ({"a": 0.3, "b": 0.7}, {"b": 0.9, "c": 0.1}, 0.3),
    ],
)
def test_linf_matches_tfdv_tests(a: dict[str, float], b: dict[str, float], expected: float) -> None:
    assert linf_distance(a, b) == pytest.approx(expected, abs=1e-9)


def test_linf_normalises_each_side_separately() -> None:
    current = str_feature("c", {"x": 30, "y": 10})  # 0.75, 0.25
    baseline = str_feature("c", {"x": 100, "y": 300, "z": 100})  # 0.2, 0.6, 0.2
    by_hand = max(abs(0.75 - 0.2), abs(0.25 - 0.6), abs(0.0 - 0.2))
    assert linf_distance(current, baseline) == pytest.approx(by_hand)
    assert linf_distance(current, baseline) == pytest.approx(0.55)


# -- Jensen-Shannon divergence ----------------------------------------------------------------


def jsd_by_definition(p: list[float], q: list[float]) -> float:
    p = [x / sum(p) for x in p]
    q = [x / sum(q) for x in q]
    m = [(x + y) / 2 for x, y in zip(p, q, strict=True)]

    def kl(a: list[float]) -> float:
        return sum(x * math.log2(x / y) for x, y in zip(a, m, strict=True) if x > 0)

    return (kl(p) + kl(q)) / 2


def test_jsd_different_bucket_boundaries_matches_tfdv() -> None:
    a = histogram([1, 2, 3], [2, 2])
    b = histogram([2, 4, 6], [2, 2])
    # TFDV's DifferentBucketBoundaries: common boundaries 1,2,3,4,6
    by_hand = jsd_by_definition([2, 2, 0, 0], [0, 1, 1, 2])
    assert jensen_shannon_divergence(a, b) == pytest.approx(by_hand, abs=1e-12)
    assert jensen_shannon_divergence(a, b) == pytest.approx(0.65563906222, abs=1e-5)


@pytest.mark.parametrize(
    ("a", "b"),
    [  # TFDV's NoOverlap, OneHasAllValuesInOneBucket, BothHave..., OneHasOneBucketTheOtherHasMany
        (histogram([0, 1, 2], [2, 2]), histogram([3, 4, 6], [2, 2])),
        ([Bucket(1, 1, 4)], histogram([2, 4, 6], [2, 2])),
        ([Bucket(1, 1, 4)], [Bucket(2, 2, 4)]),
        ([Bucket(10, 10, 21)], histogram([0, 4, 12, 20], [150, 200, 20])),
    ],
)
def test_jsd_disjoint_distributions_is_one(a: list[Bucket], b: list[Bucket]) -> None:
    assert jensen_shannon_divergence(a, b) == pytest.approx(1.0, abs=1e-5)


def test_jsd_with_nans_matches_tfdv() -> None:
    a = num_feature("f", "FLOAT", lo=1, hi=2, counts=[3], nan=1)
    b = num_feature("f", "FLOAT", lo=1, hi=2, counts=[4])
    assert jensen_shannon_divergence(a, b) == pytest.approx(0.13792538096, abs=1e-5)
    assert jensen_shannon_divergence(a, b) == pytest.approx(
        jsd_by_definition([3, 1], [4, 0]), abs=1e-12
    )


def test_jsd_of_identical_statistics_is_zero_even_with_nans() -> None:
    f = num_feature("f", "FLOAT", counts=[2.9866667, 1.0066667, 2.0066667], lo=1, hi=5, nan=1)
    assert jensen_shannon_divergence(f, copy.deepcopy(f)) == pytest.approx(0.0, abs=1e-12)


def test_jsd_spreads_a_bucket_uniformly_when_rebucketing() -> None:
    a = histogram([0, 10], [100])
    b = histogram([0, 2, 10], [50, 50])
    # a on the common buckets [0,2) and [2,10): 20 and 80
    by_hand = jsd_by_definition([20, 80], [50, 50])
    assert jensen_shannon_divergence(a, b) == pytest.approx(by_hand, abs=1e-12)
    assert jensen_shannon_divergence(b, a) == pytest.approx(by_hand, abs=1e-12)


def test_jsd_on_string_features_uses_their_values() -> None:
    a = str_feature("c", {"x": 30, "y": 10})
    b = str_feature("c", {"x": 10, "z": 10})
    assert jensen_shannon_divergence(a, b) == pytest.approx(
        jsd_by_definition([30, 10, 0], [10, 0, 10]), abs=1e-12
    )


def test_jsd_of_an_empty_histogram_is_an_error() -> None:
    with pytest.raises(DataError, match="empty histogram"):
        jensen_shannon_divergence(histogram([0, 4], [0]), histogram([0, 4], [10]))
    with pytest.raises(DataError, match="no numeric histogram"):
        jensen_shannon_divergence(str_feature("c", {}), num_feature("c"))


# -- hand-edited schema drives validation ----------------------------------------------------


def test_hand_edited_schema_is_enforced() -> None:
    schema = Schema.from_yaml(
        """\
features:
  age:
    type: INT
    range: {min: 21}
  tags:
    type: STRING
    value_count: {max: 1}
""",
        source="schema.yaml",
    )
    stats = DatasetStatistics(
        "serving",
        100,
        [
            num_feature("age", lo=18, hi=68),
            FeatureStatistics(
                "tags",
                "STRING",
                100,
                0,
                values_per_row=ValuesPerRow(2, 2, 2.0),
                string=StringStatistics(1, [TopValue("a", 200)]),
            ),
        ],
    )
    anomalies = validate_statistics(stats, schema)
    assert [(a.feature, a.types) for a in anomalies] == [
        ("age", ["INT_TYPE_SMALL_INT"]),
        ("tags", ["FEATURE_TYPE_HIGH_NUMBER_VALUES"]),
    ]
    assert schema.feature("age").range == Range(21, None)
    assert schema.feature("tags").value_count == ValueCount(None, 1)
