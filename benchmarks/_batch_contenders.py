"""The contenders of ``bench_batch.py``, each run in its own subprocess by it:
``python _batch_contenders.py KIND JSON_ARGS`` prints ``RESULT {json}`` as its last line."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROW_GROUP = 65_536  # rows per row group of the generated files
CHUNK = 65_536  # rows per chunk of the hand-written contenders and (d)
T0 = "2026-01-01T00:00:00+00:00"
MODEL = "credit"


class _TreeRss:
    """Samples the summed RSS of this process and all its descendants (Ray's raylet and actors)."""

    def __init__(self) -> None:
        import psutil

        self.peak = 0
        self._stop = threading.Event()
        self._me = psutil.Process()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            for p in [self._me, *self._me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(0.2)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 2**20


def child(kind: str, args: dict[str, Any]) -> None:
    _preimport()
    sampler = _TreeRss()
    cpu0 = _cpu_seconds()
    res: dict[str, Any] = {"rows": args.get("rows", 0)}
    res.update(globals()[f"_c_{kind}"](args))
    res.setdefault("cpu", _cpu_seconds() - cpu0)
    tree = sampler.stop()
    res["rss"] = _peak_rss_mb()
    res["tree"] = max(tree, res["rss"])
    print("RESULT " + json.dumps(res), flush=True)


def _cpu_seconds() -> float:
    """User + system CPU of this process and of the descendants it reaped (Ray's, after shutdown)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _peak_rss_mb() -> float:
    """This process's peak RSS: ``VmHWM``, which starts afresh at exec.

    (``ru_maxrss`` does not: Linux carries the forking parent's high-water mark across ``execve``,
    so every child would report at least the parent's RSS.)
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _preimport() -> None:
    """Import the libraries every contender uses before any clock starts: wall times are the work."""
    import importlib

    for name in (
        "joblib",
        "pyarrow.dataset",
        "pyarrow.parquet",
        "sklearn.compose",
        "sklearn.ensemble",
        "sklearn.impute",
        "sklearn.pipeline",
        "sklearn.preprocessing",
        "onnxruntime",
    ):
        importlib.import_module(name)


def _c_generate(args: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from modelport_examples.credit import generate_applications

    pool = Path(args["work"]) / "pool"
    pool.mkdir()
    per = args["per_file"]
    for i in range(args["files"]):
        df = generate_applications(per, seed=100 + i, with_label=False)
        first = i * per
        df["application_id"] = "APP-" + pd.Series(np.arange(first, first + per)).astype(str)
        df["updated_at"] = pd.Timestamp(T0) + pd.to_timedelta(np.arange(first, first + per), unit="s")
        table = pa.Table.from_pandas(df, preserve_index=False)
        del df
        pq.write_table(table, pool / f"part-{i:04d}.parquet", row_group_size=ROW_GROUP)
    return {}


def _c_modelport(args: dict[str, Any]) -> dict[str, Any]:
    import yaml

    import modelport as mp

    out = Path(args["out"])
    out.mkdir()
    spec: dict[str, Any] = {
        "name": f"bench-{out.name}",
        "model": f"{MODEL}@production",
        "source": {"kind": "parquet", "path": args["data"], "watermark": "updated_at"},
        "key": "application_id",
        "output": {"kind": "parquet", "path": str(out / "scores")},
        "batch_size": args["batch_size"],
    }
    ray_up = 0.0
    if args.get("engine") == "ray":
        spec["engine"] = "ray"
        spec["ray"] = {"num_cpus": 2}
        import ray

        # started before the clock, as (c) starts it: both are timed without Ray's start-up
        t = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
        ray_up = time.perf_counter() - t
    path = out / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    t = time.perf_counter()
    import modelport.batch  # inside the clock: the engine's own imports (SQLAlchemy...) count

    imported = time.perf_counter() - t
    result = mp.batch.run(path)
    seconds = time.perf_counter() - t
    s = result.stats
    assert result.state == "published" and result.rows_out == args["rows"], result.to_dict()
    excluded = ""
    if ray_up:
        import ray

        ray.shutdown()
        excluded = f"; excl. ray.init {ray_up:.1f} s"
    return {
        "seconds": seconds,
        "batch_size": args["batch_size"],
        "notes": f"runtime={s.get('runtime')} engine={args.get('engine', 'local')} "
        f"rejected={s.get('rows_rejected')}; incl. {imported:.2f} s importing modelport.batch{excluded}",
    }


def _load_model(args: dict[str, Any]) -> Any:
    import joblib

    return joblib.load(args["model"])


def _score_frame(model: Any, frame: Any, key: str = "application_id") -> Any:
    import numpy as np
    import pandas as pd

    proba = model.predict_proba(frame[list(model.feature_names_in_)])
    return pd.DataFrame(
        {
            key: frame[key].to_numpy(),
            "prediction": model.classes_[np.argmax(proba, axis=1)],
            "proba_0": proba[:, 0],
            "proba_1": proba[:, 1],
        }
    )


def _c_pandas_whole(args: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    t = time.perf_counter()
    model = _load_model(args)
    frame = pd.read_parquet(args["data"], columns=[*args["features"], "application_id"])
    out = _score_frame(model, frame)
    Path(args["out"]).mkdir()
    out.to_parquet(Path(args["out"]) / "scores.parquet", index=False)
    assert len(out) == args["rows"]
    return {"seconds": time.perf_counter() - t, "notes": "read_parquet + predict_proba + to_parquet"}


def _c_pandas_chunked(args: dict[str, Any]) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = time.perf_counter()
    model = _load_model(args)
    Path(args["out"]).mkdir()
    writer = None
    rows = 0
    for f in sorted(Path(args["data"]).glob("*.parquet")):
        for batch in pq.ParquetFile(f).iter_batches(
            args["batch_size"], columns=[*args["features"], "application_id"]
        ):
            table = pa.Table.from_pandas(_score_frame(model, batch.to_pandas()), preserve_index=False)
            writer = writer or pq.ParquetWriter(Path(args["out"]) / "scores.parquet", table.schema)
            writer.write_table(table)
            rows += table.num_rows
    if writer is not None:
        writer.close()
    assert rows == args["rows"]
    return {
        "seconds": time.perf_counter() - t,
        "notes": f"iter_batches({args['batch_size']}) + ParquetWriter",
    }


def _c_spark(args: dict[str, Any]) -> dict[str, Any]:
    """(e) Spark, in its own environment (``_spark_peer.py``); the JVM is this process's child, so
    its CPU and memory count here (CPU s, tree MB)."""
    import subprocess

    proc = subprocess.run(
        [args["spark_python"], str(Path(__file__).with_name("_spark_peer.py")), json.dumps(args)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYSPARK_PYTHON": args["spark_python"]},
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return dict(json.loads(line[7:]))
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
    sys.stderr.write("\n".join(tail) + "\n")
    raise SystemExit(f"spark peer exited {proc.returncode}")


class _RayPredictor:
    def __init__(self, model_path: str) -> None:
        import joblib

        self.model = joblib.load(model_path)

    def __call__(self, frame: Any) -> Any:
        return _score_frame(self.model, frame)


def _c_ray_data(args: dict[str, Any]) -> dict[str, Any]:
    import pyarrow.parquet as pq
    import ray

    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    init = time.perf_counter() - t
    t = time.perf_counter()
    ds = ray.data.read_parquet(args["data"], columns=[*args["features"], "application_id"])
    ds.map_batches(
        _RayPredictor,
        fn_constructor_kwargs={"model_path": args["model"]},
        batch_size=args["batch_size"],
        batch_format="pandas",
        concurrency=1,
        num_cpus=1,
    ).write_parquet(args["out"])
    seconds = time.perf_counter() - t
    t = time.perf_counter()
    ray.shutdown()
    down = time.perf_counter() - t
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in Path(args["out"]).glob("*.parquet"))
    assert rows == args["rows"], rows
    return {"seconds": seconds, "notes": f"excl. ray.init {init:.1f} s and shutdown {down:.1f} s"}


class _Parallel:
    """Chunks scored on a thread pool, one session per thread (``__call__`` alone: one chunk)."""

    def __init__(self, pool: Any, sessions: list[Any], fn: Any) -> None:
        self.pool, self.sessions, self.fn = pool, sessions, fn
        self._local = threading.local()
        self._taken = 0
        self._lock = threading.Lock()

    def _session(self) -> Any:
        if not hasattr(self._local, "session"):
            with self._lock:  # the pool's threads get one session each (the caller's is extra)
                self._local.session = self.sessions[self._taken % len(self.sessions)]
                self._taken += 1
        return self._local.session

    def __call__(self, frame: Any) -> Any:
        return self.fn(frame, self._session())

    def all(self, frames: list[Any]) -> None:
        list(self.pool.map(self, frames))


def _c_compute(args: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import onnxruntime as ort
    import pyarrow.parquet as pq

    import modelport as mp

    chunks = []
    for f in sorted(Path(args["data"]).glob("*.parquet")):
        for batch in pq.ParquetFile(f).iter_batches(CHUNK, columns=args["features"]):
            chunks.append(batch.to_pandas())
    rows = sum(len(c) for c in chunks)
    model = _load_model(args)
    variants: list[tuple[str, Any]] = [("(d) scikit-learn", model.predict_proba)]
    own_chunks: dict[str, list[Any]] = {}  # a variant's own chunks (else the DataFrames)
    variants.append(("(d) mp native Predictor", mp.load(args["ref"], runtime="native").predict_proba))
    if args.get("onnx_file"):
        variants.append(("(d) mp onnx Predictor", mp.load(args["ref"], runtime="onnx").predict_proba))
        sess = ort.InferenceSession(args["onnx_file"], providers=["CPUExecutionProvider"])
        types = {
            "tensor(float)": np.float32,
            "tensor(double)": np.float64,
            "tensor(int64)": np.int64,
            "tensor(string)": object,
        }
        inputs = [(i.name, types[i.type]) for i in sess.get_inputs()]
        proba_name = sess.get_outputs()[-1].name

        def raw(frame: Any, session: Any = sess) -> Any:
            feeds = {name: frame[name].to_numpy(dtype=dt).reshape(-1, 1) for name, dt in inputs}
            return session.run([proba_name], feeds)[0]

        variants.append(("(d) raw onnxruntime", raw))
        # The same calls on one thread per CPU, each with its own single-threaded session: chunks
        # side by side use 2 cores better than one call split over them (see batch/pipeline.py).
        cpus = len(os.sched_getaffinity(0))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sessions = [
            ort.InferenceSession(args["onnx_file"], opts, providers=["CPUExecutionProvider"])
            for _ in range(cpus)
        ]
        pool = ThreadPoolExecutor(cpus)
        variants.append((f"(d) raw onnxruntime {cpus}×1 thr", _Parallel(pool, sessions, raw)))
        cut = _text_cut(args)
        if cut is not None:
            variants.append((f"(i) mp text cut {cpus}×1 thr", _Parallel(pool, [cut[0]], cut[1])))
            own_chunks[variants[-1][0]] = cut[2]
    best = {label: float("inf") for label, _ in variants}
    cpu: dict[str, float] = {}
    for label, fn in variants:
        fn(own_chunks.get(label, chunks)[0])
    for _ in range(3):  # rounds over all variants, so that load from elsewhere hits them alike
        for label, fn in variants:
            mine = own_chunks.get(label, chunks)
            t, c0 = time.perf_counter(), time.process_time()
            if isinstance(fn, _Parallel):
                fn.all(mine)
            else:
                for c in mine:
                    fn(c)
            if time.perf_counter() - t < best[label]:
                best[label], cpu[label] = time.perf_counter() - t, time.process_time() - c0
            time.sleep(0.3)  # let OpenMP threads go idle before the next variant
    out = [
        {
            "system": label,
            "rows": rows,
            "seconds": sec,
            "cpu": cpu[label],
            "notes": f"chunks of {CHUNK}, best of 3",
        }
        for label, sec in best.items()
    ]
    return {"rows": rows, "variants": out}


def _text_cut(args: dict[str, Any]) -> tuple[Any, Any, list[Any]] | None:
    """For information, not part of (d): the local engine's own compute on the same rows in memory
    (the ONNX graph with its text part run once per distinct value, ``flavors.onnx_text.TextCodes``),
    fed as the engine feeds it (Arrow chunks, text dictionary-encoded); one thread per CPU."""
    import pyarrow.parquet as pq

    import modelport as mp
    from modelport.batch import model_input
    from modelport.flavors.onnx_text import text_codes

    predictor = mp.load(args["ref"], runtime="onnx", threads=1)  # one chunk per thread, as the engine
    cut = text_codes(predictor.loaded)
    if cut is None:
        return None
    text = [c.name for c in predictor.signature.columns or () if c.type in ("string", "category")]
    parts = []
    for f in sorted(Path(args["data"]).glob("*.parquet")):
        for batch in pq.ParquetFile(f, read_dictionary=text).iter_batches(CHUNK, columns=args["features"]):
            inp = model_input.check(batch, predictor.signature)
            assert inp is not None and inp.slow is None
            parts.append((inp.columns, inp.text, batch.num_rows))

    def score(part: Any, codes: Any) -> Any:
        proba = codes.predict_proba(*part)
        assert proba is not None, "the text cut did not apply"
        return proba

    return cut, score, parts


if __name__ == "__main__":
    child(sys.argv[1], json.loads(sys.argv[2]))
