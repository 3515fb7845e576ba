"""Online serving: registered models behind HTTP, in the request formats existing clients speak
(Vertex AI / TF Serving ``:predict`` and the Open Inference Protocol, KServe V2), each request
checked against the model's signature, answered by :meth:`kiln.model.Model.predict` in the server
process, counted for Prometheus, optionally logged for monitoring, and hot-swapped when a
registry alias moves. ``kiln serve`` is the front door; the libraries come with ``kiln[serve]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiln._lazy import lazy_exports

if TYPE_CHECKING:
    from kiln.serving._app import Api
    from kiln.serving._codec import Codec, RequestError
    from kiln.serving._deploy import Deployment, ModelSpec, ServedModel, parse_specs
    from kiln.serving._predlog import PredictionLog
    from kiln.serving._serve import ServeOptions, serve

_MODULES = {
    "kiln.serving._app": ["Api"],
    "kiln.serving._codec": ["Codec", "RequestError"],
    "kiln.serving._deploy": ["Deployment", "ModelSpec", "ServedModel", "parse_specs"],
    "kiln.serving._predlog": ["PredictionLog"],
    "kiln.serving._serve": ["ServeOptions", "serve"],
}
__all__ = [
    "Api",
    "Codec",
    "Deployment",
    "ModelSpec",
    "PredictionLog",
    "RequestError",
    "ServeOptions",
    "ServedModel",
    "parse_specs",
    "serve",
]
_EXPORTS = {name: module for module, names in _MODULES.items() for name in names}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
