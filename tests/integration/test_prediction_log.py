"""The prediction log over real HTTP: every protocol's requests land in Parquet, off the request path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import modelport as mp
from modelport.client import Client
from modelport.config import Settings
from modelport.serving import create_app
from modelport.serving.background import BackgroundServer
from tests.integration.test_serving import _records
from tests.unit.test_registry import credit_pipeline

V2_TYPES = {"income": "FP64", "debt_ratio": "FP64", "age": "INT64", "home": "BYTES", "purpose": "BYTES"}


@pytest.fixture(scope="module")
def credit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """credit:1 (@production) and credit:2 in a home of their own."""
    with pytest.MonkeyPatch.context() as mpatch:
        home = tmp_path_factory.mktemp("predlog") / "mphome"
        mpatch.setenv("MODELPORT_HOME", str(home))
        mpatch.delenv("MODELPORT_DB_URL", raising=False)
        mpatch.delenv("MODELPORT_ARTIFACTS", raising=False)
        model, X, _ = credit_pipeline()
        mp.register(model, "credit", sample=X, alias="production")
        mp.register(model, "credit", sample=X)
        yield {"home": home, "X": X.head(6)}


def _v2_inputs(X: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            "name": c,
            "shape": [len(X)],
            "datatype": V2_TYPES[c],
            "data": [v if v == v else None for v in X[c].tolist()],
        }
        for c in X.columns
    ]


def _send(url: str, X: pd.DataFrame) -> list[tuple[str, int, pd.DataFrame, str]]:
    """Native (two versions), MLflow and v2 requests; (request id, version, rows, protocol) each."""
    sent = []
    with httpx.Client(base_url=url, timeout=20) as c:
        r = c.post("/models/credit/predict", json={"inputs": _records(X)}, headers={"X-Request-ID": "n-1"})
        assert r.status_code == 200, r.text
        sent.append((r.headers["x-request-id"], 1, X, "native"))
        r = c.post("/models/credit:2/predict", json={"inputs": _records(X.head(2))})
        assert r.status_code == 200, r.text
        sent.append((r.headers["x-request-id"], 2, X.head(2), "native"))
        r = c.post("/invocations", json={"dataframe_records": _records(X.head(3))})
        assert r.status_code == 200, r.text
        sent.append((r.headers["x-request-id"], 1, X.head(3), "mlflow"))
        r = c.post("/v2/models/credit/infer", json={"id": "v2-1", "inputs": _v2_inputs(X.head(4))})
        assert r.status_code == 200, r.text
        assert r.headers["x-request-id"] == "v2-1"
        sent.append((r.headers["x-request-id"], 1, X.head(4), "v2"))
    return sent


def test_every_protocol_is_logged(credit: dict[str, Any]) -> None:
    X = credit["X"]
    app = create_app(Client(Settings.from_env()), ["credit@production"])
    with BackgroundServer(app) as server:
        sent = _send(server.url, X)
        with httpx.Client(base_url=server.url) as c:
            metrics = c.get("/metrics").text
        assert "modelport_prediction_log_rows" in metrics
    log = mp.prediction_log("credit")
    assert len(log) == sum(len(rows) for _, _, rows, _ in sent)
    assert set(log.request_id) == {rid for rid, _, _, _ in sent}
    assert str(log.timestamp.dtype).endswith("UTC]")
    assert {
        "model",
        "version",
        "runtime",
        "protocol",
        "latency_ms",
        "prediction",
        "proba_0",
        "proba_1",
    } <= set(log.columns)
    assert {f"in_{c}" for c in X.columns} <= set(log.columns)
    for rid, version, rows, protocol in sent:
        got = log[log.request_id == rid]
        assert len(got) == len(rows)
        assert set(got.version) == {version} and set(got.protocol) == {protocol}
        assert set(got.model) == {"credit"} and (got.latency_ms > 0).all()
        p = mp.load(f"credit:{version}")
        assert got.prediction.tolist() == p.predict(rows).tolist()
        np.testing.assert_allclose(got[["proba_0", "proba_1"]].to_numpy(), p.predict_proba(rows))
        np.testing.assert_allclose(got.in_income.to_numpy(), rows.income.to_numpy())
    assert mp.prediction_log("credit", since="2000-01-01", until="2001-01-01").empty
    assert mp.prediction_log("nope").empty


def test_sample_rate_zero_logs_nothing(credit: dict[str, Any]) -> None:
    before = len(mp.prediction_log("credit"))
    app = create_app(Client(Settings.from_env()), ["credit@production"], log_sample_rate=0.0)
    with BackgroundServer(app) as server:
        _send(server.url, credit["X"])
    assert len(mp.prediction_log("credit")) == before


def test_a_failing_writer_never_fails_a_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "mphome"
    monkeypatch.setenv("MODELPORT_HOME", str(home))
    monkeypatch.delenv("MODELPORT_DB_URL", raising=False)
    monkeypatch.delenv("MODELPORT_ARTIFACTS", raising=False)
    model, X, _ = credit_pipeline()
    mp.register(model, "credit", sample=X, alias="production")
    mp.register(model, "credit", sample=X)
    (home / "prediction_logs").write_text("a file where the log folder should be")
    app = create_app(Client(Settings.from_env()), ["credit@production"])
    svc = app.state.service
    with BackgroundServer(app) as server:
        sent = _send(server.url, X.head(5))  # asserts every request answered 200
    logger = svc.prediction_log
    assert logger.failed == sum(len(rows) for _, _, rows, _ in sent) and logger.logged == 0
    failed = svc.metrics.registry.get_sample_value(
        "modelport_prediction_log_rows_total", {"model": "credit", "result": "failed"}
    )
    assert failed == logger.failed


def test_one_row_requests_are_logged_like_any_other(credit: dict[str, Any], tmp_path: Path) -> None:
    """One-row requests take the column buffers (predlog.rows): full buffers and old ones are
    written, missing values included, with the same columns and types as multi-row requests."""
    import pyarrow.dataset as ds

    from modelport.predlog.writer import PredictionLogger
    from modelport.serving.calls import execute_one

    X = credit["X"].copy()
    X.loc[X.index[1], "home"] = None  # a missing text value
    X.loc[X.index[2], "income"] = np.nan  # a missing number
    predictor = mp.load("credit:1")
    logger = PredictionLogger(tmp_path / "logs", flush_rows=4, flush_seconds=0.3)
    one_row = [execute_one(predictor, X.iloc[[i]], None, None) for i in range(len(X))]
    for i, result in enumerate(one_row):
        logger.log(result, f"one-{i}", "native", 0.001)
    logger.log(execute_one(predictor, X, None, None), "many", "mlflow", 0.002)
    import time

    deadline = time.monotonic() + 20  # the last, partly filled buffer is written once flush_seconds old
    while logger.logged < 2 * len(X):
        assert time.monotonic() < deadline, f"{logger.logged} of {2 * len(X)} rows logged"
        time.sleep(0.05)
    assert logger.logged == 2 * len(X)
    logger.close()
    files = sorted((tmp_path / "logs" / "credit").rglob("*.parquet"))
    assert len(files) >= 3  # a full buffer of 4, the old remainder, the multi-row request
    schemas = {str(ds.dataset(f).schema) for f in files}
    assert len(schemas) == 1, schemas  # one-row and multi-row files agree on every column type
    log = ds.dataset(files).to_table().to_pandas()
    singles = log[log.request_id.str.startswith("one-")].sort_values("request_id")
    many = log[log.request_id == "many"]
    assert len(singles) == len(many) == len(X)
    for col in ("prediction", "in_age", "in_purpose"):
        assert singles[col].tolist() == many[col].tolist(), col
    np.testing.assert_allclose(singles[["proba_0", "proba_1"]], many[["proba_0", "proba_1"]])
    assert singles.in_home.isna().tolist() == many.in_home.isna().tolist() == X.home.isna().tolist()
    np.testing.assert_array_equal(singles.in_income.to_numpy(), many.in_income.to_numpy())
    assert set(singles.protocol) == {"native"} and set(singles.role) == {"primary"}


@pytest.mark.parametrize(
    "tensor",
    [
        np.arange(12, dtype=np.float32).reshape(4, 3),
        np.arange(6, dtype=np.int32).reshape(3, 2),
        np.array([[True, False]]),
        np.arange(8.0).reshape(2, 2, 2),
        np.empty((0, 3)),
    ],
)
def test_tensor_rows_are_logged_as_the_lists_python_would_give(tensor: np.ndarray) -> None:
    """A tensor model's rows become list values from the flat array: the same type and values as
    Arrow gives their Python lists, without a list per row."""
    import pyarrow as pa

    from modelport.predlog.writer import _rows_as_lists

    got = _rows_as_lists(tensor)
    want = pa.array([row.reshape(-1).tolist() for row in tensor], type=got.type if len(tensor) == 0 else None)
    assert got.type == want.type and got.equals(want)


def test_object_columns_convert_in_chunks_with_the_same_values() -> None:
    """Long object columns are converted OBJECT_CHUNK values at a time (each conversion holds the
    GIL the server's loop waits for): the same Arrow values, a piece of nulls included."""
    import pyarrow as pa

    from modelport.predlog.writer import OBJECT_CHUNK, _arrow

    n = 3 * OBJECT_CHUNK + 7
    text = np.array([f"v{i % 5}" if i % 11 else None for i in range(n)], dtype=object)
    text[np.arange(n) < OBJECT_CHUNK + 1] = np.nan  # a whole first piece of missing values
    chunked = _arrow(text)
    assert chunked.to_pylist() == pa.array(text, from_pandas=True).to_pylist()
    assert chunked.null_count == OBJECT_CHUNK + 1 + sum(1 for i in range(OBJECT_CHUNK + 1, n) if i % 11 == 0)
    mixed = np.array([*range(OBJECT_CHUNK), *(f"s{i}" for i in range(OBJECT_CHUNK))], dtype=object)
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):  # as before: one column, one type
        _arrow(mixed)
