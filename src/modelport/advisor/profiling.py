"""Measure a model version on this machine: what :func:`modelport.advisor.recommend` reasons from.

Load time and memory come from a fresh process per runtime (:mod:`modelport.advisor.probe`);
latency, throughput and the micro-batching gain from calls in this process on the version's
reference rows, shaped as the server and batch jobs shape them. Each runtime is measured with one
intra-op thread, as it runs with one worker process per core.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from modelport.advisor.model import BundleProfile, Profile, RuntimeProfile
from modelport.errors import InvalidInput, ModelportError
from modelport.predictor import Predictor
from modelport.registry import MODEL_DIR
from modelport.schema import Batch

RUNTIMES = ("native", "onnx")
BATCH_SIZES = (1_000, 10_000)
MICROBATCH = 32
PROBE_TIMEOUT_S = 300
_DISTINCT_ROWS = 64
LATENCY_BUDGET_S = 10.0  # per runtime
SLOW_CALL_S = 1.0

Progress = Callable[[str], None]


def profile(
    ref: str,
    runtimes: tuple[str, ...] | list[str] = RUNTIMES,
    repeats: int = 200,
    client: Any = None,
    *,
    data: Any = None,
    batch_sizes: tuple[int, ...] = BATCH_SIZES,
    bundle: bool = True,
    int8: bool = True,
    progress: Progress | None = None,
) -> Profile:
    """Profile ``ref`` for each runtime in ``runtimes`` ("native", "onnx").

    ``repeats`` one-row calls give the latency percentiles; ``data`` (default: the reference
    sample stored at registration) gives the rows. The ONNX runtime and the edge bundle are
    measured only when the version has a twin that passed its parity gate (``modelport compile``).

    >>> p = profile("credit:3")                       # doctest: +SKIP
    >>> p.runtimes["onnx"].latency_p99_s               # doctest: +SKIP
    0.00021
    """
    from modelport.client import default_client

    if repeats < 10:
        raise InvalidInput(f"repeats must be at least 10 (for a p99), got {repeats}.")
    unknown = [r for r in runtimes if r not in RUNTIMES]
    if unknown or not runtimes:
        raise InvalidInput(f"runtimes must be among {', '.join(RUNTIMES)}; got {list(runtimes)}.")
    say = progress or (lambda _msg: None)
    client = client or default_client()
    registry = client.registry
    mv = registry.get(ref)
    twin = mv.compiled.get("onnx")
    onnx = "none" if twin is None else "passed" if twin.get("passed") else "failed"
    rows = data if data is not None else registry.reference_sample(mv)
    if rows is None:
        raise InvalidInput(
            f"'{mv.ref}' has no reference sample (a tensor model?); pass data= rows to profile it on."
        )
    frame = _frame(rows)
    notes: list[str] = []
    root = registry.artifacts.local_copy(mv.artifact_uri, mv.files, f"'{mv.ref}'")
    sizes = {rel: (root / rel).stat().st_size for rel in mv.files}
    measured: dict[str, RuntimeProfile] = {}
    for rt in dict.fromkeys(runtimes):
        if rt == "onnx" and onnx != "passed":
            notes.append(
                f"onnx not measured: {'its twin failed the parity gate' if onnx == 'failed' else 'no twin'}"
                f" (`modelport compile {mv.ref}`)"
            )
            continue
        say(f"Loading {mv.ref} ({rt}) in a fresh process…")
        probe = _probe(client, mv.ref, rt, notes)
        say(f"Timing {mv.ref} ({rt})…")
        with _one_blas_thread():
            predictor = registry.load(mv, runtime=rt, threads=1)
            measured[rt] = _measure(predictor, frame, repeats, batch_sizes, probe, notes)
    bundle_profile = None
    if bundle and onnx == "passed":
        say(f"Exporting the edge bundle of {mv.ref}…")
        bundle_profile = _bundle(registry, mv.ref, frame, int8, notes)
    return Profile(
        ref=mv.ref,
        flavor=mv.flavor,
        task=mv.task,
        artifact_bytes=sum(sizes.values()),
        model_bytes=sum(v for k, v in sizes.items() if k.startswith(f"{MODEL_DIR}/")),
        cpu_count=os.cpu_count() or 1,
        runtimes=measured,
        onnx=onnx,
        bundle=bundle_profile,
        notes=notes,
    )


def _frame(rows: Any) -> Any:
    import pandas as pd

    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    if len(frame) == 0:
        raise InvalidInput("No rows to profile on: the data is empty.")
    return frame.reset_index(drop=True)


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """One BLAS thread while measuring (the model's own threads are ``load(threads=1)``'s)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
    else:
        with threadpool_limits(1, user_api="blas"):
            yield


def _child_env(client: Any) -> dict[str, str]:
    s = client.settings
    env = dict(os.environ)
    env.update(
        MODELPORT_HOME=str(s.home),
        MODELPORT_DB_URL=s.db_url,
        MODELPORT_ARTIFACTS=s.artifacts_url,
        OMP_NUM_THREADS="1",
    )
    return env


def _probe(client: Any, ref: str, runtime: str, notes: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "modelport.advisor.probe", ref, runtime, "1"]  # one thread, as measured
    try:
        out = subprocess.run(
            cmd, env=_child_env(client), capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=True
        )
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))
    except (subprocess.SubprocessError, OSError, ValueError, IndexError) as exc:
        stderr = getattr(exc, "stderr", "") or ""
        tail = stderr.strip().splitlines()[-1:] or [type(exc).__name__]
        notes.append(f"{runtime}: load not measured in a fresh process ({tail[0]})")
        return {}


def _measure(
    predictor: Predictor,
    frame: Any,
    repeats: int,
    batch_sizes: tuple[int, ...],
    probe: dict[str, Any],
    notes: list[str],
) -> RuntimeProfile:
    records = frame.head(_DISTINCT_ROWS).to_dict("records")
    singles = [[r] for r in records]  # one request = one JSON row, as a client sends it

    def one(i: int) -> None:
        predictor.predict_with_proba(predictor.prepare(singles[i % len(singles)]))

    for i in range(10):
        one(i)
    timings: list[float] = []
    start = time.perf_counter()
    for i in range(repeats):  # a slow model stops at the time budget (but after 20 calls at least)
        t0 = time.perf_counter()
        one(i)
        timings.append(time.perf_counter() - t0)
        if i >= 20 and t0 - start > LATENCY_BUDGET_S:
            notes.append(f"{predictor.runtime}: {len(timings)} one-row calls timed (time budget reached)")
            break
    lat = np.array(timings)

    throughput: dict[int, float] = {}
    cpu_per_row = None
    big = _tile(frame, max(batch_sizes))
    for n in sorted(batch_sizes):
        wall, cpu = _timed(partial(_score, predictor, big.head(n)))
        throughput[n] = n / wall
        cpu_per_row = cpu / n
        if wall > SLOW_CALL_S:  # larger batches would take minutes; rows/s hardly change by then
            notes.append(f"{predictor.runtime}: batches above {n:,} rows not timed ({wall:.1f} s a call)")
            break

    group = [singles[i % len(singles)] for i in range(MICROBATCH)]

    def separately() -> None:
        for rows in group:
            predictor.predict_with_proba(predictor.prepare(rows))

    def merged() -> None:  # what the server's micro-batcher does: validate each, score once
        predictor.predict_with_proba(Batch.concat([predictor.prepare(rows) for rows in group]))

    t_sep, _ = _timed(separately)
    t_merged, _ = _timed(merged)
    before, after = probe.get("rss_before"), probe.get("rss_after")
    return RuntimeProfile(
        runtime=predictor.runtime,
        load_seconds=probe.get("load_seconds"),
        load_rss_bytes=after - before if before is not None and after is not None else None,
        process_rss_bytes=after,
        latency_p50_s=float(np.percentile(lat, 50)),
        latency_p99_s=float(np.percentile(lat, 99)),
        latency_mean_s=float(lat.mean()),
        throughput=throughput,
        cpu_seconds_per_row=cpu_per_row,
        microbatch_gain=t_sep / t_merged,
    )


def _score(predictor: Predictor, rows: Any) -> None:
    predictor.predict_with_proba(predictor.prepare(rows))


def _timed(fn: Callable[[], Any], min_time: float = 0.25, min_reps: int = 3) -> tuple[float, float]:
    """Median wall seconds of a call, and mean CPU seconds (all threads) of a call."""
    fn()
    walls: list[float] = []
    cpu0, start = time.process_time(), time.perf_counter()
    while len(walls) < min_reps or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls), (time.process_time() - cpu0) / len(walls)


def _tile(frame: Any, n: int) -> Any:
    import pandas as pd

    copies = -(-n // len(frame))
    return pd.concat([frame] * copies, ignore_index=True).head(n)


def _bundle(registry: Any, ref: str, frame: Any, int8: bool, notes: list[str]) -> BundleProfile | None:
    from modelport.advisor.probe import EDGE_SCRIPT
    from modelport.edge.export import export_bundle

    with tempfile.TemporaryDirectory(prefix="modelport-advise-") as tmp:
        try:
            fp32 = export_bundle(registry, ref, Path(tmp) / "fp32")
        except ModelportError as exc:
            notes.append(f"edge bundle not exported: {exc.message}")
            return None
        bundle_bytes = sum(f.stat().st_size for f in fp32.path.rglob("*") if f.is_file())
        rss = None
        try:
            out = subprocess.run(
                [sys.executable, "-I", "-c", EDGE_SCRIPT, str(fp32.path)],
                input=frame.head(1).to_json(orient="records"),
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT_S,
                check=True,
            )
            rss = int(json.loads(out.stdout.strip().splitlines()[-1])["peak_rss"])
        except (subprocess.SubprocessError, OSError, ValueError, IndexError, KeyError) as exc:
            stderr = (getattr(exc, "stderr", "") or "").strip().splitlines()[-1:] or [type(exc).__name__]
            notes.append(f"edge bundle's memory not measured ({stderr[0]})")
        int8_bytes, int8_note = None, ""
        if int8:
            logging.disable(logging.WARNING)  # onnxruntime's quantizer logs advice on the root logger
            try:
                q = export_bundle(registry, ref, Path(tmp) / "int8", quantize="int8")
                if q.quantize != "int8":
                    int8_note = "; ".join(q.notes) or "not applied"
                elif q.model_bytes >= fp32.model_bytes:
                    int8_note = f"not smaller here ({q.model_bytes:,} vs {fp32.model_bytes:,} bytes)"
                else:
                    int8_bytes = q.model_bytes
            except ModelportError as exc:
                int8_note = exc.message
            finally:
                logging.disable(logging.NOTSET)
    return BundleProfile(
        model_bytes=fp32.model_bytes,
        bundle_bytes=bundle_bytes,
        int8_model_bytes=int8_bytes,
        int8_note=int8_note,
        runtime_rss_bytes=rss,
    )
