"""Schema inference (TFDV's rules), the YAML format, and what a bad schema file says."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.data import (
    Comparator,
    DatasetStatistics,
    FeatureSchema,
    FeatureStatistics,
    NumericStatistics,
    Presence,
    Range,
    Schema,
    Statistics,
    StringStatistics,
    TopValue,
    ValueCount,
    ValuesPerRow,
    infer_schema,
    read_schema,
    write_schema,
)
from kiln.errors import SchemaError


def numeric(
    name: str, type_: str = "INT", *, count: int = 10, missing: int = 0, **kw: float
) -> FeatureStatistics:
    stats = NumericStatistics(
        mean=kw.get("mean", 5.0),
        std_dev=1.0,
        num_zeros=0,
        min=kw.get("min", 1.0),
        median=5.0,
        max=kw.get("max", 9.0),
        num_nan=int(kw.get("num_nan", 0)),
        num_pos_inf=int(kw.get("num_pos_inf", 0)),
    )
    return FeatureStatistics(name, type_, count, missing, numeric=stats)


def strings(
    name: str,
    values: dict[str, int],
    *,
    missing: int = 0,
    invalid_utf8: int = 0,
    per_row: ValuesPerRow | None = None,
    type_: str = "STRING",
) -> FeatureStatistics:
    tops = [TopValue(v, c) for v, c in sorted(values.items(), key=lambda kv: -kv[1])]
    return FeatureStatistics(
        name,
        type_,
        sum(values.values()),
        missing,
        values_per_row=per_row,
        string=StringStatistics(unique=len(values), top_values=tops, invalid_utf8=invalid_utf8),
    )


def dataset(*features: FeatureStatistics) -> DatasetStatistics:
    n = max((f.count + f.num_missing for f in features), default=0)
    return DatasetStatistics("train", n, list(features))


# -- inference --------------------------------------------------------------------------------


def test_required_feature_gets_min_fraction_one_and_min_count_one() -> None:
    f = infer_schema(dataset(numeric("age"))).feature("age")
    assert f.type == "INT"
    assert f.presence == Presence(min_fraction=1.0, min_count=1)


def test_sometimes_missing_feature_gets_only_min_count() -> None:
    f = infer_schema(dataset(numeric("age", count=7, missing=3))).feature("age")
    assert f.presence == Presence(min_fraction=None, min_count=1)


def test_never_present_feature_gets_min_count_zero_and_nothing_else() -> None:
    f = infer_schema(dataset(numeric("age", count=0, missing=10))).feature("age")
    assert f.presence == Presence(min_fraction=None, min_count=0)
    assert f.value_count is None
    assert not f.is_required()


def test_string_domain_only_up_to_one_hundred_distinct_values() -> None:
    hundred = {f"v{i:03d}": 1 for i in range(100)}
    hundred_one = {f"v{i:03d}": 1 for i in range(101)}
    schema = infer_schema(dataset(strings("a", hundred), strings("b", hundred_one)))
    assert schema.feature("a").domain == sorted(hundred)
    assert schema.feature("b").domain is None


def test_max_domain_size_is_a_parameter() -> None:
    stats = dataset(strings("city", {"Paris": 5, "Lyon": 3, "Nice": 2}))
    assert infer_schema(stats, max_domain_size=2).feature("city").domain is None
    assert infer_schema(stats, max_domain_size=3).feature("city").domain == [
        "Lyon",
        "Nice",
        "Paris",
    ]


def test_no_domain_for_invalid_utf8_or_bytes_or_numbers() -> None:
    schema = infer_schema(
        dataset(
            strings("bad", {"a": 1}, invalid_utf8=1),
            strings("raw", {"a": 1}, type_="BYTES"),
            numeric("n"),
        )
    )
    assert [f.domain for f in schema.features] == [None, None, None]


def test_no_numeric_ranges_by_default() -> None:
    schema = infer_schema(dataset(numeric("age", min=18, max=60), numeric("x", "FLOAT")))
    assert [f.range for f in schema.features] == [None, None]


def test_numeric_ranges_when_asked() -> None:
    schema = infer_schema(
        dataset(numeric("age", min=18, max=60), numeric("x", "FLOAT", min=-1.5, max=2.5)),
        infer_ranges=True,
    )
    assert schema.feature("age").range == Range(18, 60)
    assert schema.feature("x").range == Range(-1.5, 2.5)


def test_value_count_for_list_features() -> None:
    schema = infer_schema(
        dataset(
            strings("fixed", {"a": 10}, per_row=ValuesPerRow(3, 3, 3.0)),
            strings("varies", {"a": 10}, per_row=ValuesPerRow(1, 5, 2.0)),
            strings("empties", {"a": 10}, per_row=ValuesPerRow(0, 5, 2.0)),
            strings("scalar", {"a": 10}),
        )
    )
    assert schema.feature("fixed").value_count == ValueCount(3, 3)
    assert schema.feature("varies").value_count == ValueCount(min=1, max=None)
    assert schema.feature("empties").value_count is None
    assert schema.feature("scalar").value_count is None


def test_float_features_without_nan_or_inf_disallow_them() -> None:
    schema = infer_schema(
        dataset(numeric("clean", "FLOAT"), numeric("dirty", "FLOAT", num_nan=1, num_pos_inf=2))
    )
    assert (schema.feature("clean").disallow_nan, schema.feature("clean").disallow_inf) == (
        True,
        True,
    )
    assert (schema.feature("dirty").disallow_nan, schema.feature("dirty").disallow_inf) == (
        False,
        False,
    )


def test_infer_from_statistics_uses_the_first_split_and_default_environments() -> None:
    stats = Statistics([dataset(numeric("a")), DatasetStatistics("eval", 5, [numeric("b")])])
    schema = infer_schema(stats)
    assert [f.name for f in schema.features] == ["a"]
    assert schema.default_environments == ["TRAINING", "SERVING"]


# -- editing ----------------------------------------------------------------------------------


def test_thresholds_pick_the_metric_by_type() -> None:
    schema = infer_schema(dataset(numeric("age"), strings("city", {"a": 1})))
    schema.set_drift_threshold("age", 0.1)
    schema.set_drift_threshold("city", 0.01)
    schema.set_skew_threshold("city", 0.2, metric="jensen_shannon_divergence")
    assert schema.feature("age").drift_comparator == Comparator(jensen_shannon_divergence=0.1)
    assert schema.feature("city").drift_comparator == Comparator(infinity_norm=0.01)
    assert schema.feature("city").skew_comparator == Comparator(jensen_shannon_divergence=0.2)
    with pytest.raises(SchemaError, match="between 0 and 1"):
        schema.set_drift_threshold("age", 2.0)


def test_unknown_feature_is_named() -> None:
    schema = infer_schema(dataset(numeric("age")))
    with pytest.raises(SchemaError, match=r"no feature 'agee'.*it has: age"):
        schema.feature("agee")


# -- YAML -------------------------------------------------------------------------------------


def full_schema() -> Schema:
    return Schema(
        features=[
            FeatureSchema(
                "age",
                "INT",
                Presence(1.0, 1),
                range=Range(0, 120),
                drift_comparator=Comparator(jensen_shannon_divergence=0.1),
            ),
            FeatureSchema(
                "answer",
                "STRING",
                Presence(None, 1),
                value_count=ValueCount(1, 3),
                domain=["no", "yes", "01", "true", "null"],
                skew_comparator=Comparator(infinity_norm=0.05),
            ),
            FeatureSchema(
                "score",
                "FLOAT",
                range=Range(-1.5, None),
                disallow_nan=True,
                disallow_inf=True,
            ),
            FeatureSchema("label", "INT", Presence(1.0, 1), not_in_environment=["SERVING"]),
        ],
        default_environments=["TRAINING", "SERVING"],
    )


def test_yaml_round_trip_keeps_everything() -> None:
    schema = full_schema()
    text = schema.to_yaml()
    assert Schema.from_yaml(text) == schema
    assert "not_in_environment: [SERVING]" in text
    assert "range: {min: 0, max: 120}" in text  # integers stay integers for an INT feature


def test_write_and_read_schema(tmp_path: Path) -> None:
    path = tmp_path / "schema.yaml"
    write_schema(full_schema(), path)
    assert read_schema(path) == full_schema()


def test_hand_written_yaml() -> None:
    text = """\
# written by a person
default_environments: [TRAINING]
features:
  city:
    type: STRING
    domain:
      - Paris
      - yes        # stays the string 'yes'
      - 10         # stays the string '10'
    drift_comparator:
      infinity_norm: 0.02
  tips:
    type: FLOAT
    presence: {min_fraction: 0.5}
    in_environment: [SERVING]
"""
    schema = Schema.from_yaml(text)
    city = schema.feature("city")
    assert city.domain == ["Paris", "yes", "10"]
    assert city.drift_comparator == Comparator(infinity_norm=0.02)
    assert city.presence == Presence()
    tips = schema.feature("tips")
    assert tips.presence.min_fraction == 0.5
    # TFDV's rule: in_environment adds to the default environments
    assert tips.in_env("TRAINING", schema.default_environments)
    assert tips.in_env("SERVING", schema.default_environments)
    assert not city.in_env("SERVING", schema.default_environments)
    assert city.in_env(None, schema.default_environments)


def test_empty_features_is_an_empty_schema() -> None:
    assert Schema.from_yaml("features:\n").features == []


# -- bad schema files -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("features:\n  age: {type: INT\n  b: 1\n", ["schema.yaml, line 3", "not valid YAML"]),
        (
            "features:\n  age:\n    type: INT\n    rnage: {min: 0}\n",
            ["schema.yaml, line 4", "'age'", "'rnage'"],
        ),
        (
            "features:\n  age:\n    type: INT\n    presence: {min_fraction: high}\n",
            ["schema.yaml, line 4", "'age'", "presence.min_fraction", "a number", "'high'"],
        ),
        (
            "features:\n  age:\n    type: INT\n    presence: {min_count: 1.5}\n",
            ["schema.yaml, line 4", "presence.min_count", "an integer"],
        ),
        (
            "features:\n  age:\n    type: INT\n    presence: {min_fraction: 1.5}\n",
            ["schema.yaml, line 4", "in [0, 1]"],
        ),
        ("features:\n  age:\n    type: INTEGER\n", ["schema.yaml, line 3", "'age'", "'INTEGER'"]),
        (
            "features:\n  age:\n    presence: {min_count: 1}\n",
            ["schema.yaml, line 3", "'age'", "no type"],
        ),
        ("features:\n  age:\n    type: INT\n    domain: [a]\n", ["schema.yaml, line 4", "STRING"]),
        (
            "features:\n  c:\n    type: STRING\n    domain: a, b\n",
            ["schema.yaml, line 4", "domain", "list"],
        ),
        (
            "features:\n  c:\n    type: STRING\n    drift_comparator: {l_infinity: 0.1}\n",
            ["schema.yaml, line 4", "drift_comparator", "'l_infinity'"],
        ),
        (
            "features:\n  c:\n    type: STRING\n    disallow_nan: sometimes\n",
            ["schema.yaml, line 4", "disallow_nan", "true or false"],
        ),
        ("features:\n  a: {type: INT}\n  a: {type: INT}\n", ["schema.yaml, line 3", "twice"]),
        ("featurs:\n  a: {type: INT}\n", ["schema.yaml, line 1", "'featurs'"]),
        ("- a\n- b\n", ["schema.yaml, line 1", "mapping"]),
        ("format: kiln.statistics\n", ["schema.yaml, line 1", "not a Kiln schema"]),
        ("version: 7\n", ["schema.yaml, line 1", "upgrade Kiln"]),
        ("", ["schema.yaml", "empty"]),
    ],
)
def test_bad_schema_says_where_and_what(text: str, needles: list[str]) -> None:
    with pytest.raises(SchemaError) as info:
        Schema.from_yaml(text, source="schema.yaml")
    message = str(info.value)
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"


def test_unreadable_schema_file_is_a_schema_error(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="cannot read the schema"):
        read_schema(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("features:\n  a:\n    type: INT\n    range: {min: x}\n", encoding="utf-8")
    with pytest.raises(SchemaError, match=r"bad\.yaml, line 4: feature 'a': range\.min"):
        read_schema(bad)
