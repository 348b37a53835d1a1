"""The demo's closed loop: the outcomes of the calm and the drifted weeks are the labelled data; the
policy's drift trigger fires, a challenger is trained in its own process and beats the champion on
the latest data; it then shadows the live traffic of a server watching credit@production (a copy
of each request, never answering), the outcomes of those requests arrive, the challenger's live
AUC beats the champion's on the very same requests, it is promoted, and the server answers with
the new version."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from typing import Any

TRAINING = '''"""The team's training code: modelport calls train(df) in its own process."""
from modelport_examples.credit import train_credit_model


def train(df):
    model, _auc = train_credit_model(df)
    return model
'''


def close_the_loop(home: Path, model: str, alias: str, calm: Any, drifted: Any, live: Any) -> dict[str, Any]:
    """``live``: applications (with their outcomes, ``default``) that reach the server meanwhile."""
    import httpx
    import pandas as pd
    import yaml

    import modelport as mp
    from modelport.client import default_client
    from modelport.retraining.loop import run
    from modelport.serving import create_app
    from modelport.serving.background import BackgroundServer

    folder = home / "demo" / "retrain"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "credit_training.py").write_text(TRAINING)
    now = pd.Timestamp.now(tz="UTC").floor("s")
    labelled = pd.concat(
        [
            calm.assign(
                applied_at=now - pd.Timedelta(days=14) + pd.to_timedelta(range(len(calm)), unit="min")
            ),
            drifted.assign(
                applied_at=now - pd.Timedelta(days=3) + pd.to_timedelta(range(len(drifted)), unit="s")
            ),
        ],
        ignore_index=True,
    )
    labelled.to_parquet(folder / "labelled.parquet", index=False)
    policy = folder / "credit-policy.yaml"
    policy.write_text(
        yaml.safe_dump(
            {
                "kind": "retrain",
                "model": model,
                "alias": alias,
                "train": {
                    "entrypoint": "credit_training:train",
                    "data": {
                        "kind": "parquet",
                        "path": "labelled.parquet",
                        "window": "7d",
                        "time_column": "applied_at",
                    },
                    "label": "default",
                    "timeout": 300,
                },
                "trigger": {"dataset_drift": True, "metric_drop": {"metric": "roc_auc", "by": 0.05}},
                "evaluate": {"metric": "roc_auc", "holdout": "latest 20% by time", "min_improvement": 0.002},
                "promote": {"mode": "shadow", "duration": "1s", "min_live_labels": 100, "max_duration": "1h"},
            },
            sort_keys=False,
        )
    )
    app = create_app(default_client(), [f"{model}@{alias}"], watch_interval=0.2)
    service = app.state.service
    rows = [
        {k: (None if v != v else v) for k, v in r.items()}
        for r in live.drop(columns=["default"]).to_dict(orient="records")
    ]
    run_tag = uuid.uuid4().hex[:8]  # request ids unique to this demo run
    ids = [f"demo-{run_tag}-{i}" for i in range(len(rows))]
    with BackgroundServer(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:

        def answer(row: dict[str, Any], rid: str) -> int:
            reply = client.post(
                f"/models/{model}/predict", json={"inputs": [row]}, headers={"X-Request-ID": rid}
            )
            return int(reply.json()["version"])

        before = answer(rows[0], "demo-before")
        gated = run(policy)  # trains, gates on the holdout, starts the shadow phase
        outcome, live_outcome = gated, None
        if gated.state == "observing":
            _wait(lambda: service.config.policy(model).shadow is not None)
            for row, rid in zip(rows, ids, strict=True):  # live traffic; the shadow answers a copy
                answer(row, rid)
            # a shadow drops copies rather than slow the callers: wait until every copy is accounted
            # for, then until the scored ones are in the prediction log (flushed every few seconds)
            _wait(lambda: sum(_shadow_counts(client).values()) >= len(ids), timeout=30)
            scored = _shadow_counts(client).get("scored", 0)
            _wait(lambda: _shadowed(model, set(ids)) >= scored, timeout=20)
            mp.log_labels(
                model, pd.DataFrame({"request_id": ids, "default": live["default"]}), label="default"
            )
            live_outcome = outcome = run(policy)  # judges the phase on the labelled live requests
        after = before
        deadline = time.monotonic() + 10
        while outcome.state == "promoted" and after == before and time.monotonic() < deadline:
            time.sleep(0.1)
            after = answer(rows[0], "demo-after")
    return {
        "outcome": outcome,
        "gated": gated,
        "live": live_outcome,
        "served_before": before,
        "served_after": after,
        "policy": policy,
    }


def _wait(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.1)


def _shadowed(model: str, ids: set[str]) -> int:
    import modelport as mp

    log = mp.prediction_log(model)
    if not len(log):
        return 0
    return int((log["request_id"].isin(ids) & (log["role"] == "shadow")).sum())


def _shadow_counts(client: Any) -> dict[str, float]:
    """The server's mirrored requests by result (scored, dropped, failed), from /metrics."""
    import re

    counts: dict[str, float] = {}
    for m in re.finditer(
        r"^modelport_shadow_requests_total\{([^}]*)\} (\S+)$", client.get("/metrics").text, re.M
    ):
        result = re.search(r'result="([^"]+)"', m.group(1))
        if result:
            counts[result.group(1)] = counts.get(result.group(1), 0.0) + float(m.group(2))
    return counts
