"""The pipelines the runner contract runs: importable by name, so worker processes find them."""

from __future__ import annotations

from typing import NamedTuple

from kiln.artifacts import Metrics
from kiln.orchestration import component, pipeline


class Split(NamedTuple):
    evens: Metrics
    odds: Metrics


@component
def numbers(n: int) -> Split:
    values = list(range(n))
    return Split(Metrics({"values": values[::2]}), Metrics({"values": values[1::2]}))


@component
def double(part: Metrics, other: Metrics, fail_at: str = "") -> Metrics:
    if fail_at == "double":
        raise RuntimeError("asked to fail at double")
    values = part.read()["values"] + other.read()["values"]
    return Metrics({"sum": 2 * sum(values)})


@component
def square(part: Metrics, other: Metrics, fail_at: str = "") -> Metrics:
    if fail_at == "square":
        raise RuntimeError("asked to fail at square")
    values = part.read()["values"] + other.read()["values"]
    return Metrics({"sum": sum(values) ** 2})


@component
def combine(doubled: Metrics, squared: Metrics) -> Metrics:
    return Metrics({"total": doubled.read()["sum"] + squared.read()["sum"]})


@pipeline(name="kiln-conformance-diamond")
def diamond(n: int = 5, fail_at: str = "") -> None:
    split = numbers(n=n)
    evens, odds = split.outputs["evens"], split.outputs["odds"]
    d = double(evens, odds, fail_at=fail_at)
    s = square(evens, odds, fail_at=fail_at)
    combine(doubled=d.output, squared=s.output)
