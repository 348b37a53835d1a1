"""Which test each column gets (Evidently 0.7's rules), overrides, thresholds, and drift found where
it was injected and nowhere else."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from modelport.monitoring.drift import (
    DEFAULT_THRESHOLDS,
    choose_test,
    column_drift,
    dataset_drift,
    default_test,
    is_drift,
    kind_of,
)

RNG = np.random.default_rng(11)
CATS = np.array(["red", "green", "blue", "black"], dtype=object)


# ------------------------------------------------------------------------------ test choice


@pytest.mark.parametrize(
    ("values", "kind", "test"),
    [
        (RNG.normal(size=1000), "numeric", "ks"),
        (RNG.normal(size=1001), "numeric", "wasserstein"),
        (RNG.integers(0, 5, 1000), "numeric", "chisquare"),  # <= 5 distinct numbers
        (RNG.integers(0, 6, 1000), "numeric", "ks"),  # 6 distinct
        (RNG.integers(0, 2, 1000), "numeric", "z"),
        (RNG.integers(0, 5, 1001), "numeric", "jensenshannon"),
        (RNG.integers(0, 6, 1001), "numeric", "wasserstein"),
        (RNG.choice(CATS[:2], 1000), "categorical", "z"),
        (RNG.choice(CATS[:3], 1000), "categorical", "chisquare"),
        (RNG.choice(CATS, 1001), "categorical", "jensenshannon"),
        (RNG.choice(CATS[:2], 5000), "categorical", "jensenshannon"),
    ],
)
def test_choose_test_follows_evidently(values: np.ndarray, kind: str, test: str) -> None:
    assert choose_test(values, kind) == (test, DEFAULT_THRESHOLDS[test])


def test_choice_counts_non_null_reference_values_and_distinct_values_of_both_samples() -> None:
    ref = pd.Series(np.r_[RNG.normal(size=1000), [np.nan] * 500])  # 1000 non-null values
    assert choose_test(ref, "numeric")[0] == "ks"
    two = np.array(["a", "b"] * 100, dtype=object)
    assert choose_test(two)[0] == "z"
    assert choose_test(two, current_values=np.array(["a", "c"], dtype=object))[0] == "chisquare"
    assert default_test(10, 6, "categorical") == "chisquare"  # categorical never gets ks


def test_kind_of() -> None:
    assert kind_of(pd.Series([1.5, 2.0])) == "numeric"
    assert kind_of(pd.Series([1, 2], dtype="Int64")) == "numeric"
    assert kind_of(pd.Series([True, False])) == "categorical"
    assert kind_of(pd.Series(["a", "b"])) == "categorical"
    assert kind_of(pd.Series(["a", "b"], dtype="category")) == "categorical"
    assert kind_of(pd.Series(pd.to_datetime(["2024-01-01"]))) == "datetime"
    assert kind_of(np.arange(3)) == "numeric"


def test_threshold_direction() -> None:
    assert is_drift("ks", 0.05, 0.05)  # KS: p <= threshold
    assert not is_drift("chisquare", 0.05, 0.05) and is_drift("chisquare", 0.049, 0.05)
    assert not is_drift("z", 0.05, 0.05) and is_drift("z", 0.01, 0.05)
    for distance in ("wasserstein", "jensenshannon", "psi"):
        assert is_drift(distance, 0.1, 0.1) and not is_drift(distance, 0.099, 0.1)
    assert not is_drift("ks", math.nan, 0.05)


# ------------------------------------------------------------------------------ one column


def test_column_drift_p_value_test_and_overrides() -> None:
    ref, cur = RNG.normal(size=800), RNG.normal(0.5, size=800)
    res = column_drift("x", ref, cur)
    assert res.test == "ks" and res.is_p_value and res.statistic < 1e-10 and res.drifted
    assert res.reference_count == 800 and res.current_count == 800 and res.kind == "numeric"
    # a stricter threshold still drifts; an absurd one does not
    assert not column_drift("x", ref, cur, threshold=1e-300).drifted
    # the test and its threshold can be chosen per column
    res = column_drift("x", ref, cur, test="psi")
    assert res.test == "psi" and res.threshold == 0.1 and res.statistic > 0.1 and res.drifted
    res = column_drift("x", ref, cur, test="wasserstein", threshold=0.9)
    assert res.statistic == pytest.approx(0.5, abs=0.15) and not res.drifted
    with pytest.raises(ValueError, match="Unknown drift test"):
        column_drift("x", ref, cur, test="t-test")
    with pytest.raises(ValueError, match="needs a numeric column"):
        column_drift("c", RNG.choice(CATS, 50), RNG.choice(CATS, 50), test="ks")


def test_nulls_and_infinities_are_dropped_and_counted() -> None:
    ref = pd.Series(np.r_[RNG.normal(size=300), [np.nan] * 20, [np.inf]])
    cur = pd.Series(np.r_[RNG.normal(size=200), [None] * 10], dtype="float64")
    res = column_drift("x", ref, cur)
    assert (res.reference_count, res.current_count) == (300, 200)
    assert not res.drifted


def test_empty_columns_are_reported_not_tested() -> None:
    res = column_drift("x", RNG.normal(size=100), pd.Series([np.nan] * 50))
    assert not res.drifted and math.isnan(res.statistic) and res.note == "current column is empty"
    assert res.current_count == 0 and res.histogram is not None and sum(res.histogram.current) == 0
    res = column_drift("c", pd.Series([None] * 5, dtype=object), pd.Series(["a", "b"]))
    assert res.note == "reference column is empty" and not res.drifted and res.kind == "categorical"
    res = column_drift("c", pd.Series([], dtype=float), pd.Series([], dtype=float))
    assert res.note == "reference and current columns are empty" and res.histogram is None


def test_histograms_share_bins() -> None:
    res = column_drift("x", RNG.normal(size=5000), RNG.normal(1.0, size=3000))
    h = res.histogram
    assert h is not None and h.edges is not None and len(h.edges) == 21 and h.categories is None
    assert len(h.reference) == len(h.current) == 20
    assert sum(h.reference) == pytest.approx(1.0) and sum(h.current) == pytest.approx(1.0)
    many = np.array([f"c{i:02d}" for i in range(30)], dtype=object)
    res = column_drift("c", RNG.choice(many, 2000), RNG.choice(many[:25], 2000))
    h = res.histogram
    assert (
        h is not None and h.categories is not None and len(h.categories) == 21 and h.categories[-1] == "other"
    )
    assert sum(h.reference) == pytest.approx(1.0) and sum(h.current) == pytest.approx(1.0)


def test_categorical_drift_and_new_values() -> None:
    ref = RNG.choice(CATS, 3000, p=[0.4, 0.3, 0.2, 0.1])
    same = column_drift("c", ref, RNG.choice(CATS, 3000, p=[0.4, 0.3, 0.2, 0.1]))
    moved = column_drift("c", ref, RNG.choice(CATS, 3000, p=[0.1, 0.2, 0.3, 0.4]))
    assert same.test == moved.test == "jensenshannon"
    assert not same.drifted and moved.drifted
    small = column_drift("c", ref[:500], np.r_[ref[:400], ["purple"] * 100])
    assert small.test == "chisquare" and small.statistic == 0.0 and small.drifted


def test_prediction_drift_on_model_outputs() -> None:
    proba_ref, proba_cur = RNG.beta(2, 5, 4000), RNG.beta(5, 2, 4000)
    assert column_drift("prediction", proba_ref, proba_cur).drifted
    labels_ref = (RNG.random(600) < 0.2).astype(np.int64)
    res = column_drift("prediction", labels_ref, (RNG.random(600) < 0.2).astype(np.int64))
    assert res.test == "z" and not res.drifted


# ------------------------------------------------------------------------------ dataset drift


def _frames(
    seed: int, n_ref: int, n_cur: int, shifted: tuple[int, ...] = ()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({f"x{i}": rng.normal(i, 1 + i / 10, n_ref) for i in range(10)})
    cur = pd.DataFrame(
        {
            f"x{i}": rng.normal(i + (0.5 * (1 + i / 10) if i in shifted else 0), 1 + i / 10, n_cur)
            for i in range(10)
        }
    )
    return ref, cur


@pytest.mark.parametrize(("n_ref", "n_cur", "test"), [(5000, 5000, "wasserstein"), (600, 600, "ks")])
def test_mean_shift_of_half_a_std_in_one_column(n_ref: int, n_cur: int, test: str) -> None:
    ref, cur = _frames(3, n_ref, n_cur, shifted=(4,))
    results, share, drifted = dataset_drift(ref, cur)
    assert [r.column for r in results if r.drifted] == ["x4"]
    assert {r.test for r in results} == {test}
    assert share == pytest.approx(0.1) and not drifted


@pytest.mark.parametrize(("n_ref", "n_cur"), [(5000, 5000), (600, 600)])
def test_shift_in_six_of_ten_columns_is_dataset_drift(n_ref: int, n_cur: int) -> None:
    ref, cur = _frames(4, n_ref, n_cur, shifted=(0, 2, 3, 5, 7, 9))
    results, share, drifted = dataset_drift(ref, cur)
    found = {r.column for r in results if r.drifted}
    assert found >= {"x0", "x2", "x3", "x5", "x7", "x9"}
    if n_ref > 1000:  # the distance test has no false positives at this size; p < 0.05 may have one
        assert found == {"x0", "x2", "x3", "x5", "x7", "x9"} and share == pytest.approx(0.6)
    assert share >= 0.6 and drifted
    # the share that makes a dataset drift is configurable (>=, as in Evidently)
    assert dataset_drift(ref, cur, drift_share=share)[2] is True
    assert dataset_drift(ref, cur, drift_share=share + 0.01)[2] is False


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize(("n_ref", "n_cur"), [(5000, 8000), (800, 800)])
def test_no_dataset_drift_on_same_distribution(seed: int, n_ref: int, n_cur: int) -> None:
    ref, cur = _frames(100 + seed, n_ref, n_cur)
    rng = np.random.default_rng(seed)
    for frame, n in ((ref, n_ref), (cur, n_cur)):
        frame["color"] = rng.choice(CATS, n, p=[0.4, 0.3, 0.2, 0.1])
        frame["flag"] = rng.random(n) < 0.3
        frame["count"] = rng.poisson(2.0, n)
    results, share, drifted = dataset_drift(ref, cur)
    assert len(results) == 13
    assert not drifted and share < 0.5


def test_dataset_drift_overrides_and_untestable_columns() -> None:
    ref, cur = _frames(5, 3000, 3000, shifted=(1,))
    ref["empty"] = np.nan
    cur["empty"] = np.nan
    ref["when"] = pd.date_range("2024-01-01", periods=3000, freq="min")
    cur["when"] = pd.date_range("2024-02-01", periods=3000, freq="min")
    results, share, _ = dataset_drift(
        ref, cur, tests={"x1": "psi", "x2": "ks"}, thresholds={"x1": 10.0, "x3": 1e-9}
    )
    by_name = {r.column: r for r in results}
    assert "when" not in by_name  # datetime columns are left out by default
    assert by_name["x1"].test == "psi" and by_name["x1"].threshold == 10.0 and not by_name["x1"].drifted
    assert by_name["x2"].test == "ks" and by_name["x3"].threshold == 1e-9
    assert by_name["empty"].note == "reference and current columns are empty"
    # a distance drifts *above* its threshold: 1e-9 flags the unshifted x3
    assert by_name["x3"].drifted and by_name["x3"].statistic < 0.1
    assert share == pytest.approx(1 / 10)  # 10 tested columns; the empty one is not counted
    results, _, _ = dataset_drift(ref, cur, columns=["x0", "missing", "when"])
    assert results[1].note == "column missing from reference and current data" and not results[1].drifted
    assert results[2].kind == "numeric" and results[2].drifted  # asked for explicitly: compared as numbers


def test_dataset_drift_on_empty_frames() -> None:
    ref, cur = _frames(6, 100, 0)
    results, share, drifted = dataset_drift(ref, cur)
    assert all(r.note == "current column is empty" for r in results)
    assert share == 0.0 and not drifted
    results, share, drifted = dataset_drift(pd.DataFrame(), pd.DataFrame())
    assert results == [] and share == 0.0 and not drifted


def test_small_integer_columns_are_categorical_as_evidently_infers() -> None:
    """Evidently 0.7 infers an integer column with <= 10 distinct values as categorical."""
    rng = np.random.default_rng(0)
    few = pd.Series(rng.integers(0, 8, 5000))
    many = pd.Series(rng.integers(0, 50, 5000))
    assert column_drift("few", few, few.sample(frac=1, random_state=1)).test == "jensenshannon"
    assert column_drift("many", many, many.sample(frac=1, random_state=1)).test == "wasserstein"
    assert column_drift("few", few[:500], few[500:1500]).test == "chisquare"
