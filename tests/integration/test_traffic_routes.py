"""Traffic routes stored in the metadata store: running servers follow them without a restart
(canary and shadow set, changed and cleared), on SQLite and PostgreSQL; the CLI manages them."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import modelport as mp
from modelport.cli.app import app as cli
from modelport.client import Client
from modelport.config import Settings
from modelport.errors import InvalidInput, ModelNotFound
from modelport.serving import create_app
from modelport.serving.background import BackgroundServer
from modelport.traffic_routes import route_history
from tests.integration.test_serving import _records
from tests.unit.test_registry import credit_pipeline


def _two_versions() -> dict[str, Any]:
    model, X, _ = credit_pipeline()
    mp.register(model, "credit", sample=X, alias="production")
    mp.register(model, "credit", sample=X)
    return {"inputs": _records(X.head(1))}


def _eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the server did not follow the stored route in time"
        time.sleep(0.05)


def _versions(client: httpx.Client, rows: dict[str, Any], n: int = 40) -> Counter[int]:
    answers = [client.post("/models/credit/predict", json=rows) for _ in range(n)]
    assert all(r.status_code == 200 for r in answers)
    return Counter(int(r.json()["version"]) for r in answers)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_running_server_follows_stored_routes(backend: str, request: pytest.FixtureRequest) -> None:
    request.getfixturevalue("home" if backend == "sqlite" else "pg_home")
    rows = _two_versions()
    app = create_app(Client(Settings.from_env()), ["credit@production"], watch_interval=0.05)
    with BackgroundServer(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        assert _versions(client, rows) == {1: 40}
        route = mp.set_traffic("credit", canary="credit:2", share=1.0)
        assert route.describe() == "canary credit:2 answers 100% of credit's traffic"
        _eventually(lambda: _versions(client, rows, 5) == {2: 5})
        mp.set_traffic("credit", canary="credit:2", share=0.0)  # replaces the route: back to v1
        _eventually(lambda: _versions(client, rows, 5) == {1: 5})
        assert [r.share for r in mp.traffic("credit")] == [0.0]
        mp.clear_traffic("credit")
        mp.set_traffic("credit", shadow="credit:2")
        ids = []
        _eventually(lambda: bool(app.state.service.config.policy("credit").shadow))
        for i in range(10):
            r = client.post("/models/credit/predict", json=rows, headers={"X-Request-ID": f"mirror-{i}"})
            assert r.status_code == 200 and r.json()["version"] == 1  # a shadow never answers
            ids.append(f"mirror-{i}")
        mp.clear_traffic("credit", "shadow")
        _eventually(lambda: app.state.service.config.policy("credit").shadow is None)
    logged = mp.prediction_log("credit")
    mirrored = logged[(logged["role"] == "shadow") & logged["request_id"].isin(ids)]
    assert sorted(mirrored["request_id"]) == sorted(ids) and set(mirrored["version"]) == {2}
    assert mp.traffic() == [] and len(route_history(Client(Settings.from_env()).meta.engine, "credit")) == 3


def test_routes_are_checked_when_set(home: Any) -> None:
    _two_versions()
    with pytest.raises(ModelNotFound):
        mp.set_traffic("credit", canary="credit:9")
    with pytest.raises(InvalidInput, match="another version"):
        mp.set_traffic("credit", canary="fraud:1")
    with pytest.raises(InvalidInput, match="exactly one"):
        mp.set_traffic("credit")
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        mp.set_traffic("credit", shadow="credit:2", share=1.5)


def test_a_route_whose_version_cannot_load_is_skipped(home: Any, caplog: pytest.LogCaptureFixture) -> None:
    from modelport.traffic_routes import set_route

    rows = _two_versions()
    c = Client(Settings.from_env())
    set_route(c.meta.engine, "credit", "canary", "credit:7", 1.0)  # no such version: not applied
    app = create_app(c, ["credit@production"], watch_interval=0.05)
    with BackgroundServer(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        # the watcher has tried the stored route (and said why it skipped it) before we look
        _eventually(lambda: any("cannot load credit:7" in r.getMessage() for r in caplog.records))
        assert _versions(client, rows, 10) == {1: 10}


def test_the_traffic_cli(home: Any) -> None:
    _two_versions()
    runner = CliRunner()
    out = runner.invoke(cli, ["traffic", "set", "credit", "--canary", "credit:2=25%"])
    assert out.exit_code == 0, out.output
    assert "credit:2" in out.output and "25%" in out.output
    out = runner.invoke(cli, ["traffic", "show", "--json"])
    (shown,) = json.loads(out.output)
    assert (shown["kind"], shown["ref"], shown["share"]) == ("canary", "credit:2", 0.25)
    out = runner.invoke(cli, ["traffic", "set", "credit", "--canary", "credit:2=2"])
    assert out.exit_code != 0 and "between 0 and 1" in out.output
    assert runner.invoke(cli, ["traffic", "clear", "credit"]).exit_code == 0
    assert json.loads(runner.invoke(cli, ["traffic", "show", "--json"]).output) == []
