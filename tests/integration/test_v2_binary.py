"""The Open Inference Protocol v2 binary tensor data extension over real HTTP, with Triton's client."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import modelport as mp
from modelport.client import Client
from modelport.config import Settings
from modelport.serving import create_app
from modelport.serving.background import BackgroundServer
from tests.unit.test_registry import credit_pipeline

tc = pytest.importorskip("tritonclient.http")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BackgroundServer, dict[str, Any]]]:
    with pytest.MonkeyPatch.context() as mpatch:
        mpatch.setenv("MODELPORT_HOME", str(tmp_path_factory.mktemp("v2bin") / "mphome"))
        mpatch.delenv("MODELPORT_DB_URL", raising=False)
        mpatch.delenv("MODELPORT_ARTIFACTS", raising=False)
        model, X, y = credit_pipeline()
        mp.register(model, "credit", sample=X)
        labels = np.where(y == 1, "bad", "good")  # string classes: BYTES outputs
        mp.register(model.__class__(model.steps).fit(X, labels), "grade", sample=X)
        rng = np.random.default_rng(2)
        P = pd.DataFrame({"a": rng.normal(size=40).astype(np.float32), "n": rng.integers(0, 9, 40)})
        mp.register(LinearRegression().fit(P, P.a * 2 + P.n), "price", sample=P)
        client = Client(Settings.from_env())
        app = create_app(client, ["credit", "grade", "price"], max_body_bytes=64 * 1024)
        with BackgroundServer(app) as srv:
            yield srv, {"X": X.head(6).fillna({"income": 42000.0}), "P": P.head(5)}


@pytest.fixture
def triton(server: tuple[BackgroundServer, dict[str, Any]]) -> Iterator[Any]:
    client = tc.InferenceServerClient(url=f"127.0.0.1:{server[0].port}")
    try:
        yield client
    finally:
        client.close()


def _inputs(X: pd.DataFrame, binary: bool) -> list[Any]:
    out = []
    for c in X.columns:
        values = X[c].to_numpy()
        datatype = "BYTES" if values.dtype == object else ("INT64" if values.dtype.kind == "i" else "FP64")
        inp = tc.InferInput(c, [len(X)], datatype)
        inp.set_data_from_numpy(values.astype(object) if datatype == "BYTES" else values, binary_data=binary)
        out.append(inp)
    return out


def test_binary_inputs_fp32_int64_and_binary_outputs(triton: Any, server: Any) -> None:
    P = server[1]["P"]
    a = tc.InferInput("a", [len(P)], "FP32")
    a.set_data_from_numpy(P.a.to_numpy(np.float32), binary_data=True)
    n = tc.InferInput("n", [len(P)], "INT64")
    n.set_data_from_numpy(P.n.to_numpy(np.int64), binary_data=True)
    result = triton.infer("price", [a, n], outputs=[tc.InferRequestedOutput("predictions", binary_data=True)])
    out = result.get_output("predictions")
    assert out["parameters"]["binary_data_size"] == len(P) * 8 and "data" not in out
    np.testing.assert_allclose(result.as_numpy("predictions"), mp.load("price").predict(P))


def test_bytes_inputs_binary_and_mixed_outputs(triton: Any, server: Any) -> None:
    X = server[1]["X"]
    p = mp.load("grade")
    requested = [
        tc.InferRequestedOutput("predictions", binary_data=True),
        tc.InferRequestedOutput("probabilities", binary_data=False),
    ]
    result = triton.infer("grade", _inputs(X, binary=True), outputs=requested)
    labels = result.as_numpy("predictions")
    assert result.get_output("predictions")["datatype"] == "BYTES"
    assert [v.decode() for v in labels] == p.predict(X).tolist()
    assert "data" in result.get_output("probabilities")  # JSON, next to a binary output
    np.testing.assert_allclose(result.as_numpy("probabilities"), p.predict_proba(X))
    # no outputs named: tritonclient asks for binary_data_output, so every output is binary
    every = triton.infer("credit", _inputs(X, binary=True))
    assert all("binary_data_size" in o["parameters"] for o in every.get_response()["outputs"])
    np.testing.assert_allclose(every.as_numpy("probabilities"), mp.load("credit").predict_proba(X))
    np.testing.assert_array_equal(every.as_numpy("predictions"), mp.load("credit").predict(X))
    # JSON inputs, JSON outputs still work with the same client
    plain = triton.infer(
        "credit",
        _inputs(X, binary=False),
        outputs=[tc.InferRequestedOutput("predictions", binary_data=False)],
    )
    assert [o["name"] for o in plain.get_response()["outputs"]] == ["predictions"]
    np.testing.assert_array_equal(plain.as_numpy("predictions"), mp.load("credit").predict(X))


def _raw(
    url: str, header: dict[str, Any], binary: bytes, header_len: int | str | None = None
) -> httpx.Response:
    head = orjson.dumps(header)
    length = len(head) if header_len is None else header_len
    return httpx.post(
        url,
        content=head + binary,
        headers={"Inference-Header-Content-Length": str(length), "Content-Type": "application/octet-stream"},
    )


def test_binary_request_and_response_by_hand(server: Any) -> None:
    url = f"{server[0].url}/v2/models/price/infer"
    P = server[1]["P"]
    a, n = P.a.to_numpy(np.float32), P.n.to_numpy(np.int64)
    header = {
        "inputs": [
            {
                "name": "a",
                "shape": [len(P)],
                "datatype": "FP32",
                "parameters": {"binary_data_size": a.nbytes},
            },
            {
                "name": "n",
                "shape": [len(P)],
                "datatype": "INT64",
                "parameters": {"binary_data_size": n.nbytes},
            },
        ],
        "parameters": {"binary_data_output": True},
    }
    r = _raw(url, header, a.tobytes() + n.tobytes())
    assert r.status_code == 200, r.text
    size = int(r.headers["inference-header-content-length"])
    meta = orjson.loads(r.content[:size])
    assert meta["outputs"][0]["parameters"] == {"binary_data_size": len(P) * 8}
    np.testing.assert_allclose(np.frombuffer(r.content[size:], "<f8"), mp.load("price").predict(P))


def _bytes_tensor(values: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(v)) + v for v in values)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("short", "binary data is"),
        ("long", "no input's 'binary_data_size' accounts"),
        ("past_end", "runs past the end"),
        ("header_beyond_body", "larger than the request body"),
        ("header_not_a_number", "non-negative integer"),
        ("header_not_json", "not valid JSON"),
        ("bytes_truncated", "BYTES values"),
        ("bytes_count", "BYTES values"),
        ("size_not_int", "runs past the end"),
        ("bool_shape", "'shape'"),
        ("bad_utf8", "BYTES values"),
        ("unknown_output", "Unknown output"),
    ],
)
def test_malformed_binary_bodies_are_400(server: Any, case: str, message: str) -> None:
    base = server[0].url
    a = np.arange(5, dtype=np.float32)
    n = np.arange(5, dtype=np.int64)

    def price(sa: Any, sn: Any, shape: Any = None) -> dict[str, Any]:
        return {
            "inputs": [
                {
                    "name": "a",
                    "shape": shape or [5],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": sa},
                },
                {"name": "n", "shape": [5], "datatype": "INT64", "parameters": {"binary_data_size": sn}},
            ]
        }

    url = f"{base}/v2/models/price/infer"
    header_len: int | str | None = None
    body = a.tobytes() + n.tobytes()
    header: Any = price(a.nbytes, n.nbytes)
    if case == "short":
        header = price(a.nbytes - 4, n.nbytes + 4)
    elif case == "long":
        body += b"\0" * 8
    elif case == "past_end":
        header = price(a.nbytes, n.nbytes + 8)
    elif case == "header_beyond_body":
        header_len = len(orjson.dumps(header)) + len(body) + 1
    elif case == "header_not_a_number":
        header_len = "-3"
    elif case == "header_not_json":
        header_len = 5
    elif case == "size_not_int":
        header = price(a.nbytes, "40")
    elif case == "bool_shape":
        header = price(a.nbytes, n.nbytes, shape=[True, 5])
    elif case == "unknown_output":
        header = price(a.nbytes, n.nbytes) | {"outputs": [{"name": "logits"}]}
    else:
        url = f"{base}/v2/models/credit/infer"
        homes = {
            "bytes_truncated": _bytes_tensor([b"RENT", b"OWN"])[:-2],
            "bytes_count": _bytes_tensor([b"RENT"]),
            "bad_utf8": _bytes_tensor([b"\xff\xfe", b"OWN"]),
        }[case]
        header = {
            "inputs": [
                {
                    "name": "home",
                    "shape": [2],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(homes)},
                }
            ],
            "parameters": {"content_type": "pd"},
        }
        body = homes
    r = _raw(url, header, body, header_len)
    assert r.status_code == 400, (case, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    assert set(r.json()) == {"error"} and message in r.json()["error"], r.json()


def test_binary_size_mismatch_with_tritonclient_is_an_error_not_a_crash(triton: Any, server: Any) -> None:
    P = server[1]["P"]
    a = tc.InferInput("a", [len(P)], "FP32")
    a.set_data_from_numpy(P.a.to_numpy(np.float32), binary_data=True)
    a.set_shape([len(P) + 1])  # declares one value more than it sends
    n = tc.InferInput("n", [len(P)], "INT64")
    n.set_data_from_numpy(P.n.to_numpy(np.int64), binary_data=True)
    with pytest.raises(Exception, match="binary data is"):
        triton.infer("price", [a, n])
