"""The HTTP API, independent of the transport: a request (method, path, body, two headers) in,
a status and a JSON body out. Routes::

    POST /v1/models/{name}:predict                     Vertex AI / TF Serving predict
    POST /v1/models/{name}/versions/{v}:predict
    GET  /v1/models/{name}[/versions/{v}]              TF Serving model status
    GET  /v2                                           V2 server metadata
    GET  /v2/health/live, /v2/health/ready             V2 health (no token needed: probes)
    GET  /v2/models/{name}[/versions/{v}]              V2 model metadata (from the signature)
    GET  /v2/models/{name}[/versions/{v}]/ready        V2 model readiness
    POST /v2/models/{name}[/versions/{v}]/infer        V2 inference
    GET  /metrics                                      Prometheus text
    GET  /openapi.json                                 OpenAPI 3 document of all of the above

Every error is ``{"error": "..."}`` with 400 (the request does not match the signature: the
field, the row and the reason), 401, 404, 405 or 413; a 500 only for a fault of the server.
"""

from __future__ import annotations

import difflib
import hmac
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kiln._version import __version__
from kiln.errors import KilnError
from kiln.serving._codec import (
    RequestError,
    attach_binary,
    decode_json,
    encode_binary,
    split_binary,
)
from kiln.serving._metrics import Metrics

if TYPE_CHECKING:
    from kiln.serving._deploy import Deployment, ServedModel
    from kiln.serving._predlog import PredictionLog

__all__ = ["Api", "Response"]

JSON = b"application/json"
OCTETS = b"application/octet-stream"
TEXT = b"text/plain; version=0.0.4; charset=utf-8"
# status, body, content type, extra header lines
Response = tuple[int, bytes, bytes, bytes]
_NO_HEADERS = b""
_V1 = "/v1/models/"
_V2 = "/v2/models/"


class Api:
    """Routes a request to its handler; counts it; turns every refusal into ``{"error": ...}``."""

    def __init__(
        self,
        deployment: Deployment,
        *,
        dumps: Callable[[Any], bytes],
        loads: Callable[[bytes], Any],
        token: str | None = None,
        log: PredictionLog | None = None,
    ) -> None:
        self.deployment = deployment
        self.dumps = dumps
        self.loads = loads
        self.token = ("Bearer " + token).encode() if token else None
        self.log = log
        self.metrics = Metrics()
        self.ready = True
        self._openapi: bytes | None = None

    # ------------------------------------------------------------------ entry point

    def handle(
        self,
        method: str,
        url: str,
        body: bytes,
        auth: bytes | None,
        header_length: bytes | None = None,
        client_id: bytes | None = None,
    ) -> Response:
        """Answer one request. ``header_length``: the Inference-Header-Content-Length header;
        ``client_id``: X-Client-Id, which picks the version of a split model."""
        t0 = time.perf_counter()
        path = url.partition("?")[0]
        model, version, protocol, rows = "", "", "", 0
        try:
            if path in ("/v2/health/live", "/v2/health/ready"):
                self._allow(method, "GET")
                if path.endswith("live"):
                    return self._json(200, {"live": True})
                return self._json(200 if self.ready else 503, {"ready": self.ready})
            if self.token is not None and (
                auth is None or not hmac.compare_digest(auth, self.token)
            ):
                return self._error(
                    401,
                    "this server needs a token: send the header Authorization: Bearer TOKEN",
                    b"WWW-Authenticate: Bearer\r\n",
                )
            if path.startswith(_V1):
                protocol = "v1"
                rest = path[len(_V1) :]
                if rest.endswith(":predict"):
                    self._allow(method, "POST")
                    served = self._find(rest[: -len(":predict")], client_id)
                    model, version = served.name, served.version
                    status, out, rows = self._predict(served, body)
                else:
                    self._allow(method, "GET")
                    served = self._find(rest)
                    model, version = served.name, served.version
                    status, out = 200, self.dumps(_tf_status(served))
            elif path.startswith(_V2):
                protocol = "v2"
                rest = path[len(_V2) :]
                action = ""
                for suffix in ("/infer", "/ready"):
                    if rest.endswith(suffix):
                        rest, action = rest[: -len(suffix)], suffix
                served = self._find(rest, client_id)
                model, version = served.name, served.version
                if action == "/infer":
                    self._allow(method, "POST")
                    status, out, rows, binary = self._infer(served, body, header_length)
                    if binary is not None:
                        extra = b"Inference-Header-Content-Length: %d\r\n" % len(out)
                        self.metrics.observe(
                            model, version, protocol, 200, time.perf_counter() - t0, rows
                        )
                        return 200, out + binary, OCTETS, extra
                elif action == "/ready":
                    self._allow(method, "GET")
                    status, out = 200, self.dumps({"name": served.name, "ready": True})
                else:
                    self._allow(method, "GET")
                    status, out = 200, self.dumps(self._metadata(served, rest))
            elif path == "/metrics":
                self._allow(method, "GET")
                return 200, self.metrics.render().encode(), TEXT, _NO_HEADERS
            elif path == "/openapi.json":
                self._allow(method, "GET")
                return 200, self.openapi(), JSON, _NO_HEADERS
            elif path == "/v2":
                self._allow(method, "GET")
                status, out = (
                    200,
                    self.dumps(
                        {
                            "name": "kiln",
                            "version": __version__,
                            "extensions": ["binary_tensor_data"],
                        }
                    ),
                )
            else:
                raise RequestError(
                    404,
                    f"no route {path}; see /openapi.json (predict: POST /v1/models/NAME:predict "
                    "or /v2/models/NAME/infer)",
                )
        except RequestError as e:
            status = e.status
            out = self.dumps({"error": e.message})
            extra = b"Allow: " + e.allow + b"\r\n" if isinstance(e, _NotAllowed) else _NO_HEADERS
            if model or protocol:
                self.metrics.observe(
                    model or "", version, protocol or "-", status, time.perf_counter() - t0, 0
                )
            return status, out, JSON, extra
        except Exception:  # a fault of the server, not of the request: say so, keep serving
            traceback.print_exc()
            status, out = 500, self.dumps({"error": "internal error; see the server's log"})
        self.metrics.observe(model, version, protocol, status, time.perf_counter() - t0, rows)
        return status, out, JSON, _NO_HEADERS

    @staticmethod
    def _allow(method: str, allowed: str) -> None:
        if method != allowed:
            raise _NotAllowed(allowed, f"{method} is not allowed here; use {allowed}")

    def _json(self, status: int, body: Any) -> Response:
        return status, self.dumps(body), JSON, _NO_HEADERS

    def _error(self, status: int, message: str, extra: bytes = _NO_HEADERS) -> Response:
        return status, self.dumps({"error": message}), JSON, extra

    def _find(self, rest: str, client_id: bytes | None = None) -> ServedModel:
        name, sep, version = rest.partition("/versions/")
        deployment = self.deployment
        split = deployment.splits.get(name)  # (a split tag in the registry wins over its alias)
        served = None if split is not None else deployment.models.get(name)
        if served is None:
            if split is not None:
                if not sep:
                    return split.pick(client_id)
                found = split.versions.get(version)
                if found is None:
                    raise RequestError(
                        404,
                        f"model {name!r} has no version {version!r} served here; it serves "
                        f"versions {', '.join(split.versions)}",
                    )
                return found
            names = deployment.names()
            close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "."
            raise RequestError(
                404, f"no model {name!r} is served here{hint} Served: {', '.join(names)}"
            )
        if sep and version != served.version:
            raise RequestError(
                404,
                f"model {name!r} has no version {version!r} served here; it serves version "
                f"{served.version}",
            )
        return served

    # ------------------------------------------------------------------ predict

    def _predict(self, served: ServedModel, body: bytes) -> tuple[int, bytes, int]:
        request = decode_json(body, self.loads)
        if not isinstance(request, dict) or "instances" not in request:
            raise RequestError(
                400,
                'the request must be a JSON object with "instances": a list of objects '
                "(feature: value) or of lists in signature order",
            )
        parameters = request.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise RequestError(400, "'parameters' must be an object")
        t0 = time.perf_counter()
        few = self._few(served, served.codec.instances_columns(request["instances"]))
        if few is not None:
            columns, rows = few
            predictions = [
                dict(zip(columns, values, strict=True))
                for values in zip(*columns.values(), strict=True)
            ]
        else:
            table = served.codec.from_instances(request["instances"])
            predictions = self._run(served, table).to_pylist()
            rows = table.num_rows
        out = self.dumps(
            {
                "predictions": predictions,
                "deployedModelId": f"{served.name}-{served.version}",
                "model": served.name,
                "modelDisplayName": served.name,
                "modelVersionId": served.version,
            }
        )
        if self.log is not None:
            self.log.maybe(served.name, served.version, rows, request["instances"], predictions, t0)
        return 200, out, rows

    def _infer(
        self, served: ServedModel, body: bytes, header_length: bytes | None
    ) -> tuple[int, bytes, int, bytes | None]:
        binary = None
        if header_length is not None:
            body, binary = split_binary(body, header_length)
        request = decode_json(body, self.loads)
        if not isinstance(request, dict) or "inputs" not in request:
            raise RequestError(
                400,
                'the request must be a JSON object with "inputs": a list of tensors '
                '({"name", "shape", "datatype", "data"})',
            )
        wanted = None
        if request.get("outputs") is not None:
            outputs = request["outputs"]
            if not isinstance(outputs, list) or not all(
                isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
            ):
                raise RequestError(400, "'outputs' must be a list of objects with a 'name'")
            wanted = [o["name"] for o in outputs]
        if binary is not None:
            attach_binary(request["inputs"], binary)
        t0 = time.perf_counter()
        few = self._few(served, served.codec.v2_columns(request["inputs"]))
        if few is not None:
            columns, rows = few
            tensors = served.codec.to_v2_columns(columns, rows, wanted)
        else:
            table = served.codec.from_v2(request["inputs"])
            tensors = served.codec.to_v2(self._run(served, table), wanted)
            rows = table.num_rows
        response: dict[str, Any] = {
            "model_name": served.name,
            "model_version": served.version,
            "outputs": tensors,
        }
        if "id" in request:
            response["id"] = request["id"]
        if self.log is not None:
            self.log.maybe(served.name, served.version, rows, request["inputs"], tensors, t0)
        if _binary_output(request):
            raw = encode_binary(tensors)
            return 200, self.dumps(response), rows, raw
        return 200, self.dumps(response), rows, None

    @staticmethod
    def _few(
        served: ServedModel, decoded: tuple[dict[str, list[Any]], int] | None
    ) -> tuple[dict[str, list[Any]], int] | None:
        """The answer by the few-row path (``Model.predict_columns``) for a request the codec
        decoded to columns, with its row count; None: the Arrow path answers (or refuses)."""
        if decoded is None:
            return None
        columns, rows = decoded
        try:
            answer = served.model.predict_columns(columns, rows)
        except KilnError:
            return None  # predict raises it again, and it is answered as the Arrow path's is
        return None if answer is None else (answer, rows)

    @staticmethod
    def _run(served: ServedModel, table: Any) -> Any:
        try:
            return served.model.predict(table)
        except KilnError as e:  # the model's own check of the input (e.g. an infinite value)
            raise RequestError(400, str(e)) from None

    # ------------------------------------------------------------------ metadata

    def _metadata(self, served: ServedModel, rest: str) -> dict[str, Any]:
        inputs, outputs = served.codec.v2_metadata()
        split = self.deployment.splits.get(served.name)
        versions = list(split.versions) if split and "/" not in rest else [served.version]
        return {
            "name": served.name,
            "versions": versions,
            "platform": served.platform,
            "inputs": inputs,
            "outputs": outputs,
        }

    def openapi(self) -> bytes:
        if self._openapi is None:
            from kiln.serving._openapi import openapi

            self._openapi = self.dumps(openapi(self.deployment.names()))
        return self._openapi


def _binary_output(request: dict[str, Any]) -> bool:
    """Whether the client asked for binary outputs (Triton's clients do unless told not to)."""
    parameters = request.get("parameters")
    if isinstance(parameters, dict) and parameters.get("binary_data_output") is True:
        return True
    outputs = request.get("outputs")
    return isinstance(outputs, list) and any(
        isinstance(o, dict)
        and isinstance(o.get("parameters"), dict)
        and o["parameters"].get("binary_data") is True
        for o in outputs
    )


class _NotAllowed(RequestError):
    def __init__(self, allowed: str, message: str) -> None:
        super().__init__(405, message)
        self.allow = allowed.encode()


def _tf_status(served: ServedModel) -> dict[str, Any]:
    return {
        "model_version_status": [
            {
                "version": served.version,
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
