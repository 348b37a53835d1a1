"""Every drift statistic against scipy's reference functions (or the formula by hand) on the same data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from scipy.spatial import distance

from modelport.monitoring import stats

RNG = np.random.default_rng(20240601)


def _dict_counts(values: np.ndarray) -> dict[object, int]:
    keys, counts = np.unique(values, return_counts=True)
    return {k.item() if isinstance(k, np.generic) else k: int(c) for k, c in zip(keys, counts, strict=True)}


def _evidently_binned(ref: np.ndarray, cur: np.ndarray, numeric: bool) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's get_binned_data, written out with numpy's own histogram functions."""
    if numeric and len(np.unique(ref)) > 20:
        edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
        return np.histogram(ref, edges)[0] / len(ref), np.histogram(cur, edges)[0] / len(cur)
    r, c = _dict_counts(ref), _dict_counts(cur)
    keys = sorted(set(r) | set(c))
    return (
        np.array([r.get(k, 0) / len(ref) for k in keys]),
        np.array([c.get(k, 0) / len(cur) for k in keys]),
    )


def _fill(p: np.ndarray) -> np.ndarray:
    p = p.copy()
    m = p[p != 0].min()
    p[p == 0] = m / 10**6 if m <= 0.0001 else 0.0001
    return p


# ------------------------------------------------------------------------------------------ KS

KS_CASES = [
    ("normal small", RNG.normal(size=60), RNG.normal(0.3, size=85)),
    ("exact equal n", RNG.normal(size=1000), RNG.normal(size=1000)),
    ("exact 1000 vs 10000", RNG.normal(size=1000), RNG.normal(0.05, size=10_000)),
    ("asymp 1000 vs 50000", RNG.normal(size=1000), RNG.normal(0.05, size=50_000)),
    ("asymp large both", RNG.normal(size=20_000), RNG.normal(0.01, size=30_000)),
    ("asymp ref larger", RNG.normal(size=40_000), RNG.normal(size=11_000)),
    ("ties exact", RNG.integers(0, 7, 400).astype(float), RNG.integers(0, 8, 600).astype(float)),
    ("ties asymp", RNG.integers(0, 30, 900).astype(float), RNG.integers(2, 30, 20_000).astype(float)),
    ("disjoint", RNG.normal(size=500), RNG.normal(10, size=12_000)),
    ("same values", np.ones(300), np.ones(20_000)),
]


@pytest.mark.parametrize(("label", "ref", "cur"), KS_CASES, ids=[c[0] for c in KS_CASES])
def test_ks_equals_scipy_ks_2samp(label: str, ref: np.ndarray, cur: np.ndarray) -> None:
    expected = sps.ks_2samp(ref, cur)
    statistic, p_value = stats.ks(ref, cur)
    assert statistic == pytest.approx(float(expected.statistic), rel=0, abs=1e-15)
    assert p_value == pytest.approx(float(expected.pvalue), rel=1e-12, abs=1e-300)


def test_ks_statistic_by_searchsorted_is_bitwise_scipy_on_many_samples() -> None:
    rng = np.random.default_rng(7)
    for trial in range(300):
        n1, n2 = int(rng.integers(1, 400)), int(rng.integers(1, 400))
        if trial % 3 == 0:  # heavy ties, shifted supports
            a = rng.integers(0, int(rng.integers(1, 12)), n1).astype(float)
            b = rng.integers(0, int(rng.integers(1, 12)), n2).astype(float) + int(rng.integers(0, 3))
        else:
            a, b = rng.normal(size=n1), rng.normal(rng.normal() * 0.3, size=n2)
        got = stats.ks_statistic_sorted(np.sort(a), np.sort(b))
        assert got == float(sps.ks_2samp(a, b, method="asymp").statistic), (trial, n1, n2)


# --------------------------------------------------------------------------------- chi-square


def _evidently_chisquare(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    r, c = _dict_counts(ref), _dict_counts(cur)
    keys = list(set(r) | set(c))
    k_norm = len(cur) / len(ref)
    f_exp = [r.get(k, 0) * k_norm for k in keys]
    f_obs = [c.get(k, 0) for k in keys]
    res = sps.chisquare(f_obs, f_exp)
    return float(res.statistic), float(res.pvalue)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_chisquare_equals_scipy_chisquare_on_scaled_reference_counts(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cats = np.array(["a", "b", "c", "d", "e"], dtype=object)
    ref = rng.choice(cats, 700, p=[0.3, 0.3, 0.2, 0.1, 0.1])
    cur = rng.choice(cats, 2_300, p=[0.25, 0.3, 0.25, 0.1, 0.1])
    got = stats.chisquare(ref, cur)
    want = _evidently_chisquare(ref, cur)
    assert got[0] == pytest.approx(want[0], rel=1e-12)
    assert got[1] == pytest.approx(want[1], rel=1e-10)


def test_chisquare_on_numbers_and_on_a_value_unseen_in_reference() -> None:
    ref = RNG.integers(0, 4, 500)
    cur = RNG.integers(0, 4, 800)
    got = stats.chisquare(ref, cur)
    want = _evidently_chisquare(ref, cur)
    assert got == pytest.approx(want, rel=1e-12)
    # a value absent from the reference: expected count 0, statistic inf, p-value 0
    stat, p = stats.chisquare(
        np.array(["a", "b"] * 50, dtype=object), np.array(["a", "b", "z"] * 30, dtype=object)
    )
    assert stat == np.inf and p == 0.0


# ------------------------------------------------------------------------------------- Z-test


def _z_by_hand(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    first = sorted(set(ref.tolist()) | set(cur.tolist()))[0]
    x1 = np.array([0 if v == first else 1 for v in ref])
    x2 = np.array([0 if v == first else 1 for v in cur])
    n1, n2 = len(x1), len(x2)
    p1, p2 = x1.mean(), x2.mean()
    pooled = (x1.sum() + x2.sum()) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return float(z), float(2 * (1 - sps.norm.cdf(abs(z))))


@pytest.mark.parametrize(
    ("ref", "cur"),
    [
        (
            RNG.choice(np.array(["no", "yes"], dtype=object), 600),
            RNG.choice(np.array(["no", "yes"], dtype=object), 900),
        ),
        (RNG.random(800) < 0.3, RNG.random(700) < 0.4),
        (RNG.integers(3, 5, 400), RNG.integers(3, 5, 450)),
    ],
    ids=["strings", "bools", "ints"],
)
def test_z_test_equals_two_proportion_z_by_hand(ref: np.ndarray, cur: np.ndarray) -> None:
    z, p = stats.z_test(ref, cur)
    want_z, want_p = _z_by_hand(ref, cur)
    assert z == pytest.approx(want_z, rel=1e-12)
    assert p == pytest.approx(want_p, rel=1e-10)
    # and the textbook normal tail for a moderate z
    assert p == pytest.approx(2 * sps.norm.sf(abs(want_z)), rel=1e-8)


def test_z_test_single_shared_value_is_no_difference() -> None:
    assert stats.z_test(np.array(["a"] * 10, dtype=object), np.array(["a"] * 20, dtype=object)) == (0.0, 1.0)
    z, p = stats.z_test(np.array(["a"] * 10, dtype=object), np.array(["b"] * 20, dtype=object))
    assert p < 1e-6 and z < 0


# -------------------------------------------------------------------------------- Wasserstein


@pytest.mark.parametrize(
    ("ref", "cur"),
    [
        (RNG.normal(size=1_500), RNG.normal(0.2, 1.3, size=2_000)),
        (RNG.normal(size=120_000), RNG.normal(0.01, size=250_000)),
        (RNG.integers(0, 40, 5_000).astype(float), RNG.integers(0, 45, 7_000).astype(float)),
        (RNG.exponential(size=3), RNG.exponential(size=5_000)),
    ],
    ids=["normal", "large", "ties", "tiny-reference"],
)
def test_wasserstein_norm_equals_scipy_over_reference_std(ref: np.ndarray, cur: np.ndarray) -> None:
    want = sps.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)
    assert stats.wasserstein_norm(ref, cur) == pytest.approx(want, rel=1e-10)
    assert stats.wasserstein_sorted(np.sort(cur), np.sort(ref)) == pytest.approx(
        sps.wasserstein_distance(cur, ref), rel=1e-10
    )


def test_wasserstein_constant_reference_uses_the_std_floor() -> None:
    ref, cur = np.full(2_000, 3.0), np.full(2_000, 3.0005)
    assert stats.wasserstein_norm(ref, cur) == pytest.approx(0.0005 / 0.001, rel=1e-9)


# ------------------------------------------------------------------------ binning, JS and PSI


@pytest.mark.parametrize(
    "data",
    [
        RNG.normal(size=5_001),
        RNG.exponential(size=123_457),
        np.full(50, 2.5),
        RNG.integers(0, 15, 3_000),  # integer: bin width at least 1
        RNG.integers(-1000, 1000, 10_000),
    ],
    ids=["normal", "exponential", "constant", "small-int-range", "wide-int-range"],
)
def test_sturges_edges_equal_numpy(data: np.ndarray) -> None:
    want = np.histogram_bin_edges(data, bins="sturges")
    got = stats.sturges_edges(data.min(), data.max(), data.size, integer=data.dtype.kind == "i")
    np.testing.assert_array_equal(got, want)


def test_counts_in_bins_equal_numpy_histogram() -> None:
    data = np.concatenate([RNG.normal(size=10_000), np.linspace(-2, 2, 9)])  # values on the edges
    edges = np.linspace(data.min(), data.max(), 17)
    np.testing.assert_array_equal(
        stats.counts_in_bins_sorted(np.sort(data), edges), np.histogram(data, edges)[0]
    )


JS_CASES = [
    ("numeric binned", RNG.normal(size=4_000), RNG.normal(0.2, size=9_000), "numeric"),
    (
        "numeric few values",
        RNG.integers(0, 6, 3_000).astype(float),
        RNG.integers(0, 7, 5_000).astype(float),
        "numeric",
    ),
    (
        "categorical",
        RNG.choice(np.array(list("abcdef"), dtype=object), 3_000),
        RNG.choice(np.array(list("abcdefg"), dtype=object), 2_000),
        "categorical",
    ),
]


@pytest.mark.parametrize(("label", "ref", "cur", "kind"), JS_CASES, ids=[c[0] for c in JS_CASES])
def test_jensenshannon_equals_scipy_on_evidently_binning(
    label: str, ref: np.ndarray, cur: np.ndarray, kind: str
) -> None:
    p, q = _evidently_binned(ref, cur, numeric=kind == "numeric")
    assert stats.jensenshannon(ref, cur, kind) == pytest.approx(
        float(distance.jensenshannon(p, q)), rel=1e-12
    )


@pytest.mark.parametrize(("label", "ref", "cur", "kind"), JS_CASES, ids=[c[0] for c in JS_CASES])
def test_psi_equals_formula_by_hand(label: str, ref: np.ndarray, cur: np.ndarray, kind: str) -> None:
    p, q = _evidently_binned(ref, cur, numeric=kind == "numeric")
    p, q = _fill(p), _fill(q)
    want = float(np.sum((p - q) * np.log(p / q)))
    assert stats.psi(ref, cur, kind) == pytest.approx(want, rel=1e-12)


def test_binned_shares_fill_rule_and_integer_flag() -> None:
    ref = np.array(["a"] * 99_999 + ["b"], dtype=object)
    cur = np.array(["a"] * 50 + ["c"] * 50, dtype=object)
    p, q = stats.binned_shares(ref, cur, "categorical", fill_zeros=True)
    # ref: smallest non-zero share 1e-5 <= 1e-4 -> empty bin gets 1e-11; cur: 0.5 -> 1e-4
    assert p.tolist() == pytest.approx([0.99999, 0.00001, 1e-11])
    assert q.tolist() == pytest.approx([0.5, 1e-4, 0.5])
    ints = RNG.integers(0, 22, 5_000)
    p_i, _ = stats.binned_shares(ints, ints, "numeric")
    edges = np.histogram_bin_edges(np.concatenate([ints, ints]), bins="sturges")
    assert p_i.size == edges.size - 1


def test_value_counts_align_union_of_values() -> None:
    keys, rc, cc = stats.value_counts(np.array([1, 1, 2]), np.array([2, 3, 3, 3]))
    assert keys.tolist() == [1.0, 2.0, 3.0] and rc.tolist() == [2, 1, 0] and cc.tolist() == [0, 1, 3]
    keys, rc, cc = stats.value_counts(np.array(["b", "a"], dtype=object), np.array(["c"], dtype=object))
    assert keys.tolist() == ["a", "b", "c"] and rc.tolist() == [1, 1, 0] and cc.tolist() == [0, 0, 1]
