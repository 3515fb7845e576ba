"""The self-contained model artifact and its one prediction path."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln._lazy import lazy_exports

if TYPE_CHECKING:
    from kiln.model._model import FORMAT, FORMAT_VERSION, Model, ModelFormatError

__all__ = ["FORMAT", "FORMAT_VERSION", "Model", "ModelFormatError"]

_EXPORTS = {name: "kiln.model._model" for name in __all__}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
