"""The data components, TFX's names and roles: ExampleGen, StatisticsGen, SchemaGen (or an imported
schema) and ExampleValidator, each a Kiln component with lineage and caching."""

from __future__ import annotations

from kiln.artifacts import Anomalies, Dataset, Schema, Statistics
from kiln.errors import DataError
from kiln.orchestration import InputPath, component

__all__ = [
    "DataValidationError",
    "ExampleGen",
    "ExampleValidator",
    "ImportSchema",
    "SchemaGen",
    "StatisticsGen",
]


class DataValidationError(DataError):
    """ExampleValidator found anomalies and was told to stop the pipeline on them."""


@component(name="ExampleGen")
def ExampleGen(
    source: InputPath,
    splits: dict[str, float] | None = None,
    key: str = "",
    time_column: str = "",
    format: str = "",
    delimiter: str = "",
    seed: int = 0,
) -> Dataset:
    """Read ``source`` (CSV, Parquet, JSON Lines, Arrow…) and split it deterministically.

    Rows are assigned by hashing ``key`` (or the whole row), so the same row lands in the same
    split whatever the file order; with ``time_column``, the earliest rows train.
    """
    from kiln.data import read_table, split_by_time, split_table
    from kiln.orchestration import path_fingerprint

    ratios = splits or {"train": 0.8, "eval": 0.2}
    table = read_table(source, format=format or None, delimiter=delimiter or None)
    if time_column:
        parts = split_by_time(table, time_column, ratios)
    else:
        parts = split_table(table, ratios, key=key or None, seed=seed)
    return Dataset(parts, source=source, fingerprint=path_fingerprint(source))


@component(name="StatisticsGen")
def StatisticsGen(dataset: Dataset) -> Statistics:
    """Feature statistics of every split, TFDV's set, mergeable."""
    from kiln.data import generate_split_statistics

    return Statistics(generate_split_statistics(dataset.read()))


@component(name="SchemaGen")
def SchemaGen(statistics: Statistics, split: str = "train", infer_ranges: bool = False) -> Schema:
    """A schema inferred from one split's statistics with TFDV's rules."""
    from kiln.data import infer_schema

    return Schema(infer_schema(statistics.read().dataset(split), infer_ranges=infer_ranges))


@component(name="ImportSchema")
def ImportSchema(path: InputPath) -> Schema:
    """A curated schema file (YAML), imported as an artifact so lineage shows it."""
    from pathlib import Path

    from kiln.data import read_schema

    return Schema(read_schema(Path(path)))


@component(name="ExampleValidator")
def ExampleValidator(
    statistics: Statistics,
    schema: Schema,
    split: str = "eval",
    environment: str = "TRAINING",
    stop_on_anomalies: bool = True,
) -> Anomalies:
    """Validate one split's statistics against the schema.

    With ``stop_on_anomalies`` (the default) any anomaly fails the step and stops the pipeline,
    listing them; otherwise they are recorded in the Anomalies artifact and the pipeline goes on.
    """
    from kiln.data import validate_statistics

    found = validate_statistics(
        statistics.read().dataset(split), schema.read(), environment=environment or None
    )
    if found and stop_on_anomalies:
        lines = "\n".join(
            f"  {a.feature}: {', '.join(a.types)}: {a.short_description}" for a in found
        )
        raise DataValidationError(
            f"{len(found)} anomal{'y' if len(found) == 1 else 'ies'} in split {split!r}:\n{lines}"
        )
    return Anomalies(found)
