"""The batch engine: one run of a job, exactly once, in bounded memory.

A run, under the job's lock in the store:

1. **Recover**: a previous run that committed but did not finish publishing is published now
   (roll forward); one that died before committing is marked ``crashed`` and its staging removed.
2. **Increment**: with a watermark, the rows above the last committed watermark (minus the
   look-back; (key, watermark) pairs already scored inside the look-back are skipped); without
   one, the files never seen before (path, size, mtime, sha256). A source missing a column the
   model needs fails the run here, before anything is written.
3. **Score** chunk by chunk, every chunk an Arrow record batch on ONE path (``scoring``): admit
   (``admission``), type text columns by the signature (CSV/JSON, ``text_values``), validate
   (``model_input``), predict (the ONNX twin where its parity gate passed), write results and
   rejected rows (with the reason, ``outputs``) to staging. Only the rows that need a per-value
   decision take a slower way; an ONNX classifier's text preprocessing runs once per distinct
   value of the dictionary-encoded text columns (``flavors.onnx_text.TextCodes``); several chunks are
   scored at once on worker threads while the next is read and the previous written
   (``pipeline``); staged files are fsynced once, before the commit.
4. **Commit** the new watermark, files and keys together with the run's statistics in one
   transaction, then **publish** the staged output (one rename or one SQL transaction).

A SIGKILL anywhere leaves no visible partial output: before the commit nothing counts and the next
run redoes the work; after it, the next run finishes the publish.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from modelport.batch.increment import Increment
from modelport.batch.jobs import Job, load_job
from modelport.batch.pipeline import cpu_count, ordered_map, slice_rows, split_tail
from modelport.batch.scoring import Scored, Scorer
from modelport.batch.sinks import FolderSink, SqlSink, make_sink
from modelport.batch.state import BatchStore, RunRecord
from modelport.batch.watermarks import wm_display
from modelport.errors import ModelportError, SchemaMismatch

log = logging.getLogger(__name__)
FAILPOINT_ENV = "MODELPORT_BATCH_FAILPOINT"  # tests: SIGKILL this process at a named point
Progress = Callable[[int], None]
TAIL_PIECE_ROWS = 4096  # no smaller pieces: below this a chunk's fixed costs outweigh an idle core


@dataclass
class RunResult:
    """What a run did (also stored in the run's record; see ``modelport batch status``)."""

    run_id: str
    job: str
    state: str
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_out(self) -> int:
        return int(self.stats.get("rows_out", 0))

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "job": self.job, "state": self.state, **self.stats}


def run(
    job: Job | str | Path,
    *,
    full_refresh: bool = False,
    dry_run: bool = False,
    client: Any = None,
    progress: Progress | None = None,
) -> RunResult:
    """Run ``job`` (a :class:`Job` or a job file) once; see the module docstring."""
    from modelport.client import default_client

    job = job if isinstance(job, Job) else load_job(job)
    client = client or default_client()
    store = BatchStore(client.meta.engine)
    with store.acquire(f"batch:{job.name}"):
        recover(job, store)
        return _Run(job, store, client, full_refresh, dry_run, progress).execute()


def recover(job: Job, store: BatchStore) -> list[str]:
    """Finish publishing committed runs; clean up runs that died before committing."""
    done = []
    for rec in reversed(store.runs(job.name, states=("committed", "running"))):
        sinks = _sinks(job)
        if rec.state == "committed":
            for part, sink in sinks.items():
                if part in rec.publish:
                    sink.publish(rec.publish[part], replace=bool(rec.publish.get("replace")))
            store.finish_run(rec.run_id, "published")
            log.warning(
                "published run %s of %s, which committed before it was interrupted", rec.run_id, job.name
            )
        else:
            for part, sink in sinks.items():
                if part in rec.publish:
                    sink.abort(rec.publish[part])
            store.finish_run(rec.run_id, "crashed", error="The run was interrupted before it committed.")
            log.warning("run %s of %s was interrupted; its work will be redone", rec.run_id, job.name)
        done.append(rec.run_id)
    return done


def _sinks(job: Job) -> dict[str, FolderSink | SqlSink]:
    return {"output": make_sink(job.output, job.key), "rejects": make_sink(job.rejects_spec(), None)}


def failpoint(name: str) -> None:
    """Die here with SIGKILL when ``MODELPORT_BATCH_FAILPOINT`` names this point (crash tests)."""
    if os.environ.get(FAILPOINT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class _Run:
    def __init__(
        self,
        job: Job,
        store: BatchStore,
        client: Any,
        full_refresh: bool,
        dry_run: bool,
        progress: Progress | None,
    ) -> None:
        self.job, self.store, self.client = job, store, client
        self.full_refresh, self.dry_run, self.progress = full_refresh, dry_run, progress
        started = datetime.now(UTC)
        self.started = started
        self.run_id = f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        self.t0 = time.perf_counter()

    def execute(self) -> RunResult:
        job = self.job
        registry = self.client.registry
        mv = registry.get(job.model)
        runtime = registry.runtime_for(mv, job.runtime)  # builds a missing twin, as load would
        # ONNX: one chunk per CPU by default; native models bring their own threads (OpenMP): one
        # chunk at a time unless the job says otherwise
        self.workers = job.workers or (cpu_count() if runtime == "onnx" else 1)
        threads = job.threads
        if threads is None and job.engine == "local" and self.workers > 1:
            threads = max(1, cpu_count() // self.workers)  # the workers share the cores
        predictor = registry.load(mv, runtime=job.runtime, threads=threads)
        before = None if self.full_refresh else self.store.watermark(job.name)
        increment = Increment(job, self.store, before, self.full_refresh)
        needed = increment.check_columns(predictor.signature)  # fails before anything is written
        stats: dict[str, Any] = {
            "model_version": mv.version,
            "runtime": predictor.runtime,
            "threads": predictor.threads,
            "watermark_before": wm_display(before),
            "files_new": len(increment.new_files),
            "full_refresh": self.full_refresh,
        }
        if self.dry_run:
            stats["rows_in"] = sum(len(f) for f in increment.chunks(needed))
            stats["duration_s"] = round(time.perf_counter() - self.t0, 3)
            return RunResult(self.run_id, job.name, "dry-run", stats)
        sinks = _sinks(job)
        run_date = f"{self.started:%Y-%m-%d}"
        plan: dict[str, Any] = {part: sink.plan(self.run_id, run_date) for part, sink in sinks.items()}
        plan["replace"] = self.full_refresh
        self.store.start_run(self.run_id, job.name, job.engine, job.model, plan)
        try:
            scorer = Scorer(job, predictor, self.run_id, increment.text, increment.enricher)
            if job.log_sample > 0:
                from modelport.predlog.reader import log_root
                from modelport.predlog.writer import PredictionLogger

                # a log file per 10k sampled rows (or 5 s), not per 1k as a server writes them
                scorer.logger = PredictionLogger(
                    log_root(self.client.settings.home), max_queue=1_000_000, flush_rows=10_000
                )
            try:
                totals = self._score(increment, needed, scorer, sinks, plan)
            finally:
                if scorer.logger is not None:
                    scorer.logger.close()
            stats.update(totals)
            stats["watermark_after"] = wm_display(increment.watermark_after()) or stats["watermark_before"]
            stats["duration_s"] = round(time.perf_counter() - self.t0, 3)
            failpoint("before_commit")
            self.store.commit_run(
                self.run_id,
                job.name,
                version=mv.version,
                stats=stats,
                watermark=increment.watermark_state(),
                files=increment.new_files,
                keys=increment.keys,
                prune_keys_below=increment.prune_below(),
                full_refresh=self.full_refresh,
            )
        except BaseException as exc:
            for part, sink in sinks.items():
                try:
                    sink.abort(plan[part])
                except Exception:
                    log.exception("could not remove the staging of run %s", self.run_id)
            message = exc.message if isinstance(exc, ModelportError) else f"{type(exc).__name__}: {exc}"
            self.store.finish_run(self.run_id, "failed", stats, error=message)
            raise
        failpoint("after_commit")
        sinks["output"].publish(plan["output"], replace=self.full_refresh)
        failpoint("mid_publish")
        sinks["rejects"].publish(plan["rejects"], replace=self.full_refresh)
        self.store.finish_run(self.run_id, "published", stats)
        return RunResult(self.run_id, job.name, "published", stats)

    def _score(
        self,
        increment: Increment,
        needed: list[str],
        scorer: Scorer,
        sinks: dict[str, FolderSink | SqlSink],
        plan: dict[str, Any],
    ) -> dict[str, Any]:
        out = sinks["output"].writer(plan["output"])
        rejects = sinks["rejects"].writer(plan["rejects"])
        rows_rejected = 0
        results: Generator[Scored, None, None]
        if self.job.engine == "ray":
            from modelport.batch.ray_engine import score_on_ray

            results = score_on_ray(self.job, increment, needed, scorer, self.client.settings)
        else:
            admission = increment.admission

            def score(chunk: pa.RecordBatch) -> Scored:
                failpoint("in_worker")  # a chunk being scored while others are read and written
                return scorer.score_chunk(chunk, admission)

            job = self.job
            keep = {job.key, increment.wm_col, *job.passthrough}  # written out as they are read
            text = [
                c.name
                for c in scorer.predictor.signature.columns or ()
                if c.type in ("string", "category") and c.name not in keep
            ]
            chunks: Iterator[pa.RecordBatch] = increment.chunks(needed, text)
            if self.workers > 1:  # the last chunks in pieces, so that the workers finish together
                piece = max(TAIL_PIECE_ROWS, job.batch_size // 4)
                chunks = split_tail(chunks, slice_rows, (self.workers - 1) * job.batch_size, piece)
            results = ordered_map(score, chunks, self.workers)
        with closing(results):  # an error stops the workers (and Ray) before the staging goes
            for done, res in enumerate(results, 1):
                scored, rejected = res.table, res.rejected
                increment.scored(scored, res.wm)
                if scored.num_rows:
                    out.write(scored)
                if rejected is not None and rejected.num_rows:
                    if self.job.on_error == "fail":
                        first = rejected.column("reject_reason")[0].as_py()
                        raise SchemaMismatch(f"Row rejected and on_error is 'fail': {first}")
                    rejects.write(rejected)
                    rows_rejected += rejected.num_rows
                if done == 1:
                    failpoint("after_first_chunk")
                if self.progress is not None:
                    self.progress(out.rows + rows_rejected)
        out.close()
        rejects.close()
        return {"rows_in": out.rows + rows_rejected, "rows_out": out.rows, "rows_rejected": rows_rejected}


def history(job_name: str, client: Any = None, limit: int | None = None) -> list[RunRecord]:
    """Runs of a job, newest first."""
    from modelport.client import default_client

    client = client or default_client()
    return BatchStore(client.meta.engine).runs(job_name, limit=limit)
