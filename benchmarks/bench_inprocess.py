"""In-process prediction overhead: ``mp.load(ref).predict`` versus calling the raw model directly.

Run with ``make bench``. Both sides get the same input object; the ratio is modelport's time over
the raw model's (1.00 = no overhead). Medians of many repetitions after a warm-up.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from _timing import compare, fmt


def main() -> None:
    os.environ["MODELPORT_HOME"] = tempfile.mkdtemp(prefix="mp-bench-")
    from sklearn.ensemble import HistGradientBoostingClassifier

    import modelport as mp
    from modelport_examples.credit import generate_applications, train_credit_model

    rows: list[tuple[str, str, float, float]] = []

    # 1. The demo's credit pipeline (ColumnTransformer + HistGradientBoosting) on DataFrames.
    df = generate_applications(20_000, seed=1)
    model, _auc, features = _train_credit(train_credit_model, df)
    X = df[features]
    mp.register(model, "credit", sample=X, alias="production")
    p = mp.load("credit@production", runtime="native")
    one, many = X.head(1), X.head(10_000)
    one_records = one.to_dict("records")
    rows.append(
        (
            "credit pipeline",
            "1 row DataFrame",
            *compare(lambda: model.predict_proba(one), lambda: p.predict_proba(one)),
        )
    )
    rows.append(
        (
            "credit pipeline",
            "1 row dict (JSON-like)",
            *compare(
                lambda: model.predict_proba(pd.DataFrame(one_records)), lambda: p.predict_proba(one_records)
            ),
        )
    )
    rows.append(
        (
            "credit pipeline",
            "10k rows DataFrame",
            *compare(lambda: model.predict_proba(many), lambda: p.predict_proba(many), 2.0, 5),
        )
    )

    # 2. A numeric model on numpy arrays (HistGradientBoosting, 100 trees, 20 features).
    rng = np.random.default_rng(0)
    Xn = rng.normal(size=(20_000, 20))
    yn = (Xn[:, :3].sum(axis=1) + rng.normal(size=20_000) > 0).astype(int)
    hgb = HistGradientBoostingClassifier(max_iter=100).fit(Xn, yn)
    mp.register(hgb, "hgb", sample=Xn)
    ph = mp.load("hgb", runtime="native")
    n1, n10k = Xn[:1], Xn[:10_000]
    rows.append(
        (
            "hgb numpy 20 feats",
            "1 row ndarray",
            *compare(lambda: hgb.predict_proba(n1), lambda: ph.predict_proba(n1)),
        )
    )
    rows.append(
        (
            "hgb numpy 20 feats",
            "10k rows ndarray",
            *compare(lambda: hgb.predict_proba(n10k), lambda: ph.predict_proba(n10k), 2.0, 5),
        )
    )

    print(f"modelport {mp.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(
        f"{'model':<20} {'input':<24} {'raw model':>12} {'mp.load().predict':>18} "
        f"{'ratio':>7} {'overhead':>12}"
    )
    for name, what, raw, ours in rows:
        print(f"{name:<20} {what:<24} {fmt(raw):>12} {fmt(ours):>18} {ours / raw:7.2f} {fmt(ours - raw):>12}")


def _train_credit(train: Callable[..., Any], df: pd.DataFrame) -> tuple[Any, float, list[str]]:
    result = train(df)
    model, auc = result[0], result[1]
    features = list(model.feature_names_in_)
    return model, auc, features


if __name__ == "__main__":
    main()
