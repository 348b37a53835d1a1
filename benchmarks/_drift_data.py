"""Reference and current frames for bench_drift.py: 20 columns (13 float, 3 int, 4 string), drift
injected in some, written to Parquet once per size and generator version (numpy only, seeded).

Columns and what changes from reference to current:

- ``f00`` normal, mean +0.25 sd (drift)            - ``f07`` gamma(2), unchanged
- ``f01`` log-normal, sigma 0.5 -> 0.65 (drift)    - ``f08`` beta(2, 5), unchanged
- ``f02`` normal, mean +0.02 sd (tiny)             - ``f09`` Student t(5), unchanged
- ``f03`` uniform, unchanged                       - ``f10`` normal x 1000, unchanged
- ``f04`` exponential, scale x 1.3 (drift)         - ``f11`` normal mixture, weights 0.3 -> 0.45
- ``f05`` normal, 2 % NaN, unchanged               - ``f12`` normal rounded to 0.1 (ties), unchanged
- ``f06`` normal, 0.1 % +inf, unchanged
- ``i00`` age 18-90 (int), +3 years (drift)        - ``i01`` 0-7 (int, 8 values), shares shift
- ``i02`` 0/1 flag (int), 0.30 -> 0.35
- ``c00`` 10 categories, shares shift (drift)      - ``c01`` 20 categories, 1 % null, unchanged
- ``c02`` 40 categories, one new in current        - ``c03`` 15 categories, unchanged
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

VERSION = 1
N_SMALL_REFERENCE = 1_000


def _categories(prefix: str, k: int) -> np.ndarray:
    return np.array([f"{prefix}_{i:02d}" for i in range(k)], dtype=object)


def _zipf_shares(k: int, a: float) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1) ** a
    return w / w.sum()


def make_frame(n: int, current: bool, seed: int) -> pd.DataFrame:
    """One frame of ``n`` rows; ``current`` applies the drift."""
    rng = np.random.default_rng(seed)
    d = 1.0 if current else 0.0
    cols: dict[str, np.ndarray] = {}
    cols["f00"] = rng.normal(0.25 * d, 1.0, n)
    cols["f01"] = rng.lognormal(0.0, 0.5 + 0.15 * d, n)
    cols["f02"] = rng.normal(0.02 * d, 1.0, n)
    cols["f03"] = rng.uniform(-3.0, 3.0, n)
    cols["f04"] = rng.exponential(1.0 + 0.3 * d, n)
    f05 = rng.normal(5.0, 2.0, n)
    f05[rng.random(n) < 0.02] = np.nan
    cols["f05"] = f05
    f06 = rng.normal(0.0, 1.0, n)
    f06[rng.random(n) < 0.001] = np.inf
    cols["f06"] = f06
    cols["f07"] = rng.gamma(2.0, 1.0, n)
    cols["f08"] = rng.beta(2.0, 5.0, n)
    cols["f09"] = rng.standard_t(5, n)
    cols["f10"] = rng.normal(0.0, 1000.0, n)
    mix = rng.random(n) < (0.45 if current else 0.3)
    cols["f11"] = np.where(mix, rng.normal(4.0, 1.0, n), rng.normal(0.0, 1.0, n))
    cols["f12"] = np.round(rng.normal(0.0, 1.0, n), 1)
    cols["i00"] = np.clip(np.round(rng.normal(45 + 3 * d, 12, n)), 18, 90).astype(np.int64)
    shares = _zipf_shares(8, 1.0 - 0.2 * d)
    cols["i01"] = rng.choice(8, size=n, p=shares).astype(np.int64)
    cols["i02"] = (rng.random(n) < 0.30 + 0.05 * d).astype(np.int64)
    c00 = _zipf_shares(10, 1.2)
    if current:
        c00 = c00[::-1].copy() * 0.5 + c00 * 0.5
    cols["c00"] = rng.choice(_categories("a", 10), size=n, p=c00)
    c01 = rng.choice(_categories("b", 20), size=n, p=_zipf_shares(20, 0.8))
    c01[rng.random(n) < 0.01] = None
    cols["c01"] = c01
    k02 = 40 if current else 39  # category c_39 only appears in the current data
    cols["c02"] = rng.choice(_categories("c", k02), size=n, p=_zipf_shares(k02, 0.5))
    cols["c03"] = rng.choice(_categories("d", 15), size=n, p=_zipf_shares(15, 1.0))
    return pd.DataFrame(cols)


def data_dir() -> Path:
    key = hashlib.sha256(f"{VERSION}:{Path(__file__).read_bytes().hex()}".encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"modelport-bench-drift-{key}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def parquet(n: int, current: bool) -> Path:
    """Path of the Parquet file with ``n`` rows (written on first use)."""
    side = "current" if current else "reference"
    path = data_dir() / f"{side}-{n}.parquet"
    if not path.exists():
        seed = (2 if current else 1) * 1_000_003 + n
        tmp = path.with_suffix(".tmp")
        make_frame(n, current, seed).to_parquet(tmp, index=False)
        tmp.rename(path)
    return path


def column_kinds(path: Path) -> dict[str, str]:
    """Column -> "numeric" (int/float) or "categorical" (the rest): modelport's default kinds."""
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    out: dict[str, str] = {}
    for field in schema:
        t = str(field.type)
        out[field.name] = "numeric" if t.startswith(("int", "uint", "double", "float")) else "categorical"
    return out
