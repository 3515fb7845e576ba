"""The OpenAPI 3 document of the whole serving API (the served model names as an enum)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kiln._version import __version__

__all__ = ["openapi"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": _json(_ref("Error"), "The request does not match the model's signature"),
    "401": _json(_ref("Error"), "No token, or the wrong one (when the server has one)"),
    "404": _json(_ref("Error"), "No such model or version"),
    "405": _json(_ref("Error"), "Wrong method"),
    "413": _json(_ref("Error"), "The body is over the server's limit"),
}


def openapi(models: Sequence[str]) -> dict[str, Any]:
    name = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": list(models)},
    }
    version = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}

    def op(
        summary: str,
        ok: dict[str, Any],
        *,
        params: Sequence[dict[str, Any]] = (),
        body: str | None = None,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"summary": summary, "responses": {"200": ok, **_ERRORS}}
        if params:
            out["parameters"] = list(params)
        if body:
            out["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _ref(body)}},
            }
        return out

    predict = op(
        "Vertex AI / TF Serving prediction",
        _json(_ref("PredictResponse"), "One prediction per instance"),
        params=[name],
        body="PredictRequest",
    )
    infer = op(
        "Open Inference Protocol (KServe V2) inference",
        _json(_ref("InferResponse"), "The output tensors"),
        params=[name],
        body="InferRequest",
    )
    metadata = op("V2 model metadata", _json(_ref("ModelMetadata"), "Inputs and outputs"))
    ready = op("V2 model readiness", _json({"type": "object"}, "Ready"))

    def versioned(o: dict[str, Any]) -> dict[str, Any]:
        return {**o, "parameters": [name, version]}

    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "datatype": {
                "type": "string",
                "enum": [
                    "BOOL",
                    "UINT8",
                    "UINT16",
                    "UINT32",
                    "UINT64",
                    "INT8",
                    "INT16",
                    "INT32",
                    "INT64",
                    "FP16",
                    "FP32",
                    "FP64",
                    "BYTES",
                ],
            },
            "parameters": {"type": "object"},
            "data": {"type": "array", "items": {}},
        },
    }
    meta_tensor = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Kiln model server",
            "version": __version__,
            "description": "Vertex AI / TF Serving predict and the Open Inference Protocol "
            '(KServe V2) REST API over Kiln models; every error is {"error": "..."}.',
        },
        "paths": {
            "/v1/models/{name}:predict": {"post": predict},
            "/v1/models/{name}/versions/{version}:predict": {"post": versioned(predict)},
            "/v1/models/{name}": {
                "get": op(
                    "TF Serving model status", _json({"type": "object"}, "Status"), params=[name]
                )
            },
            "/v2": {"get": op("V2 server metadata", _json({"type": "object"}, "Server"))},
            "/v2/health/live": {"get": op("V2 liveness", _json({"type": "object"}, "Live"))},
            "/v2/health/ready": {"get": op("V2 readiness", _json({"type": "object"}, "Ready"))},
            "/v2/models/{name}": {"get": {**metadata, "parameters": [name]}},
            "/v2/models/{name}/versions/{version}": {"get": versioned(metadata)},
            "/v2/models/{name}/ready": {"get": {**ready, "parameters": [name]}},
            "/v2/models/{name}/versions/{version}/ready": {"get": versioned(ready)},
            "/v2/models/{name}/infer": {"post": infer},
            "/v2/models/{name}/versions/{version}/infer": {"post": versioned(infer)},
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics: requests, errors, latency per model",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format 0.0.4",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {"get": op("This document", _json({"type": "object"}, "OpenAPI 3"))},
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
                "PredictRequest": {
                    "type": "object",
                    "required": ["instances"],
                    "properties": {
                        "instances": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "oneOf": [
                                    {"type": "object", "description": "feature: value"},
                                    {"type": "array", "description": "in signature order"},
                                ]
                            },
                        },
                        "parameters": {"type": "object"},
                    },
                },
                "PredictResponse": {
                    "type": "object",
                    "properties": {
                        "predictions": {"type": "array", "items": {"type": "object"}},
                        "deployedModelId": {"type": "string"},
                        "model": {"type": "string"},
                        "modelDisplayName": {"type": "string"},
                        "modelVersionId": {"type": "string"},
                    },
                },
                "InferRequest": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "parameters": {"type": "object"},
                        "inputs": {"type": "array", "items": tensor},
                        "outputs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"name": {"type": "string"}},
                            },
                        },
                    },
                },
                "InferResponse": {
                    "type": "object",
                    "properties": {
                        "model_name": {"type": "string"},
                        "model_version": {"type": "string"},
                        "id": {"type": "string"},
                        "outputs": {"type": "array", "items": tensor},
                    },
                },
                "ModelMetadata": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "versions": {"type": "array", "items": {"type": "string"}},
                        "platform": {"type": "string"},
                        "inputs": {"type": "array", "items": meta_tensor},
                        "outputs": {"type": "array", "items": meta_tensor},
                    },
                },
            }
        },
    }
