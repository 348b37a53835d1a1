"""Shared timing helpers for the benchmarks (run as scripts from this folder)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def compare(
    raw: Callable[[], Any],
    ours: Callable[[], Any],
    min_time: float = 2.0,
    min_reps: int = 20,
    alternate: bool = True,
) -> tuple[float, float]:
    """Median seconds per call of both.

    ``alternate`` interleaves the calls so machine noise hits both alike. Turn it off when one side
    leaves OpenMP threads spinning after each call (scikit-learn's HistGradientBoosting does): they
    would steal the other side's cores and charge it for them.
    """
    if alternate:
        a: list[float] = []
        b: list[float] = []
        for _ in range(5):
            raw()
            ours()
        start = time.perf_counter()
        while len(a) < min_reps or time.perf_counter() - start < min_time:
            for fn, out in ((raw, a), (ours, b)):
                t0 = time.perf_counter()
                fn()
                out.append(time.perf_counter() - t0)
        return statistics.median(a), statistics.median(b)
    return _median(raw, min_time / 2, min_reps), _median(ours, min_time / 2, min_reps)


def _median(fn: Callable[[], Any], min_time: float, min_reps: int) -> float:
    for _ in range(5):
        fn()
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < min_reps or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    time.sleep(0.3)  # let spinning worker threads go idle before the next measurement
    return statistics.median(samples)


def fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} µs"
    return f"{seconds * 1e3:8.2f} ms"
