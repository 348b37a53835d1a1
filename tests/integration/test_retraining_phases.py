"""Staged promotion on live traffic, end to end with a running server: a shadow phase (the challenger
answers a copy of every request, never the caller) and a canary phase (it answers a share of them)
promote only on the live metric of the labelled requests; without labels the champion stays; and a
policy can train on the logged requests joined with their labels."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import yaml

import modelport as mp
from modelport.client import Client
from modelport.config import Settings
from modelport.monitoring.monitor import timeline
from modelport.retraining.loop import Outcome, history, run
from modelport.serving import create_app
from modelport.serving.background import BackgroundServer
from tests.integration.test_retraining import T0, applications, loop, policy
from tests.integration.test_serving import _records

__all__ = ["loop"]  # the fixture, shared with the closed-loop test


def _staged(tmp_path: Path, promote: Any, **data: Any) -> Path:
    path = policy(tmp_path)
    spec = yaml.safe_load(path.read_text())
    spec["promote"] = promote
    if data:
        spec["train"]["data"] = data
    staged = tmp_path / "staged.yaml"
    staged.write_text(yaml.safe_dump(spec))
    return staged


def _shifted_world(loop: dict[str, Any], tmp_path: Path) -> pd.DataFrame:
    """The world changed: labelled data of it lands where the policy trains; live requests follow."""
    shifted = applications(4000, seed=3, shifted=True, start=T0 + pd.Timedelta(days=10))
    pd.concat([loop["stable"], shifted]).to_parquet(tmp_path / "labelled.parquet", index=False)
    return applications(600, seed=4, shifted=True, start=T0 + pd.Timedelta(days=20))


def _send(url: str, live: pd.DataFrame, prefix: str) -> list[tuple[str, int]]:
    """One request per application; its id (also the routing key) lets the label find it later."""
    out = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i, row in enumerate(_records(live[["income", "debt_ratio", "age", "home", "purpose"]])):
            rid = f"{prefix}-{i}"
            headers = {"X-Request-ID": rid, "X-Routing-Key": rid}
            r = client.post("/models/credit/predict", json={"inputs": [row]}, headers=headers)
            assert r.status_code == 200, r.text
            out.append((rid, int(r.json()["version"])))
    return out


def _labels_arrive(sent: list[tuple[str, int]], live: pd.DataFrame) -> None:
    ids = [rid for rid, _ in sent]
    mp.log_labels("credit", pd.DataFrame({"request_id": ids, "defaulted": live["defaulted"].to_numpy()}),
                  label="defaulted")  # fmt: skip


def _eventually(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _judged(staged: Path, timeout: float = 15.0) -> Outcome:
    """Judge the phase until it ends (a phase still observing records nothing)."""
    deadline = time.monotonic() + timeout
    while (outcome := run(staged)).state == "observing":
        assert time.monotonic() < deadline, f"the phase is still observing: {outcome.message}"
        time.sleep(0.1)
    return outcome


def _logged(ids: set[str], role: str) -> int:
    log = mp.prediction_log("credit")
    return 0 if not len(log) else int((log["request_id"].isin(ids) & (log["role"] == role)).sum())


def test_a_shadow_phase_promotes_on_the_live_metric(loop: dict[str, Any], tmp_path: Path) -> None:
    live = _shifted_world(loop, tmp_path)
    staged = _staged(tmp_path, {"mode": "shadow", "duration": "1s", "max_duration": "10m"})
    app = create_app(Client(Settings.from_env()), ["credit@production"], watch_interval=0.1)
    service = app.state.service
    with BackgroundServer(app) as srv:
        started = run(staged, force=True)
        assert started.state == "observing", started.message
        assert "shadow credit:2 mirrors 100%" in started.message and mp.get("credit@production").version == 1
        _eventually(lambda: service.config.policy("credit").shadow is not None, "shadow not applied")
        sent = _send(srv.url, live, "shadowed")
        assert {v for _, v in sent} == {1}  # a shadow never answers
        waiting = run(staged)  # the phase is judged, nothing retrains; no labels yet
        assert waiting.state == "observing" and "labelled" in waiting.message
        ids = {rid for rid, _ in sent}
        _eventually(lambda: _logged(ids, "shadow") == len(ids), "the shadow's answers were not logged")
        # each version's one-row buffer is flushed on its own: wait for the champion's rows too
        _eventually(lambda: _logged(ids, "primary") == len(ids), "the champion's answers were not logged")
        _labels_arrive(sent, live)
        done = run(staged)
        assert done.state == "promoted", done.message
        assert done.metrics["challenger_rows"] == done.metrics["champion_rows"] == len(sent)
        assert done.metrics["challenger_roc_auc"] > done.metrics["champion_roc_auc"]
        _eventually(lambda: service.config.policy("credit").shadow is None, "the route did not end")
        _eventually(lambda: _send(srv.url, live.head(3), "after")[0][1] == 2, "no hot swap")
    assert mp.get("credit@production").version == 2 and mp.traffic("credit") == []
    kinds = [e["kind"] for e in history("credit")]
    assert kinds[-3:] == ["decision", "phase", "promotion"] or kinds[-2:] == ["phase", "promotion"]
    mp.monitor("credit@production", current=live[loop["features"]])
    events = [e for w in timeline("credit") for e in w["events"]]
    assert any(e.startswith("phase: shadow credit:2") for e in events), events
    print(f"\nshadow phase: {done.message}")


def test_a_canary_phase_splits_traffic_and_promotes_on_its_share(
    loop: dict[str, Any], tmp_path: Path
) -> None:
    live = _shifted_world(loop, tmp_path)
    staged = _staged(tmp_path, "canary 50% for 1s then direct")
    app = create_app(Client(Settings.from_env()), ["credit@production"], watch_interval=0.1)
    service = app.state.service
    with BackgroundServer(app) as srv:
        assert run(staged, force=True).state == "observing"
        _eventually(lambda: service.config.policy("credit").canary is not None, "canary not applied")
        sent = _send(srv.url, live, "canaried")
        answered = Counter(v for _, v in sent)
        assert answered[1] > 200 and answered[2] > 200  # about half each
        ids = {rid for rid, v in sent if v == 2}
        _eventually(lambda: _logged(ids, "canary") == len(ids), "the canary's answers were not logged")
        primary = {rid for rid, v in sent if v == 1}  # each version's rows are flushed on their own
        _eventually(lambda: _logged(primary, "primary") == len(primary), "champion answers not logged")
        _labels_arrive(sent, live)
        done = run(staged)
    assert done.state == "promoted", done.message
    assert done.metrics["challenger_rows"] == answered[2] and done.metrics["champion_rows"] == answered[1]
    assert done.metrics["challenger_latency_p99_ms"] > 0
    assert mp.get("credit@production").version == 2 and mp.traffic() == []


def test_without_live_labels_the_champion_stays(loop: dict[str, Any], tmp_path: Path) -> None:
    _shifted_world(loop, tmp_path)
    staged = _staged(
        tmp_path, {"mode": "shadow", "duration": "0.2s", "max_duration": "0.6s", "min_live_labels": 50}
    )
    assert run(staged, force=True).state == "observing"
    assert [r.kind for r in mp.traffic("credit")] == ["shadow"]
    from typer.testing import CliRunner

    from modelport.cli.app import app as cli

    shown = CliRunner().invoke(cli, ["retrain", "check", str(staged)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "A shadow credit:2 mirrors 100%" in shown.output, shown.output
    assert "judges it" in shown.output
    kept = _judged(staged)  # once max_duration has passed without labels
    assert kept.state == "rejected" and "only 0 labelled live row(s)" in kept.message
    assert mp.get("credit@production").version == 1 and mp.traffic("credit") == []
    assert history("credit")[-1]["kind"] == "decision"


def test_training_on_logged_requests_joined_with_their_labels(loop: dict[str, Any], tmp_path: Path) -> None:
    live = _shifted_world(loop, tmp_path)
    staged = _staged(tmp_path, "direct", kind="prediction_log", window="30d")
    app = create_app(Client(Settings.from_env()), ["credit@production"], watch_interval=0)
    with BackgroundServer(app) as srv:
        sent = _send(srv.url, live, "logged")
    _labels_arrive(sent[:500], live.head(500))  # the last 100 outcomes are not known yet
    outcome = run(staged, force=True)
    assert outcome.state == "promoted", outcome.message
    data = mp.get("credit@production").lineage["retraining"]["data"]
    assert data["source"] == "prediction_log" and data["rows"] + data["holdout_rows"] == 500


def test_promote_modes_short_and_long(loop: dict[str, Any], tmp_path: Path) -> None:
    import pytest

    from modelport.errors import InvalidInput
    from modelport.retraining.policy import load_policy

    p = load_policy(_staged(tmp_path, "shadow for 1d then direct"))
    assert (p.promote, p.share, p.promote_duration, p.phase_limit.days) == ("shadow", 1.0, "1d", 3)
    p = load_policy(_staged(tmp_path, "canary 10%"))
    assert (p.promote, p.share, p.promote_duration) == ("canary", 0.1, "1d")
    p = load_policy(_staged(tmp_path, {"mode": "canary", "weight": 0.25, "min_live_labels": 500}))
    assert (p.share, p.min_live_labels) == (0.25, 500)
    for bad, message in (
        ("blue-green", "not understood"),
        ({"mode": "canary", "share": "150%"}, "at most 1"),
        ({"mode": "shadow", "duration": "soon"}, "not a duration"),
        ({"mode": "shadow", "duration": "2d", "max_duration": "1d"}, "at least promote.duration"),
        ({"mode": "shadow", "lenght": "2d"}, "Unknown promote setting"),
    ):
        with pytest.raises(InvalidInput, match=message):
            load_policy(_staged(tmp_path, bad))
