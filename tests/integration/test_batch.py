"""Batch jobs against real files and a real PostgreSQL: increments, rejects, schema changes, locks,
SQL sources and sinks, and exactly-once output across SIGKILLed runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import modelport as mp
from modelport.batch import JobLocked, job_from_dict
from modelport.batch.runner import FAILPOINT_ENV
from modelport.batch.state import BatchStore
from modelport.client import default_client
from modelport.errors import InvalidInput, SchemaMismatch
from tests.conftest import loan_frame
from tests.unit.test_registry import credit_pipeline

MODELPORT = Path(sys.executable).parent / "modelport"
T0 = pd.Timestamp("2026-11-01", tz="UTC")


@pytest.fixture
def model(home: Path) -> Any:
    pipeline, X, _ = credit_pipeline()
    mp.register(pipeline, "credit", sample=X, alias="production")
    return mp.load("credit@production")


def applications(n: int, start: int = 0, seed: int = 0) -> pd.DataFrame:
    X, _ = loan_frame(n, seed)
    X.insert(0, "application_id", np.arange(start, start + n))
    X["updated_at"] = T0 + pd.to_timedelta(np.arange(start, start + n), unit="min")
    return X


def job(tmp_path: Path, **overrides: Any) -> Path:
    spec: dict[str, Any] = {
        "name": "credit-nightly",
        "model": "credit@production",
        "source": {"kind": "parquet", "path": "data/", "watermark": "updated_at"},
        "key": "application_id",
        "output": {"kind": "parquet", "path": "scores/"},
    }
    spec.update(overrides)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    (tmp_path / "data").mkdir(exist_ok=True)
    return path


def output(tmp_path: Path, folder: str = "scores") -> pd.DataFrame:
    root = tmp_path / folder
    if not root.exists() or not list(root.glob("run_date=*/*/*")):
        return pd.DataFrame(columns=["application_id"])
    return pd.read_parquet(root)


def test_threads_setting_reaches_the_model(tmp_path: Path, model: Any) -> None:
    from modelport.batch.pipeline import cpu_count

    path = job(tmp_path, workers=2, threads=1)
    applications(50).to_parquet(tmp_path / "data" / "a.parquet")
    r = mp.batch.run(path)
    assert (r.stats["runtime"], r.stats["threads"], r.rows_out) == ("onnx", 1, 50)
    # defaults: one ONNX worker per CPU, the CPUs shared out; one native worker with its own threads
    shared = 1 if cpu_count() > 1 else None
    default = job(tmp_path, name="by-default", output={"kind": "parquet", "path": "default/"})
    assert mp.batch.run(default).stats["threads"] == shared
    native = mp.batch.run(
        job(tmp_path, name="native", runtime="native", output={"kind": "parquet", "path": "n/"})
    )
    assert (native.stats["runtime"], native.stats["threads"], native.rows_out) == ("native", None, 50)
    with pytest.raises(InvalidInput, match="threads must be a whole number"):
        job_from_dict({**yaml.safe_load(job(tmp_path).read_text()), "threads": 0})


def test_watermark_increments_score_only_new_rows_exactly_once(tmp_path: Path, model: Any) -> None:
    path = job(tmp_path)
    first = applications(300)
    first.to_parquet(tmp_path / "data" / "a.parquet")
    r1 = mp.batch.run(path)
    assert r1.state == "published" and r1.stats["rows_in"] == r1.rows_out == 300
    applications(200, start=300).to_parquet(tmp_path / "data" / "b.parquet")
    r2 = mp.batch.run(path)
    assert r2.rows_out == 200  # only the new rows
    assert r2.stats["watermark_before"] == (T0 + pd.Timedelta(minutes=299)).isoformat()
    assert mp.batch.run(path).rows_out == 0  # an empty increment is a successful run
    out = output(tmp_path)
    assert sorted(out["application_id"]) == list(range(500))
    both = pd.concat([first, applications(200, start=300)])
    expected = model.predict_proba(both.drop(columns=["application_id", "updated_at"]))[:, 1]
    got = out.set_index("application_id").loc[both["application_id"], "proba_1"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert set(out["model"]) == {"credit"} and set(out["version"]) == {1}
    assert set(out["run_id"]) == {r1.run_id, r2.run_id}
    status = mp.batch.status("credit-nightly")
    assert status["successful_runs"] == 3 and status["rows_out_total"] == 500
    assert [
        r.rows_out if hasattr(r, "rows_out") else r.stats["rows_out"]
        for r in mp.batch.history("credit-nightly")
    ] == [
        0,
        200,
        300,
    ]


def test_late_rows_within_the_lookback_are_scored_once(tmp_path: Path, model: Any) -> None:
    path = job(
        tmp_path, source={"kind": "parquet", "path": "data/", "watermark": "updated_at", "lookback": "1h"}
    )
    applications(100).to_parquet(tmp_path / "data" / "a.parquet")
    assert mp.batch.run(path).rows_out == 100
    late = applications(5, start=1000)
    late["updated_at"] = T0 + pd.Timedelta(minutes=80)  # before the watermark (99 min), inside the hour
    too_late = applications(3, start=2000)
    too_late["updated_at"] = T0 + pd.Timedelta(minutes=10)  # beyond the look-back: never read
    pd.concat([late, too_late]).to_parquet(tmp_path / "data" / "late.parquet")
    r = mp.batch.run(path)
    assert r.rows_out == 5  # the rows already scored inside the look-back are not scored again
    assert mp.batch.run(path).rows_out == 0
    ids = output(tmp_path)["application_id"]
    assert ids.is_unique and len(ids) == 105 and not set(range(2000, 2003)) & set(ids)


def test_new_files_csv_rejects_and_touched_files(tmp_path: Path, model: Any) -> None:
    path = job(tmp_path, source={"kind": "csv", "path": "data/"})
    a = applications(50)
    a["income"] = a["income"].astype(object)
    a.loc[3, "income"] = "lots"  # not a number: this row is rejected, the others are scored
    a["age"] = a["age"].astype(object)
    a.loc[7, "age"] = 41.5  # not an integer
    a.to_csv(tmp_path / "data" / "a.csv", index=False)
    r1 = mp.batch.run(path)
    assert (r1.stats["rows_in"], r1.rows_out, r1.stats["rows_rejected"], r1.stats["files_new"]) == (
        50,
        48,
        2,
        1,
    )
    rejects = pd.read_parquet(tmp_path / "scores" / "_rejects")
    reasons = dict(zip(rejects["application_id"], rejects["reject_reason"], strict=True))
    assert reasons["3"] == "column 'income' expects float64, got 'lots'"
    assert "column 'age' expects int64" in reasons["7"]
    os.utime(tmp_path / "data" / "a.csv")  # touched, same content: not new
    applications(20, start=50).to_csv(tmp_path / "data" / "b.csv", index=False)
    r2 = mp.batch.run(path)
    assert (r2.rows_out, r2.stats["files_new"]) == (20, 1)
    assert mp.batch.run(path).stats["files_new"] == 0
    assert sorted(output(tmp_path)["application_id"].astype(int)) == [i for i in range(70) if i not in (3, 7)]


def test_on_error_fail_and_json_lines(tmp_path: Path, model: Any) -> None:
    path = job(tmp_path, source={"kind": "json", "path": "data/"}, on_error="fail")
    good = applications(10).drop(columns=["updated_at"])
    good.to_json(tmp_path / "data" / "a.jsonl", orient="records", lines=True)
    assert mp.batch.run(path).rows_out == 10
    bad = applications(5, start=10).drop(columns=["updated_at"])
    bad["debt_ratio"] = bad["debt_ratio"].astype(object)
    bad.loc[2, "debt_ratio"] = "high"
    bad.to_json(tmp_path / "data" / "b.jsonl", orient="records", lines=True)
    with pytest.raises(SchemaMismatch, match="debt_ratio"):
        mp.batch.run(path)
    assert len(output(tmp_path)) == 10  # the failed run published nothing
    assert mp.batch.history("credit-nightly")[0].state == "failed"
    assert not list((tmp_path / "scores" / "_staging").iterdir())


def test_schema_change_fails_before_writing_and_missing_source(tmp_path: Path, model: Any) -> None:
    path = job(tmp_path)
    applications(20).drop(columns=["purpose"]).to_parquet(tmp_path / "data" / "a.parquet")
    with pytest.raises(SchemaMismatch, match="lacks column\\(s\\) purpose"):
        mp.batch.run(path)
    assert output(tmp_path).empty and mp.batch.status("credit-nightly")["watermark"] is None
    gone = job(tmp_path, source={"kind": "parquet", "path": "nowhere/", "watermark": "updated_at"})
    with pytest.raises(InvalidInput, match="does not exist"):
        mp.batch.run(gone)


def test_dry_run_and_full_refresh(tmp_path: Path, model: Any) -> None:
    path = job(tmp_path)
    applications(40).to_parquet(tmp_path / "data" / "a.parquet")
    dry = mp.batch.run(path, dry_run=True)
    assert dry.state == "dry-run" and dry.stats["rows_in"] == 40
    assert output(tmp_path).empty and mp.batch.history("credit-nightly") == []
    mp.batch.run(path)
    again = mp.batch.run(path, full_refresh=True)
    assert again.rows_out == 40
    out = output(tmp_path)
    assert len(out) == 40 and set(out["run_id"]) == {again.run_id}  # replaced, not duplicated


def test_a_second_run_refuses_and_a_dead_holders_lock_is_taken_over(tmp_path: Path, model: Any) -> None:
    path = job(tmp_path)
    applications(10).to_parquet(tmp_path / "data" / "a.parquet")
    store = BatchStore(default_client().meta.engine)
    with store.acquire("batch:credit-nightly"), pytest.raises(JobLocked, match="already running"):
        mp.batch.run(path)
    # a holder that died (SIGKILL) leaves its lock behind; its pid no longer exists
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    with store.engine.begin() as conn:
        from modelport.store import db

        conn.execute(
            db.locks.insert().values(
                name="batch:credit-nightly",
                owner="ghost",
                host=os.uname().nodename,
                pid=int(dead.stdout),
                acquired_at=T0,
                heartbeat_at=pd.Timestamp.now(tz="UTC").to_pydatetime(),
            )
        )
    assert mp.batch.status("credit-nightly")["running"]["stale"] is True
    assert mp.batch.run(path).rows_out == 10
    assert mp.batch.status("credit-nightly")["running"] is None


@pytest.mark.parametrize("point", ["after_first_chunk", "before_commit", "after_commit", "mid_publish"])
def test_sigkill_at_any_point_loses_and_duplicates_nothing(tmp_path: Path, model: Any, point: str) -> None:
    path = job(tmp_path, batch_size=64)
    applications(300).to_parquet(tmp_path / "data" / "a.parquet")
    env = {**os.environ, FAILPOINT_ENV: point}
    killed = subprocess.run(
        [str(MODELPORT), "batch", "run", str(path)], env=env, capture_output=True, text=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    visible = output(tmp_path)
    assert len(visible) in (0, 300)  # never a partial run
    if point in ("after_first_chunk", "before_commit"):
        assert visible.empty
    applications(100, start=300).to_parquet(tmp_path / "data" / "b.parquet")
    result = mp.batch.run(path)  # recovers (rolls forward or redoes), then scores what is new
    ids = output(tmp_path)["application_id"]
    assert ids.is_unique and sorted(ids) == list(range(400)), (point, result.stats)
    states = [r.state for r in mp.batch.history("credit-nightly")]
    assert states[0] == "published"
    assert states[1] == ("crashed" if point in ("after_first_chunk", "before_commit") else "published")


def test_sigkill_from_outside_during_a_long_run(tmp_path: Path, model: Any) -> None:
    path = job(tmp_path, batch_size=50)
    for i in range(8):
        applications(500, start=500 * i, seed=i).to_parquet(tmp_path / "data" / f"part-{i}.parquet")
    proc = subprocess.Popen([str(MODELPORT), "batch", "run", str(path)], stderr=subprocess.PIPE, text=True)
    time.sleep(4.0)  # start-up takes ~2-3 s; then it is scoring
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert len(output(tmp_path)) in (0, 4000)
    mp.batch.run(path)
    ids = output(tmp_path)["application_id"]
    assert ids.is_unique and len(ids) == 4000


def test_sql_source_and_sink_on_postgres(tmp_path: Path, model: Any, pg_url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    applications(120).to_sql("applications", engine, index=False)
    path = job(
        tmp_path,
        source={"kind": "sql", "url": pg_url, "table": "applications", "watermark": "updated_at"},
        output={"kind": "sql", "url": pg_url, "table": "scores"},
    )
    assert mp.batch.run(path).rows_out == 120
    applications(30, start=120).to_sql("applications", engine, index=False, if_exists="append")
    r = mp.batch.run(path)
    assert r.rows_out == 30 and r.stats["rows_in"] == 30  # the predicate ran in the database
    with engine.connect() as conn:
        n, distinct = conn.execute(text("SELECT count(*), count(DISTINCT application_id) FROM scores")).one()
        rejects = conn.execute(text("SELECT to_regclass('scores_rejects')")).scalar()
    assert n == distinct == 150 and rejects is None
    assert mp.batch.run(path, full_refresh=True).rows_out == 150  # upsert by key: still 150 rows
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM scores")).scalar() == 150
        staging = conn.execute(
            text("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'mp_stage_%'")
        ).scalar()
    assert staging == 0
    engine.dispose()


def test_query_source_and_locks_with_metadata_in_postgres(tmp_path: Path, pg_home: Path, pg_url: str) -> None:
    from sqlalchemy import create_engine

    pipeline, X, _ = credit_pipeline()
    mp.register(pipeline, "credit", sample=X, alias="production")
    engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    apps = applications(60)
    apps["region"] = np.where(np.arange(60) % 2, "north", "south")
    apps.to_sql("apps", engine, index=False)
    engine.dispose()
    query = "SELECT * FROM apps WHERE region = 'north'"
    path = job(tmp_path, source={"kind": "sql", "url": pg_url, "query": query, "watermark": "updated_at"})
    assert mp.batch.run(path).rows_out == 30
    store = BatchStore(default_client().meta.engine)
    with store.acquire("batch:credit-nightly"), pytest.raises(JobLocked):
        mp.batch.run(path)


def test_job_file_errors_name_the_problem(tmp_path: Path) -> None:
    base = {"name": "j", "model": "credit", "source": {"kind": "parquet", "path": "x"}}
    with pytest.raises(InvalidInput, match="needs 'output'"):
        job_from_dict(base)
    with pytest.raises(InvalidInput, match="Unknown job setting"):
        job_from_dict({**base, "output": {"kind": "csv", "path": "o"}, "sched": "x"})
    with pytest.raises(InvalidInput, match="upserts by 'key'"):
        job_from_dict({**base, "output": {"kind": "sql", "url": "sqlite://", "table": "t"}})
    with pytest.raises(InvalidInput, match="needs 'watermark'"):
        job_from_dict(
            {
                **base,
                "source": {"kind": "sql", "url": "sqlite://", "table": "t"},
                "output": {"kind": "csv", "path": "o"},
            }
        )
    with pytest.raises(InvalidInput, match="is not a duration"):
        job_from_dict(
            {
                **base,
                "key": "id",
                "source": {"kind": "parquet", "path": "x", "watermark": "t", "lookback": "soon"},
                "output": {"kind": "csv", "path": "o"},
            }
        ).lookback_value()


def test_ray_engine_scores_the_same_rows_as_the_local_engine(tmp_path: Path, model: Any) -> None:
    """On a real local Ray instance: map_batches with one model load per actor, then the same
    commit protocol; the output equals the local engine's."""
    ray_dir, local_dir = tmp_path / "ray", tmp_path / "local"
    for folder in (ray_dir, local_dir):
        folder.mkdir()
    data = applications(400)
    data.loc[5, "age"] = -1  # valid for the signature; scored
    ray_job = job(ray_dir, name="credit-ray", engine="ray", batch_size=100, ray={"num_cpus": 2})
    local_job = job(local_dir, name="credit-local", batch_size=100)
    for folder in (ray_dir, local_dir):
        data.iloc[:300].to_parquet(folder / "data" / "a.parquet")
    assert mp.batch.run(ray_job).rows_out == 300
    mp.batch.run(local_job)
    late = data.iloc[300:].astype({"age": "Int64"})
    late.loc[350, "age"] = pd.NA  # a row for the rejects, which travel back from the actors too
    for folder in (ray_dir, local_dir):
        late.to_parquet(folder / "data" / "b.parquet")
    r = mp.batch.run(ray_job)
    assert (r.rows_out, r.stats["rows_rejected"]) == (99, 1)
    assert r.stats["watermark_after"] == (T0 + pd.Timedelta(minutes=399)).isoformat()
    assert mp.batch.run(local_job).stats["rows_rejected"] == 1
    rejects = [pd.read_parquet(folder / "scores" / "_rejects") for folder in (ray_dir, local_dir)]
    pd.testing.assert_frame_equal(rejects[0].drop(columns="run_id"), rejects[1].drop(columns="run_id"))
    assert rejects[0]["application_id"].tolist() == ["350"]
    logged = mp.prediction_log("credit")  # both engines log a sample (1 %) of their rows
    assert set(logged["protocol"]) == {"batch"} and 0 < len(logged) < 40
    cols = ["application_id", "prediction", "proba_0", "proba_1", "version"]
    got = output(ray_dir)[cols].sort_values("application_id").reset_index(drop=True)
    want = output(local_dir)[cols].sort_values("application_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)


def test_the_local_engine_never_imports_ray(tmp_path: Path, model: Any) -> None:
    path = job(tmp_path)
    applications(10).to_parquet(tmp_path / "data" / "a.parquet")
    code = f"import sys, modelport as mp; mp.batch.run({str(path)!r}); print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_scheduler_runs_real_batch_jobs_and_two_at_once_refuse(tmp_path: Path, model: Any) -> None:
    from modelport.scheduler import Scheduler

    job(tmp_path, schedule="0 2 * * *")
    applications(30).to_parquet(tmp_path / "data" / "a.parquet")
    runs = Scheduler(tmp_path).run_once()  # `modelport batch run job.yaml` in a subprocess
    assert [(r.job, r.exit_code) for r in runs] == [("credit-nightly", 0)]
    assert len(output(tmp_path)) == 30
    # an external trigger (cron, a Kubernetes CronJob) while a run holds the lock is refused
    store = BatchStore(default_client().meta.engine)
    with store.acquire("batch:credit-nightly"):
        refused = subprocess.run(
            [str(MODELPORT), "batch", "run", str(tmp_path / "job.yaml")], capture_output=True, text=True
        )
    assert refused.returncode == 1 and "already running" in refused.stderr


def test_runs_log_a_sample_of_their_rows_for_monitoring(tmp_path: Path, model: Any) -> None:
    path = job(tmp_path, log_sample=0.5)
    applications(400).to_parquet(tmp_path / "data" / "a.parquet")
    mp.batch.run(path)
    logged = mp.prediction_log("credit")
    assert set(logged["protocol"]) == {"batch"} and 120 <= len(logged) <= 280  # ~50 % of 400
    scores = output(tmp_path).set_index("application_id")
    ids = logged["request_id"].astype(int)  # the key, so that labels can be joined later
    np.testing.assert_allclose(logged["proba_1"].to_numpy(), scores.loc[ids, "proba_1"].to_numpy())
    assert logged["in_income"].notna().any() and set(logged["version"]) == {1}


def test_fsspec_source_and_csv_output(tmp_path: Path, model: Any) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    root = f"memory://{tmp_path.name}/apps"
    for i in range(2):
        with fs.open(f"{root}/part-{i}.parquet", "wb") as f:
            applications(25, start=25 * i).to_parquet(f)
    path = job(
        tmp_path, source={"kind": "parquet", "path": root + "/"}, output={"kind": "csv", "path": "out/"}
    )
    assert mp.batch.run(path).rows_out == 50
    with fs.open(f"{root}/part-2.parquet", "wb") as f:
        applications(5, start=50).to_parquet(f)
    assert mp.batch.run(path).stats["files_new"] == 1
    files = sorted((tmp_path / "out").glob("run_date=*/*/part-*.csv"))
    assert len(files) == 2
    ids = pd.concat([pd.read_csv(f) for f in files])["application_id"]
    assert sorted(ids) == list(range(55))
