"""One-row predict on a 30-column numeric HistGradientBoosting classifier: scikit-learn versus
modelport's ONNX twin (built at registration), with a DataFrame, JSON records and numpy.

Run: ``.venv/bin/python benchmarks/bench_onerow_frame.py``. scikit-learn runs with one OpenMP
thread (on a busy machine its default team of every core is slower still); the goal of the
compiled runtime is >= 20x on the DataFrame row. Best of 7 blocks of calls, after a warm-up.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

GOAL = 20.0


def best_us(call: Callable[[], Any], n: int, reps: int = 7) -> float:
    for _ in range(max(20, n // 10)):
        call()
    blocks = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(n):
            call()
        blocks.append((time.perf_counter() - t0) / n)
    return min(blocks) * 1e6


def main() -> None:
    os.environ["MODELPORT_HOME"] = tempfile.mkdtemp(prefix="mp-bench-onerow-")
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    import modelport as mp

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(5000, 30)), columns=[f"f{i}" for i in range(30)])
    y = (X.iloc[:, :5].sum(axis=1) + rng.normal(size=5000) > 0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(X, y)
    mp.register(model, "hgb30", sample=X)
    p = mp.load("hgb30")
    assert p.runtime == "onnx", "the twin did not pass its gate"
    row = X.head(1)
    records = row.to_dict("records")
    with threadpool_limits(1, user_api="openmp"):
        native = best_us(lambda: model.predict_proba(row), 200)
    print(f"{'scikit-learn predict_proba(DataFrame row)':<44} {native:9.1f} us")
    for name, data in (("DataFrame row", row), ("JSON records", records), ("numpy row", row.to_numpy())):
        t = best_us(lambda data=data: p.predict_proba(data), 3000)
        verdict = "PASS" if name != "DataFrame row" or native / t >= GOAL else "below"
        label = f"modelport onnx predict_proba({name})"
        print(f"{label:<44} {t:9.1f} us  {native / t:5.1f}x  {verdict}")


if __name__ == "__main__":
    main()
