"""Measure what loading a model costs a fresh worker process; run as a subprocess.

``python -m modelport.advisor.probe REF RUNTIME [THREADS]`` prints one JSON line: ``load_seconds`` (the
registry load, framework import included: a cold worker's start), ``first_predict_seconds``,
``rss_before`` (the process with modelport and the store opened) and ``rss_after`` (after the load
and one prediction on a reference row). A subprocess, so that libraries this process imported
already are not taken for free.

``EDGE_SCRIPT`` does the same for an exported bundle with the bundle's own runtime on ``sys.path``
and pandas/pyarrow/polars hidden (what a device runs: Python, numpy, onnxruntime), reading the
rows as JSON on stdin, and prints the process's peak RSS.
"""

from __future__ import annotations

import json
import sys
import time


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def main(argv: list[str]) -> int:
    ref, runtime, *rest = argv
    threads = int(rest[0]) if rest else None
    from modelport.client import Client
    from modelport.config import Settings

    registry = Client(Settings.from_env()).registry
    mv = registry.get(ref)
    sample = registry.reference_sample(mv)
    row = sample.head(1) if sample is not None else None
    rss_before = _rss()
    t0 = time.perf_counter()
    predictor = registry.load(mv, runtime=runtime, threads=threads)
    t1 = time.perf_counter()
    if row is not None:
        predictor.predict(row)
    t2 = time.perf_counter()
    out = {
        "runtime": predictor.runtime,
        "load_seconds": t1 - t0,
        "first_predict_seconds": t2 - t1,
        "rss_before": rss_before,
        "rss_after": _rss(),
    }
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


EDGE_SCRIPT = """
import json, sys, time
for name in ("pandas", "pyarrow", "polars"):  # a device has numpy + onnxruntime (requirements.txt)
    sys.modules[name] = None
sys.path.insert(0, sys.argv[1] + "/runtime")
rows = json.loads(sys.stdin.read())
t0 = time.perf_counter()
from modelport.edge import load_bundle
model = load_bundle(sys.argv[1])
model.predict(rows)
t1 = time.perf_counter()
try:  # the peak of this process (ru_maxrss would carry the parent's from before exec)
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    import psutil
    peak = psutil.Process().memory_info().rss
print(json.dumps({"load_seconds": t1 - t0, "peak_rss": peak}))
"""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
