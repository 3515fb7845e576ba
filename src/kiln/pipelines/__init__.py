"""Ready-made pipelines to run or to copy and change: :func:`standard` (TFX's standard pipeline on
Kiln's spine), also from a YAML config (:func:`load_config`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln._lazy import lazy_exports

if TYPE_CHECKING:
    from kiln.pipelines._standard import (
        MODELS,
        default_thresholds,
        load_config,
        resolve_champion,
        standard,
    )

__all__ = ["MODELS", "default_thresholds", "load_config", "resolve_champion", "standard"]

_EXPORTS = {name: "kiln.pipelines._standard" for name in __all__}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
