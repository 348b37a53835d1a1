"""Known-answer tests of modelport.monitoring.performance: realized metrics against scikit-learn,
PAV isotonic regression against sklearn's IsotonicRegression, CBPE against realized values on
simulated classifiers (calibrated, under covariate shift, miscalibrated then recalibrated)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.isotonic import IsotonicRegression

from modelport.monitoring.cbpe import cbpe, fit_calibrator, isotonic_regression
from modelport.monitoring.performance import (
    CBPE_METRICS,
    classification_metrics,
    null_mask,
    performance,
    regression_metrics,
)
from modelport.monitoring.results import DriftResult, Performance

TOL = 1e-10


@pytest.fixture(autouse=True)
def _quiet_sklearn():
    # sklearn warns on zero division / undefined AUC / rows not summing to one; we compare values.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _dirichlet(rng: np.random.Generator, n: int, k: int, alpha: float = 1.0) -> np.ndarray:
    return rng.dirichlet(np.full(k, alpha), size=n)


def _sk_binary(y_true, y_pred, score, proba2, pos_label, labels):
    return {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, pos_label=pos_label, zero_division=0),
        "recall": skm.recall_score(y_true, y_pred, pos_label=pos_label, zero_division=0),
        "f1": skm.f1_score(y_true, y_pred, pos_label=pos_label, zero_division=0),
        "roc_auc": skm.roc_auc_score(np.asarray(y_true) == pos_label, score),
        "log_loss": skm.log_loss(y_true, proba2, labels=labels),
    }


def _assert_close(ours: dict[str, float], ref: dict[str, float], tol: float = TOL) -> None:
    assert set(ours) == set(ref), (sorted(ours), sorted(ref))
    for key, value in ref.items():
        assert ours[key] == pytest.approx(value, abs=tol, rel=tol), key


# ---------------------------------------------------------------------------------------- binary


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_matches_sklearn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 2000
    y = rng.integers(0, 2, n)
    score = np.round(np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1), 1)  # many tied scores
    pred = (score >= 0.5).astype(int)
    proba = np.stack([1 - score, score], axis=1)
    ours = classification_metrics(y, pred, proba, classes=[0, 1])
    _assert_close(ours, _sk_binary(y, pred, score, proba, 1, [0, 1]))
    # a 1-D proba is P(classes[1])
    assert classification_metrics(y, pred, score, classes=[0, 1]) == ours


def test_binary_string_labels_and_other_positive() -> None:
    rng = np.random.default_rng(7)
    n = 1500
    classes = np.array(["no", "yes"])
    t = rng.integers(0, 2, n)
    p_yes = np.clip(0.25 * t + rng.beta(2, 2, n) * 0.75, 0, 1)
    proba = np.stack([1 - p_yes, p_yes], axis=1)
    y_true = classes[t]
    y_pred = classes[(rng.uniform(size=n) < p_yes).astype(int)]
    # default positive = classes[1]; classes inferred from the labels
    ours = classification_metrics(y_true, y_pred, proba)
    _assert_close(ours, _sk_binary(y_true, y_pred, p_yes, proba, "yes", list(classes)))
    # positive = classes[0]: precision/recall/F1 and the AUC for "no"
    ours_no = classification_metrics(y_true, y_pred, proba, classes=classes, positive="no")
    _assert_close(ours_no, _sk_binary(y_true, y_pred, 1 - p_yes, proba, "no", list(classes)))


def test_binary_single_class_and_zero_division() -> None:
    y = np.ones(50, dtype=int)
    pred = np.zeros(50, dtype=int)  # nothing predicted positive: precision 0/0
    score = np.linspace(0.01, 0.49, 50)
    m = classification_metrics(y, pred, score, classes=[0, 1])
    assert "roc_auc" not in m  # undefined with one class: left out (sklearn: NaN + warning)
    assert np.isnan(skm.roc_auc_score(y, score))
    assert m["precision"] == skm.precision_score(y, pred, zero_division=0) == 0.0
    assert m["recall"] == 0.0 and m["f1"] == 0.0 and m["accuracy"] == 0.0
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, score, labels=[0, 1]), rel=1e-12)
    # no classes and only one label anywhere: no crash, proba metrics skipped
    m1 = classification_metrics(y, y, score)
    assert m1["accuracy"] == 1.0 and "roc_auc" not in m1 and "log_loss" not in m1


def test_log_loss_clips_like_sklearn() -> None:
    y = np.array([0, 1, 1, 0, 1])
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.5])  # hard 0/1 probabilities: log(eps)
    for dtype in (np.float64, np.float32):
        pd_ = p.astype(dtype)
        ours = classification_metrics(y, (p >= 0.5).astype(int), pd_, classes=[0, 1])["log_loss"]
        assert ours == pytest.approx(skm.log_loss(y, pd_, labels=[0, 1]), rel=1e-6)


def test_roc_auc_large_random_matches_sklearn() -> None:
    rng = np.random.default_rng(3)
    n = 200_000
    y = rng.integers(0, 2, n)
    s = rng.normal(size=n) + y
    s[::7] = np.round(s[::7], 1)
    m = classification_metrics(y, (s > 0.5).astype(int), 1 / (1 + np.exp(-s)), classes=[0, 1])
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


# ------------------------------------------------------------------------------------ multiclass


def _sk_multi(y_true, y_pred, proba, labels, auc=True):
    out = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, labels=labels, average="macro", zero_division=0),
        "recall": skm.recall_score(y_true, y_pred, labels=labels, average="macro", zero_division=0),
        "f1": skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0),
        "log_loss": skm.log_loss(y_true, proba, labels=labels),
    }
    if auc:
        out["roc_auc"] = skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels)
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_three_classes_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    proba = np.round(_dirichlet(rng, n, 3), 2)  # ties
    proba /= proba.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in proba])
    pred = proba.argmax(axis=1)
    ours = classification_metrics(y, pred, proba, classes=[0, 1, 2])
    _assert_close(ours, _sk_multi(y, pred, proba, [0, 1, 2]))
    # string classes, inferred
    names = np.array(["a", "b", "c"])
    ours_s = classification_metrics(names[y], names[pred], proba)
    _assert_close(ours_s, ours)


def test_three_classes_with_a_missing_class() -> None:
    rng = np.random.default_rng(11)
    n = 1000
    proba = _dirichlet(rng, n, 3)
    y = rng.integers(0, 2, n)  # class 2 never labelled in this window
    pred = proba.argmax(axis=1)  # but predicted
    ours = classification_metrics(y, pred, proba, classes=[0, 1, 2])
    ref = _sk_multi(y, pred, proba, [0, 1, 2], auc=False)
    # sklearn: NaN for the macro OvR AUC; ours averages the classes whose AUC is defined
    ref["roc_auc"] = np.mean([skm.roc_auc_score(y == c, proba[:, c]) for c in (0, 1)])
    _assert_close(ours, ref)
    assert np.isnan(skm.roc_auc_score(y, proba, multi_class="ovr", labels=[0, 1, 2]))


def test_labels_not_in_classes() -> None:
    rng = np.random.default_rng(5)
    n = 800
    proba = _dirichlet(rng, n, 3)
    y = rng.integers(0, 3, n)
    y[:40] = 9  # a label the model does not know
    pred = proba.argmax(axis=1)
    pred[40:60] = 9  # and predictions outside the classes
    ours = classification_metrics(y, pred, proba, classes=[0, 1, 2])
    known = y != 9
    ref = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, labels=[0, 1, 2], average="macro", zero_division=0),
        "recall": skm.recall_score(y, pred, labels=[0, 1, 2], average="macro", zero_division=0),
        "f1": skm.f1_score(y, pred, labels=[0, 1, 2], average="macro", zero_division=0),
        "roc_auc": skm.roc_auc_score(y[known], proba[known], multi_class="ovr", labels=[0, 1, 2]),
        "log_loss": skm.log_loss(y[known], proba[known], labels=[0, 1, 2]),
    }
    _assert_close(ours, ref)


def test_mixed_type_classes_do_not_crash() -> None:
    y = np.array([1, "x", 1, "x"], dtype=object)
    pred = np.array([1, 1, "x", "x"], dtype=object)
    m = classification_metrics(y, pred, classes=[1, "x"])
    assert m["accuracy"] == 0.5 and m["precision"] == 0.5 and m["recall"] == 0.5


# ------------------------------------------------------------------------------------ regression


@pytest.mark.parametrize("seed", [0, 1])
def test_regression_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 3, 5000)
    pred = y + rng.normal(0, 1, 5000)
    ours = regression_metrics(y, pred)
    ref = {
        "mae": skm.mean_absolute_error(y, pred),
        "rmse": skm.root_mean_squared_error(y, pred),
        "r2": skm.r2_score(y, pred),
    }
    _assert_close(ours, ref)


def test_regression_edge_cases() -> None:
    const = np.full(10, 3.3)
    assert regression_metrics(const, const)["r2"] == skm.r2_score(const, const) == 1.0
    assert regression_metrics(const, const + 1)["r2"] == skm.r2_score(const, const + 1) == 0.0
    one = regression_metrics([2.0], [1.0])
    assert one == {"mae": 1.0, "rmse": 1.0}  # R² undefined on one row: left out (sklearn: NaN)
    assert regression_metrics([], []) == {}


# ----------------------------------------------------------------------------------- performance


def test_performance_drops_missing_labels() -> None:
    y = pd.Series([1, None, 0, 1, np.nan, 0], dtype=object)
    pred = np.array([1, 1, 0, 0, 1, 1])
    proba = np.array([0.9, 0.8, 0.2, 0.4, 0.7, 0.6])
    perf = performance("classifier", y, pred, proba, classes=[0, 1])
    assert isinstance(perf, Performance) and not perf.estimated
    assert perf.task == "classifier" and perf.labelled_rows == 4
    keep = [0, 2, 3, 5]
    yk = np.array([1, 0, 1, 0])
    ref = _sk_binary(yk, pred[keep], proba[keep], proba[keep], 1, [0, 1])
    _assert_close(perf.metrics, ref)

    yr = pd.Series([1.5, pd.NA, 2.0, 4.0], dtype="Float64")
    perf_r = performance("regression", yr, np.array([1.0, 9.9, 2.5, 3.0]))
    assert perf_r.task == "regressor" and perf_r.labelled_rows == 3
    assert perf_r.metrics["mae"] == pytest.approx((0.5 + 0.5 + 1.0) / 3)

    empty = performance("classifier", [None, None], [1, 0], classes=[0, 1])
    assert empty.labelled_rows == 0 and empty.metrics == {}
    with pytest.raises(ValueError, match="task"):
        performance("ranking", [1], [1])


def test_null_mask() -> None:
    values = np.array([1, None, np.nan, pd.NA, pd.NaT, "a", 0], dtype=object)
    assert null_mask(values).tolist() == [False, True, True, True, True, False, False]
    assert null_mask(np.array([1.0, np.nan])).tolist() == [False, True]
    assert null_mask(np.array([1, 2])).tolist() == [False, False]


def test_performance_serialises_in_a_drift_result() -> None:
    perf = cbpe(np.array([0.2, 0.7, 0.9]), [0, 1])
    result = DriftResult(
        model="m", version=1, window_start=None, window_end=None, reference_rows=0, current_rows=3,
        columns=[], estimated_performance=perf,
    )  # fmt: skip
    back = DriftResult.from_dict(json.loads(result.to_json()))
    assert back.estimated_performance == perf and back.estimated_performance.estimated


# -------------------------------------------------------------------------------------- isotonic


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pav_matches_sklearn_isotonic(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    x = np.round(rng.uniform(0, 1, n), 2)  # repeated x values
    y = (rng.uniform(size=n) < x**2).astype(float) + rng.normal(0, 0.1, n)
    w = rng.uniform(0.5, 2, n) if seed == 2 else None
    fit = isotonic_regression(x, y, w)
    sk = IsotonicRegression(out_of_bounds="clip").fit(x, y, sample_weight=w)
    x_new = np.concatenate([rng.uniform(-0.1, 1.1, 500), x])
    np.testing.assert_allclose(fit(x_new), sk.predict(x_new), atol=1e-10)
    assert np.all(np.diff(fit.y) >= 0)


# ------------------------------------------------------------------------------------------ CBPE


def _realized(y: np.ndarray, pred: np.ndarray, score: np.ndarray) -> dict[str, float]:
    m = classification_metrics(y, pred, score, classes=[0, 1])
    return {k: m[k] for k in CBPE_METRICS}


def _assert_tracks(est: Performance, realized: dict[str, float], tol: float = 0.01) -> None:
    assert est.estimated and est.task == "classifier"
    assert set(est.metrics) == set(realized)
    for key, value in realized.items():
        assert abs(est.metrics[key] - value) < tol, (key, est.metrics[key], value)


def test_cbpe_calibrated_binary() -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    p = rng.beta(2, 3, n)
    y = (rng.uniform(size=n) < p).astype(int)  # labels drawn from the predicted probability
    pred = (p >= 0.5).astype(int)
    est = cbpe(p, [0, 1])
    assert est.labelled_rows == n
    _assert_tracks(est, _realized(y, pred, p))
    # a 2-D proba and explicit predictions give the same estimate
    assert cbpe(np.stack([1 - p, p], axis=1), [0, 1], y_pred=pred).metrics == est.metrics


def test_cbpe_tracks_covariate_shift() -> None:
    rng = np.random.default_rng(1)
    n = 200_000
    realized, estimated = [], []
    for a, b in ((2, 5), (5, 2), (0.5, 0.5)):  # very different score distributions, same P(y|x)
        p = rng.beta(a, b, n)
        y = (rng.uniform(size=n) < p).astype(int)
        r = _realized(y, (p >= 0.5).astype(int), p)
        est = cbpe(p, [0, 1])
        _assert_tracks(est, r)
        realized.append(r)
        estimated.append(est.metrics)
    # the shift moves the metrics a lot, and the estimates move with them
    assert abs(realized[0]["precision"] - realized[1]["precision"]) > 0.1
    assert abs(estimated[0]["precision"] - estimated[1]["precision"]) > 0.1


def test_cbpe_miscalibrated_then_calibrated() -> None:
    rng = np.random.default_rng(2)
    n = 200_000

    def sample(size: int) -> tuple[np.ndarray, np.ndarray]:
        p = rng.beta(2, 2, size)
        return p**2, (rng.uniform(size=size) < p).astype(int)  # the model reports p**2

    ref_score, ref_y = sample(n)
    score, y = sample(n)
    pred = (score >= 0.5).astype(int)
    realized = _realized(y, pred, score)
    raw = cbpe(score, [0, 1])
    off = max(abs(raw.metrics[k] - realized[k]) for k in ("accuracy", "precision", "recall", "f1"))
    assert off > 0.05  # uncalibrated scores mislead CBPE
    calibrator = fit_calibrator(ref_score, ref_y)
    _assert_tracks(cbpe(score, [0, 1], calibrate=calibrator), realized, tol=0.015)
    # the calibrated estimate of the AUC keeps the model's own ranking
    assert cbpe(score, [0, 1], calibrate=calibrator).metrics["roc_auc"] == pytest.approx(
        realized["roc_auc"], abs=0.01
    )


def test_cbpe_multiclass() -> None:
    rng = np.random.default_rng(4)
    n = 200_000
    p = _dirichlet(rng, n, 3, alpha=0.7)
    y = (rng.uniform(size=(n, 1)) > np.cumsum(p, axis=1)).sum(axis=1)  # y ~ Categorical(p)
    pred = p.argmax(axis=1)
    m = classification_metrics(y, pred, p, classes=[0, 1, 2])
    realized = {k: m[k] for k in CBPE_METRICS}
    _assert_tracks(cbpe(p, [0, 1, 2]), realized)

    # miscalibrated (sharpened) then recalibrated per class on a labelled reference
    def sharpen(q: np.ndarray) -> np.ndarray:
        s = q**3
        return s / s.sum(axis=1, keepdims=True)

    p_ref = _dirichlet(rng, n, 3, alpha=0.7)
    y_ref = (rng.uniform(size=(n, 1)) > np.cumsum(p_ref, axis=1)).sum(axis=1)
    raw = cbpe(sharpen(p), [0, 1, 2])
    assert abs(raw.metrics["accuracy"] - realized["accuracy"]) > 0.05
    calibrator = fit_calibrator(sharpen(p_ref), y_ref)
    _assert_tracks(cbpe(sharpen(p), [0, 1, 2], calibrate=calibrator), realized, tol=0.015)


def test_cbpe_edge_cases() -> None:
    with pytest.raises(ValueError, match="cannot estimate"):
        cbpe([0.5], [0, 1], metrics=["log_loss"])
    only = cbpe(np.array([0.3, np.nan, 0.8]), ["a", "b"], metrics=["accuracy"])
    assert only.labelled_rows == 2 and list(only.metrics) == ["accuracy"]
    assert only.metrics["accuracy"] == pytest.approx((0.7 + 0.8) / 2)
    certain = cbpe(np.ones(10), [0, 1])  # every row surely positive: AUC undefined, left out
    assert "roc_auc" not in certain.metrics and certain.metrics["precision"] == 1.0
    assert cbpe(np.empty(0), [0, 1]).metrics == {}


def test_cbpe_auc_is_the_area_under_the_expected_roc_curve() -> None:
    # NannyML: rows by descending score, expected TPR/FPR from cumulative sums of the calibrated
    # probabilities, trapezoidal area. Ties in the score enter together (one diagonal step).
    rng = np.random.default_rng(8)
    n = 5000
    score = np.round(rng.uniform(size=n), 2)
    cal = np.clip(score + rng.normal(0, 0.05, n), 0, 1)  # some calibration map, not monotone
    order = np.argsort(-score, kind="mergesort")
    s, c = score[order], cal[order]
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    tps = np.r_[0, np.cumsum(c)[last_of_tie]]
    fps = np.r_[0, np.cumsum(1 - c)[last_of_tie]]
    expected = skm.auc(fps / fps[-1], tps / tps[-1])
    est = cbpe(score, [0, 1], metrics=["roc_auc"], calibrate=lambda q: np.stack([1 - cal, cal], axis=1))
    assert est.metrics["roc_auc"] == pytest.approx(expected, abs=1e-12)
