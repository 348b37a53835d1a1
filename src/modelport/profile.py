"""Per-column summary statistics of a data frame: the reference profile monitoring compares with.

>>> import pandas as pd
>>> p = profile_frame(pd.DataFrame({"x": [1.0, 2.0, None]}))
>>> p["columns"]["x"]["null_share"]
0.3333333333333333
"""

from __future__ import annotations

from typing import Any

import numpy as np

TOP_CATEGORIES = 50
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def profile_frame(df: Any) -> dict[str, Any]:
    """Row count and, per column, nulls, uniques and numeric or categorical statistics."""
    import pandas as pd

    cols: dict[str, Any] = {}
    for name in df.columns:
        s = df[name]
        n = len(s)
        nulls = int(s.isna().sum())
        stats: dict[str, Any] = {
            "count": n - nulls,
            "nulls": nulls,
            "null_share": nulls / n if n else 0.0,
        }
        non_null = s.dropna()
        stats["unique"] = int(non_null.nunique())
        is_numeric = pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)
        if is_numeric and not isinstance(s.dtype, pd.CategoricalDtype):
            stats["kind"] = "numeric"
            values = non_null.to_numpy(dtype=np.float64)
            if values.size:
                qs = np.quantile(values, QUANTILES)
                stats.update(
                    mean=float(values.mean()),
                    std=float(values.std(ddof=1)) if values.size > 1 else 0.0,
                    min=float(values.min()),
                    max=float(values.max()),
                    quantiles={
                        f"p{round(q * 100):02d}": float(v) for q, v in zip(QUANTILES, qs, strict=True)
                    },
                )
        else:
            stats["kind"] = "categorical"
            counts = non_null.astype(str).value_counts()
            top = counts.head(TOP_CATEGORIES)
            stats["top"] = {str(k): int(v) for k, v in top.items()}
            stats["other"] = int(counts.iloc[TOP_CATEGORIES:].sum())
        cols[str(name)] = stats
    return {"rows": len(df), "columns": cols}


def fingerprint_frame(df: Any) -> str:
    """A sha256 of the frame's content and column names (order-sensitive), for lineage."""
    import hashlib

    import pandas as pd

    h = hashlib.sha256()
    h.update("\x1f".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()
