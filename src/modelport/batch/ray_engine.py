"""``engine: ray``: the same job, scored on Ray Data when one machine is not enough.

The driver keeps everything that makes a run exactly-once — the lock, the increment, the staged
output, the commit and the publish — and Ray does the heavy part: reading the increment's files
and scoring them with ``map_batches(batch_format="pyarrow")`` on a pool of actors, each of which
loads the model ONCE and scores Arrow tables with the local engine's own :class:`Scorer`. Scored
tables stream back to the driver (``iter_batches``) and are written to the run's staging, so
memory stays bounded on both sides. SQL sources run on the local engine.

What an actor returns for a chunk is one Arrow table holding three kinds of rows, told apart by
the ``__modelport_part`` column: the output rows (with their watermarks), the rejected rows and
the log sample (their columns prefixed, so that no name or type clashes with the output's).

This module is imported only for ``engine: ray``; the local engine never imports ray.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modelport.batch.admission import Admission
from modelport.batch.increment import Increment
from modelport.batch.jobs import Job
from modelport.batch.scoring import Scored, Scorer
from modelport.config import Settings
from modelport.errors import InvalidInput
from modelport.schema import Batch

PART = "__modelport_part"
WM = "__modelport_wm"
_OUTPUT, _REJECTS, _LOG = 0, 1, 2
_REJECT = "__reject__"  # prefix of a rejected row's columns
_LOGGED = "__log__"  # prefix of a log-sample row's columns


class _ScoreActor:
    """A Ray actor: loads the pinned model version (and opens the job's feature store) once, then
    scores Arrow table after Arrow table."""

    def __init__(self, job: Job, ref: str, run_id: str, text: bool, admission: Admission, settings: Settings):
        from modelport.client import Client

        enricher = None
        if job.features is not None:  # each actor opens the feature store once, like the model
            from modelport.batch.enrich import make_enricher

            enricher = make_enricher(job.features)
        # an actor holds num_cpus_per_actor CPUs (default 1): its model computes with as many threads
        threads = job.threads or max(1, int(float(job.ray.get("num_cpus_per_actor", 1))))
        # the driver's store settings, handed over whole (not through the actor's environment)
        predictor = Client(settings).registry.load(ref, runtime=job.runtime, threads=threads)
        self.scorer = Scorer(job, predictor, run_id, text, enricher)
        self.logged = _Collector() if job.log_sample > 0 else None
        self.scorer.logger = self.logged
        self.admission = admission

    def __call__(self, table: pa.Table) -> pa.Table:
        res = self.scorer.score_chunk(table, self.admission)
        out = res.table
        if res.wm is not None:
            out = out.append_column(WM, res.wm)
        parts = [_tagged(out, _OUTPUT)]
        if res.rejected is not None and res.rejected.num_rows:
            parts.append(_tagged(_prefixed(res.rejected, _REJECT), _REJECTS))
        if self.logged is not None:
            for log_table in self.logged.take():
                parts.append(_tagged(_prefixed(log_table, _LOGGED), _LOG))
        if len(parts) == 1:
            return parts[0]
        return pa.concat_tables(parts, promote_options="permissive")


class _Collector:
    """Stands in for the prediction logger on an actor: each sample becomes an Arrow table that
    travels with the chunk's output to the driver, which writes it."""

    def __init__(self) -> None:
        self.tables: list[pa.Table] = []

    def log(self, result: Any, request_id: Any, protocol: str, seconds: float) -> None:
        data: dict[str, Any] = {
            "request_id": pa.array(np.asarray(request_id, dtype=object), pa.large_string())
        }
        for name, col in result.batch.columns.items():
            data[f"in:{name}"] = pa.array(col, from_pandas=True)
        data["prediction"] = pa.array(np.asarray(result.predictions))
        if result.probabilities is not None:
            proba = np.asarray(result.probabilities)
            for i in range(proba.shape[1]):
                data[f"proba:{i}"] = pa.array(np.ascontiguousarray(proba[:, i]))
        self.tables.append(pa.table(data))

    def take(self) -> list[pa.Table]:
        tables, self.tables = self.tables, []
        return tables


def _tagged(table: pa.Table, part: int) -> pa.Table:
    return table.append_column(PART, pa.array(np.full(table.num_rows, part, dtype=np.int8)))


def _prefixed(table: pa.Table, prefix: str) -> pa.Table:
    return table.rename_columns([prefix + n for n in table.column_names])


def _unprefixed(table: pa.Table, prefix: str) -> pa.Table:
    names = [n for n in table.column_names if n.startswith(prefix)]
    return table.select(names).rename_columns([n[len(prefix) :] for n in names])


def _split(block: pa.Table, scorer: Scorer) -> Scored:
    """One block from the actors: its output rows and watermarks, its rejects; the log sample goes
    to the run's prediction logger."""
    part = block.column(PART)
    kinds = set(pc.unique(part).to_pylist())
    rows = block if kinds == {_OUTPUT} else block.filter(pc.equal(part, _OUTPUT))
    mine = [n for n in rows.column_names if not n.startswith(("__reject__", "__log__", "__modelport_"))]
    wm = rows.column(WM).combine_chunks() if WM in rows.column_names else None
    out = rows.select(mine)
    rejected = None
    if _REJECTS in kinds:
        rejected = _unprefixed(block.filter(pc.equal(part, _REJECTS)), _REJECT)
    if _LOG in kinds and scorer.logger is not None:
        _log(_unprefixed(block.filter(pc.equal(part, _LOG)), _LOGGED), scorer)
    return Scored(out, wm, rejected)


def _log(table: pa.Table, scorer: Scorer) -> None:
    if not table.num_rows:
        return
    names = scorer.names
    columns = {n: _numpy(table.column(f"in:{n}")) for n in names}
    batch = Batch(scorer.predictor.signature, columns, table.num_rows)
    probas = sorted((n for n in table.column_names if n.startswith("proba:")), key=lambda n: int(n[6:]))
    proba = np.column_stack([table.column(n).to_numpy() for n in probas]) if probas else None
    keys = np.asarray(table.column("request_id").to_numpy(), dtype=object)
    scorer.log_rows(batch, keys, _numpy(table.column("prediction")), proba)


def _numpy(col: pa.ChunkedArray) -> np.ndarray:
    arr = col.combine_chunks()
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        out = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)
        if arr.null_count:
            out[np.asarray(arr.is_null())] = np.nan  # a missing text, as validation gives it
        return out
    return np.asarray(arr.to_numpy(zero_copy_only=False))


def _default_actors() -> int:
    """One actor per CPU of the cluster but one, which stays free for the read tasks (else they starve)."""
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 2)) - 1)


def score_on_ray(
    job: Job, increment: Increment, columns: list[str], scorer: Scorer, settings: Settings
) -> Generator[Scored, None, None]:
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
        readers = {"parquet": ray.data.read_parquet, "csv": ray.data.read_csv, "json": ray.data.read_json}
        fs = getattr(increment.source, "fs", None)
        kwargs: dict[str, Any] = {"filesystem": fs} if fs is not None and job.source.kind == "parquet" else {}
        if job.source.kind == "csv":
            import pyarrow.csv as pcsv

            # text, an empty field missing: as the local engine reads CSV
            kwargs["convert_options"] = pcsv.ConvertOptions(
                column_types={c: pa.string() for c in columns}, strings_can_be_null=True, null_values=[""]
            )
        if job.source.kind == "json":
            kwargs["lines"] = True
        ds = readers[job.source.kind](list(paths), **kwargs)
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
                "settings": settings,
            },
            batch_size=job.batch_size,
            batch_format="pyarrow",
            concurrency=int(options.get("num_actors") or _default_actors()),
            num_cpus=float(options.get("num_cpus_per_actor", 1)),
        )
        for block in scored.iter_batches(batch_format="pyarrow", batch_size=None):
            assert isinstance(block, pa.Table)
            if block.num_rows:
                yield _split(block, scorer)
    finally:
        if started_here:
            ray.shutdown()
