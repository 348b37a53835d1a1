"""Drift statistics of two samples, computed with numpy/scipy and equal to scipy's reference functions.

Every test takes the *non-null* values of one column in the reference (training) sample and in the
current sample and returns what Evidently 0.7 (``evidently.legacy.calculations.stattests``) reports
for it, so that a drift report from modelport and one from Evidently agree number for number:

========================  ============================================================  ===============
name                      statistic (definition mirrored)                               drift when
========================  ============================================================  ===============
``ks``                    two-sample Kolmogorov-Smirnov p-value, as                     p <= threshold
                          ``scipy.stats.ks_2samp(ref, cur)`` (``ks_stattest.py``)
``chisquare``             chi-square p-value of the current counts against the          p < threshold
                          reference counts scaled to the current size,
                          ``scipy.stats.chisquare(f_obs=cur, f_exp=ref * n_cur / n_ref)``
                          over the union of values (``chisquare_stattest.py``)
``z``                     two-proportion Z-test, "the smallest value" vs "any other":   p < threshold
                          ``2 * (1 - Phi(|z|))``, pooled variance (``z_stattest.py``)
``wasserstein``           ``scipy.stats.wasserstein_distance(ref, cur)`` divided by     d >= threshold
                          ``max(np.std(ref), 0.001)`` (population std, ddof=0;
                          ``wasserstein_distance_norm.py``)
``jensenshannon``         ``scipy.spatial.distance.jensenshannon(p_ref, p_cur)``        d >= threshold
                          (natural log) of the binned shares, empty bins kept at 0
                          (``jensenshannon.py``)
``psi``                   ``sum((p_ref - p_cur) * ln(p_ref / p_cur))`` of the binned   d >= threshold
                          shares with empty bins filled (``psi.py``)
========================  ============================================================  ===============

Binning for ``jensenshannon`` and ``psi`` (Evidently's ``stattests/utils.py: get_binned_data``):
a numeric column whose reference has more than 20 distinct values is cut into
``np.histogram_bin_edges(concat(ref, cur), bins="sturges")`` bins; anything else (categorical, or
numeric with <= 20 distinct reference values) is counted per distinct value over the union of
values. Shares are counts over the sample size. For PSI an empty bin's share becomes
``min(non-zero share) / 1e6`` if that minimum is <= 1e-4, else ``1e-4`` (per sample).

Speed: numeric statistics work on sorted copies (one ``np.sort`` per sample, which numpy does with
SIMD); the KS statistic, the Wasserstein integral and all histograms then come from ``searchsorted``
on the sorted arrays, never from a per-row Python loop. The ``*_sorted`` / ``*_counts`` functions take
these prepared inputs so that ``modelport.monitoring.drift`` sorts or counts each column once.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import spatial, stats

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

NUMERIC = "numeric"
CATEGORICAL = "categorical"

#: scipy's ``ks_2samp(method="auto")`` is exact up to this sample size, asymptotic above.
KS_EXACT_MAX_N = 10_000
#: Evidently bins a numeric column (sturges) only when its reference has more distinct values.
BINNED_MIN_UNIQUE = 20
#: Evidently's floor for the reference std that normalises the Wasserstein distance.
WASSERSTEIN_MIN_STD = 0.001


# --------------------------------------------------------------------------------------- helpers


def as_float_array(values: Any) -> FloatArray:
    """Values as a 1-d float64 array (no copy when they already are one)."""
    return np.asarray(values, dtype=np.float64).ravel()


def runs(sorted_values: FloatArray) -> tuple[FloatArray, IntArray]:
    """Distinct values of a sorted array and how often each occurs (run-length encoding)."""
    n = sorted_values.size
    if n == 0:
        return np.empty(0, dtype=np.float64), np.empty(0, dtype=np.int64)
    change = np.empty(n, dtype=bool)
    change[0] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=change[1:])
    starts = np.flatnonzero(change)
    counts = np.diff(np.append(starts, n)).astype(np.int64)
    return sorted_values[starts], counts


def n_unique_sorted(sorted_values: FloatArray) -> int:
    """Number of distinct values of a sorted array."""
    if sorted_values.size == 0:
        return 0
    return int(np.count_nonzero(sorted_values[1:] != sorted_values[:-1])) + 1


def align_counts(
    ref_values: FloatArray, ref_counts: IntArray, cur_values: FloatArray, cur_counts: IntArray
) -> tuple[FloatArray, IntArray, IntArray]:
    """Counts of two samples over the sorted union of their distinct values (0 where absent)."""
    keys = np.union1d(ref_values, cur_values)
    ref = np.zeros(keys.size, dtype=np.int64)
    cur = np.zeros(keys.size, dtype=np.int64)
    ref[np.searchsorted(keys, ref_values)] = ref_counts
    cur[np.searchsorted(keys, cur_values)] = cur_counts
    return keys, ref, cur


def value_counts(ref: Any, cur: Any) -> tuple[npt.NDArray[Any], IntArray, IntArray]:
    """Distinct values over both samples and the count of each in ``ref`` and in ``cur``.

    Keys are sorted when they can be (numbers, strings, booleans), else in order of appearance.
    Hash-based (``pandas.factorize``) for non-numeric values, sort-based for numbers.
    """
    r = np.asarray(ref)
    c = np.asarray(cur)
    if r.dtype.kind in "fiub" and c.dtype.kind in "fiub":
        rs = np.sort(as_float_array(r))
        cs = np.sort(as_float_array(c))
        keys_f, rc, cc = align_counts(*runs(rs), *runs(cs))
        if r.dtype.kind == "b" and c.dtype.kind == "b":
            return keys_f.astype(bool), rc, cc
        return keys_f, rc, cc
    codes, uniques = pd.factorize(np.concatenate([r.astype(object), c.astype(object)]), sort=False)
    k = len(uniques)
    rc = np.bincount(codes[: r.size][codes[: r.size] >= 0], minlength=k).astype(np.int64)
    cc = np.bincount(codes[r.size :][codes[r.size :] >= 0], minlength=k).astype(np.int64)
    keys = np.asarray(uniques, dtype=object)
    order = sort_order(keys)
    return keys[order], rc[order], cc[order]


def sort_order(keys: npt.NDArray[Any]) -> IntArray:
    """Indices that sort ``keys`` (natural order if comparable, else by their text)."""
    try:
        return np.asarray(sorted(range(len(keys)), key=lambda i: keys[i]), dtype=np.int64)
    except TypeError:
        return np.asarray(sorted(range(len(keys)), key=lambda i: str(keys[i])), dtype=np.int64)


def sturges_edges(lo: float, hi: float, n: int, integer: bool = False) -> FloatArray:
    """``np.histogram_bin_edges(data, bins="sturges")`` from the data's min, max and size alone.

    numpy's definition: width = (max - min) / (log2(n) + 1) (at least 1 for integer data),
    ``ceil((max - min) / width)`` equal bins from min to max; a constant sample gets the single bin
    [min - 0.5, max + 0.5]. Computing it from (min, max, n) avoids concatenating the samples.
    """
    first, last = float(lo), float(hi)
    ptp = last - first
    if first == last:
        first, last = first - 0.5, last + 0.5
    n_bins = 1
    if n > 0:
        width = ptp / (math.log2(n) + 1.0) if ptp else 0.0
        if width:
            if integer and width < 1:
                width = 1.0
            n_bins = int(np.ceil((last - first) / width))
    return np.linspace(first, last, n_bins + 1, endpoint=True, dtype=np.float64)


def counts_in_bins_sorted(sorted_values: FloatArray, edges: FloatArray) -> IntArray:
    """``np.histogram(values, edges)[0]`` for sorted values inside [edges[0], edges[-1]]:
    bins are half-open [e_i, e_i+1) except the last, which is closed. Values below the first or
    above the last edge are counted in the end bins (callers that need numpy's dropping pass
    edges that span the data)."""
    inner = np.searchsorted(sorted_values, edges[1:-1], side="left")
    bounds = np.concatenate(([0], inner, [sorted_values.size]))
    return np.diff(bounds).astype(np.int64)


def fill_empty_bins(shares: FloatArray) -> FloatArray:
    """Evidently's ``feel_zeroes`` for PSI: a zero share becomes min(non-zero)/1e6 when that minimum
    is <= 1e-4, else 1e-4 (a copy is returned)."""
    out = np.array(shares, dtype=np.float64)
    nonzero = out[out != 0]
    if nonzero.size == 0:
        return out
    smallest = float(nonzero.min())
    out[out == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return out


# ----------------------------------------------------------------------------------- binning


def binned_counts_sorted(
    ref_sorted: FloatArray, cur_sorted: FloatArray, integer: bool = False
) -> tuple[IntArray, IntArray]:
    """Numeric binning of Evidently's ``get_binned_data`` on sorted, finite samples: sturges bins
    over the combined data when the reference has more than 20 distinct values, else one bin per
    distinct value (union of both samples)."""
    if n_unique_sorted(ref_sorted) > BINNED_MIN_UNIQUE:
        lo = min(ref_sorted[0], cur_sorted[0])
        hi = max(ref_sorted[-1], cur_sorted[-1])
        edges = sturges_edges(lo, hi, ref_sorted.size + cur_sorted.size, integer)
        return counts_in_bins_sorted(ref_sorted, edges), counts_in_bins_sorted(cur_sorted, edges)
    _, rc, cc = align_counts(*runs(ref_sorted), *runs(cur_sorted))
    return rc, cc


def binned_shares(
    ref: Any, cur: Any, kind: str = CATEGORICAL, fill_zeros: bool = False, integer: bool | None = None
) -> tuple[FloatArray, FloatArray]:
    """Shares of each bin in the reference and in the current sample (Evidently's
    ``get_binned_data``); ``fill_zeros`` applies its PSI zero filling. ``integer`` (default: the
    reference dtype is an integer dtype) mirrors numpy's width >= 1 rule for integer data."""
    if kind == NUMERIC:
        r = np.asarray(ref)
        if integer is None:
            integer = r.dtype.kind in "iu"
        rc, cc = binned_counts_sorted(np.sort(as_float_array(r)), np.sort(as_float_array(cur)), integer)
    else:
        _, rc, cc = value_counts(ref, cur)
    return shares_of(rc, cc, fill_zeros)


def shares_of(ref_counts: IntArray, cur_counts: IntArray, fill_zeros: bool) -> tuple[FloatArray, FloatArray]:
    p = ref_counts / ref_counts.sum()
    q = cur_counts / cur_counts.sum()
    if fill_zeros:
        return fill_empty_bins(p), fill_empty_bins(q)
    return p.astype(np.float64), q.astype(np.float64)


# ---------------------------------------------------------------------------- Kolmogorov-Smirnov


def ks_statistic_sorted(ref_sorted: FloatArray, cur_sorted: FloatArray) -> float:
    """sup |F_ref - F_cur| of two sorted samples, bit-for-bit the ``statistic`` of ``ks_2samp``.

    scipy evaluates both ECDFs at all n1 + n2 points. Between two consecutive distinct reference
    values u_(i-1) <= x < u_i, F_ref is constant and F_cur non-decreasing, so the extremes over that
    stretch are at u_(i-1) itself (F_cur = #cur <= u_(i-1)) and at the last current point before u_i
    (F_cur = #cur < u_i). Those counts come from ``searchsorted`` of the k distinct reference values
    into the sorted current sample: O(k log n) after the sorts, with the same float expressions
    (count / n1 - count / n2) scipy evaluates.
    """
    n1, n2 = ref_sorted.size, cur_sorted.size
    u, _ = runs(ref_sorted)
    c = np.searchsorted(ref_sorted, u, side="right")  # #ref <= u_i
    right = np.searchsorted(cur_sorted, u, side="right")  # #cur <= u_i
    left = np.searchsorted(cur_sorted, u, side="left")  # #cur < u_i
    at_u = c / n1 - right / n2
    c_prev = np.concatenate(([0], c[:-1]))
    before_u = c_prev / n1 - left / n2
    max_s = max(float(at_u.max()), 0.0)  # the last data point has F_ref = F_cur = 1
    min_s = float(np.clip(-min(float(at_u.min()), float(before_u.min())), 0, 1))
    return min_s if min_s > max_s else max_s


def ks_p_value(d: float, n1: int, n2: int) -> float:
    """scipy's asymptotic two-sided p-value: ``kstwo.sf(d, round(n1 n2 / (n1 + n2)))``."""
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    return float(np.clip(stats.kstwo.sf(d, np.round(en)), 0, 1))


def ks_sorted(ref_sorted: FloatArray, cur_sorted: FloatArray) -> tuple[float, float]:
    """``ks`` on sorted samples (see ``ks``)."""
    n1, n2 = ref_sorted.size, cur_sorted.size
    if max(n1, n2) <= KS_EXACT_MAX_N:
        # scipy's exact method (its own fallbacks included): a few ms at these sizes.
        res = stats.ks_2samp(ref_sorted, cur_sorted)
        return float(res.statistic), float(res.pvalue)
    d = ks_statistic_sorted(ref_sorted, cur_sorted)
    return d, ks_p_value(d, n1, n2)


def ks(ref: Any, cur: Any) -> tuple[float, float]:
    """Two-sample two-sided Kolmogorov-Smirnov test: (statistic, p-value), equal to
    ``scipy.stats.ks_2samp(ref, cur)`` (method "auto": exact when both samples have at most
    10,000 values, else Smirnov's asymptotic ``kstwo`` distribution). Evidently: drift if p <= 0.05.
    """
    return ks_sorted(np.sort(as_float_array(ref)), np.sort(as_float_array(cur)))


# ----------------------------------------------------------------------------------- Wasserstein


def wasserstein_sorted(u_sorted: FloatArray, v_sorted: FloatArray) -> float:
    """First Wasserstein distance of two sorted samples: ``scipy.stats.wasserstein_distance``'s
    integral, the sum over the merged sample of |F_u - F_v| times the gap to the next value.

    Instead of sorting the concatenation and two ``searchsorted`` passes of n1 + n2 points, the two
    sorted runs are merged by a stable argsort (linear time on two runs) and the ECDFs are running
    counts (kept as exact integers scaled by n_u n_v). They differ from scipy's
    ``searchsorted(..., "right")`` only inside runs of tied values, where the gap is exactly 0, so
    the sum has the same terms (up to float rounding, ~1e-15 relative).
    """
    n_u, n_v = u_sorted.size, v_sorted.size
    both = np.concatenate((u_sorted, v_sorted))
    order = np.argsort(both, kind="stable")
    merged = both[order]
    # n_u n_v (F_u - F_v) after the j-th merged value, exactly, in integers:
    # (j + 1 - #v) n_v - #v n_u = (j + 1) n_v - #v (n_u + n_v)
    scaled = (order[:-1] >= n_u).astype(np.int64)
    np.cumsum(scaled, out=scaled)
    scaled *= -(n_u + n_v)
    scaled += np.arange(n_v, (n_u + n_v) * n_v, n_v, dtype=np.int64)
    np.abs(scaled, out=scaled)
    return float(np.dot(scaled.astype(np.float64), np.diff(merged))) / (n_u * n_v)


def wasserstein_norm_sorted(ref_sorted: FloatArray, cur_sorted: FloatArray, ref_std: float) -> float:
    """``wasserstein_norm`` on sorted samples with the reference std computed by the caller."""
    return wasserstein_sorted(ref_sorted, cur_sorted) / max(ref_std, WASSERSTEIN_MIN_STD)


def wasserstein_norm(ref: Any, cur: Any) -> float:
    """``scipy.stats.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)``: the first
    Wasserstein distance in units of the reference's population standard deviation (ddof=0), as in
    Evidently's ``wasserstein_distance_norm.py``. Drift if >= 0.1."""
    r = as_float_array(ref)
    return wasserstein_norm_sorted(np.sort(r), np.sort(as_float_array(cur)), float(np.std(r)))


# ---------------------------------------------------------------------- tests on counted values


def chisquare_counts(ref_counts: IntArray, cur_counts: IntArray) -> tuple[float, float]:
    """Chi-square goodness of fit of the current counts to the reference proportions:
    ``scipy.stats.chisquare(cur, ref * (n_cur / n_ref))``. A value absent from the reference has
    expected count 0, hence statistic inf and p-value 0 (as in Evidently)."""
    n_ref = int(ref_counts.sum())
    n_cur = int(cur_counts.sum())
    f_exp = ref_counts * (n_cur / n_ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        res = stats.chisquare(cur_counts.astype(np.float64), f_exp)
    return float(res.statistic), float(res.pvalue)


def chisquare(ref: Any, cur: Any) -> tuple[float, float]:
    """Chi-square test of the current value counts against the reference proportions scaled to
    the current size, over the union of values (Evidently's ``chisquare_stattest.py``):
    (statistic, p-value); drift if p < 0.05."""
    _, rc, cc = value_counts(ref, cur)
    return chisquare_counts(rc, cc)


def z_test_counts(ref_counts: IntArray, cur_counts: IntArray) -> tuple[float, float]:
    """Two-proportion Z-test on counts over *sorted* keys: the proportion of values other than the
    first (smallest) key, pooled standard error (see ``z_test``)."""
    if ref_counts.size <= 1:
        return 0.0, 1.0  # one value on both sides: no difference
    n1 = int(ref_counts.sum())
    n2 = int(cur_counts.sum())
    p1 = float(n1 - int(ref_counts[0])) / n1
    p2 = float(n2 - int(cur_counts[0])) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    p_value = 2 * (1 - stats.norm.cdf(np.abs(z)))
    return float(z), float(p_value)


def z_test(ref: Any, cur: Any) -> tuple[float, float]:
    """Two-proportion Z-test (Evidently's ``z_stattest.py``): with the union of values sorted, each
    value is 0 if it equals the smallest and 1 otherwise; with p1, p2 the shares of 1s and
    P = (p1 n1 + p2 n2) / (n1 + n2), z = (p1 - p2) / sqrt(P (1 - P) (1/n1 + 1/n2)) and the
    p-value is 2 (1 - Phi(|z|)). A single shared value gives (0, 1). Drift if p < 0.05."""
    _, rc, cc = value_counts(ref, cur)
    return z_test_counts(rc, cc)


# ------------------------------------------------------------------------------ binned distances


def jensenshannon_shares(ref_shares: FloatArray, cur_shares: FloatArray) -> float:
    """``scipy.spatial.distance.jensenshannon(ref_shares, cur_shares)`` (natural logarithm)."""
    return float(spatial.distance.jensenshannon(ref_shares, cur_shares))


def psi_shares(ref_shares: FloatArray, cur_shares: FloatArray) -> float:
    """Population stability index of zero-filled shares: sum((p - q) ln(p / q))."""
    return float(np.sum((ref_shares - cur_shares) * np.log(ref_shares / cur_shares)))


def jensenshannon(ref: Any, cur: Any, kind: str = CATEGORICAL) -> float:
    """Jensen-Shannon distance (natural log, scipy's default base) between the binned reference
    and current shares, empty bins left at 0 (Evidently's ``jensenshannon.py``). Drift if >= 0.1."""
    return jensenshannon_shares(*binned_shares(ref, cur, kind, fill_zeros=False))


def psi(ref: Any, cur: Any, kind: str = CATEGORICAL) -> float:
    """Population stability index sum((p_ref - p_cur) ln(p_ref / p_cur)) over the binned shares
    with empty bins filled (Evidently's ``psi.py``). Drift if >= 0.1."""
    return psi_shares(*binned_shares(ref, cur, kind, fill_zeros=True))
