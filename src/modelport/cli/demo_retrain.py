"""The demo's closed loop: the outcomes of the calm and the drifted weeks are the labelled data; the
policy's drift trigger fires, a challenger is trained in its own process, beats the champion on the
latest data, is promoted, and a server watching credit@production answers with the new version."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

TRAINING = '''"""The team's training code: modelport calls train(df) in its own process."""
from modelport_examples.credit import train_credit_model


def train(df):
    model, _auc = train_credit_model(df)
    return model
'''


def close_the_loop(home: Path, model: str, alias: str, calm: Any, drifted: Any) -> dict[str, Any]:
    import httpx
    import pandas as pd
    import yaml

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
                "promote": {"mode": "direct"},
            },
            sort_keys=False,
        )
    )
    app = create_app(default_client(), [f"{model}@{alias}"], watch_interval=0.2, log_sample_rate=0.0)
    row = {k: (None if v != v else v) for k, v in calm.drop(columns=["default"]).iloc[0].to_dict().items()}
    with BackgroundServer(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        before = client.post(f"/models/{model}/predict", json={"inputs": [row]}).json()["version"]
        outcome = run(policy)
        after = before
        deadline = time.monotonic() + 10
        while outcome.state == "promoted" and after == before and time.monotonic() < deadline:
            time.sleep(0.1)
            after = client.post(f"/models/{model}/predict", json={"inputs": [row]}).json()["version"]
    return {"outcome": outcome, "served_before": before, "served_after": after, "policy": policy}
