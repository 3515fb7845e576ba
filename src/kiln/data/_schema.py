"""The schema: what a dataset is expected to look like, inferred from statistics, edited by hand.

Inference follows TFDV's rules (``tfdv.infer_schema``):

- **type** is the statistics' type;
- **presence**: ``min_count`` is 1 when the feature was seen at all (0 otherwise) and
  ``min_fraction`` is 1.0 only for a feature present in every example (a required feature);
- **value_count** (list features only): ``min == max`` when every present row holds the same number
  of values, else ``min: 1`` when no present row is an empty list, else nothing;
- **domain**: a string feature with at most ``max_domain_size`` (100) distinct values and no invalid
  UTF-8 gets its values as a domain, sorted;
- **range**: numeric ranges are not inferred unless asked (``infer_ranges=True``).

Kiln adds one rule TFDV leaves to the user: a FLOAT feature whose statistics held no NaN (no
infinity) gets ``disallow_nan: true`` (``disallow_inf: true``), so that NaNs arriving later are
reported. Edit the YAML to allow them.

The YAML format (``Schema.to_yaml``)::

    format: kiln.schema
    version: 1
    default_environments: [TRAINING, SERVING]
    features:
      age:
        type: INT                                   # INT FLOAT STRING BOOL DATETIME BYTES
        presence: {min_fraction: 1.0, min_count: 1}
        value_count: {min: 1, max: 3}               # list features only
        range: {min: 0, max: 120}                   # INT / FLOAT
        domain: [a, b, c]                           # STRING: the values allowed
        disallow_nan: true                          # FLOAT
        disallow_inf: true                          # FLOAT
        drift_comparator: {jensen_shannon_divergence: 0.1}   # or {infinity_norm: 0.01}
        skew_comparator: {infinity_norm: 0.01}
        in_environment: [TRAINING]
        not_in_environment: [SERVING]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from kiln.data._model import DatasetStatistics, FeatureStatistics, Statistics
from kiln.errors import DataError, SchemaError

__all__ = [
    "Comparator",
    "FeatureSchema",
    "Presence",
    "Range",
    "Schema",
    "ValueCount",
    "infer_schema",
    "read_schema",
    "write_schema",
]

FORMAT = "kiln.schema"
FORMAT_VERSION = 1
FEATURE_TYPES = ("INT", "FLOAT", "STRING", "BOOL", "DATETIME", "BYTES")
CATEGORICAL_TYPES = ("STRING", "BOOL", "BYTES")
NUMERIC_TYPES = ("INT", "FLOAT")
DEFAULT_ENVIRONMENTS = ("TRAINING", "SERVING")
MAX_DOMAIN_SIZE = 100


@dataclass
class Presence:
    """How often a feature must be present: as a fraction of examples, and as a count."""

    min_fraction: float | None = None
    min_count: int | None = None


@dataclass
class ValueCount:
    """How many values a list feature holds per row (either bound may be open)."""

    min: int | None = None
    max: int | None = None


@dataclass
class Range:
    """The numeric range of an INT or FLOAT feature (either bound may be open)."""

    min: float | None = None
    max: float | None = None


@dataclass
class Comparator:
    """Thresholds on the distance to baseline statistics (TFDV's ``FeatureComparator``).

    ``infinity_norm`` is for categorical features (L-infinity distance of the normalised value
    counts), ``jensen_shannon_divergence`` for numeric ones (on the histograms).
    """

    infinity_norm: float | None = None
    jensen_shannon_divergence: float | None = None

    def is_empty(self) -> bool:
        return self.infinity_norm is None and self.jensen_shannon_divergence is None


@dataclass
class FeatureSchema:
    """What one feature is expected to look like."""

    name: str
    type: str
    presence: Presence = field(default_factory=Presence)
    value_count: ValueCount | None = None
    domain: list[str] | None = None
    range: Range | None = None
    disallow_nan: bool = False
    disallow_inf: bool = False
    drift_comparator: Comparator | None = None
    skew_comparator: Comparator | None = None
    in_environment: list[str] = field(default_factory=list)
    not_in_environment: list[str] = field(default_factory=list)

    def in_env(self, environment: str | None, default_environments: list[str]) -> bool:
        """TFDV's rule: ``in_environment``, then ``not_in_environment``, then the defaults."""
        if environment is None:
            return True
        if environment in self.in_environment:
            return True
        if environment in self.not_in_environment:
            return False
        return environment in default_environments

    def is_required(self) -> bool:
        """A feature whose complete absence is an anomaly (TFDV's ``IsExistenceRequired``)."""
        return (self.presence.min_count or 0) > 0 or (self.presence.min_fraction or 0.0) > 0.0


@dataclass
class Schema:
    """The expected features of a dataset, and the environments they live in."""

    features: list[FeatureSchema] = field(default_factory=list)
    default_environments: list[str] = field(default_factory=lambda: list(DEFAULT_ENVIRONMENTS))

    # -- looking up and editing ---------------------------------------------------------------

    def feature(self, name: str) -> FeatureSchema:
        for f in self.features:
            if f.name == name:
                return f
        names = ", ".join(f.name for f in self.features) or "none"
        raise SchemaError(f"no feature {name!r} in the schema; it has: {names}")

    def environments(self) -> list[str]:
        """Every environment the schema names, defaults first."""
        seen = list(self.default_environments)
        for f in self.features:
            for env in (*f.in_environment, *f.not_in_environment):
                if env not in seen:
                    seen.append(env)
        return seen

    def set_drift_threshold(
        self,
        name: str,
        threshold: float,
        *,
        metric: Literal["infinity_norm", "jensen_shannon_divergence"] | None = None,
    ) -> None:
        """Report drift on ``name`` above ``threshold`` (L-infinity for categorical features,
        Jensen-Shannon divergence for numeric ones unless ``metric`` says otherwise)."""
        f = self.feature(name)
        f.drift_comparator = _with_threshold(f, f.drift_comparator, threshold, metric)

    def set_skew_threshold(
        self,
        name: str,
        threshold: float,
        *,
        metric: Literal["infinity_norm", "jensen_shannon_divergence"] | None = None,
    ) -> None:
        """Report training/serving skew on ``name`` above ``threshold`` (see
        :meth:`set_drift_threshold` for the metric)."""
        f = self.feature(name)
        f.skew_comparator = _with_threshold(f, f.skew_comparator, threshold, metric)

    def set_environments(
        self,
        name: str,
        *,
        in_environment: list[str] | None = None,
        not_in_environment: list[str] | None = None,
    ) -> None:
        """Say in which environments ``name`` is expected, e.g. the label not in ``SERVING``."""
        f = self.feature(name)
        if in_environment is not None:
            f.in_environment = list(in_environment)
        if not_in_environment is not None:
            f.not_in_environment = list(not_in_environment)

    # -- YAML ---------------------------------------------------------------------------------

    def to_yaml(self) -> str:
        features: dict[str, Any] = {}
        for f in self.features:
            body: dict[str, Any] = {"type": f.type}
            presence = _drop_none(
                {"min_fraction": f.presence.min_fraction, "min_count": f.presence.min_count}
            )
            if presence:
                body["presence"] = presence
            if f.value_count is not None:
                body["value_count"] = _drop_none(
                    {"min": f.value_count.min, "max": f.value_count.max}
                )
            if f.range is not None:
                bounds = {"min": f.range.min, "max": f.range.max}
                if f.type == "INT":  # 18, not 18.0, in an integer feature's range
                    bounds = {k: _int_if_whole(v) for k, v in bounds.items()}
                body["range"] = _drop_none(bounds)
            if f.domain is not None:
                body["domain"] = list(f.domain)
            if f.disallow_nan:
                body["disallow_nan"] = True
            if f.disallow_inf:
                body["disallow_inf"] = True
            for key, comp in (
                ("drift_comparator", f.drift_comparator),
                ("skew_comparator", f.skew_comparator),
            ):
                if comp is not None and not comp.is_empty():
                    body[key] = _drop_none(
                        {
                            "infinity_norm": comp.infinity_norm,
                            "jensen_shannon_divergence": comp.jensen_shannon_divergence,
                        }
                    )
            if f.in_environment:
                body["in_environment"] = list(f.in_environment)
            if f.not_in_environment:
                body["not_in_environment"] = list(f.not_in_environment)
            features[f.name] = body
        doc = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "default_environments": list(self.default_environments),
            "features": features,
        }
        header = (
            "# Kiln schema: edit freely. Keys per feature: type, presence {min_fraction,\n"
            "# min_count}, value_count {min, max}, range {min, max}, domain [values],\n"
            "# disallow_nan, disallow_inf, drift_comparator / skew_comparator {infinity_norm |\n"
            "# jensen_shannon_divergence: threshold}, in_environment, not_in_environment.\n"
        )
        body_text: str = yaml.safe_dump(
            doc, sort_keys=False, default_flow_style=None, allow_unicode=True, width=100
        )
        return header + body_text

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "schema") -> Schema:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            where = f"{source}, line {mark.line + 1}, column {mark.column + 1}" if mark else source
            raise SchemaError(f"{where}: not valid YAML: {e.problem or e.context}") from e
        except yaml.YAMLError as e:
            raise SchemaError(f"{source}: not valid YAML: {e}") from e
        return _Parser(source).schema(root)


def read_schema(path: Path | str) -> Schema:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SchemaError(f"{path}: cannot read the schema ({e.strerror})") from e
    except UnicodeDecodeError as e:
        raise SchemaError(f"{path}: the schema is not UTF-8 text ({e.reason})") from e
    return Schema.from_yaml(text, source=str(path))


def write_schema(schema: Schema, path: Path | str) -> None:
    path = Path(path)
    try:
        path.write_text(schema.to_yaml(), encoding="utf-8")
    except OSError as e:
        raise SchemaError(f"{path}: cannot write the schema ({e.strerror})") from e


# -- inference --------------------------------------------------------------------------------


def infer_schema(
    stats: Statistics | DatasetStatistics,
    *,
    infer_ranges: bool = False,
    max_domain_size: int = MAX_DOMAIN_SIZE,
) -> Schema:
    """A schema that the given statistics satisfy, by TFDV's inference rules (module docstring).

    ``Statistics`` with several splits: the first one is used (pass the split you want).
    """
    dataset = stats.dataset() if isinstance(stats, Statistics) else stats
    if max_domain_size < 0:
        raise DataError(f"max_domain_size must be 0 or more, not {max_domain_size}")
    return Schema(
        features=[_infer_feature(f, infer_ranges, max_domain_size) for f in dataset.features]
    )


def _infer_feature(f: FeatureStatistics, infer_ranges: bool, max_domain_size: int) -> FeatureSchema:
    present = f.count
    presence = Presence(min_count=1 if present >= 1 else 0)
    out = FeatureSchema(name=f.name, type=f.type, presence=presence)
    if present == 0:
        return out
    if f.num_missing == 0:
        presence.min_fraction = 1.0
    vpr = f.values_per_row
    if vpr is not None and vpr.min > 0:
        out.value_count = (
            ValueCount(min=vpr.min, max=vpr.max) if vpr.min == vpr.max else ValueCount(min=1)
        )
    s = f.string
    if (
        f.type == "STRING"
        and s is not None
        and s.invalid_utf8 == 0
        and 0 < len(s.top_values) <= max_domain_size
    ):
        out.domain = sorted(t.value for t in s.top_values)
    n = f.numeric
    if n is not None and f.type in NUMERIC_TYPES:
        if infer_ranges and n.min is not None and n.max is not None:
            out.range = Range(min=n.min, max=n.max)
        if f.type == "FLOAT":
            out.disallow_nan = n.num_nan == 0
            out.disallow_inf = n.num_pos_inf == 0 and n.num_neg_inf == 0
    return out


def _with_threshold(
    f: FeatureSchema,
    current: Comparator | None,
    threshold: float,
    metric: Literal["infinity_norm", "jensen_shannon_divergence"] | None,
) -> Comparator:
    if not 0.0 <= threshold <= 1.0:
        raise SchemaError(
            f"feature {f.name!r}: a comparator threshold is between 0 and 1, not {threshold}"
        )
    if metric is None:
        metric = "jensen_shannon_divergence" if f.type in NUMERIC_TYPES else "infinity_norm"
    comp = current if current is not None else Comparator()
    setattr(comp, metric, float(threshold))
    return comp


def _int_if_whole(v: float | None) -> float | int | None:
    return int(v) if v is not None and math.isfinite(v) and float(v).is_integer() else v


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


# -- parsing, with line numbers ---------------------------------------------------------------

_TOP_KEYS = ("format", "version", "default_environments", "features")
_FEATURE_KEYS = (
    "type",
    "presence",
    "value_count",
    "range",
    "domain",
    "disallow_nan",
    "disallow_inf",
    "drift_comparator",
    "skew_comparator",
    "in_environment",
    "not_in_environment",
)


class _Parser:
    """Walks the composed YAML nodes so that every complaint names its line."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.loader = yaml.SafeLoader("")

    def fail(self, node: yaml.Node, message: str) -> SchemaError:
        return SchemaError(f"{self.source}, line {node.start_mark.line + 1}: {message}")

    def mapping(
        self, node: yaml.Node, what: str, allowed: tuple[str, ...]
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping of keys to values")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, f"{what}: a key must be a plain name")
            key = str(key_node.value)
            if key not in allowed:
                raise self.fail(
                    key_node, f"{what}: unknown key {key!r}; allowed keys: {', '.join(allowed)}"
                )
            if key in out:
                raise self.fail(key_node, f"{what}: key {key!r} is given twice")
            out[key] = (key_node, value_node)
        return out

    def scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return node  # not a scalar: the caller's type check reports it
        return self.loader.construct_object(node)

    def number(self, node: yaml.Node, what: str, *, integer: bool = False) -> float:
        value = self.scalar(node)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if integer:
            ok = ok and float(value).is_integer()
        if not ok:
            kind = "an integer" if integer else "a number"
            raise self.fail(node, f"{what} must be {kind}, not {_show(node)}")
        return int(value) if integer else float(value)

    def boolean(self, node: yaml.Node, what: str) -> bool:
        value = self.scalar(node)
        if not isinstance(value, bool):
            raise self.fail(node, f"{what} must be true or false, not {_show(node)}")
        return value

    def strings(self, node: yaml.Node, what: str) -> list[str]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{what} must be a list, not {_show(node)}")
        out: list[str] = []
        for item in node.value:
            if not isinstance(item, yaml.ScalarNode):
                raise self.fail(item, f"{what}: every item must be a single value")
            out.append(str(item.value))  # the text as written: 'yes' stays 'yes', 01 stays '01'
        return out

    def schema(self, root: yaml.Node | None) -> Schema:
        if root is None:
            raise SchemaError(f"{self.source}: the schema file is empty")
        top = self.mapping(root, "the schema", _TOP_KEYS)
        if "format" in top:
            _, node = top["format"]
            if self.scalar(node) != FORMAT:
                raise self.fail(node, f"not a Kiln schema (format: {_show(node)}, not {FORMAT})")
        if "version" in top:
            _, node = top["version"]
            version = self.number(node, "version", integer=True)
            if version > FORMAT_VERSION:
                raise self.fail(
                    node,
                    f"schema format version {int(version)} is newer than this Kiln reads "
                    f"({FORMAT_VERSION}); upgrade Kiln",
                )
        envs = list(DEFAULT_ENVIRONMENTS)
        if "default_environments" in top:
            envs = self.strings(top["default_environments"][1], "default_environments")
        features: list[FeatureSchema] = []
        if "features" in top:
            fnode = top["features"][1]
            is_empty = isinstance(fnode, yaml.ScalarNode) and self.scalar(fnode) is None
            if not is_empty:
                if not isinstance(fnode, yaml.MappingNode):
                    raise self.fail(fnode, "features must be a mapping of feature name to settings")
                for key_node, value_node in fnode.value:
                    name = str(key_node.value)
                    if any(f.name == name for f in features):
                        raise self.fail(key_node, f"feature {name!r} is given twice")
                    features.append(self.feature(name, value_node))
        return Schema(features=features, default_environments=envs)

    def feature(self, name: str, node: yaml.Node) -> FeatureSchema:
        what = f"feature {name!r}"
        keys = self.mapping(node, what, _FEATURE_KEYS)
        if "type" not in keys:
            raise self.fail(node, f"{what}: no type; give one of {', '.join(FEATURE_TYPES)}")
        type_node = keys["type"][1]
        ftype = self.scalar(type_node)
        if ftype not in FEATURE_TYPES:
            raise self.fail(
                type_node,
                f"{what}: type {_show(type_node)} is not one of {', '.join(FEATURE_TYPES)}",
            )
        f = FeatureSchema(name=name, type=str(ftype))

        def sub(key: str, allowed: tuple[str, ...]) -> dict[str, yaml.Node]:
            return {
                k: v for k, (_, v) in self.mapping(keys[key][1], f"{what}: {key}", allowed).items()
            }

        if "presence" in keys:
            p = sub("presence", ("min_fraction", "min_count"))
            if "min_fraction" in p:
                frac = self.number(p["min_fraction"], f"{what}: presence.min_fraction")
                if not 0.0 <= frac <= 1.0:
                    raise self.fail(
                        p["min_fraction"], f"{what}: presence.min_fraction must be in [0, 1]"
                    )
                f.presence.min_fraction = frac
            if "min_count" in p:
                f.presence.min_count = self._count(p["min_count"], f"{what}: presence.min_count")
        if "value_count" in keys:
            v = sub("value_count", ("min", "max"))
            vc = ValueCount()
            if "min" in v:
                vc.min = self._count(v["min"], f"{what}: value_count.min")
            if "max" in v:
                vc.max = self._count(v["max"], f"{what}: value_count.max")
            if vc.min is not None and vc.max is not None and vc.max < vc.min:
                raise self.fail(keys["value_count"][1], f"{what}: value_count.max is below min")
            f.value_count = vc
        if "range" in keys:
            if f.type not in NUMERIC_TYPES:
                raise self.fail(keys["range"][0], f"{what}: a range is for INT or FLOAT features")
            r = sub("range", ("min", "max"))
            rng = Range()
            if "min" in r:
                rng.min = self.number(r["min"], f"{what}: range.min")
            if "max" in r:
                rng.max = self.number(r["max"], f"{what}: range.max")
            if rng.min is not None and rng.max is not None and rng.max < rng.min:
                raise self.fail(keys["range"][1], f"{what}: range.max is below range.min")
            f.range = rng
        if "domain" in keys:
            if f.type != "STRING":
                raise self.fail(keys["domain"][0], f"{what}: a domain is for STRING features")
            f.domain = self.strings(keys["domain"][1], f"{what}: domain")
        if "disallow_nan" in keys:
            f.disallow_nan = self.boolean(keys["disallow_nan"][1], f"{what}: disallow_nan")
        if "disallow_inf" in keys:
            f.disallow_inf = self.boolean(keys["disallow_inf"][1], f"{what}: disallow_inf")
        for key in ("drift_comparator", "skew_comparator"):
            if key in keys:
                c = sub(key, ("infinity_norm", "jensen_shannon_divergence"))
                comp = Comparator()
                for metric, mnode in c.items():
                    t = self.number(mnode, f"{what}: {key}.{metric}")
                    if not 0.0 <= t <= 1.0:
                        raise self.fail(mnode, f"{what}: {key}.{metric} must be in [0, 1]")
                    setattr(comp, metric, t)
                setattr(f, key, comp)
        for key in ("in_environment", "not_in_environment"):
            if key in keys:
                setattr(f, key, self.strings(keys[key][1], f"{what}: {key}"))
        return f

    def _count(self, node: yaml.Node, what: str) -> int:
        n = int(self.number(node, what, integer=True))
        if n < 0:
            raise self.fail(node, f"{what} must be 0 or more, not {n}")
        return n


def _show(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        return repr(node.value)
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return "a mapping"
