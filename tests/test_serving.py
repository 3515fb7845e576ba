"""kiln serve: a real server process on 127.0.0.1 (started by the real command) in every test,
models trained for real on the penguins and on scikit-learn's breast_cancer."""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import signal
import socket
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from conftest import KILN, assert_clean_error, kiln
from kiln.model import Model
from kiln.registry import ModelRegistry
from kiln.workspace import Workspace

pytest.importorskip("httptools", reason="kiln serve needs the serve extra: pip install kiln[serve]")

READY_WITHIN_S = 60.0  # generous: two shared cores; the goal (<= 2 s) is bench/serving.py's


# ---------------------------------------------------------------------------------- models


def _penguins() -> pa.Table:
    import importlib.resources

    src = importlib.resources.files("palmerpenguins") / "data/penguins.csv"
    with src.open("rb") as f:
        t = pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(null_values=["NA"]))
    return t.filter(pc.and_(pc.is_valid(t["body_mass_g"]), pc.is_valid(t["sex"])))


def _breast_cancer() -> pa.Table:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    columns = {
        name.replace(" ", "_"): pa.array(data.data[:, i])
        for i, name in enumerate(data.feature_names)
    }
    columns["diagnosis"] = pa.array(np.where(data.target == 1, "benign", "malignant"))
    return pa.table(columns)


def _fit(table: pa.Table, model_type: str, label: str, **settings: Any) -> Model:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Model.fit(table, model_type=model_type, label=label, settings=settings)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Model folders: penguins species (LightGBM), body mass (linear), breast cancer (LightGBM)."""
    root = tmp_path_factory.mktemp("models")
    penguins, cancer = _penguins(), _breast_cancer()
    return {
        "species": _fit(penguins, "boosted_tree_classifier", "species").save(root / "species"),
        "species_linear": _fit(penguins, "logistic_reg", "species").save(root / "species_linear"),
        "mass": _fit(penguins, "linear_reg", "body_mass_g").save(root / "mass"),
        "cancer": _fit(cancer, "boosted_tree_classifier", "diagnosis").save(root / "cancer"),
    }


PENGUIN = {
    "island": "Biscoe",
    "bill_length_mm": 45.1,
    "bill_depth_mm": 14.5,
    "flipper_length_mm": 215,
    "body_mass_g": 5000,
    "sex": "female",
    "year": 2008,
}
MASS_ROW = {**PENGUIN, "species": "Gentoo"}
CANCER_ROW = _breast_cancer().slice(0, 1).drop_columns(["diagnosis"]).to_pylist()[0]


# ---------------------------------------------------------------------------------- server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, proc: subprocess.Popen[str], port: int) -> None:
        self.proc = proc
        self.port = port
        self.ready_line = ""

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            data = raw if raw is not None else None if body is None else json.dumps(body).encode()
            conn.request(method, path, body=data, headers=headers or {})
            response = conn.getresponse()
            payload = response.read()
            kind = response.getheader("Content-Type", "")
        finally:
            conn.close()
        if kind.startswith("application/json"):
            return response.status, json.loads(payload)
        return response.status, payload.decode()


@contextlib.contextmanager
def serve(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    """``kiln serve ARGS --port P``, waited on through /v2/health/ready; stopped with SIGTERM."""
    port = _free_port()
    proc = subprocess.Popen(
        [KILN, "serve", *args, "--port", str(port)],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = Server(proc, port)
    deadline = time.monotonic() + READY_WITHIN_S
    try:
        while True:
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"kiln serve exited {proc.returncode}:\n{out}\n{err}")
            try:
                status, body = server.call("GET", "/v2/health/ready")
                if status == 200 and body == {"ready": True}:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"kiln serve was not ready within {READY_WITHIN_S} s")
            time.sleep(0.05)
        assert proc.stdout is not None
        server.ready_line = proc.stdout.readline()
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


@pytest.fixture
def registry_ws(tmp_path: Path, models: dict[str, Path]) -> Workspace:
    """A workspace where 'species' has versions 1 (LightGBM, production) and 2 (logistic)."""
    ws, _ = Workspace.init(tmp_path / "ws")
    reg = ModelRegistry(ws)
    reg.register_folder("species", models["species"], aliases=["production"])
    reg.register_folder("species", models["species_linear"])
    reg.register_folder("cancer", models["cancer"], aliases=["production"])
    ws.close()
    return ws


# ---------------------------------------------------------------------------------- Vertex


def test_vertex_predict_with_objects_and_lists(tmp_path: Path, models: dict[str, Path]) -> None:
    with serve(f"species={models['species']}", f"mass={models['mass']}", cwd=tmp_path) as s:
        assert s.ready_line.startswith(f"serving http://127.0.0.1:{s.port}")
        assert "species (version 1)" in s.ready_line
        assert "mass" in s.ready_line
        status, body = s.call("POST", "/v1/models/species:predict", {"instances": [PENGUIN]})
        assert status == 200, body
        assert body["model"] == "species"
        assert body["modelVersionId"] == "1"
        [prediction] = body["predictions"]
        assert prediction["predicted_species"] == "Gentoo"
        probs = prediction["predicted_species_probs"]
        assert {p["label"] for p in probs} == {"Adelie", "Chinstrap", "Gentoo"}
        assert sum(p["prob"] for p in probs) == pytest.approx(1.0)
        # the same row as a list in signature order, twice, through the versioned route
        order = json.loads((models["species"] / "manifest.json").read_text())["signature"]
        as_list = [PENGUIN[c["name"]] for c in order]
        status, listed = s.call(
            "POST",
            "/v1/models/species/versions/1:predict",
            {"instances": [as_list, as_list], "parameters": {}},
        )
        assert status == 200, listed
        assert listed["predictions"] == [prediction, prediction]
        # a regressor; null where a feature is unknown
        status, body = s.call(
            "POST",
            "/v1/models/mass:predict",
            {"instances": [{**PENGUIN, "species": "Adelie", "sex": None}]},
        )
        assert status == 200, body
        assert 2000 < body["predictions"][0]["predicted_body_mass_g"] < 8000
        # TF Serving's model status
        status, body = s.call("GET", "/v1/models/species")
        assert status == 200
        assert body["model_version_status"][0]["state"] == "AVAILABLE"


def test_few_row_requests_answer_as_the_arrow_path(tmp_path: Path, models: dict[str, Path]) -> None:
    """A request of a few rows takes the few-row path (no Arrow table); the same rows with their
    integer features sent as whole floats (which the codec converts) take the Arrow path: the
    answers are the same, to the last bit, on both protocols, for trees with categorical
    strings, a linear classifier and a linear regressor; and a large request (the Arrow path)
    gives trees' rows the same answers too. A bad value gets the same refusal either way."""
    from kiln.model._model import FEW_ROWS

    odd: list[dict[str, Any]] = [
        PENGUIN,
        {**PENGUIN, "sex": None, "island": "Atlantis"},
        {**PENGUIN, "bill_length_mm": None, "flipper_length_mm": 190, "year": 2009},
        {**PENGUIN, "island": "Dream", "bill_depth_mm": 17, "body_mass_g": 3000},
    ]
    served = ("species", "species_linear", "mass")
    with serve(*(f"{m}={models[m]}" for m in served), cwd=tmp_path) as s:
        for name in served:
            signature = _signature(models[name])
            ints = {c["name"] for c in signature if c["type"] == "int64"}
            assert ints
            rows: list[dict[str, Any]] = (
                [{**r, "species": "Adelie"} for r in odd] if name == "mass" else odd
            )
            floats = [{k: float(v) if k in ints else v for k, v in r.items()} for r in rows]
            for batch, arrow in [
                *(([r], [f]) for r, f in zip(rows, floats, strict=True)),
                (rows, floats),
            ]:
                status, few = s.call("POST", f"/v1/models/{name}:predict", {"instances": batch})
                assert status == 200, few
                assert few == s.call("POST", f"/v1/models/{name}:predict", {"instances": arrow})[1]
                assert _v2(s, name, signature, batch) == _v2(s, name, signature, arrow)
            if name == "species":  # trees: each row's answer is the same in any batch
                many = rows * (FEW_ROWS // len(rows) + 1)
                status, large = s.call("POST", f"/v1/models/{name}:predict", {"instances": many})
                assert status == 200, large
                status, few = s.call("POST", f"/v1/models/{name}:predict", {"instances": rows})
                assert few["predictions"] == large["predictions"][: len(rows)]
        bad = {**PENGUIN, "bill_depth_mm": "deep"}
        one = s.call("POST", "/v1/models/species:predict", {"instances": [bad]})
        many_bad = s.call("POST", "/v1/models/species:predict", {"instances": [bad] * 200})
        assert one[0] == 400
        assert one == many_bad


def _signature(folder: Path) -> list[dict[str, Any]]:
    signature: list[dict[str, Any]] = json.loads((folder / "manifest.json").read_text())[
        "signature"
    ]
    return signature


def _v2(
    s: Server, name: str, signature: list[dict[str, Any]], instances: list[dict[str, Any]]
) -> dict[str, Any]:
    """``instances`` as V2 tensors, one per signature column; the answer."""
    inputs = [
        {
            "name": c["name"],
            "shape": [len(instances)],
            "datatype": "BYTES" if c["type"] == "string" else "FP64",
            "data": [r[c["name"]] for r in instances],
        }
        for c in signature
    ]
    status, body = s.call("POST", f"/v2/models/{name}/infer", {"inputs": inputs})
    assert status == 200, body
    answer: dict[str, Any] = body
    return answer


# ---------------------------------------------------------------------------------- V2


def test_v2_health_metadata_and_infer(tmp_path: Path, models: dict[str, Path]) -> None:
    with serve(f"species={models['species']}", f"cancer={models['cancer']}", cwd=tmp_path) as s:
        assert s.call("GET", "/v2/health/live") == (200, {"live": True})
        assert s.call("GET", "/v2/health/ready") == (200, {"ready": True})
        assert s.call("GET", "/v2/models/species/ready") == (
            200,
            {"name": "species", "ready": True},
        )
        assert s.call("GET", "/v2/models/species/versions/1/ready")[0] == 200
        status, server_meta = s.call("GET", "/v2")
        assert status == 200
        assert server_meta["name"] == "kiln"
        status, meta = s.call("GET", "/v2/models/species")
        assert status == 200
        assert meta["name"] == "species"
        assert meta["versions"] == ["1"]
        types = {i["name"]: i["datatype"] for i in meta["inputs"]}
        assert types == {
            "island": "BYTES",
            "bill_length_mm": "FP64",
            "bill_depth_mm": "FP64",
            "flipper_length_mm": "INT64",
            "body_mass_g": "INT64",
            "sex": "BYTES",
            "year": "INT64",
        }
        outputs = {o["name"]: o for o in meta["outputs"]}
        assert outputs["predicted_species"]["datatype"] == "BYTES"
        assert outputs["predicted_species_probs"] == {
            "name": "predicted_species_probs",
            "datatype": "FP64",
            "shape": [-1, 3],
        }
        # one tensor per feature, two rows, nested [2, 1] and flat [2] data both accepted
        inputs = [
            {
                "name": name,
                "shape": [2, 1] if i % 2 else [2],
                "datatype": types[name],
                "data": [[value], [value]] if i % 2 else [value, value],
            }
            for i, (name, value) in enumerate(PENGUIN.items())
        ]
        status, body = s.call("POST", "/v2/models/species/infer", {"id": "req-1", "inputs": inputs})
        assert status == 200, body
        assert body["model_name"] == "species"
        assert body["model_version"] == "1"
        assert body["id"] == "req-1"
        out = {o["name"]: o for o in body["outputs"]}
        assert out["predicted_species"] == {
            "name": "predicted_species",
            "datatype": "BYTES",
            "shape": [2],
            "data": ["Gentoo", "Gentoo"],
        }
        assert out["predicted_species_probs"]["shape"] == [2, 3]
        assert out["predicted_species_probs_label"]["data"][:3] == ["Adelie", "Chinstrap", "Gentoo"]
        # only the outputs asked for
        status, body = s.call(
            "POST",
            "/v2/models/species/versions/1/infer",
            {"inputs": inputs, "outputs": [{"name": "predicted_species"}]},
        )
        assert status == 200
        assert [o["name"] for o in body["outputs"]] == ["predicted_species"]
        # numeric model: one [rows, 30] FP64 tensor in signature order
        order = [i["name"] for i in s.call("GET", "/v2/models/cancer")[1]["inputs"]]
        matrix = [CANCER_ROW[n] for n in order]
        status, body = s.call(
            "POST",
            "/v2/models/cancer/infer",
            {"inputs": [{"name": "x", "shape": [2, 30], "datatype": "FP64", "data": matrix * 2}]},
        )
        assert status == 200, body
        assert body["outputs"][0]["data"] == ["malignant", "malignant"]


def test_an_existing_v2_client_works_unchanged(tmp_path: Path, models: dict[str, Path]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gevent's own deprecations
        httpclient = pytest.importorskip(
            "tritonclient.http", reason="tritonclient[http] is a dev dependency"
        )
    numpy_of = {"FP64": np.float64, "INT64": np.int64, "BYTES": np.object_}
    serving = (f"cancer={models['cancer']}", f"species={models['species']}")
    with serve(*serving, cwd=tmp_path) as s:
        client = httpclient.InferenceServerClient(url=f"127.0.0.1:{s.port}")
        try:
            assert client.is_server_live()
            assert client.is_server_ready()
            assert client.is_model_ready("cancer")
            # numbers as JSON (binary_data=False), outputs asked for by name
            meta = client.get_model_metadata("cancer")
            assert len(meta["inputs"]) == 30
            tensors = []
            for i in meta["inputs"]:
                tensor = httpclient.InferInput(i["name"], [3, 1], i["datatype"])
                tensor.set_data_from_numpy(
                    np.full((3, 1), CANCER_ROW[i["name"]]), binary_data=False
                )
                tensors.append(tensor)
            wanted = [
                httpclient.InferRequestedOutput("predicted_diagnosis", binary_data=False),
                httpclient.InferRequestedOutput("predicted_diagnosis_probs", binary_data=False),
            ]
            result = client.infer("cancer", tensors, outputs=wanted)
            labels = result.as_numpy("predicted_diagnosis")
            assert [v.decode() if isinstance(v, bytes) else v for v in labels] == ["malignant"] * 3
            probs = result.as_numpy("predicted_diagnosis_probs")
            assert probs.shape == (3, 2)
            assert np.allclose(probs.sum(axis=1), 1.0)
            # the client's defaults: binary tensors both ways, strings and integers included
            meta = client.get_model_metadata("species")
            tensors = []
            for i in meta["inputs"]:
                tensor = httpclient.InferInput(i["name"], [2, 1], i["datatype"])
                value = PENGUIN[i["name"]]
                if i["datatype"] == "BYTES":
                    value = value.encode()
                tensor.set_data_from_numpy(np.full((2, 1), value, dtype=numpy_of[i["datatype"]]))
                tensors.append(tensor)
            result = client.infer("species", tensors)
            assert list(result.as_numpy("predicted_species")) == [b"Gentoo", b"Gentoo"]
            probs = result.as_numpy("predicted_species_probs")
            assert probs.shape == (2, 3)
            assert probs.dtype == np.float64
            assert list(result.as_numpy("predicted_species_probs_label")[0]) == [
                b"Adelie",
                b"Chinstrap",
                b"Gentoo",
            ]
        finally:
            client.close()


# ---------------------------------------------------------------------------------- errors


def _error(result: tuple[int, Any], status: int, *needles: str) -> None:
    got, body = result
    assert got == status, body
    assert isinstance(body, dict), body
    assert set(body) == {"error"}, body
    for needle in needles:
        assert needle in body["error"], body["error"]


def test_every_error_is_json_with_its_status(tmp_path: Path, models: dict[str, Path]) -> None:
    with serve(f"species={models['species']}", "--max-body-bytes", "20000", cwd=tmp_path) as s:
        predict = "/v1/models/species:predict"
        bad_type = {**PENGUIN, "bill_length_mm": "long"}
        _error(
            s.call("POST", predict, {"instances": [PENGUIN, bad_type]}),
            400,
            "instance 1",
            "bill_length_mm",
            "string 'long'",
        )
        _error(
            s.call("POST", predict, {"instances": [PENGUIN, {**PENGUIN, "year": 2008.5}]}),
            400,
            "instance 1",
            "'year'",
            "whole number",
        )
        _error(
            s.call("POST", predict, {"instances": [{**PENGUIN, "island": 3}]}),
            400,
            "'island'",
            "not a string",
        )
        _error(
            s.call("POST", predict, {"instances": [{**PENGUIN, "sex": True}]}),
            400,
            "'sex'",
        )
        missing = {k: v for k, v in PENGUIN.items() if k != "island"}
        _error(
            s.call("POST", predict, {"instances": [PENGUIN, missing]}),
            400,
            "instance 1",
            "'island'",
            "missing",
        )
        nan = json.dumps({"instances": [{**PENGUIN, "bill_depth_mm": math.nan}]}).encode()
        _error(s.call("POST", predict, raw=nan), 400, "instance 0", "'bill_depth_mm'", "NaN")
        _error(s.call("POST", predict, raw=b'{"instances": [{'), 400, "not valid JSON")
        _error(s.call("POST", predict, raw=b""), 400, "no body")
        _error(s.call("POST", predict, {"rows": []}), 400, "instances")
        _error(s.call("POST", predict, {"instances": []}), 400, "non-empty")
        _error(s.call("POST", predict, {"instances": [[1, 2]]}), 400, "has 2 values", "island")
        _error(s.call("POST", predict, {"instances": [PENGUIN, [1]]}), 400, "instance 1")
        infer = "/v2/models/species/infer"
        tensor = {"name": "island", "shape": [2], "datatype": "BYTES", "data": ["Biscoe"]}
        _error(s.call("POST", infer, {"inputs": [tensor]}), 400, "'island'", "shape [2]")
        _error(
            s.call("POST", infer, {"inputs": [{**tensor, "shape": [1], "datatype": "FP64"}]}),
            400,
            "datatype 'FP64'",
        )
        _error(
            s.call("POST", infer, {"inputs": [{**tensor, "shape": [1]}]}),
            400,
            "is missing",
        )
        _error(
            s.call("POST", infer, {"inputs": [{**tensor, "name": "nope", "shape": [1]}]}),
            400,
            "'nope'",
        )
        _error(s.call("POST", infer, {"inputs": "x"}), 400, "inputs")
        _error(
            s.call(
                "POST", infer, {"inputs": [{**tensor, "shape": [1]}], "outputs": [{"name": "z"}]}
            ),
            400,
        )
        # 404: model, version, route; close names suggested
        _error(
            s.call("POST", "/v1/models/specie:predict", {"instances": [PENGUIN]}), 404, "'species'"
        )
        _error(
            s.call("POST", "/v1/models/species/versions/7:predict", {"instances": [PENGUIN]}),
            404,
            "version '7'",
        )
        _error(s.call("GET", "/v2/models/nope"), 404, "nope")
        _error(s.call("GET", "/v2/models/species/versions/2/ready"), 404)
        _error(s.call("GET", "/nowhere"), 404, "/nowhere")
        # 405 with Allow
        _error(s.call("GET", predict), 405, "POST")
        _error(s.call("DELETE", "/v2/health/ready"), 405)
        _error(s.call("POST", "/v2/models/species", {}), 405)
        # 413 over the limit; the server goes on serving
        _error(
            s.call("POST", predict, {"instances": [PENGUIN] * 500}),
            413,
            "--max-body-bytes",
        )
        assert s.call("POST", predict, {"instances": [PENGUIN]})[0] == 200
        # malformed HTTP
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as raw:
            raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            answer = raw.recv(65536)
        assert answer.startswith(b"HTTP/1.1 400")
        assert b'{"error":' in answer
        # metrics count what happened, per model and version
        status, text = s.call("GET", "/metrics")
        assert status == 200
        assert 'kiln_requests_total{model="species",version="1",protocol="v1",code="400"}' in text
        assert 'kiln_requests_total{model="species",version="1",protocol="v1",code="200"}' in text
        assert "kiln_request_duration_seconds_bucket{" in text
        assert 'kiln_request_errors_total{model="species",version="1"}' in text
        status, spec = s.call("GET", "/openapi.json")
        assert status == 200
        assert spec["openapi"].startswith("3.")
        assert {"/v1/models/{name}:predict", "/v2/models/{name}/infer", "/metrics"} <= set(
            spec["paths"]
        )


def test_a_token_is_required_when_set(tmp_path: Path, models: dict[str, Path]) -> None:
    env = {"SERVE_TOKEN": "s3cret"}
    with serve(f"mass={models['mass']}", "--token-env", "SERVE_TOKEN", cwd=tmp_path, env=env) as s:
        body = {"instances": [MASS_ROW]}
        _error(s.call("POST", "/v1/models/mass:predict", body), 401, "Bearer")
        _error(
            s.call(
                "POST", "/v1/models/mass:predict", body, headers={"Authorization": "Bearer nope"}
            ),
            401,
        )
        ok = {"Authorization": "Bearer s3cret"}
        assert s.call("POST", "/v1/models/mass:predict", body, headers=ok)[0] == 200
        assert s.call("GET", "/v2/models/mass", headers=ok)[0] == 200
        assert s.call("GET", "/v2/health/live")[0] == 200  # probes need no token
    proc = kiln("serve", f"mass={models['mass']}", "--token-env", "UNSET_VAR", cwd=tmp_path)
    assert_clean_error(proc, "UNSET_VAR")


# ---------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("workers", ["1", "2"])
def test_refuses_to_start_on_a_tampered_model(
    tmp_path: Path, models: dict[str, Path], workers: str
) -> None:
    import shutil

    folder = tmp_path / "tampered"
    shutil.copytree(models["mass"], folder)
    estimator = next(p for p in (folder / "estimator").iterdir() if p.is_file())
    estimator.write_bytes(estimator.read_bytes() + b"\0")
    port = str(_free_port())
    proc = kiln("serve", f"mass={folder}", "--port", port, "--workers", workers, cwd=tmp_path)
    assert_clean_error(proc, "fingerprint")


def test_refuses_unknown_models_naming_close_ones(tmp_path: Path, registry_ws: Workspace) -> None:
    proc = kiln("serve", "specie", "--port", str(_free_port()), cwd=registry_ws.root, timeout=60)
    assert_clean_error(proc, "no model 'specie'", "did you mean 'species'")
    proc = kiln("serve", "models:/species@staging", "--port", "0", cwd=registry_ws.root, timeout=60)
    assert_clean_error(proc, "no alias 'staging'")
    proc = kiln("serve", "x=/no/such/folder", cwd=registry_ws.root, timeout=60)
    assert_clean_error(proc, "/no/such/folder")


def test_serves_every_production_alias_by_default(tmp_path: Path, registry_ws: Workspace) -> None:
    with serve(cwd=registry_ws.root) as s:
        assert "species (version 1)" in s.ready_line
        assert "cancer (version 1)" in s.ready_line
        status, body = s.call("POST", "/v1/models/species:predict", {"instances": [PENGUIN]})
        assert status == 200
        assert body["modelVersionId"] == "1"
    with serve("models:/species/2", "cancer", cwd=registry_ws.root) as s:
        status, body = s.call("POST", "/v1/models/species:predict", {"instances": [PENGUIN]})
        assert status == 200
        assert body["modelVersionId"] == "2"


# ---------------------------------------------------------------------------------- fuzz


def test_a_fuzzed_body_never_gets_a_500(tmp_path: Path, models: dict[str, Path]) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=12,
    )
    feature = st.sampled_from([*PENGUIN, "other"])
    instance = st.dictionaries(feature, values, max_size=8) | st.lists(values, max_size=8)
    tensor = st.fixed_dictionaries(
        {},
        optional={
            "name": feature | values,
            "shape": st.lists(st.integers(-1, 3), max_size=3) | values,
            "datatype": st.sampled_from(["FP64", "INT64", "BYTES", "BOOL", "FP32"]) | values,
            "data": st.lists(values, max_size=6),
        },
    )
    bodies = (
        st.fixed_dictionaries({"instances": st.lists(instance, max_size=3) | values})
        | st.fixed_dictionaries({"inputs": st.lists(tensor, max_size=4) | values})
        | values
    )
    with serve(f"species={models['species']}", cwd=tmp_path) as s:

        @settings(
            max_examples=150,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        )
        @given(body=bodies, route=st.sampled_from(["v1", "v2"]), junk=st.binary(max_size=20))
        def never_500(body: Any, route: str, junk: bytes) -> None:
            path = "/v1/models/species:predict" if route == "v1" else "/v2/models/species/infer"
            raw = json.dumps(body, allow_nan=True).encode()
            for payload in (raw, raw[: len(raw) // 2] + junk):
                status, answer = s.call("POST", path, raw=payload)
                assert status in (200, 400), (status, answer, payload)
                assert isinstance(answer, dict)
                assert status == 200 or set(answer) == {"error"}

        never_500()


# ---------------------------------------------------------------------------------- load


def _hammer(
    port: int,
    path: str,
    body: bytes,
    stop: threading.Event,
    failures: list[str],
    served: dict[str, int],
    lock: threading.Lock,
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        while not stop.is_set():
            try:
                conn.request("POST", path, body=body)
                response = conn.getresponse()
                payload = response.read()
            except OSError as e:
                failures.append(repr(e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            if response.status != 200:
                failures.append(f"{response.status}: {payload[:200]!r}")
                continue
            version = json.loads(payload)["modelVersionId"]
            with lock:
                served[version] = served.get(version, 0) + 1
    finally:
        conn.close()


def _load(
    port: int, path: str, body: dict[str, Any], clients: int
) -> tuple[threading.Event, list[threading.Thread], list[str], dict[str, int], threading.Lock]:
    stop, failures, served, lock = threading.Event(), [], {}, threading.Lock()
    data = json.dumps(body).encode()
    threads = [
        threading.Thread(
            target=_hammer, args=(port, path, data, stop, failures, served, lock), daemon=True
        )
        for _ in range(clients)
    ]
    for t in threads:
        t.start()
    return stop, threads, failures, served, lock


@pytest.mark.slow
def test_64_concurrent_clients_for_10_seconds(tmp_path: Path, models: dict[str, Path]) -> None:
    with serve(f"cancer={models['cancer']}", cwd=tmp_path) as s:
        stop, threads, failures, served, _ = _load(
            s.port, "/v1/models/cancer:predict", {"instances": [CANCER_ROW]}, 64
        )
        time.sleep(10)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert failures == []
        assert sum(served.values()) > 64
        _status, text = s.call("GET", "/metrics")
        assert f'code="200"}} {sum(served.values())}' in text


@pytest.mark.slow
def test_an_alias_moved_under_load_swaps_with_no_failed_request(
    registry_ws: Workspace,
) -> None:
    with serve("species", "--poll", "0.5", cwd=registry_ws.root) as s:
        stop, threads, failures, served, lock = _load(
            s.port, "/v1/models/species:predict", {"instances": [PENGUIN]}, 8
        )
        time.sleep(1.0)
        ws = Workspace(registry_ws.root)
        ModelRegistry(ws).set_alias("species", "production", 2, reason="test swap")
        ws.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with lock:
                if served.get("2", 0) > 20:
                    break
            time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert failures == []
        assert served.get("1", 0) > 0, served
        assert served.get("2", 0) > 20, served
        _status, body = s.call("GET", "/v2/models/species")
        assert body["versions"] == ["2"]


# ---------------------------------------------------------------------------------- deployment


def test_workers_share_the_port(tmp_path: Path, models: dict[str, Path]) -> None:
    with serve(f"mass={models['mass']}", "--workers", "2", cwd=tmp_path) as s:
        assert "2 workers" in s.ready_line
        for _ in range(10):
            status, _body = s.call("POST", "/v1/models/mass:predict", {"instances": [MASS_ROW]})
            assert status == 200


def test_predictions_are_logged_to_parquet(tmp_path: Path, models: dict[str, Path]) -> None:
    Workspace.init(tmp_path / "ws")
    with serve(f"species={models['species']}", "--log-predictions", "1", cwd=tmp_path / "ws") as s:
        for _ in range(3):
            assert s.call("POST", "/v1/models/species:predict", {"instances": [PENGUIN]})[0] == 200
        assert s.call("POST", "/v1/models/species:predict", {"instances": [[1]]})[0] == 400
    files = list((tmp_path / "ws" / ".kiln" / "predictions").glob("*.parquet"))
    assert len(files) == 1
    log = pq.read_table(files[0])
    assert log.num_rows == 3  # answered requests only
    assert set(log.column_names) >= {"timestamp", "model", "version", "inputs", "outputs"}
    record = log.to_pylist()[0]
    assert record["model"] == "species"
    assert record["version"] == "1"
    assert json.loads(record["inputs"]) == [PENGUIN]
    assert json.loads(record["outputs"])[0]["predicted_species"] == "Gentoo"


def _version_for(s: Server, client: str) -> str:
    """The version of ``species`` that answers ``client`` (by its X-Client-Id)."""
    status, body = s.call(
        "POST",
        "/v1/models/species:predict",
        {"instances": [PENGUIN]},
        headers={"X-Client-Id": client},
    )
    assert status == 200, body
    return str(body["modelVersionId"])


def test_a_traffic_split_sticks_each_client_to_a_version(registry_ws: Workspace) -> None:
    with serve("--split", "species=1:50,2:50", cwd=registry_ws.root) as s:
        assert "species (versions 1: 50%, 2: 50%)" in s.ready_line
        seen: dict[str, str] = {}
        for client in range(40):
            for _ in range(3):
                version = _version_for(s, f"client-{client}")
                assert seen.setdefault(f"client-{client}", version) == version
        assert set(seen.values()) == {"1", "2"}
        status, body = s.call(
            "POST", "/v1/models/species/versions/2:predict", {"instances": [PENGUIN]}
        )
        assert status == 200
        assert body["modelVersionId"] == "2"
        assert s.call("GET", "/v2/models/species")[1]["versions"] == ["1", "2"]
        _error(s.call("GET", "/v2/models/species/versions/3"), 404, "versions 1, 2")
    proc = kiln("serve", "--split", "species=1:x", cwd=registry_ws.root)
    assert_clean_error(proc, "--split", "NAME=VERSION:WEIGHT")


def test_a_traffic_split_from_the_registry_tag_follows_the_tag(registry_ws: Workspace) -> None:
    reg = ModelRegistry(registry_ws)
    reg.set_tag("species", "traffic_split", "1:50,2:50")
    registry_ws.close()
    with serve("species", "--poll", "0.2", cwd=registry_ws.root) as s:
        assert "species (versions 1: 50%, 2: 50%)" in s.ready_line

        def versions() -> set[str]:
            return {_version_for(s, f"client-{client}") for client in range(30)}

        assert versions() == {"1", "2"}
        reg.set_tag("species", "traffic_split", "2:100")  # all traffic to version 2
        registry_ws.close()
        deadline = time.monotonic() + 20
        while versions() != {"2"}:
            assert time.monotonic() < deadline, "the changed tag was not applied"
            time.sleep(0.2)
        reg.remove_tag("species", "traffic_split")  # back to the production alias: version 1
        registry_ws.close()
        deadline = time.monotonic() + 20
        while versions() != {"1"}:
            assert time.monotonic() < deadline, "the removed tag was not applied"
            time.sleep(0.2)


def test_the_prediction_log_stays_within_its_size_bound(tmp_path: Path) -> None:
    from kiln.serving._predlog import PredictionLog

    log = PredictionLog(
        tmp_path / "predictions",
        1.0,
        dumps=lambda v: json.dumps(v).encode(),
        max_bytes=20_000,
        flush_every=50,
    )
    for i in range(2_000):  # 40 files of 50 records, each some kilobytes
        log.maybe("m", "1", 1, [{"x": i, "pad": "p" * 40}], [{"y": i}], time.perf_counter())
    log.flush()
    files = sorted((tmp_path / "predictions").glob("predictions-*.parquet"))
    sizes = [f.stat().st_size for f in files]
    assert 1 < len(files) < 40  # the oldest went
    assert sum(sizes) <= 20_000
    kept = pa.concat_tables([pq.read_table(f) for f in files])
    xs = sorted(json.loads(v)[0]["x"] for v in kept["inputs"].to_pylist())
    assert xs[-1] == 1_999  # the newest records stay
    assert xs == list(range(xs[0], 2_000))  # and what stays is the most recent stretch
