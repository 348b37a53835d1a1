"""The demo's batch step: two batches of new applications arrive and the nightly job runs after each;
the second run scores only the rows that arrived since the first."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

JOB = "credit-nightly"


def two_incremental_runs(home: Path, model_ref: str, seed: int) -> dict[str, Any]:
    """Write a job file and a first batch, run it; add a second batch, run again. Returns both runs."""
    import numpy as np
    import pandas as pd
    import yaml

    import modelport as mp
    from modelport_examples.credit import generate_applications

    folder = home / "demo" / "batch"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "applications").mkdir(parents=True)
    job = folder / f"{JOB}.yaml"
    job.write_text(
        yaml.safe_dump(
            {
                "name": JOB,
                "model": model_ref,
                "source": {"kind": "parquet", "path": "applications/", "watermark": "updated_at"},
                "key": "application_id",
                "output": {"kind": "parquet", "path": "scores/"},
                "schedule": "0 2 * * *",
            },
            sort_keys=False,
        )
    )
    now = pd.Timestamp.now(tz="UTC").floor("s")
    runs = []
    for part, (rows, hours_ago) in enumerate(((2_000, 26), (500, 2)), 1):
        batch = generate_applications(rows, seed=seed + 20_000 + part, with_label=False)
        batch["updated_at"] = now - pd.Timedelta(hours=hours_ago) + pd.to_timedelta(np.arange(rows), unit="s")
        batch.to_parquet(folder / "applications" / f"part-{part}.parquet", index=False)
        # the demo starts the job afresh each time (its folder is new): forget earlier demos' watermark
        runs.append(mp.batch.run(job, full_refresh=part == 1))
    scores = pd.read_parquet(folder / "scores")
    return {"job": job, "runs": runs, "output": folder / "scores", "output_rows": len(scores)}
