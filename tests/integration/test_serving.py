"""The REST server over real HTTP on loopback: native JSON, MLflow scoring, Open Inference Protocol v2."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import modelport as mp
from modelport.client import Client
from modelport.config import Settings
from modelport.serving import ModelManager, create_app
from modelport.serving.background import BackgroundServer
from tests.unit.test_registry import credit_pipeline

MAX_BODY = 64 * 1024
MARKER = 987654321


# The tests use the same background server as the demo.
ServerThread = BackgroundServer


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """credit:1 (@production) and credit:2 (classifiers, mixed columns), price:1 (numeric regressor)."""
    with pytest.MonkeyPatch.context() as mpatch:
        mpatch.setenv("MODELPORT_HOME", str(tmp_path_factory.mktemp("serving") / "mphome"))
        mpatch.delenv("MODELPORT_DB_URL", raising=False)
        mpatch.delenv("MODELPORT_ARTIFACTS", raising=False)
        model, X, _ = credit_pipeline()
        mp.register(model, "credit", sample=X, alias="production")
        mp.register(model, "credit", sample=X)
        rng = np.random.default_rng(1)
        P = pd.DataFrame(
            {"a": rng.normal(size=50), "b": rng.normal(size=50), "n": rng.integers(0, 9, 50) * 1.0}
        )
        mp.register(LinearRegression().fit(P, P.a * 2 + P.n), "price", sample=P)
        yield {"X": X.head(8), "P": P.head(5)}


@pytest.fixture(scope="module")
def server(models: dict[str, Any]) -> Iterator[ServerThread]:
    client = Client(Settings.from_env())
    with ServerThread(create_app(client, ["credit@production", "price"], max_body_bytes=MAX_BODY)) as s:
        yield s


@pytest.fixture
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=20) as c:
        yield c


def _records(X: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in X.to_dict("records")
    ]


# --- native JSON ---------------------------------------------------------------------------------


def test_native_rows_and_columns_match_load(http: httpx.Client, models: dict[str, Any]) -> None:
    X = models["X"]
    p = mp.load("credit@production")
    r = http.post("/models/credit/predict", json={"inputs": _records(X)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["model"], body["version"], body["classes"]) == ("credit", 1, [0, 1])
    assert body["predictions"] == p.predict(X).tolist()
    np.testing.assert_allclose(body["probabilities"], p.predict_proba(X))
    split = {"columns": list(X.columns), "data": [list(r.values()) for r in _records(X)]}
    r2 = http.post("/models/credit/predict", json={"inputs": split})
    assert r2.status_code == 200, r2.text
    np.testing.assert_allclose(r2.json()["probabilities"], body["probabilities"])
    price = http.post("/models/price/predict", json={"inputs": models["P"].to_dict("records")}).json()
    np.testing.assert_allclose(price["predictions"], mp.load("price").predict(models["P"]))
    assert "probabilities" not in price


def test_alias_and_version_in_the_path(http: httpx.Client, models: dict[str, Any]) -> None:
    rows = {"inputs": _records(models["X"].head(2))}
    assert http.post("/models/credit%40production/predict", json=rows).json()["version"] == 1
    assert http.post("/models/credit%3A2/predict", json=rows).json()["version"] == 2
    assert http.post("/models/credit:2/predict", json=rows).headers["x-model-version"] == "credit:2"


def test_request_id_is_echoed_or_made(http: httpx.Client, models: dict[str, Any]) -> None:
    rows = {"inputs": _records(models["X"].head(1))}
    r = http.post("/models/credit/predict", json=rows, headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123" and r.json()["request_id"] == "abc-123"
    made = http.post("/models/credit/predict", json=rows).json()["request_id"]
    assert len(made) == 32
    bad = http.post("/models/nope/predict", json=rows, headers={"X-Request-ID": "e-1"})
    assert bad.headers["x-request-id"] == "e-1"


def test_native_errors(http: httpx.Client, models: dict[str, Any]) -> None:
    row = _records(models["X"].head(1))[0]
    r = http.post(
        "/models/credit/predict", content=b'{"inputs": [', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    missing = {k: v for k, v in row.items() if k != "debt_ratio"} | {"home": "OWN", "age": MARKER}
    r = http.post("/models/credit/predict", json={"inputs": [missing]})
    assert r.status_code == 422 and "debt_ratio" in r.json()["error"]
    assert r.json()["details"] == [{"column": "debt_ratio", "error": "missing"}]
    assert str(MARKER) not in r.text
    wrong = row | {"income": "lots", "home": MARKER}
    r = http.post("/models/credit/predict", json={"inputs": [wrong]})
    assert r.status_code == 422, r.text
    assert {d["column"] for d in r.json()["details"]} == {"income", "home"}
    assert str(MARKER) not in r.text and "lots" not in r.text
    r = http.post("/models/nope/predict", json={"inputs": [row]})
    assert r.status_code == 404 and "not served" in r.json()["error"]
    assert http.post("/models/credit%3A9/predict", json={"inputs": [row]}).status_code == 404
    assert http.post("/models/bad%20name/predict", json={"inputs": [row]}).status_code == 400
    for body in ([row], {"rows": [row]}, {"inputs": []}, {"inputs": [1, 2]}, {"inputs": {"columns": ["a"]}}):
        r = http.post("/models/credit/predict", json=body)
        assert r.status_code == 400, (body, r.text)
    r = http.post("/models/credit/predict", content=b"x" * (MAX_BODY + 1))
    assert r.status_code == 413 and "limit" in r.json()["error"]
    assert http.get("/models/credit/predict").status_code == 405
    assert http.get("/nowhere").json() == {"error": "Not Found", "details": []}


# --- MLflow scoring ------------------------------------------------------------------------------


def test_mlflow_formats(http: httpx.Client, models: dict[str, Any]) -> None:
    X = models["X"]
    expected = mp.load("credit@production").predict(X).tolist()
    recs = _records(X)
    split = {"columns": list(X.columns), "data": [list(r.values()) for r in recs]}
    for body in (
        {"dataframe_split": split},
        {"dataframe_records": recs},
        {"instances": recs},
        {"inputs": recs},
        {"inputs": {c: [r[c] for r in recs] for c in X.columns}},
    ):
        r = http.post("/invocations", json=body)
        assert r.status_code == 200, (body, r.text)
        assert r.json() == {"predictions": expected}
    csv = X.to_csv(index=False).encode()
    r = http.post("/invocations", content=csv, headers={"content-type": "text/csv"})
    assert r.json() == {"predictions": expected}
    P = models["P"]
    r = http.post("/invocations?model=price", json={"instances": P.to_numpy().tolist()})
    np.testing.assert_allclose(r.json()["predictions"], mp.load("price").predict(P))
    assert http.get("/ping").status_code == 200 and http.get("/health").status_code == 200
    assert http.get("/version").text == mp.__version__


def test_mlflow_errors(http: httpx.Client, models: dict[str, Any]) -> None:
    row = _records(models["X"].head(1))[0]
    for body in (b"{", b'{"instances": [], "inputs": []}', b'{"dataframe_records": [{"income": 1}]}'):
        r = http.post("/invocations", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400, r.text
        assert r.json()["error_code"] == "BAD_REQUEST" and r.json()["message"]
    r = http.post("/invocations?model=nope", json={"inputs": [row]})
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = http.post("/invocations", content=b"a", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "only supports the following content types" in r.text


# --- Open Inference Protocol v2 ------------------------------------------------------------------


def test_v2_over_plain_http(http: httpx.Client, models: dict[str, Any]) -> None:
    assert http.get("/v2").json()["name"] == "modelport"
    assert http.get("/v2/health/live").status_code == 200 and http.get("/v2/health/ready").status_code == 200
    meta = http.get("/v2/models/credit").json()
    assert meta["versions"] == ["1"]
    assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [
        ("income", "FP64"),
        ("debt_ratio", "FP64"),
        ("age", "INT64"),
        ("home", "BYTES"),
        ("purpose", "BYTES"),
    ]
    assert http.get("/v2/models/credit/versions/2").json()["versions"] == ["2"]
    assert http.get("/v2/models/credit/versions/2/ready").json()["ready"] is True
    X = models["X"]
    dtypes = {i["name"]: i["datatype"] for i in meta["inputs"]}
    inputs = [
        {
            "name": c,
            "shape": [len(X)],
            "datatype": dtypes[c],
            "data": [v if v == v else None for v in X[c].tolist()],
        }
        for c in X.columns
    ]
    r = http.post(
        "/v2/models/credit/infer", json={"id": "q1", "parameters": {"content_type": "pd"}, "inputs": inputs}
    )
    assert r.status_code == 200, r.text
    out = {o["name"]: o for o in r.json()["outputs"]}
    assert r.json()["id"] == "q1" and r.json()["model_version"] == "1"
    assert out["probabilities"]["shape"] == [len(X), 2]
    np.testing.assert_allclose(
        np.reshape(out["probabilities"]["data"], (-1, 2)), mp.load("credit@production").predict_proba(X)
    )
    r = http.post("/v2/models/credit/infer", json={"inputs": inputs[:2]})
    assert r.status_code == 422 and set(r.json()) == {"error"} and "age" in r.json()["error"]
    assert http.post("/v2/models/credit/infer", json={"inputs": "x"}).status_code == 400
    assert http.get("/v2/models/nope").status_code == 404


def test_tritonclient(server: ServerThread, models: dict[str, Any]) -> None:
    tc = pytest.importorskip("tritonclient.http")
    client = tc.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("credit")
        meta = client.get_model_metadata("credit")
        assert [i["name"] for i in meta["inputs"]] == ["income", "debt_ratio", "age", "home", "purpose"]
        X = models["X"].fillna({"income": 50000.0})
        inputs = []
        for spec in meta["inputs"]:
            values = X[spec["name"]].to_numpy()
            arr = values.astype(object) if spec["datatype"] == "BYTES" else values
            inp = tc.InferInput(spec["name"], [len(X)], spec["datatype"])
            inp.set_data_from_numpy(arr)  # binary tensor extension, the client's default
            inputs.append(inp)
        result = client.infer("credit", inputs, model_version="2")
        assert result.get_response()["model_version"] == "2"
        p = mp.load("credit:2")
        np.testing.assert_allclose(result.as_numpy("probabilities"), p.predict_proba(X))
        np.testing.assert_array_equal(result.as_numpy("predictions"), p.predict(X))
        P = models["P"]
        matrix = tc.InferInput("input", list(P.shape), "FP64")
        matrix.set_data_from_numpy(P.to_numpy(dtype=np.float64), binary_data=False)
        out = client.infer(
            "price", [matrix], outputs=[tc.InferRequestedOutput("predictions", binary_data=False)]
        )
        np.testing.assert_allclose(out.as_numpy("predictions"), mp.load("price").predict(P))
        with pytest.raises(Exception, match="not served"):
            client.infer("nope", [matrix])
    finally:
        client.close()


# --- operations ----------------------------------------------------------------------------------


def _counter(text: str, metric: str = "modelport_requests_total", **labels: str) -> float:
    """The sum of ``metric`` over the series whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(metric + "{"):
            series, value = line.rsplit(" ", 1)
            have = dict(kv.split("=", 1) for kv in series[series.index("{") + 1 : -1].split(","))
            if all(have.get(k) == f'"{v}"' for k, v in labels.items()):
                total += float(value)
    return total


def test_metrics_health_and_docs(http: httpx.Client, models: dict[str, Any]) -> None:
    labels = {"model": "price", "version": "1", "protocol": "native", "status": "200"}
    before = _counter(http.get("/metrics").text, **labels)
    for _ in range(3):
        http.post("/models/price/predict", json={"inputs": models["P"].to_dict("records")})
    http.post("/models/price/predict", json={"inputs": [{"a": 1.0}]})
    text = http.get("/metrics").text
    assert _counter(text, **labels) == before + 3
    assert _counter(text, model="price", protocol="native", status="422") >= 1
    assert 'modelport_batch_rows_bucket{le="8.0",model="price",version="1"}' in text
    assert 'modelport_model_load_seconds{model="credit",version="1"}' in text
    assert "modelport_request_duration_seconds_bucket" in text
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz").json()
    assert ready["ready"] is True and {"credit:1", "price:1"} <= set(ready["loaded"])
    spec = http.get("/openapi.json").json()
    schema = spec["components"]["schemas"]["credit_request"]["properties"]["inputs"]["oneOf"][0]["items"]
    assert list(schema["properties"]) == ["income", "debt_ratio", "age", "home", "purpose"]
    assert schema["properties"]["income"]["type"] == ["number", "null"]
    assert "/models/price/predict" in spec["paths"]
    page = http.get("/docs")
    assert page.status_code == 200 and "debt_ratio" in page.text


def test_lazy_manager_loads_each_version_once(models: dict[str, Any]) -> None:
    client = Client(Settings.from_env())
    loads: list[str] = []
    manager = ModelManager(client.registry, ["credit@production"], on_load=lambda mv, s: loads.append(mv.ref))
    assert manager.loaded() == []
    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(lambda _: manager.get("credit").predict(_records(models["X"])), range(16)))
    assert loads == ["credit:1"] and all(o.tolist() == outs[0].tolist() for o in outs)


def test_lazy_app_is_ready_before_loading(models: dict[str, Any]) -> None:
    app = create_app(Client(Settings.from_env()), ["price"], eager=False)
    with ServerThread(app) as s, httpx.Client(base_url=s.url) as c:
        assert c.get("/readyz").json() == {"ready": True, "loaded": []}
        assert c.post("/models/price/predict", json={"inputs": [{"a": 1, "b": 2, "n": 3}]}).status_code == 200
        assert c.get("/readyz").json()["loaded"] == ["price:1"]


def test_cli_serve_help() -> None:
    from typer.testing import CliRunner

    from modelport.cli.app import app

    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0 and "--workers" in result.output


def test_serve_rejects_unknown_refs(models: dict[str, Any], tmp_path: Path) -> None:
    from modelport.serving import serve

    with pytest.raises(mp.ModelNotFound):
        serve(["nope"], port=1)


def test_serve_command_fails_fast_on_unknown_models_and_documents_its_flags(home: Path) -> None:
    from typer.testing import CliRunner

    from modelport.cli import app

    runner = CliRunner()
    help_text = " ".join(runner.invoke(app, ["serve", "--help"]).output.split())
    for flag in ("--workers", "--runtime", "--watch-interval", "--log-sample-rate", "--max-body-mb"):
        assert flag in help_text
    res = runner.invoke(app, ["serve", "nope@production", "--port", "1"])
    assert res.exit_code == 1 and "Model 'nope' not found" in res.output


def test_a_late_event_loop_sheds_at_once_before_reading_the_body(models: dict[str, Any]) -> None:
    """With an SLA, a worker whose event loop already runs later than it answers 503 at once."""
    rows = {"inputs": _records(models["X"].head(1))}
    app = create_app(Client(Settings.from_env()), ["credit@production"], sla_ms=50)
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url, timeout=20) as http:
        assert http.post("/models/credit/predict", json=rows).status_code == 200  # starts the lag clock
        loop = srv.server.servers[0].get_loop()
        loop.call_soon_threadsafe(time.sleep, 0.5)  # the loop falls half a second behind
        time.sleep(0.1)
        r = http.post("/models/credit/predict", json=rows, headers={"X-Request-ID": "late-1"})
        assert r.status_code == 503, r.text
        assert int(r.headers["retry-after"]) >= 1 and r.headers["x-request-id"] == "late-1"
        assert "SLA" in r.json()["error"] and r.json()["details"] == []
        codes = []
        for _ in range(100):  # the loop catches up: requests are answered again
            codes.append(http.post("/models/credit/predict", json=rows).status_code)
            if codes[-1] == 200:
                break
            time.sleep(0.02)
        assert codes[-1] == 200, codes
        text = http.get("/metrics").text
        assert 'modelport_shed_requests_total{model="credit",reason="sla"}' in text
        assert (
            'modelport_requests_total{model="credit",protocol="native",status="503",version="unknown"}'
            in text
        )
