"""The FastAPI + pydantic baseline of ``bench/serving.py``, run in ``bench/.serving-venv``.

A minimal endpoint as one would write it by hand: a pydantic model with the 30 features as
``float`` fields, ``POST /v1/models/{name}:predict`` taking ``{"instances": [{feature: value}]}``
(the Vertex-style request Kiln answers too), the LightGBM booster loaded from the Kiln model
folder's text file (``estimator/model.txt``, no pickle) and called directly on the rows, in an
``async def`` endpoint (no hop to the thread pool: the faster of FastAPI's two ways for a call
of microseconds). One uvicorn worker (uvloop and httptools when installed: uvicorn's defaults).
Answers
``{"predictions": [{"label": 0|1, "probs": [p0, p1]}, ...]}``.

    python bench/_serving_fastapi.py MODEL_TXT FEATURES_JSON NAME HOST PORT
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint's annotations at run
# time, and the request model is made inside ``make_app``.
import json
import sys
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import ConfigDict, create_model


def make_app(model_txt: str, features: list[str], name: str) -> FastAPI:
    booster = lgb.Booster(model_file=model_txt)
    # Field names such as "mean radius" are not identifiers: declared through aliases.
    fields: dict[str, Any] = {f"f{i}": (float, ...) for i in range(len(features))}
    row_model = create_model(
        "Row",
        __config__=ConfigDict(alias_generator=lambda field: features[int(field[1:])]),
        **fields,
    )
    keys = list(fields)

    request_model = create_model("Request", instances=(list[row_model], ...))  # type: ignore

    app = FastAPI()

    @app.get("/v2/health/ready")
    def ready() -> dict[str, bool]:
        return {"ready": True}

    @app.post("/v1/models/{model}:predict")
    async def predict(model: str, request: request_model) -> dict[str, Any]:  # type: ignore[valid-type]
        if model != name:
            raise HTTPException(404, f"no model {model!r}")
        x = np.array([[getattr(row, k) for k in keys] for row in request.instances])
        p1 = booster.predict(x, num_threads=1)
        return {
            "predictions": [
                {"label": int(p >= 0.5), "probs": [1.0 - float(p), float(p)]} for p in p1
            ]
        }

    return app


if __name__ == "__main__":
    model_txt, features_json, name, host, port = sys.argv[1:6]
    features = json.loads(Path(features_json).read_text())
    uvicorn.run(
        make_app(model_txt, features, name),
        host=host,
        port=int(port),
        workers=1,
        log_level="warning",
        access_log=False,
    )
