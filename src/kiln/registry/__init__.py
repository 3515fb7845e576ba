"""The model registry: named models with numbered versions, aliases (with their history), tags and
descriptions, each version linked by lineage to its run, data, schema and evaluation.

``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` and ``models:/NAME`` (the latest version) name a
model wherever a model folder is accepted: :meth:`ModelRegistry.resolve`, :func:`load_model`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln._lazy import lazy_exports

if TYPE_CHECKING:
    from kiln.registry._registry import (
        MODEL_VERSION_ARTIFACT,
        REGISTER_EXECUTION,
        REGISTERED_MODEL_CONTEXT,
        AliasEvent,
        ModelRegistry,
        ModelVersion,
        RegisteredModel,
        default_actor,
        load_model,
    )
    from kiln.registry._uri import (
        LATEST,
        MODEL_URI_PREFIX,
        ModelURI,
        check_alias,
        check_model_name,
        is_model_uri,
        parse_model_uri,
    )

_MODULES = {
    "kiln.registry._registry": [
        "MODEL_VERSION_ARTIFACT",
        "REGISTERED_MODEL_CONTEXT",
        "REGISTER_EXECUTION",
        "AliasEvent",
        "ModelRegistry",
        "ModelVersion",
        "RegisteredModel",
        "default_actor",
        "load_model",
    ],
    "kiln.registry._uri": [
        "LATEST",
        "MODEL_URI_PREFIX",
        "ModelURI",
        "check_alias",
        "check_model_name",
        "is_model_uri",
        "parse_model_uri",
    ],
}
__all__ = [
    "LATEST",
    "MODEL_URI_PREFIX",
    "MODEL_VERSION_ARTIFACT",
    "REGISTERED_MODEL_CONTEXT",
    "REGISTER_EXECUTION",
    "AliasEvent",
    "ModelRegistry",
    "ModelURI",
    "ModelVersion",
    "RegisteredModel",
    "check_alias",
    "check_model_name",
    "default_actor",
    "is_model_uri",
    "load_model",
    "parse_model_uri",
]
_EXPORTS = {name: module for module, names in _MODULES.items() for name in names}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
