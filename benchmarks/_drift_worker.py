"""One side of bench_drift.py, run in its own process (and virtual environment): read the reference
and current Parquet files, compute the drift of every column ``--repeats`` times, print one JSON line.

``modelport``: ``modelport.monitoring.drift.dataset_drift(reference, current)`` with its defaults.
``evidently``: ``Report([DataDriftPreset()]).run(current, reference)`` with a ``DataDefinition``
naming the numeric and categorical columns as modelport sees them (``--kinds``); with ``--auto``,
Evidently infers the column types itself. Only the Python standard library is imported before the
side's own packages, so the same file runs in benchmarks/.venv-evidently and in the project's venv.

Timed (after an untimed warm-up on 2,000 rows): from the two frames in memory to per-column
(test, statistic, threshold) in Python objects; reading the files is timed separately.
Peak memory: the process's VmHWM (peak resident set).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any


def _vm_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _modelport(ref: Any, cur: Any, kinds: dict[str, str], auto: bool) -> tuple[list[dict[str, Any]], float]:
    from modelport.monitoring.drift import dataset_drift

    results, share, _drift = dataset_drift(ref, cur)
    cols = [
        {
            "column": r.column,
            "test": r.test,
            "statistic": r.statistic,
            "threshold": r.threshold,
            "drifted": r.drifted,
        }
        for r in results
    ]
    return cols, share


_EVIDENTLY_NAMES: dict[str, str] = {}


def _evidently(ref: Any, cur: Any, kinds: dict[str, str], auto: bool) -> tuple[list[dict[str, Any]], float]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    if not _EVIDENTLY_NAMES:  # display name ("K-S p_value") -> registered name ("ks")
        from evidently.legacy.calculations.stattests.registry import _registered_stat_tests

        for name, by_type in _registered_stat_tests.items():
            for st in by_type.values():
                _EVIDENTLY_NAMES[st.display_name] = name
    if auto:
        definition = DataDefinition()
    else:
        definition = DataDefinition(
            numerical_columns=[c for c, k in kinds.items() if k == "numeric"],
            categorical_columns=[c for c, k in kinds.items() if k == "categorical"],
        )
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(cur, data_definition=definition),
        reference_data=Dataset.from_pandas(ref, data_definition=definition),
    )
    cols: list[dict[str, Any]] = []
    share = float("nan")
    for m in snapshot.dict()["metrics"]:
        cfg = m["config"]
        kind = cfg["type"].rsplit(":", 1)[-1]
        if kind == "DriftedColumnsCount":
            share = float(m["value"]["share"])
        elif kind == "ValueDrift":
            test = _EVIDENTLY_NAMES.get(cfg["method"], cfg["method"])
            stat = float(m["value"])
            thr = float(cfg["threshold"])
            # Evidently's rules: ks drifts at p <= threshold, chisquare / z below it, distances at/above
            if test == "ks":
                drifted = stat <= thr
            elif test in ("chisquare", "z"):
                drifted = stat < thr
            else:
                drifted = stat >= thr
            cols.append(dict(column=cfg["column"], test=test, statistic=stat, threshold=thr, drifted=drifted))
    return cols, share


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("system", choices=("modelport", "evidently"))
    ap.add_argument("reference")
    ap.add_argument("current")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--kinds", default="{}", help="JSON {column: numeric|categorical}")
    ap.add_argument("--auto", action="store_true", help="Evidently infers the column types")
    args = ap.parse_args()
    kinds = json.loads(args.kinds)

    import pandas as pd

    if args.system == "evidently":
        import evidently

        version = evidently.__version__
    else:
        import modelport

        version = modelport.__version__
    rss_imports = _vm_kib("VmRSS")
    t0 = time.perf_counter()
    ref = pd.read_parquet(args.reference)
    cur = pd.read_parquet(args.current)
    read_s = time.perf_counter() - t0
    rss_read = _vm_kib("VmRSS")
    fn = _evidently if args.system == "evidently" else _modelport
    fn(ref.head(2000), cur.head(2000), kinds, args.auto)  # warm-up: lazy imports, caches (not timed)
    times: list[float] = []
    for _ in range(max(1, args.repeats)):
        t0 = time.perf_counter()
        cols, share = fn(ref, cur, kinds, args.auto)
        times.append(time.perf_counter() - t0)
    out = {
        "system": args.system,
        "version": version,
        "pandas": pd.__version__,
        "reference_rows": len(ref),
        "current_rows": len(cur),
        "read_s": read_s,
        "times_s": times,
        "median_s": statistics.median(times),
        "rss_after_imports_mb": rss_imports / 1024,
        "rss_after_read_mb": rss_read / 1024,
        "peak_rss_mb": _vm_kib("VmHWM") / 1024,
        "share": share,
        "columns": cols,
    }
    print("DRIFTJSON " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
