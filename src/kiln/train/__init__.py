"""Trainers: one contract for every model family (see :mod:`kiln.train._contract`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln._lazy import lazy_exports

if TYPE_CHECKING:
    from kiln.train._contract import (
        IterationInfo,
        Task,
        Trainer,
        get_trainer,
        register_trainer,
        trainers,
    )

__all__ = ["IterationInfo", "Task", "Trainer", "get_trainer", "register_trainer", "trainers"]

_EXPORTS = {name: "kiln.train._contract" for name in __all__}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
