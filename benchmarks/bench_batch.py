"""Batch scoring, Parquet to Parquet: modelport's engine against hand-written peers and the compute limit.

Run with ``make bench`` (or ``cd benchmarks && ../.venv/bin/python bench_batch.py``). Sizes come from
``BENCH_BATCH_SIZES`` (default ``1000000,10000000``: ~10 minutes on 2 cores; ``1000000`` alone ~3);
the batch sizes tried for modelport's local engine from ``BENCH_BATCH_MP_SIZES`` (default
``16384,65536,262144``).

The input is the credit demo data (``modelport_examples.credit``) with a unique ``application_id``
key and an ``updated_at`` watermark, written file by file (1M rows per file, row groups of 64k)
so generating 10M rows stays memory-bounded. The same files serve every size (hard links) and sit
in the page cache for every contender alike.

Contenders (``_batch_contenders.py``), each in its OWN subprocess, whose peak RSS is its own
``ru_maxrss``; a sampler thread also sums the RSS of the child's whole process tree every 0.2 s
("tree", which matters for Ray, whose raylet and actor processes are the child's descendants; it
counts Ray's shared-memory object store once per process that maps it, so it over-counts):

(a) modelport: ``mp.batch.run(job.yaml)`` (parquet folder → parquet folder, watermark
    ``updated_at``, key ``application_id``), timed around the call: model load, scan, validation,
    scoring, staging, fsync, commit and publish; at several ``batch_size`` values and, for the
    smallest size, with ``engine: ray`` (``ray: {num_cpus: 2}``; Ray start-up included).
(b) pandas by hand: ``read_parquet`` + ``predict_proba`` + ``to_parquet`` on the whole frame
    (skipped where 1M's peak RSS scaled up would not fit comfortably in memory) and chunked
    (``ParquetFile.iter_batches`` → ``predict_proba`` → ``ParquetWriter``).
(c) Ray Data by hand: ``read_parquet().map_batches(actor, concurrency=1, num_cpus=1)
    .write_parquet()`` with ``ray.init(num_cpus=2)``; start-up is timed apart and excluded — and
    so it is for (a) with ``engine: ray``, whose Ray is started before its clock (its one actor
    on the two CPUs, as (c)'s).
(e) Spark, the peer most teams use: ``pyspark`` ``local[2]`` reading the same Parquet folder,
    ``mlflow.pyfunc.spark_udf`` (the model saved with ``mlflow.sklearn``, ``predict_proba``) and
    writing key, prediction and probabilities as Parquet (``_spark_peer.py``), in its own
    environment ``benchmarks/.venv-spark`` (``requirements-spark.txt``, built once by
    ``_peer_venv.py``) with the system's Java (``apt-get install -y default-jre-headless``); its
    session start-up is excluded. At the smallest size only (``BENCH_BATCH_SPARK_ALL=1``: every
    size); ``BENCH_SKIP_SPARK=1`` skips it.
(d) compute limit: ``predict_proba`` over in-memory pandas chunks of 65,536 rows (I/O excluded):
    scikit-learn itself, modelport's native and onnx Predictors (validation included) and raw
    onnxruntime on the twin's file, called one chunk at a time (onnxruntime's own threads) and on
    one thread per CPU, each with a single-threaded session (chunks side by side: the faster way
    to use 2 cores on a tree ensemble, and what modelport's local engine does); the best of them
    is (d). Measured once on up to 1M rows — throughput does not depend on the dataset size.
(i) for information, not part of (d): the local engine's own compute in memory — the same ONNX
    graph with its text part run once per distinct value of the dictionary-encoded text columns
    (``flavors.onnx_text.TextCodes``, which the engine uses), one thread per CPU — so that the goal line
    also shows what (a) loses to I/O and start-up against the compute it actually does.

``BENCH_BATCH_ONLY=ray,Spark`` runs only the contenders whose label holds one of the words
(while developing). Each contender runs ``BENCH_BATCH_REPEAT`` times (default 2 up to 1M rows,
else 1) and reports its fastest run, with its CPU seconds and the load average at its start: on a
shared 2-core machine other processes' load can only slow a run down, and CPU seconds show the
work done regardless.

Goals (the issue): modelport ≥ 0.9× (d) with I/O included, ≥ 1× the best of (b) and of (c),
≥ 2× (e) Spark, ``engine: ray`` ≥ 1× (c), and peak RSS flat from the smallest to the largest
size. The bench reports, it never fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _batch_contenders import CHUNK, MODEL
from _peer_venv import peer_venv

ROWS_PER_FILE = 1_000_000
HERE = Path(__file__).resolve().parent
CONTENDERS = HERE / "_batch_contenders.py"
SPARK_VENV, SPARK_REQS = HERE / ".venv-spark", HERE / "requirements-spark.txt"


def main() -> None:
    sizes = [int(s) for s in os.environ.get("BENCH_BATCH_SIZES", "1000000,10000000").split(",") if s]
    mp_sizes = [int(s) for s in os.environ.get("BENCH_BATCH_MP_SIZES", "16384,65536,262144").split(",") if s]
    if CHUNK not in mp_sizes:
        mp_sizes.append(CHUNK)
    sizes.sort()
    work = Path(tempfile.mkdtemp(prefix="mp-bench-batch-"))
    os.environ["MODELPORT_HOME"] = str(work / "home")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = time.perf_counter()
    try:
        ctx = _setup(work)
        spark_python, spark_note = _spark_env()
        _header(ctx)
        print(f"(e) Spark peer: {spark_note}")
        per_file = min(ROWS_PER_FILE, sizes[0])
        t = time.perf_counter()
        _child("generate", {**ctx, "files": -(-sizes[-1] // per_file), "per_file": per_file})
        print(f"generated {sizes[-1]:,} rows in {time.perf_counter() - t:.1f} s\n")
        rows: list[dict[str, Any]] = []
        load = os.getloadavg()[0]
        compute = _child("compute", {**ctx, "data": _dataset(work, min(sizes[0], 1_000_000), per_file)})
        for res in compute["variants"]:
            rows.append({**res, "rss": compute["rss"], "tree": compute["tree"], "load": load})
            _print_row(rows[-1])
        for i, n in enumerate(sizes):
            data = _dataset(work, n, per_file)
            common = {**ctx, "data": data, "rows": n}
            tried = mp_sizes if i == 0 else sorted({CHUNK, _best_batch(rows, sizes[0])})
            for bs in tried:
                rows.append(_run(work, "modelport", {**common, "batch_size": bs}, f"(a) modelport bs={bs}"))
            if i == 0:
                rows.append(
                    _run(
                        work,
                        "modelport",
                        {**common, "batch_size": CHUNK, "engine": "ray"},
                        f"(a) modelport ray bs={CHUNK}",
                    )
                )
            whole = next((r for r in rows if r["system"] == "(b) pandas whole"), None)
            est = whole["rss"] * n / whole["rows"] if whole else 0.0
            if whole is None or est < 0.5 * _mem_total_mb():
                rows.append(_run(work, "pandas_whole", common, "(b) pandas whole"))
            else:
                rows.append(
                    {
                        "system": "(b) pandas whole",
                        "rows": n,
                        "skipped": f"skipped: memory (≈{est / 1024:.1f} GiB by 1M's RSS)",
                    }
                )
                _print_row(rows[-1])
            rows.append(_run(work, "pandas_chunked", {**common, "batch_size": CHUNK}, "(b) pandas chunked"))
            rows.append(_run(work, "ray_data", {**common, "batch_size": CHUNK}, "(c) Ray Data"))
            if i == 0 or os.environ.get("BENCH_BATCH_SPARK_ALL"):
                if spark_python is None:
                    rows.append({"system": "(e) Spark", "rows": n, "skipped": spark_note})
                    _print_row(rows[-1])
                else:
                    rows.append(_run(work, "spark", {**common, "spark_python": spark_python}, "(e) Spark"))
        _goals(rows, sizes, compute)
        print(
            f"\ntotal bench time {time.perf_counter() - started:.0f} s; load average now "
            + ", ".join(f"{x:.1f}" for x in os.getloadavg())
        )
    finally:
        if not os.environ.get("BENCH_BATCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


def _spark_env() -> tuple[str | None, str]:
    """(the Spark venv's python, a note); None where it cannot run (no Java, install failed)."""
    if os.environ.get("BENCH_SKIP_SPARK") == "1":
        return None, "skipped (BENCH_SKIP_SPARK=1)"
    if shutil.which("java") is None:
        return None, "skipped: no Java runtime (apt-get install -y default-jre-headless)"
    bin_dir, note = peer_venv(SPARK_VENV, SPARK_REQS)
    if bin_dir is None:
        return None, f"skipped: {note}"
    return str(
        bin_dir / "python"
    ), f"{SPARK_VENV.name} ({SPARK_REQS.name}), local[2], mlflow.pyfunc.spark_udf"


def _setup(work: Path) -> dict[str, Any]:
    import joblib

    import modelport as mp
    from modelport_examples.credit import generate_applications, train_credit_model

    df = generate_applications(20_000, seed=1)
    model, _auc = train_credit_model(df)
    features = [str(c) for c in model.feature_names_in_]
    ref = mp.register(model, MODEL, sample=df[features], alias="production").ref
    report = mp.compile(ref)
    joblib.dump(model, work / "model.joblib")
    onnx = mp.load(ref, runtime="onnx") if report.passed else None
    onnx_file = getattr(onnx.raw, "_model_path", None) if onnx is not None else None
    return {
        "ref": ref,
        "model": str(work / "model.joblib"),
        "features": features,
        "onnx_file": onnx_file,
        "compile": report.summary(),
        "work": str(work),
    }


def _header(ctx: dict[str, Any]) -> None:
    import numpy
    import onnxruntime
    import pandas
    import pyarrow
    import ray
    import sklearn

    import modelport as mp

    print(
        f"modelport {mp.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"{_mem_total_mb() / 1024:.0f} GiB; scikit-learn {sklearn.__version__}, pandas {pandas.__version__}, "
        f"pyarrow {pyarrow.__version__}, numpy {numpy.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"ray {ray.__version__}"
    )
    print(
        f"model {ctx['ref']} (credit HistGradientBoosting pipeline, {len(ctx['features'])} features); "
        f"compile: {ctx['compile']}"
    )
    print(
        "each row: its own subprocess, fastest of BENCH_BATCH_REPEAT runs (default 2 to 1M rows, else 1);\n"
        "CPU s = user+sys of it and the descendants it reaped; RSS = its peak (VmHWM); "
        "tree = peak summed RSS of it and its descendants;\nload = 1-min load average at its start"
    )
    print(
        f"{'system':<28} {'rows':>11} {'seconds':>8} {'rows/s':>10} {'CPU s':>7} {'RSS MB':>8} "
        f"{'tree MB':>8} {'load':>5}  notes"
    )


def _dataset(work: Path, n: int, per_file: int) -> str:
    """A folder with the first ``n`` rows of the generated files (hard links, no copies)."""
    folder = work / f"data-{n}"
    if not folder.exists():
        folder.mkdir()
        for i in range(-(-n // per_file)):
            name = f"part-{i:04d}.parquet"
            os.link(work / "pool" / name, folder / name)
    return str(folder)


def _run(work: Path, kind: str, args: dict[str, Any], label: str) -> dict[str, Any]:
    """The fastest of ``BENCH_BATCH_REPEAT`` runs (other load on the machine only ever slows one)."""
    only = [w for w in os.environ.get("BENCH_BATCH_ONLY", "").split(",") if w]
    if only and not any(w in label for w in only):  # while developing: some contenders only
        return {"system": label, "rows": args["rows"], "skipped": "not in BENCH_BATCH_ONLY"}
    best: dict[str, Any] | None = None
    repeat = int(os.environ.get("BENCH_BATCH_REPEAT") or (2 if args["rows"] <= 1_000_000 else 1))
    for _ in range(repeat):
        run_args = {**args, "out": str(work / f"out-{kind}-{time.monotonic_ns()}")}
        load = os.getloadavg()[0]
        try:
            res = _child(kind, run_args)
        except RuntimeError as exc:
            best = best or {"system": label, "rows": args["rows"], "skipped": f"failed: {exc}"}
            continue
        finally:
            shutil.rmtree(run_args["out"], ignore_errors=True)
        if best is None or "skipped" in best or res["seconds"] < best["seconds"]:
            best = {"system": label, **res, "load": load}
    assert best is not None
    if "skipped" not in best and repeat > 1:
        best["notes"] = f"best of {repeat}; {best.get('notes', '')}"
    _print_row(best)
    return best


def _child(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(CONTENDERS), kind, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return dict(json.loads(line[7:]))
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
    sys.stderr.write(f"--- {kind} exited {proc.returncode}:\n" + "\n".join(tail) + "\n")
    raise RuntimeError(f"exit {proc.returncode}: {tail[-1] if tail else ''}"[:120])


def _print_row(r: dict[str, Any]) -> None:
    if "skipped" in r:
        dash = "-"
        print(
            f"{r['system']:<28} {r['rows']:>11,} {dash:>8} {dash:>10} {dash:>7} {dash:>8} {dash:>8} "
            f"{dash:>5}  {r['skipped']}",
            flush=True,
        )
        return
    rate = r["rows"] / r["seconds"]
    print(
        f"{r['system']:<28} {r['rows']:>11,} {r['seconds']:>8.2f} {rate:>10,.0f} {r.get('cpu', 0):>7.1f} "
        f"{r['rss']:>8,.0f} {r['tree']:>8,.0f} {r.get('load', 0):>5.1f}  {r.get('notes', '')}",
        flush=True,
    )


def _rate(r: dict[str, Any] | None) -> float:
    return 0.0 if r is None or "skipped" in r else r["rows"] / r["seconds"]


def _best_batch(rows: list[dict[str, Any]], n: int) -> int:
    mine = [
        r
        for r in rows
        if r["system"].startswith("(a) modelport bs=") and r["rows"] == n and "skipped" not in r
    ]
    return int(max(mine, key=_rate)["batch_size"]) if mine else CHUNK


def _goals(rows: list[dict[str, Any]], sizes: list[int], compute: dict[str, Any]) -> None:
    d = max((v for v in compute["variants"] if v["system"].startswith("(d)")), key=_rate)
    d_rate = _rate({**d, "rows": compute["rows"]})
    print(f"\ngoals (modelport local engine; (d) = {d['system']} {d_rate:,.0f} rows/s):")
    own = next((v for v in compute["variants"] if v["system"].startswith("(i)")), None)

    def verdict(ratio: float, goal: float) -> str:
        return "PASS" if ratio >= goal else "below goal"

    for n in sizes:
        at = [r for r in rows if r["rows"] == n and "skipped" not in r]
        c = next((r for r in at if r["system"].startswith("(c)")), None)
        ray = next((r for r in at if r["system"].startswith("(a) modelport ray")), None)
        if ray is not None and c is not None and _rate(c):
            ratio = _rate(ray) / _rate(c)
            print(
                f"  {n:>11,} rows, engine: ray vs (c) Ray Data {ratio:.2f}× [{verdict(ratio, 1.0)}: ≥ 1×] "
                "(both timed without Ray's start-up)"
            )
        mine = [r for r in at if r["system"].startswith("(a) modelport bs=")]
        if not mine:
            continue
        default = next((r for r in mine if r["batch_size"] == CHUNK), mine[0])
        best = max(mine, key=_rate)
        b = max((r for r in at if r["system"].startswith("(b)")), key=_rate, default=None)
        e = next((r for r in at if r["system"].startswith("(e)")), None)
        for tag, m in (("default", default), ("best", best)):
            if tag == "best" and m is default:
                continue
            line = [f"  {n:>11,} rows, bs={m['batch_size']:<7} ({tag})"]
            ratio = _rate(m) / d_rate
            line.append(f"vs (d) {ratio:.2f}× [{verdict(ratio, 0.9)}: ≥ 0.9×]")
            if own is not None:
                line.append(f"vs (i) {_rate(m) / _rate({**own, 'rows': compute['rows']}):.2f}× [info]")
            for name, peer, goal in (("(b)", b, 1.0), ("(c)", c, 1.0), ("(e) Spark", e, 2.0)):
                if peer is not None and _rate(peer):
                    ratio = _rate(m) / _rate(peer)
                    line.append(f"vs {name} {ratio:.2f}× [{verdict(ratio, goal)}: ≥ {goal:g}×]")
            print(", ".join(line))
    if len(sizes) > 1:
        for bs in sorted({r["batch_size"] for r in rows if r["system"].startswith("(a) modelport bs=")}):
            runs = {
                r["rows"]: r for r in rows if r["system"] == f"(a) modelport bs={bs}" and "skipped" not in r
            }
            lo, hi = runs.get(sizes[0]), runs.get(sizes[-1])
            if lo and hi:
                growth = hi["rss"] / lo["rss"]
                ok = "PASS" if growth <= 1.1 else "below goal"
                print(
                    f"  peak RSS bs={bs}: {lo['rss']:,.0f} MB at {sizes[0]:,} → {hi['rss']:,.0f} MB at "
                    f"{sizes[-1]:,} rows ({growth:.2f}×) [{ok}: flat within 10%]"
                )


def _mem_total_mb() -> float:
    import psutil

    return float(psutil.virtual_memory().total) / 2**20


if __name__ == "__main__":
    main()
