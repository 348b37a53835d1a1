"""Per-column and dataset drift: pick a test per column as Evidently 0.7 does, run it, draw the chart.

Default test per column (Evidently 0.7, ``evidently/legacy/calculations/stattests/registry.py:
_get_default_stattest``), from the number of non-null, finite reference values and the number of
distinct values in reference and current together:

====================  ===========================================  ====================================
reference values      numeric column                               categorical column
====================  ===========================================  ====================================
<= 1000               > 5 distinct: ``ks`` (drift if p <= 0.05);   > 2 distinct: ``chisquare``;
                      3-5: ``chisquare``; <= 2: ``z`` (p < 0.05)   <= 2: ``z`` (p < 0.05)
> 1000                > 5 distinct: ``wasserstein`` (>= 0.1);      ``jensenshannon`` (>= 0.1)
                      <= 5: ``jensenshannon`` (>= 0.1)
====================  ===========================================  ====================================

``psi`` (>= 0.1) is available on request. Tests and thresholds can be set per column. The dataset
drifts when the share of drifted columns is >= ``drift_share`` (0.5), as in Evidently's
``get_drift_for_columns``. Nulls (and +-inf in numeric columns) are dropped and counted; an empty
column is reported with a note, not tested. The statistics are in ``modelport.monitoring.stats``.

Each column is sorted (numeric) or hash-counted (categorical) once; the test, the distinct-value
count and the chart all come from that, so 1M rows x 20 columns take a few hundred ms and a few
column-sized arrays of memory at a time.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from modelport.monitoring import stats
from modelport.monitoring.results import DISTANCE_TESTS, P_VALUE_TESTS, ColumnDrift, Histogram
from modelport.monitoring.stats import CATEGORICAL, NUMERIC, FloatArray, IntArray

DATETIME = "datetime"
TESTS = P_VALUE_TESTS + DISTANCE_TESTS
NUMERIC_ONLY_TESTS = ("ks", "wasserstein")
DEFAULT_THRESHOLDS: dict[str, float] = {
    "ks": 0.05,
    "chisquare": 0.05,
    "z": 0.05,
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "psi": 0.1,
}
#: Evidently uses the tests for small samples up to this many reference values.
SMALL_REFERENCE = 1000
#: A numeric column with at most this many distinct values is tested like a categorical one.
FEW_VALUES = 5
HISTOGRAM_BINS = 20
TOP_CATEGORIES = 20
OTHER = "other"


# ---------------------------------------------------------------------------------- choosing


def kind_of(values: Any) -> str:
    """Returns "numeric" for numeric dtypes (bool excluded), "datetime" for datetimes and timedeltas,
    else "categorical" (strings, objects, categoricals, booleans)."""
    dtype = values.dtype if hasattr(values, "dtype") else np.asarray(values).dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return CATEGORICAL
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return DATETIME
    if pd.api.types.is_numeric_dtype(dtype):
        return NUMERIC
    return CATEGORICAL


def default_test(n_reference: int, n_unique: int, kind: str) -> str:
    """Evidently's default test for ``n_reference`` non-null reference values and ``n_unique``
    distinct values in reference and current together."""
    numeric_many = kind == NUMERIC and n_unique > FEW_VALUES
    if n_reference <= SMALL_REFERENCE:
        if numeric_many:
            return "ks"
        return "chisquare" if n_unique > 2 else "z"
    return "wasserstein" if numeric_many else "jensenshannon"


def choose_test(
    reference_values: Any, kind: str | None = None, current_values: Any = None
) -> tuple[str, float]:
    """(test name, default threshold) for a column. Evidently counts distinct values over reference
    and current together; pass ``current_values`` for that (without it, the reference alone)."""
    ref = _as_series(reference_values)
    cur = _as_series(current_values) if current_values is not None else ref.iloc[:0]
    kind = _resolve_kind(ref, cur, kind)
    prepared = _prepare(ref, cur, kind)
    test = default_test(prepared.n_ref, prepared.n_unique(), prepared.kind)
    return test, DEFAULT_THRESHOLDS[test]


def is_drift(test: str, statistic: float, threshold: float) -> bool:
    """p-value tests drift below the threshold (KS: at or below), distances at or above it."""
    if statistic is None or math.isnan(statistic):
        return False
    if test == "ks":
        return statistic <= threshold
    if test in P_VALUE_TESTS:
        return statistic < threshold
    return statistic >= threshold


# ------------------------------------------------------------------------------ preparation


@dataclass
class _Prepared:
    """One column, both samples, nulls dropped: sorted floats (numeric) or counts per value."""

    kind: str
    n_ref: int
    n_cur: int
    ref_null: int
    cur_null: int
    ref_sorted: FloatArray | None = None
    cur_sorted: FloatArray | None = None
    ref_std: float = 0.0
    integer: bool = False
    keys: npt.NDArray[Any] | None = None
    ref_counts: IntArray | None = None
    cur_counts: IntArray | None = None

    def n_unique(self, cap: int = FEW_VALUES) -> int:
        """Distinct values in both samples; exact up to ``cap``, else some number above it."""
        if self.keys is not None:
            return int(self.keys.size)
        assert self.ref_sorted is not None and self.cur_sorted is not None
        n_ref = stats.n_unique_sorted(self.ref_sorted)
        if n_ref > cap:
            return n_ref
        n_cur = stats.n_unique_sorted(self.cur_sorted)
        if n_cur > cap:
            return n_cur
        return int(np.union1d(self.ref_sorted, self.cur_sorted).size)

    def counts(self) -> tuple[npt.NDArray[Any], IntArray, IntArray]:
        """Counts per distinct value over the sorted union of values."""
        if self.keys is not None:
            assert self.ref_counts is not None and self.cur_counts is not None
            return self.keys, self.ref_counts, self.cur_counts
        assert self.ref_sorted is not None and self.cur_sorted is not None
        return stats.align_counts(*stats.runs(self.ref_sorted), *stats.runs(self.cur_sorted))


def _as_series(values: Any) -> pd.Series:
    if isinstance(values, pd.Series):
        return values
    if isinstance(values, pd.Index):
        return values.to_series(index=pd.RangeIndex(len(values)))
    arr = np.asarray(values)
    return pd.Series(arr.ravel() if arr.ndim > 1 else arr)


def _resolve_kind(ref: pd.Series, cur: pd.Series, kind: str | None) -> str:
    if kind is None:
        # An all-null reference (e.g. all None, dtype object) says nothing: ask the current column.
        kind = kind_of(cur) if ref.notna().sum() == 0 and len(cur) and cur.notna().any() else kind_of(ref)
        if kind == NUMERIC and pd.api.types.is_integer_dtype(ref.dtype) and _few_integers(ref, cur):
            kind = CATEGORICAL  # as Evidently 0.7 infers an integer column with <= 10 distinct values
    if kind not in (NUMERIC, CATEGORICAL, DATETIME):
        raise ValueError(f"Unknown column kind {kind!r}; use 'numeric' or 'categorical'.")
    return kind


INTEGER_CARDINALITY_LIMIT = 10  # Evidently 0.7's infer_column_type (core/datasets.py)


def _few_integers(ref: pd.Series, cur: pd.Series) -> bool:
    distinct = pd.concat([ref.dropna(), cur.dropna()], ignore_index=True).nunique()
    return bool(distinct <= INTEGER_CARDINALITY_LIMIT)


def _numeric_values(s: pd.Series, name: str) -> tuple[FloatArray, bool]:
    """Finite values as float64 and whether the column holds integers."""
    dtype = s.dtype
    integer = False
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        if isinstance(dtype, pd.DatetimeTZDtype):
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        target = "timedelta64[ns]" if pd.api.types.is_timedelta64_dtype(dtype) else "datetime64[ns]"
        raw = s.to_numpy(dtype=target)
        arr = raw.view(np.int64).astype(np.float64)
        arr[np.isnat(raw)] = np.nan
    elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        integer = pd.api.types.is_integer_dtype(dtype)
        arr = s.to_numpy(dtype=np.float64, na_value=np.nan)
    elif s.notna().sum() == 0:
        return np.empty(0, dtype=np.float64), False
    else:
        raise ValueError(f"Column {name!r} ({dtype}) is not numeric; test it as categorical.")
    finite = np.isfinite(arr)
    return (arr if finite.all() else arr[finite]), integer


def _category_counts(s: pd.Series) -> tuple[npt.NDArray[Any], IntArray]:
    """Distinct non-null values and their counts (hash-based, one pass)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = np.asarray(s.cat.codes, dtype=np.int64)
        counts = np.bincount(codes[codes >= 0], minlength=len(s.cat.categories))
        present = counts > 0
        return np.asarray(s.cat.categories, dtype=object)[present], counts[present].astype(np.int64)
    if s.dtype.kind == "f":
        s = s.where(np.isfinite(s.to_numpy(dtype=np.float64, na_value=np.nan)))
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques)).astype(np.int64)
    return np.asarray(uniques, dtype=object), counts


def _align(
    ref_keys: npt.NDArray[Any], ref_counts: IntArray, cur_keys: npt.NDArray[Any], cur_counts: IntArray
) -> tuple[npt.NDArray[Any], IntArray, IntArray]:
    index = pd.Index(pd.unique(np.concatenate([ref_keys, cur_keys])), dtype=object)
    rc = np.zeros(len(index), dtype=np.int64)
    cc = np.zeros(len(index), dtype=np.int64)
    rc[index.get_indexer(ref_keys)] = ref_counts
    cc[index.get_indexer(cur_keys)] = cur_counts
    keys = np.asarray(index, dtype=object)
    order = stats.sort_order(keys)
    return keys[order], rc[order], cc[order]


def _prepare(ref: pd.Series, cur: pd.Series, kind: str, name: str = "") -> _Prepared:
    if kind in (NUMERIC, DATETIME):
        r, integer = _numeric_values(ref, name)
        c, _ = _numeric_values(cur, name)
        ref_std = float(np.std(r)) if r.size else 0.0
        return _Prepared(
            kind=NUMERIC,
            n_ref=int(r.size),
            n_cur=int(c.size),
            ref_null=len(ref) - int(r.size),
            cur_null=len(cur) - int(c.size),
            ref_sorted=np.sort(r),
            cur_sorted=np.sort(c),
            ref_std=ref_std,
            integer=integer,
        )
    keys, rc, cc = _align(*_category_counts(ref), *_category_counts(cur))
    n_ref, n_cur = int(rc.sum()), int(cc.sum())
    return _Prepared(
        kind=CATEGORICAL,
        n_ref=n_ref,
        n_cur=n_cur,
        ref_null=len(ref) - n_ref,
        cur_null=len(cur) - n_cur,
        keys=keys,
        ref_counts=rc,
        cur_counts=cc,
    )


# ---------------------------------------------------------------------------------- running


def _run_test(test: str, p: _Prepared) -> float:
    """The drift score of ``test``: the p-value of ks/chisquare/z, else the distance."""
    if test == "ks":
        assert p.ref_sorted is not None and p.cur_sorted is not None
        return stats.ks_sorted(p.ref_sorted, p.cur_sorted)[1]
    if test == "wasserstein":
        assert p.ref_sorted is not None and p.cur_sorted is not None
        return stats.wasserstein_norm_sorted(p.ref_sorted, p.cur_sorted, p.ref_std)
    if test in ("chisquare", "z"):
        _, rc, cc = p.counts()
        return (stats.chisquare_counts if test == "chisquare" else stats.z_test_counts)(rc, cc)[1]
    # jensenshannon / psi on Evidently's binning
    if p.kind == NUMERIC:
        assert p.ref_sorted is not None and p.cur_sorted is not None
        rc, cc = stats.binned_counts_sorted(p.ref_sorted, p.cur_sorted, p.integer)
    else:
        _, rc, cc = p.counts()
    if test == "jensenshannon":
        return stats.jensenshannon_shares(*stats.shares_of(rc, cc, fill_zeros=False))
    return stats.psi_shares(*stats.shares_of(rc, cc, fill_zeros=True))


def _quantile_sorted(sorted_values: FloatArray, q: float) -> float:
    """numpy's default (linear) quantile of a sorted array."""
    pos = q * (sorted_values.size - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, sorted_values.size - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def _shares(counts: IntArray, n: int) -> list[float]:
    return (counts / n).tolist() if n else [0.0] * int(counts.size)


def _numeric_histogram(p: _Prepared) -> Histogram | None:
    """20 shared bins over the combined 0.5-99.5 percentile range (outliers go to the end bins)."""
    assert p.ref_sorted is not None and p.cur_sorted is not None
    sides = [s for s in (p.ref_sorted, p.cur_sorted) if s.size]
    if not sides:
        return None
    lo = min(_quantile_sorted(s, 0.005) for s in sides)
    hi = max(_quantile_sorted(s, 0.995) for s in sides)
    if not lo < hi:
        lo = min(float(s[0]) for s in sides)
        hi = max(float(s[-1]) for s in sides)
    if not lo < hi:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, HISTOGRAM_BINS + 1)
    return Histogram(
        reference=_shares(stats.counts_in_bins_sorted(p.ref_sorted, edges), p.n_ref),
        current=_shares(stats.counts_in_bins_sorted(p.cur_sorted, edges), p.n_cur),
        edges=edges.tolist(),
    )


def _categorical_histogram(p: _Prepared) -> Histogram | None:
    """The most frequent values (by reference share + current share), the rest as "other"."""
    keys, rc, cc = p.counts()
    if keys.size == 0:
        return None
    ref_share = rc / p.n_ref if p.n_ref else np.zeros(keys.size)
    cur_share = cc / p.n_cur if p.n_cur else np.zeros(keys.size)
    order = np.argsort(-(ref_share + cur_share), kind="stable")
    top, rest = order[:TOP_CATEGORIES], order[TOP_CATEGORIES:]
    categories = [_label(k) for k in keys[top]]
    reference = ref_share[top].tolist()
    current = cur_share[top].tolist()
    if rest.size:
        categories.append(OTHER)
        reference.append(float(ref_share[rest].sum()))
        current.append(float(cur_share[rest].sum()))
    return Histogram(reference=reference, current=current, categories=categories)


def _label(key: Any) -> str:
    if isinstance(key, float | np.floating) and float(key).is_integer():
        return str(int(key))
    return str(key.item() if isinstance(key, np.generic) else key)


def _empty_note(p: _Prepared) -> str:
    if p.n_ref == 0 and p.n_cur == 0:
        return "reference and current columns are empty"
    if p.n_ref == 0:
        return "reference column is empty"
    return "current column is empty"


def column_drift(
    name: Any,
    reference: Any,
    current: Any,
    kind: str | None = None,
    test: str | None = None,
    threshold: float | None = None,
) -> ColumnDrift:
    """Drift of one column (or of the model's predictions) between reference and current values.

    ``kind`` ("numeric" or "categorical") defaults to the dtype's (``kind_of``; datetimes are
    compared as numbers). ``test`` / ``threshold`` override Evidently's defaults (see the module
    docstring). Nulls and +-inf are dropped; ``reference_count`` / ``current_count`` are the values
    compared. An empty side gives ``statistic`` NaN, ``drifted`` False and a ``note``.
    """
    ref = _as_series(reference)
    cur = _as_series(current)
    kind = _resolve_kind(ref, cur, kind)
    if test is not None:
        if test not in TESTS:
            raise ValueError(
                f"Unknown drift test {test!r} for column {name!r}; use one of {', '.join(TESTS)}."
            )
        if test in NUMERIC_ONLY_TESTS and kind == CATEGORICAL:
            raise ValueError(f"Test {test!r} needs a numeric column; {name!r} is categorical.")
    p = _prepare(ref, cur, kind, str(name))
    chosen = test or default_test(p.n_ref, p.n_unique(), p.kind)
    thr = float(DEFAULT_THRESHOLDS[chosen] if threshold is None else threshold)
    histogram = _numeric_histogram(p) if p.kind == NUMERIC else _categorical_histogram(p)
    if p.n_ref == 0 or p.n_cur == 0:
        return ColumnDrift(
            column=str(name),
            kind=p.kind,
            test=chosen,
            statistic=float("nan"),
            threshold=thr,
            drifted=False,
            reference_count=p.n_ref,
            current_count=p.n_cur,
            histogram=histogram,
            note=_empty_note(p),
        )
    statistic = float(_run_test(chosen, p))
    return ColumnDrift(
        column=str(name),
        kind=p.kind,
        test=chosen,
        statistic=statistic,
        threshold=thr,
        drifted=is_drift(chosen, statistic, thr),
        reference_count=p.n_ref,
        current_count=p.n_cur,
        histogram=histogram,
    )


def dataset_drift(
    reference_df: pd.DataFrame,
    current_df: pd.DataFrame,
    columns: list[Any] | None = None,
    tests: dict[str, str] | None = None,
    thresholds: dict[str, float] | None = None,
    drift_share: float = 0.5,
    kinds: dict[str, str] | None = None,
    workers: int | None = None,
) -> tuple[list[ColumnDrift], float, bool]:
    """Drift of every column: (per-column results, share of drifted columns, dataset drift).

    ``columns`` defaults to the columns of the reference that the current frame also has, datetime
    columns excluded (time always moves on). ``tests`` / ``thresholds`` / ``kinds`` override per
    column. The share counts the columns that could be tested (empty ones and ones missing from a
    frame are reported with a note but not counted); the dataset drifts when it is >= ``drift_share``.
    Columns run on ``workers`` threads (default: up to 4; numpy's sorts release the GIL), so memory
    stays at a few column-sized arrays per worker.
    """
    tests = tests or {}
    thresholds = thresholds or {}
    kinds = kinds or {}
    if columns is None:
        columns = [
            c
            for c in reference_df.columns
            if c in current_df.columns and kind_of(reference_df[c]) != DATETIME
        ]

    def one(col: Any) -> ColumnDrift:
        missing = [
            side for side, df in (("reference", reference_df), ("current", current_df)) if col not in df
        ]
        if missing:
            present = reference_df if col in reference_df else current_df if col in current_df else None
            kind = kinds.get(col) or (kind_of(present[col]) if present is not None else CATEGORICAL)
            return ColumnDrift(
                column=str(col),
                kind=NUMERIC if kind == DATETIME else kind,
                test=tests.get(col, ""),
                statistic=float("nan"),
                threshold=float(thresholds.get(col, float("nan"))),
                drifted=False,
                reference_count=0,
                current_count=0,
                note=f"column missing from {' and '.join(missing)} data",
            )
        return column_drift(
            col,
            reference_df[col],
            current_df[col],
            kind=kinds.get(col),
            test=tests.get(col),
            threshold=thresholds.get(col),
        )

    n_workers = min(workers or min(4, os.cpu_count() or 1), max(len(columns), 1))
    if n_workers <= 1:
        results = [one(col) for col in columns]
    else:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            results = list(pool.map(one, columns))
    tested = [r for r in results if not math.isnan(r.statistic)]
    share = sum(r.drifted for r in tested) / len(tested) if tested else 0.0
    return results, share, bool(tested) and share >= drift_share
