"""Confidence-based performance estimation (CBPE, as NannyML does): a classifier's expected
accuracy, precision, recall, F1 and ROC AUC from its predicted probabilities alone, optionally after
an isotonic calibration fitted on a labelled reference (see :func:`fit_calibrator`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from modelport.monitoring.arrays import (
    as_float,
    column_array,
    encode_labels,
    positive_index,
    proba_2d,
    ratio,
    resolve_classes,
)
from modelport.monitoring.performance import (
    CBPE_METRICS,
    CLASSIFIER,
    Calibrator,
    FloatArray,
    null_mask,
)
from modelport.monitoring.results import Performance

# --------------------------------------------------------------------------------------------------
# isotonic regression (pool adjacent violators) and calibration


@dataclass(frozen=True)
class IsotonicFit:
    """A fitted non-decreasing step function: ``y`` at the distinct sorted ``x``; in between linear
    interpolation, outside clipped to the end values (scikit-learn's ``IsotonicRegression(
    out_of_bounds="clip")``)."""

    x: FloatArray
    y: FloatArray

    def __call__(self, values: ArrayLike) -> FloatArray:
        v = np.asarray(values, dtype=np.float64)
        return np.interp(v, self.x, self.y)


def isotonic_regression(x: ArrayLike, y: ArrayLike, weights: ArrayLike | None = None) -> IsotonicFit:
    """Least-squares non-decreasing fit of ``y`` on ``x`` by pool-adjacent-violators.

    Rows sharing an ``x`` are first pooled into their weighted mean (as scikit-learn does), then
    adjacent blocks whose means decrease are merged into their weighted mean until none does.
    """
    xa = np.asarray(x, dtype=np.float64).ravel()
    ya = np.asarray(y, dtype=np.float64).ravel()
    wa = np.ones_like(xa) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if not len(xa) == len(ya) == len(wa):
        raise ValueError("x, y and weights must have the same length")
    ok = ~(np.isnan(xa) | np.isnan(ya) | np.isnan(wa)) & (wa > 0)
    xa, ya, wa = xa[ok], ya[ok], wa[ok]
    if len(xa) == 0:
        raise ValueError("isotonic regression needs at least one row")
    order = np.argsort(xa, kind="mergesort")
    xs, ys, ws = xa[order], ya[order], wa[order]
    ux, start = np.unique(xs, return_index=True)
    w_sum = np.add.reduceat(ws, start)
    y_mean = np.add.reduceat(ws * ys, start) / w_sum

    values: list[float] = []
    wts: list[float] = []
    sizes: list[int] = []
    for v, w in zip(y_mean.tolist(), w_sum.tolist(), strict=True):
        size = 1
        while values and values[-1] > v:
            pv, pw = values.pop(), wts.pop()
            size += sizes.pop()
            v = (pv * pw + v * w) / (pw + w)
            w = pw + w
        values.append(v)
        wts.append(w)
        sizes.append(size)
    fitted = np.repeat(np.asarray(values, dtype=np.float64), sizes)
    return IsotonicFit(x=ux, y=fitted)


class IsotonicCalibrator:
    """Maps a model's predicted probabilities to calibrated ones (see :func:`fit_calibrator`).

    Called with an ``(n, k)`` array it returns ``(n, k)``; a binary calibrator also accepts the 1-D
    probability of the positive class and returns a 1-D array.
    """

    def __init__(self, classes: NDArray[Any], fits: list[IsotonicFit | None]) -> None:
        self.classes = classes
        self.fits = fits  # binary: [None, fit of P(classes[1])]; multiclass: one per column

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2

    def __call__(self, proba: ArrayLike) -> FloatArray:
        p = np.asarray(proba, dtype=np.float64)
        if self.binary:
            fit = self.fits[1]
            assert fit is not None
            if p.ndim == 1:
                return fit(p)
            if p.ndim == 2 and p.shape[1] == 2:
                c1 = fit(p[:, 1])
                return np.stack([1 - c1, c1], axis=1)
            raise ValueError(f"a binary calibrator takes (n,) or (n, 2) probabilities, got {p.shape}")
        if p.ndim != 2 or p.shape[1] != len(self.classes):
            raise ValueError(f"expected probabilities of shape (n, {len(self.classes)}), got {p.shape}")
        out = np.empty_like(p)
        for j, fit in enumerate(self.fits):
            out[:, j] = p[:, j] if fit is None else fit(p[:, j])
        total = out.sum(axis=1, keepdims=True)
        bad = total[:, 0] <= 0
        out[bad] = p[bad]
        total[bad] = 1.0
        return np.asarray(out / total, dtype=np.float64)


def fit_calibrator(
    ref_proba: ArrayLike, ref_labels: ArrayLike, classes: ArrayLike | None = None
) -> IsotonicCalibrator:
    """Fit isotonic calibration of predicted probabilities on a labelled reference (NannyML's
    calibration step for CBPE; the reference must not be the model's training data).

    ``ref_proba`` is ``(n, k)`` with columns in the order of ``classes`` (default: the sorted
    labels, which must then number ``k``), or 1-D for a binary model: the probability of
    ``classes[1]`` (default classes: ``[0, 1]`` for 0/1 or boolean labels). Binary: one isotonic fit
    of the positive column, the other is its complement. Multiclass: one-vs-rest isotonic fit per
    column, then rows are renormalised to sum to one. Rows with a missing label or probability are
    ignored.
    """
    labels = column_array(ref_labels, "ref_labels")
    p = as_float(np.asarray(ref_proba)).astype(np.float64)
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.shape[0] != len(labels):
        raise ValueError(f"ref_proba has {p.shape[0]} rows, ref_labels {len(labels)}")
    keep = ~null_mask(labels)
    keep &= ~np.isnan(p).any(axis=1) if p.ndim == 2 else ~np.isnan(p)
    labels, p = labels[keep], p[keep]
    k = 2 if p.ndim == 1 else p.shape[1]
    if classes is not None:
        cls = resolve_classes(classes)
    else:
        cls = np.unique(labels) if len(labels) else np.asarray([])
        if p.ndim == 1 and len(cls) <= 2 and set(cls.tolist()) <= {0, 1}:
            cls = np.asarray([False, True]) if labels.dtype == bool else np.asarray([0, 1])
        if len(cls) != k:
            raise ValueError(f"cannot tell the {k} classes from the labels {cls.tolist()}: pass classes")
    if len(cls) != k:
        raise ValueError(f"{len(cls)} classes for probabilities with {k} columns")
    if len(labels) == 0:
        raise ValueError("no labelled reference rows to calibrate on")
    t = encode_labels(labels, cls)
    if k == 2:
        col = p if p.ndim == 1 else p[:, 1]
        return IsotonicCalibrator(cls, [None, isotonic_regression(col, t == 1)])
    fits: list[IsotonicFit | None] = [isotonic_regression(p[:, j], t == j) for j in range(k)]
    return IsotonicCalibrator(cls, fits)


# --------------------------------------------------------------------------------------------------
# CBPE


def _expected_auc(score: NDArray[Any], p: FloatArray) -> float | None:
    """Expected ROC AUC when row i is positive with probability p[i], rows ranked by ``score``.

    The ROC curve is traced with expected TPR = cum. Σp / Σp and FPR = cum. Σ(1-p) / Σ(1-p) over the
    thresholds (distinct scores, descending; rows with equal scores enter together) and its area
    taken by trapezoids — NannyML's estimate — computed here in closed form:
    Σ_g P_g (N_below_g + N_g / 2) / (ΣP · ΣN) over the score groups g.
    """
    if len(p) == 0:
        return None
    _, group = np.unique(score, return_inverse=True)
    pos = np.bincount(group.ravel(), weights=p)
    neg = np.bincount(group.ravel(), weights=1.0 - p)
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos <= 0 or total_neg <= 0:
        return None
    neg_below = np.cumsum(neg) - neg
    return float(np.sum(pos * (neg_below + 0.5 * neg)) / (total_pos * total_neg))


def _expected_counts(pred: NDArray[np.bool_], p: FloatArray) -> tuple[float, float, float, float]:
    """Expected (TP, FP, FN, TN) for the one-vs-rest problem of one class."""
    tp = float(p[pred].sum())
    fp = float((1.0 - p[pred]).sum())
    fn = float(p[~pred].sum())
    tn = float((1.0 - p[~pred]).sum())
    return tp, fp, fn, tn


def cbpe(
    proba: ArrayLike,
    classes: ArrayLike,
    metrics: Sequence[str] | Iterable[str] = CBPE_METRICS,
    threshold: float = 0.5,
    calibrate: Calibrator | None = None,
    y_pred: ArrayLike | None = None,
    positive: Any = None,
) -> Performance:
    """Estimate a classifier's performance from its predicted probabilities, without labels
    (confidence-based performance estimation, CBPE, after NannyML).

    ``proba`` is ``(n, k)`` with columns in the order of ``classes`` (1-D: the probability of
    ``classes[1]``). ``calibrate`` (e.g. from :func:`fit_calibrator` on a labelled reference) maps
    them to calibrated probabilities ``c``; without it they are taken as calibrated. The model's
    predictions are ``y_pred`` if given, else — binary — ``proba[:, positive] >= threshold`` or —
    multiclass — the arg-max class, always from the *uncalibrated* scores (what the model decided).

    Binary, with ``c`` = calibrated probability of the positive class (``positive``, default
    ``classes[1]``), the expected confusion matrix is TP = Σ c over predicted positives,
    FP = Σ (1 − c) over predicted positives, FN = Σ c over predicted negatives, TN = Σ (1 − c) over
    predicted negatives; accuracy = (TP + TN)/n, precision = TP/(TP + FP), recall = TP/(TP + FN),
    F1 = 2TP/(2TP + FP + FN) (0.0 for a zero denominator). ROC AUC: rows ranked by the raw score,
    expected TPR/FPR at each distinct score from the calibrated ``c``, area by trapezoids.

    Multiclass: each metric one-vs-rest per class (its column of ``c``, predicted = the rows
    predicted as that class) and **macro averaged**; accuracy is the mean calibrated probability of
    the predicted class. An undefined ROC AUC (a class expected to have no positives or no negatives)
    is left out of the average, or out of the result.

    Estimates are unbiased only if the calibrated probabilities are right, i.e. no concept drift
    (P(y|x) unchanged); covariate shift is fine. Rows with a missing probability are ignored;
    ``labelled_rows`` of the result is the number of rows the estimate covers (none of them labelled).
    """
    wanted = list(metrics)
    unknown = [m for m in wanted if m not in CBPE_METRICS]
    if unknown:
        raise ValueError(f"CBPE cannot estimate {unknown}; it estimates {list(CBPE_METRICS)}")
    cls = resolve_classes(classes)
    k = len(cls)
    if k < 2:
        raise ValueError("CBPE needs at least two classes")
    raw_in = np.asarray(proba)
    raw = proba_2d(raw_in, raw_in.shape[0], k).astype(np.float64)
    keep = np.asarray(~np.isnan(raw).any(axis=1), dtype=bool)
    pred_idx: NDArray[np.intp] | None = None
    if y_pred is not None:
        yp = column_array(y_pred, "y_pred")
        if len(yp) != len(keep):
            raise ValueError(f"y_pred has {len(yp)} rows, proba {len(keep)}")
        keep &= ~null_mask(yp)
        pred_idx = encode_labels(yp[keep], cls)
    raw = raw[keep]
    n = raw.shape[0]
    if n == 0:
        return Performance(task=CLASSIFIER, metrics={}, labelled_rows=0, estimated=True)
    cal = raw if calibrate is None else np.asarray(calibrate(raw), dtype=np.float64)
    if cal.shape != raw.shape:
        raise ValueError(f"calibrate returned shape {cal.shape} for probabilities of shape {raw.shape}")
    cal = np.clip(cal, 0.0, 1.0)

    out: dict[str, float] = {}
    if k == 2:
        pos = positive_index(cls, positive)
        pred = raw[:, pos] >= threshold if pred_idx is None else pred_idx == pos
        c = cal[:, pos]
        tp, fp, fn, tn = _expected_counts(pred, c)
        values = {
            "accuracy": (tp + tn) / n,
            "precision": ratio(tp, tp + fp),
            "recall": ratio(tp, tp + fn),
            "f1": ratio(2 * tp, 2 * tp + fp + fn),
        }
        auc = _expected_auc(raw[:, pos], c) if "roc_auc" in wanted else None
    else:
        if pred_idx is None:
            pred_idx = np.argmax(raw, axis=1).astype(np.intp)
        rows = np.arange(n)
        hit = pred_idx >= 0
        accuracy = float(cal[rows[hit], pred_idx[hit]].sum() / n)
        prec, rec, f1s = [], [], []
        for j in range(k):
            tp, fp, fn, _ = _expected_counts(pred_idx == j, cal[:, j])
            prec.append(ratio(tp, tp + fp))
            rec.append(ratio(tp, tp + fn))
            f1s.append(ratio(2 * tp, 2 * tp + fp + fn))
        values = {
            "accuracy": accuracy,
            "precision": float(np.mean(prec)),
            "recall": float(np.mean(rec)),
            "f1": float(np.mean(f1s)),
        }
        auc = None
        if "roc_auc" in wanted:
            per_class = [_expected_auc(raw[:, j], cal[:, j]) for j in range(k)]
            defined = [a for a in per_class if a is not None]
            auc = float(np.mean(defined)) if defined else None
    for m in wanted:
        if m == "roc_auc":
            if auc is not None:
                out[m] = auc
        else:
            out[m] = float(values[m])
    return Performance(task=CLASSIFIER, metrics=out, labelled_rows=n, estimated=True)
