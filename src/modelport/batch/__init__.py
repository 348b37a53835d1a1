"""Batch scoring jobs: periodic runs that score only what is new, exactly once, in bounded memory.

>>> import modelport as mp
>>> result = mp.batch.run("jobs/credit-nightly.yaml")        # doctest: +SKIP
>>> result.stats["rows_out"], mp.batch.status("credit-nightly")  # doctest: +SKIP

See :mod:`modelport.batch.jobs` for the job file format and :mod:`modelport.batch.runner` for the
run's guarantees. ``modelport batch run|status|history`` are the same from the shell.
"""

from __future__ import annotations

from typing import Any

from modelport.batch.jobs import Job, OutputSpec, SourceSpec, job_from_dict, load_job
from modelport.batch.runner import RunResult, run
from modelport.batch.state import JobLocked, RunRecord

__all__ = [
    "Job",
    "JobLocked",
    "OutputSpec",
    "RunRecord",
    "RunResult",
    "SourceSpec",
    "history",
    "job_from_dict",
    "load_job",
    "run",
    "status",
]


def history(job: str, limit: int | None = None, client: Any = None) -> list[RunRecord]:
    """Every run of ``job`` (a job name), newest first."""
    from modelport.batch.state import BatchStore
    from modelport.client import default_client

    return BatchStore((client or default_client()).meta.engine).runs(job, limit=limit)


def status(job: str, client: Any = None) -> dict[str, Any]:
    """The job's state now: last run, committed watermark, totals, and whether a run holds the lock."""
    from modelport.batch.state import BatchStore
    from modelport.client import default_client

    store = BatchStore((client or default_client()).meta.engine)
    runs = store.runs(job)
    done = [r for r in runs if r.state == "published"]
    watermark = store.watermark(job)
    return {
        "job": job,
        "runs": len(runs),
        "successful_runs": len(done),
        "last_run": runs[0].to_dict() if runs else None,
        "last_success": done[0].to_dict() if done else None,
        "watermark": watermark.get("value") if watermark else None,
        "files_seen": len(store.files(job)),
        "rows_out_total": sum(int(r.stats.get("rows_out", 0)) for r in done),
        "running": store.lock_holder(f"batch:{job}"),
    }
