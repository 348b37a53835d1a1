"""Data drift, 20 columns: modelport's ``dataset_drift`` versus Evidently's ``DataDriftPreset`` on the
same Parquet files, with the same test per column; wall time, peak memory and the largest difference
of any statistic.

Run with ``make bench`` (or ``cd benchmarks && ../.venv/bin/python bench_drift.py``).
Environment: ``BENCH_DRIFT_SIZES`` (comma-separated row counts, default ``100000,1000000``; reference
= current = N, so Evidently picks Wasserstein / Jensen-Shannon), ``BENCH_DRIFT_REPEATS`` (timed runs
per side, default 3; Evidently gets one at 1M rows and above), ``BENCH_SKIP_EVIDENTLY=1``.
A third case, reference 1,000 rows against current 100k, makes Evidently pick KS / chi-square / Z.

Evidently runs from its own virtual environment, ``benchmarks/.venv-evidently`` (created on first
use from ``requirements-evidently.txt``, pandas < 3; a stamp keyed by that file's hash keeps later
runs from reinstalling), never from the project's. Each side is a separate process
(``_drift_worker.py``) that reads the files, warms up on 2,000 rows, then times the drift of all
columns; the peak resident set (VmHWM) of that process is reported, and the resident set after
reading the data for scale. Data: ``_drift_data.py`` (numpy, seeded; written once to a temporary
folder). Goals are reported as PASS / below goal; the benchmark never fails on them.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from _drift_data import N_SMALL_REFERENCE, column_kinds, parquet
from _peer_venv import peer_venv

HERE = Path(__file__).resolve().parent
EV_VENV = HERE / ".venv-evidently"
EV_REQS = HERE / "requirements-evidently.txt"
WORKER = HERE / "_drift_worker.py"
SIZES = [int(x) for x in os.environ.get("BENCH_DRIFT_SIZES", "100000,1000000").split(",") if x.strip()]
REPEATS = int(os.environ.get("BENCH_DRIFT_REPEATS", "3"))
GOAL = 5.0


def evidently_env() -> tuple[Path | None, str]:
    """benchmarks/.venv-evidently, created once per requirements-evidently.txt content; (python, note)."""
    if os.environ.get("BENCH_SKIP_EVIDENTLY") == "1":
        return None, "skipped (BENCH_SKIP_EVIDENTLY=1)"
    bin_dir, note = peer_venv(EV_VENV, EV_REQS)
    return (None, note) if bin_dir is None else (bin_dir / "python", note)


def run_side(
    python: Path, system: str, ref: Path, cur: Path, repeats: int, kinds: dict[str, str], auto: bool = False
) -> dict[str, Any]:
    cmd = [str(python), "-W", "ignore", str(WORKER), system, str(ref), str(cur), "--repeats", str(repeats)]
    cmd += ["--kinds", json.dumps(kinds)] + (["--auto"] if auto else [])
    env = {**os.environ, "PYTHONPATH": ""}
    proc = subprocess.run(cmd, cwd=HERE, env=env, capture_output=True, text=True, timeout=3600)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("DRIFTJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"{system} worker failed ({proc.returncode}): {proc.stderr[-1500:]}")
    return dict(json.loads(line[len("DRIFTJSON ") :]))


def compare(mp: dict[str, Any], ev: dict[str, Any]) -> dict[str, Any]:
    """Per column: same test?, |statistic difference|; the largest difference and where."""
    ours = {c["column"]: c for c in mp["columns"]}
    theirs = {c["column"]: c for c in ev["columns"]}
    test_mismatch: list[str] = []
    drift_mismatch: list[str] = []
    threshold_mismatch: list[str] = []
    worst = (0.0, "-", 0.0)  # (|diff|, column, relative diff)
    worst_rel = (0.0, "-")
    for col in sorted(set(ours) | set(theirs)):
        a, b = ours.get(col), theirs.get(col)
        if a is None or b is None:
            test_mismatch.append(f"{col}: only in {'evidently' if a is None else 'modelport'}")
            continue
        if a["test"] != b["test"]:
            test_mismatch.append(f"{col}: modelport {a['test']}, evidently {b['test']}")
            continue
        if a["threshold"] != b["threshold"]:
            threshold_mismatch.append(f"{col}: {a['threshold']} vs {b['threshold']}")
        if a["drifted"] != b["drifted"]:
            drift_mismatch.append(col)
        x, y = float(a["statistic"]), float(b["statistic"])
        if x == y or (math.isnan(x) and math.isnan(y)):
            continue
        diff = abs(x - y) if not (math.isnan(x) or math.isnan(y)) else math.inf
        rel = diff / max(abs(x), abs(y))
        if diff > worst[0]:
            worst = (diff, col, rel)
        if rel > worst_rel[0]:
            worst_rel = (rel, col)
    tests = Counter(c["test"] for c in mp["columns"])
    return {
        "test_mismatch": test_mismatch,
        "threshold_mismatch": threshold_mismatch,
        "drift_mismatch": drift_mismatch,
        "max_diff": worst[0],
        "max_diff_column": worst[1],
        "max_rel": worst_rel[0],
        "max_rel_column": worst_rel[1],
        "share_equal": mp["share"] == ev["share"],
        "tests": ", ".join(f"{k}×{v}" for k, v in sorted(tests.items())),
    }


HEADER = (
    f"{'case (reference × current)':<27} {'system':<10} {'seconds':>8} {'rows/s':>10} {'+read s':>8} "
    f"{'peak RSS MB':>11} {'(data MB)':>9} {'ratio':>7}  {'max |Δ statistic| (column)':<30}"
)


def row(case: str, r: dict[str, Any], ratio: str = "", diff: str = "") -> str:
    rows = r["reference_rows"] + r["current_rows"]
    t = r["median_s"]
    return (
        f"{case:<27} {r['system']:<10} {t:8.3f} {rows / t:10,.0f} {r['read_s'] + t:8.3f} "
        f"{r['peak_rss_mb']:11,.0f} {r['rss_after_read_mb']:9,.0f} {ratio:>7}  {diff:<30}"
    )


def main() -> None:
    mp_python = Path(sys.executable)
    ev_python, note = evidently_env()
    cases = [(n, n) for n in SIZES] + [(N_SMALL_REFERENCE, 100_000)]
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; 20 columns (13 float, 3 int, 4 string)")
    print("preparing data (Parquet, once)…", flush=True)
    files = {case: (parquet(case[0], False), parquet(case[1], True)) for case in cases}
    kinds = column_kinds(files[cases[0]][0])
    if ev_python is None:
        print(f"Evidently: {note}")
    print()
    print(HEADER)
    findings: list[str] = []
    versions: dict[str, str] = {}
    for n_ref, n_cur in cases:
        ref, cur = files[(n_ref, n_cur)]
        case = f"{n_ref:,} × {n_cur:,}"
        mp = run_side(mp_python, "modelport", ref, cur, REPEATS, kinds)
        versions["modelport"] = f"modelport {mp['version']} (pandas {mp['pandas']})"
        if ev_python is None:
            print(row(case, mp), flush=True)
            continue
        ev_repeats = 1 if max(n_ref, n_cur) >= 1_000_000 else REPEATS
        ev = run_side(ev_python, "evidently", ref, cur, ev_repeats, kinds)
        versions["evidently"] = f"Evidently {ev['version']} (pandas {ev['pandas']})"
        cmp = compare(mp, ev)
        ratio = ev["median_s"] / mp["median_s"]
        verdict = "PASS" if ratio >= GOAL else "below goal"
        diff = f"{cmp['max_diff']:.2e} ({cmp['max_diff_column']})"
        print(row(case, mp), flush=True)
        print(row(case, ev, f"{ratio:.1f}×", diff), flush=True)
        print(
            f"{'':<27} tests {cmp['tests']}; same test in every column: "
            f"{'yes' if not cmp['test_mismatch'] else 'NO'}; same drift verdicts: "
            f"{'yes' if not cmp['drift_mismatch'] else 'NO'}; drifted share equal: "
            f"{'yes' if cmp['share_equal'] else 'NO'} ({mp['share']:.2f}); largest relative Δ "
            f"{cmp['max_rel']:.1e} ({cmp['max_rel_column']}); goal ≥ {GOAL:.0f}×: {verdict}",
            flush=True,
        )
        for kind in ("test_mismatch", "threshold_mismatch", "drift_mismatch"):
            for item in cmp[kind]:
                findings.append(f"{case}: {kind.replace('_', ' ')}: {item}")
    if ev_python is not None:
        _auto_check(mp_python, ev_python, files, kinds, findings)
    print()
    print(" · ".join(versions.values()))
    print(
        "seconds: median drift computation of all 20 columns after an untimed warm-up (Evidently: "
        "one run at 1M rows); rows/s = (reference + current rows) / seconds; +read s adds reading both "
        "Parquet files; peak RSS: the worker process's VmHWM, data MB its RSS after reading; ratio: "
        "Evidently seconds / modelport seconds. Evidently: Report([DataDriftPreset()]) with a "
        "DataDefinition giving modelport's column kinds (int/float numeric, strings categorical)."
    )
    print()
    if findings:
        print("Mismatches:")
        for f in findings:
            print(f"  {f}")
    else:
        print("Mismatches: none")


def _auto_check(
    mp_python: Path,
    ev_python: Path,
    files: dict[tuple[int, int], tuple[Path, Path]],
    kinds: dict[str, str],
    findings: list[str],
) -> None:
    """Evidently with its own column-type inference (no DataDefinition): does it pick the same tests?"""
    print()
    print("Test choice with Evidently inferring column types itself (no DataDefinition):")
    for key in ((N_SMALL_REFERENCE, 100_000), (100_000, 100_000)):
        if key not in files:
            continue
        ref, cur = files[key]
        mp = run_side(mp_python, "modelport", ref, cur, 1, kinds)
        ev = run_side(ev_python, "evidently", ref, cur, 1, kinds, auto=True)
        cmp = compare(mp, ev)
        case = f"{key[0]:,} × {key[1]:,}"
        print(f"  {case}: " + ("same test in every column" if not cmp["test_mismatch"] else "DIFFERENT"))
        for item in cmp["test_mismatch"]:
            print(f"    {item}")
            findings.append(f"{case} (Evidently infers types): test mismatch: {item}")


if __name__ == "__main__":
    main()
