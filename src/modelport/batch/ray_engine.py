"""``engine: ray``: the same job, scored on Ray Data when one machine is not enough.

The driver keeps everything that makes a run exactly-once — the lock, the increment, the staged
output, the commit and the publish — and Ray does the heavy part: reading the increment's files
and scoring them with ``map_batches`` on a pool of actors, each of which loads the model ONCE.
Scored chunks stream back to the driver (``iter_batches``) and are written to the run's staging,
so memory stays bounded on both sides. SQL sources run on the local engine.

This module is imported only for ``engine: ray``; the local engine never imports ray.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from typing import Any

import pandas as pd

from modelport.batch.jobs import Job
from modelport.batch.runner import _Increment
from modelport.batch.scoring import Admission, Scorer
from modelport.config import Settings
from modelport.errors import InvalidInput

_ENV = ("MODELPORT_HOME", "MODELPORT_DB_URL", "MODELPORT_ARTIFACTS", "MODELPORT_AUTO_COMPILE")


class _ScoreActor:
    """A Ray actor: loads the pinned model version (and opens the job's feature store) once, then
    joins features to and scores chunk after chunk.

    Each input chunk becomes ONE row holding the scored output, its watermarks and the rejects as
    Arrow IPC bytes, so types survive the trip to the driver exactly.
    """

    def __init__(
        self, job: Job, ref: str, run_id: str, text: bool, admission: Admission, env: dict[str, str]
    ):
        os.environ.update(env)
        from modelport.client import default_client

        enricher = None
        if job.features is not None:  # each actor opens the feature store once, like the model
            from modelport.batch.enrich import make_enricher

            enricher = make_enricher(job.features)
        # an actor holds num_cpus_per_actor CPUs (default 1): its model computes with as many threads
        threads = job.threads or max(1, int(float(job.ray.get("num_cpus_per_actor", 1))))
        predictor = default_client().registry.load(ref, runtime=job.runtime, threads=threads)
        self.scorer = Scorer(job, predictor, run_id, text, enricher)
        self.scorer.logger = _Collector() if job.log_sample > 0 else None
        self.admission = admission

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        out, wm, rejected = self.scorer.process(frame, self.admission)
        logged = self.scorer.logger.take() if self.scorer.logger is not None else []
        return pd.DataFrame(
            {
                "out": [_to_bytes(out)],
                "wm": [None if wm is None else _to_bytes(wm.to_frame("wm"))],
                "rejects": [_to_bytes(rejected) if len(rejected) else None],
                "logged": [pickle.dumps(logged) if logged else None],
            }
        )


class _Collector:
    """Stands in for the prediction logger on an actor: the driver writes the sample."""

    def __init__(self) -> None:
        self.items: list[tuple[Any, ...]] = []

    def log(self, *args: Any) -> None:
        self.items.append(args)

    def take(self) -> list[tuple[Any, ...]]:
        items, self.items = self.items, []
        return items


def _default_actors() -> int:
    """One actor per CPU of the cluster but one, which stays free for the read tasks (else they starve)."""
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 2)) - 1)


def _to_bytes(frame: pd.DataFrame) -> bytes:
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _from_bytes(data: bytes) -> pd.DataFrame:
    import pyarrow as pa

    return pa.ipc.open_stream(pa.py_buffer(data)).read_all().to_pandas()


def score_on_ray(
    job: Job, increment: _Increment, columns: list[str], scorer: Scorer, settings: Settings
) -> Iterator[tuple[pd.DataFrame, pd.Series | None, pd.DataFrame]]:
    import ray

    if job.source.kind == "sql":
        raise InvalidInput("engine: ray reads file sources; score a sql source with engine: local.")
    paths = increment.paths
    if not paths:
        return
    options = dict(job.ray)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(
            address=options.get("address"),
            num_cpus=options.get("num_cpus"),
            include_dashboard=False,
            ignore_reinit_error=True,
            log_to_driver=False,
        )
    try:
        env = {k: v for k in _ENV if (v := os.environ.get(k))}
        env.setdefault("MODELPORT_HOME", str(settings.home))
        readers = {"parquet": ray.data.read_parquet, "csv": ray.data.read_csv, "json": ray.data.read_json}
        fs = increment.source.fs if hasattr(increment.source, "fs") else None
        kwargs: dict[str, Any] = {"filesystem": fs} if fs is not None and job.source.kind == "parquet" else {}
        if job.source.kind == "csv":
            import pyarrow as pa
            import pyarrow.csv as pcsv

            kwargs["convert_options"] = pcsv.ConvertOptions(column_types={c: pa.string() for c in columns})
        if job.source.kind == "json":
            kwargs["lines"] = True
        ds = readers[job.source.kind](list(paths), **kwargs)
        if job.source.kind == "parquet":
            ds = ds.select_columns(columns)
        mv = scorer.mv
        scored = ds.map_batches(
            _ScoreActor,
            fn_constructor_kwargs={
                "job": job,
                "ref": f"{mv.name}:{mv.version}",
                "run_id": scorer.run_id,
                "text": scorer.text,
                "admission": increment.admission,
                "env": env,
            },
            batch_size=job.batch_size,
            batch_format="pandas",
            concurrency=int(options.get("num_actors") or _default_actors()),
            num_cpus=float(options.get("num_cpus_per_actor", 1)),
        )
        for batch in scored.iter_batches(batch_format="pandas", batch_size=None):
            parts = zip(batch["out"], batch["wm"], batch["rejects"], batch["logged"], strict=True)
            for out_b, wm_b, rej_b, log_b in parts:
                if isinstance(log_b, bytes) and scorer.logger is not None:
                    for item in pickle.loads(log_b):  # bytes our own actors made
                        scorer.logger.log(*item)
                wm = _from_bytes(wm_b)["wm"] if isinstance(wm_b, bytes) else None
                rejected = _from_bytes(rej_b) if isinstance(rej_b, bytes) else pd.DataFrame()
                yield _from_bytes(out_b), wm, rejected
    finally:
        if started_here:
            ray.shutdown()
