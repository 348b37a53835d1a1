"""Monitoring end to end: a served model's logged traffic drifts, labels arrive late, alerts reach a
real webhook receiver once per incident, results feed /metrics, timelines and the HTML report."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import modelport as mp
from modelport.client import Client
from modelport.config import Settings
from modelport.monitoring.monitor import monitor, timeline
from modelport.serving import create_app
from modelport.serving.background import BackgroundServer
from tests.conftest import loan_frame
from tests.integration.test_serving import _counter, _records
from tests.unit.test_registry import credit_pipeline


class Receiver:
    """A real HTTP server on loopback that records every webhook body."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.received = received
        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()


@pytest.fixture
def served(home: Path) -> Iterator[dict[str, Any]]:
    model, X, _ = credit_pipeline()
    mp.register(model, "credit", sample=X, alias="production")
    app = create_app(Client(Settings.from_env()), ["credit@production"], watch_interval=0)
    with BackgroundServer(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        yield {"client": client, "url": srv.url, "model": model}


def send(client: httpx.Client, frame: pd.DataFrame, prefix: str) -> list[str]:
    """One request per row (so each row has its own request id, as labels need)."""
    ids = []
    for i, row in enumerate(_records(frame)):
        rid = f"{prefix}-{i}"
        r = client.post("/models/credit/predict", json={"inputs": [row]}, headers={"X-Request-ID": rid})
        assert r.status_code == 200, r.text
        ids.append(rid)
    return ids


def wait_logged(n: int) -> None:
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if len(mp.prediction_log("credit")) >= n:
                return
        except Exception:  # noqa: BLE001 - the first file may not exist yet
            pass
        time.sleep(0.2)
    raise AssertionError("prediction log not written")


def drifted(n: int, seed: int) -> pd.DataFrame:
    X, _ = loan_frame(n, seed)
    X["income"] = X["income"] * 0.4  # incomes fall
    X["purpose"] = np.where(np.arange(n) % 3 == 0, "crypto", X["purpose"])  # a new loan purpose
    return X


def test_drift_quality_labels_alerts_metrics_and_report(served: dict[str, Any], tmp_path: Path) -> None:
    client = served["client"]
    stable, y_stable = loan_frame(300, seed=11)
    ids = send(client, stable, "stable")
    wait_logged(300)
    with Receiver() as hook:
        alerts = {"webhook": hook.url, "rules": [{"dataset_drift": True}, {"column_drift": "income"}]}
        calm = monitor("credit@production", window="1h", alerts=alerts)
        assert calm.current_rows == 300 and not calm.dataset_drift, calm.drifted_columns
        assert "income" not in calm.drifted_columns and hook.received == []
        assert calm.estimated_performance is not None and calm.estimated_performance.estimated
        assert calm.performance is None  # no labels yet
        sampled = monitor("credit@production", window="1h", sample_size=100, save=False)
        assert sampled.current_rows == 300 and "sampled to" in sampled.sample_note  # read file by file

        # labels arrive for the stable period: actual performance joins on the request id
        mp.log_labels("credit", pd.DataFrame({"request_id": ids, "defaulted": y_stable}), label="defaulted")
        labelled = monitor("credit@production", window="1h")
        assert labelled.performance is not None and labelled.performance.labelled_rows == 300
        assert 0.5 < labelled.performance.metrics["roc_auc"] <= 1.0

        # production drifts: incomes fall, a new purpose appears
        send(client, drifted(600, seed=12), "drift")
        wait_logged(900)
        first = monitor("credit@production", window="1h", alerts=alerts)
        second = monitor("credit@production", window="1h", alerts=alerts)
    assert "income" in first.drifted_columns and "purpose" in first.drifted_columns
    assert any(q.check == "new_category" and q.column == "purpose" for q in first.quality)
    rules = [r["rule"] for r in hook.received]
    assert rules.count({"column_drift": "income"}) == 1  # once per incident, not per window
    assert all("text" in r and r["model"] == "credit" for r in hook.received)
    assert second.drifted_columns == first.drifted_columns

    # the server exports the latest result; the timeline has every stored window
    text = httpx.get(f"{served['url']}/metrics").text
    share = _counter(text, "modelport_drift_share", model="credit", version="1")
    assert share == pytest.approx(second.drift_share)
    assert 'modelport_column_drift_score{column="income"' in text
    windows = timeline("credit")
    assert len(windows) == 4 and windows[-1]["drift_share"] == second.drift_share

    html = second.to_html(tmp_path / "report.html", timeline=windows)
    assert "<svg" in html and "income" in html
    assert json.loads(second.to_json())["drifted_columns"] == second.drifted_columns


def test_explicit_frames_and_no_false_drift(served: dict[str, Any]) -> None:
    same, _ = loan_frame(2000, seed=21)
    res = mp.monitor("credit@production", current=same)
    assert not res.dataset_drift and res.window_start is None
    assert res.prediction is not None and not res.prediction.drifted
    shifted = drifted(2000, seed=22)
    res = mp.monitor("credit@production", current=shifted, tests={"debt_ratio": "psi"})
    assert res.dataset_drift is False or "income" in res.drifted_columns
    assert next(c for c in res.columns if c.column == "debt_ratio").test == "psi"
    assert "income" in res.drifted_columns


def test_cli_monitor_run_report_and_labels(served: dict[str, Any], tmp_path: Path) -> None:
    import shlex

    from typer.testing import CliRunner

    from modelport.cli import app

    def ok(command: str) -> str:
        result = CliRunner().invoke(app, shlex.split(command))
        assert result.exit_code == 0, result.output
        return result.stdout

    stable, y = loan_frame(200, seed=31)
    ids = send(served["client"], stable, "cli")
    wait_logged(200)
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"request_id": ids, "defaulted": y}).to_csv(labels, index=False)
    assert (
        json.loads(ok(f"labels add credit {labels} --key request_id --label defaulted --json"))["labels"]
        == 200
    )
    job = tmp_path / "credit-monitor.yaml"
    job.write_text(
        "kind: monitor\nname: credit-monitor\nmodel: credit@production\nwindow: 1h\nschedule: '0 * * * *'\n"
        "tests: {debt_ratio: psi}\n"
    )
    (run,) = json.loads(ok(f"monitor run {job} --json"))
    assert run["performance"]["labelled_rows"] == 200 and run["current_rows"] == 200
    assert next(c for c in run["columns"] if c["column"] == "debt_ratio")["test"] == "psi"
    report = tmp_path / "r.html"
    out = json.loads(ok(f"monitor report credit@production --output {report} --json"))
    assert report.is_file() and out["report"] == str(report) and len(out["timeline"]) == 1
    # the scheduler runs monitoring job files too (modelport monitor run FILE in a subprocess)
    from modelport.scheduler import Scheduler

    (scheduled,) = Scheduler(tmp_path).run_once()
    assert (scheduled.kind, scheduled.exit_code) == ("monitor", 0)
    assert len(timeline("credit")) == 2


def test_metric_and_missing_share_rules_fire_once_per_incident(home: Path) -> None:
    from modelport.monitoring.monitor import evaluate_alerts, store_for
    from modelport.monitoring.results import ColumnDrift, DriftResult, Performance

    def result(auc: float, missing: float) -> DriftResult:
        col = ColumnDrift("income", "numeric", "ks", 0.5, 0.05, False, 100, 100, current_missing=missing)
        perf = Performance("classifier", {"roc_auc": auc}, 100)
        return DriftResult("credit", 1, None, None, 100, 100, [col], performance=perf)

    rules = {
        "rules": [
            {"metric_below": {"metric": "roc_auc", "value": 0.7}},
            {"missing_share_above": {"column": "income", "value": 0.2}},
        ]
    }
    with Receiver() as hook:
        rules["webhook"] = hook.url
        store = store_for()
        assert evaluate_alerts(result(0.8, 0.05), rules, store) == []
        first = evaluate_alerts(result(0.6, 0.3), rules, store)  # both start firing: two incidents
        again = evaluate_alerts(result(0.55, 0.4), rules, store)  # still firing: nothing new
        evaluate_alerts(result(0.9, 0.0), rules, store)  # resolved
        reopened = evaluate_alerts(result(0.6, 0.0), rules, store)  # the metric drops again
    assert [b["detail"] for b in first] == [
        "roc_auc 0.6000 below 0.7",
        "column income is 30.0% missing (above 20%)",
    ]
    assert again == [] and [b["rule"] for b in reopened] == [rules["rules"][0]]
    assert len(hook.received) == 3
