"""Shared timing helpers for the benchmarks (run as scripts from this folder)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def compare(
    raw: Callable[[], Any], ours: Callable[[], Any], min_time: float = 2.0, min_reps: int = 20
) -> tuple[float, float]:
    """Median seconds per call of both, measured in alternation so machine noise hits both."""
    for _ in range(5):
        raw()
        ours()
    a: list[float] = []
    b: list[float] = []
    start = time.perf_counter()
    while len(a) < min_reps or time.perf_counter() - start < min_time:
        for fn, out in ((raw, a), (ours, b)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return statistics.median(a), statistics.median(b)


def fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} µs"
    return f"{seconds * 1e3:8.2f} ms"
