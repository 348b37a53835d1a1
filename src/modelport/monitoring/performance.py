"""Performance of a deployed model per window: realized metrics once labels have arrived, and
confidence-based performance estimation (CBPE) for classifiers while they have not.

Everything here is plain numpy (scikit-learn is a model framework in modelport, not a dependency of
monitoring). The realized metrics reproduce scikit-learn 1.9's definitions (tests check them against
``sklearn.metrics``); where they differ on purpose it is said below.

* :func:`classification_metrics` — accuracy, precision, recall, F1, ROC AUC, log loss.
* :func:`regression_metrics` — MAE, RMSE, R².
* :func:`performance` — drops rows without a label and wraps either in a :class:`Performance`.
* :func:`cbpe` — estimated accuracy/precision/recall/F1/ROC AUC from predicted probabilities alone
  (NannyML's CBPE), optionally after :func:`fit_calibrator` (isotonic regression on a labelled
  reference) has calibrated them.

Undefined metrics (ROC AUC when only one class has labels, R² on fewer than two rows) are **left
out** of the returned dict rather than set to NaN: NaN is not valid JSON, and "no value" is what a
report should show.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from modelport.monitoring.arrays import (
    column_array,
    encode_labels,
    positive_index,
    proba_2d,
    ratio,
    resolve_classes,
)
from modelport.monitoring.results import Performance

CLASSIFIER = "classifier"
REGRESSOR = "regressor"
_TASKS = {
    "classifier": CLASSIFIER,
    "classification": CLASSIFIER,
    "regressor": REGRESSOR,
    "regression": REGRESSOR,
}
CBPE_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")

FloatArray = NDArray[np.float64]
Calibrator = Callable[[ArrayLike], NDArray[np.floating[Any]]]

__all__ = [
    "CBPE_METRICS",
    "CLASSIFIER",
    "REGRESSOR",
    "classification_metrics",
    "null_mask",
    "performance",
    "regression_metrics",
]


# --------------------------------------------------------------------------------------------------
# helpers


def _is_null(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float | np.floating):
        return bool(np.isnan(v))
    if isinstance(v, np.datetime64 | np.timedelta64):
        return bool(np.isnat(v))
    # pandas.NA / NaT without importing pandas
    return type(v).__name__ in ("NAType", "NaTType")


def null_mask(values: ArrayLike) -> NDArray[np.bool_]:
    """True where a value is missing: None, NaN, NaT or pandas.NA (any dtype, numpy only)."""
    arr = np.asarray(values)
    if arr.dtype.kind in "fc":
        return np.asarray(np.isnan(arr), dtype=bool)
    if arr.dtype.kind in "mM":
        return np.asarray(np.isnat(arr), dtype=bool)
    if arr.dtype.kind == "O":
        return np.fromiter((_is_null(v) for v in arr.ravel()), dtype=bool, count=arr.size).reshape(arr.shape)
    return np.zeros(arr.shape, dtype=bool)


def _average_ranks(x: NDArray[Any]) -> FloatArray:
    """Ranks 1..n, tied values sharing the mean of their ranks (scipy.stats.rankdata 'average')."""
    n = len(x)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = xs[1:] != xs[:-1]
    group = np.cumsum(new_group) - 1
    counts = np.bincount(group)
    average = np.cumsum(counts) - (counts - 1) / 2.0
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = average[group]
    return ranks


def roc_auc(y: NDArray[np.bool_], score: ArrayLike) -> float | None:
    """Binary ROC AUC by rank statistics (Mann–Whitney U / (n_pos·n_neg)); tied scores count ½,
    which is what the trapezoidal area under scikit-learn's ``roc_curve`` gives. None when only one
    class is present (undefined)."""
    y = np.asarray(y, dtype=bool)
    s = np.asarray(score)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(s)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


# --------------------------------------------------------------------------------------------------
# realized metrics


def classification_metrics(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    proba: ArrayLike | None = None,
    classes: ArrayLike | None = None,
    positive: Any = None,
) -> dict[str, float]:
    """Realized classification metrics (all rows must carry a label; see :func:`performance`).

    ``classes`` are the model's classes in the order of ``proba``'s columns (``classes_`` of a
    scikit-learn model); by default the sorted union of the labels and predictions. A 1-D ``proba``
    is the probability of ``classes[1]``.

    * ``accuracy``: share of rows with ``y_pred == y_true``.
    * ``precision``, ``recall``, ``f1``: with two classes (or fewer), for the positive class —
      ``positive`` if given, else ``classes[1]`` (scikit-learn's ``average="binary"``); with more,
      the **macro average** over all ``classes`` (unweighted mean of the per-class values, classes
      absent from the window included, like ``average="macro", labels=classes``). A zero
      denominator gives 0.0 (scikit-learn's ``zero_division`` default).
    * ``roc_auc`` (needs ``proba``): binary, from ``proba[:, positive]`` by rank statistics (ties
      count ½, as ``roc_auc_score``); multiclass, one-vs-rest macro average (``multi_class="ovr",
      average="macro"``). A class whose one-vs-rest AUC is undefined (no labelled rows of it, or
      only of it) is left out of the average — scikit-learn would return NaN; if no class has a
      defined AUC the key is absent.
    * ``log_loss`` (needs ``proba``): mean of ``-log p(true class)`` with ``p`` clipped to
      ``[eps, 1 - eps]``, ``eps = np.finfo(proba.dtype).eps``. As in scikit-learn ≥ 1.5 rows are not
      renormalised (1.9 only warns when they do not sum to one).

    Labels that are not in ``classes`` count as wrong for accuracy and as false negatives / false
    positives for precision and recall (as scikit-learn with ``labels=classes``); having no
    probability, their rows are left out of ``roc_auc`` and ``log_loss``.
    """
    yt = column_array(y_true, "y_true")
    yp = column_array(y_pred, "y_pred")
    if len(yt) != len(yp):
        raise ValueError(f"y_true has {len(yt)} rows, y_pred {len(yp)}")
    n = len(yt)
    if n == 0:
        return {}
    cls = resolve_classes(classes, yt, yp)
    k = len(cls)
    t = encode_labels(yt, cls)
    p = encode_labels(yp, cls)

    out: dict[str, float] = {"accuracy": float(np.mean(np.asarray(yt == yp, dtype=bool)))}

    known_t = t >= 0
    tp = np.bincount(t[known_t & (t == p)], minlength=k).astype(np.float64)
    pred_count = np.bincount(p[p >= 0], minlength=k).astype(np.float64)
    true_count = np.bincount(t[known_t], minlength=k).astype(np.float64)
    fp = pred_count - tp
    fn = true_count - tp
    precision = [ratio(tp[i], tp[i] + fp[i]) for i in range(k)]
    recall = [ratio(tp[i], tp[i] + fn[i]) for i in range(k)]
    f1 = [ratio(2 * tp[i], 2 * tp[i] + fp[i] + fn[i]) for i in range(k)]
    binary = k <= 2
    if binary:
        pos = positive_index(cls, positive)
        if k:
            out["precision"], out["recall"], out["f1"] = precision[pos], recall[pos], f1[pos]
        else:
            out["precision"] = out["recall"] = out["f1"] = 0.0
    else:
        out["precision"] = float(np.mean(precision))
        out["recall"] = float(np.mean(recall))
        out["f1"] = float(np.mean(f1))

    if proba is not None and k >= 2:  # with fewer classes known, proba's columns cannot be mapped
        pr = proba_2d(proba, n, k)
        rows = np.flatnonzero(known_t)
        tr = t[rows]
        if binary:
            auc = roc_auc(tr == pos, pr[rows, pos])
        else:
            per_class = [roc_auc(tr == c, pr[rows, c]) for c in range(k)]
            defined = [a for a in per_class if a is not None]
            auc = float(np.mean(defined)) if defined else None
        if auc is not None:
            out["roc_auc"] = auc
        if len(rows):
            eps = np.finfo(pr.dtype).eps
            p_true = np.clip(pr[rows, tr], eps, 1 - eps)
            out["log_loss"] = float(-np.mean(np.log(p_true.astype(np.float64))))
    return out


def regression_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """``mae``, ``rmse`` and ``r2`` (coefficient of determination, scikit-learn's ``r2_score`` with
    ``force_finite=True``: 1.0 for a perfect prediction of a constant target, 0.0 for an imperfect
    one). ``r2`` is left out on fewer than two rows (scikit-learn: NaN); an empty input gives {}."""
    yt = column_array(y_true, "y_true").astype(np.float64)
    yp = column_array(y_pred, "y_pred").astype(np.float64)
    if len(yt) != len(yp):
        raise ValueError(f"y_true has {len(yt)} rows, y_pred {len(yp)}")
    if len(yt) == 0:
        return {}
    err = yt - yp
    out = {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
    }
    if len(yt) >= 2:
        num = float(np.sum(err**2))
        den = float(np.sum((yt - np.average(yt)) ** 2))
        if num == 0:
            out["r2"] = 1.0
        elif den == 0:
            out["r2"] = 0.0
        else:
            out["r2"] = 1.0 - num / den
    return out


def performance(
    task: str,
    y_true: ArrayLike,
    y_pred: ArrayLike,
    proba: ArrayLike | None = None,
    classes: ArrayLike | None = None,
    positive: Any = None,
) -> Performance:
    """Realized performance of one window, the labels already joined to the predictions on the key.

    Rows whose label is missing (None, NaN, NaT, pandas.NA — not arrived yet) are dropped first;
    ``labelled_rows`` is the number left. ``task`` is ``"classifier"`` or ``"regressor"``
    (``"classification"``/``"regression"`` are accepted too).
    """
    kind = _TASKS.get(task.lower())
    if kind is None:
        raise ValueError(f"task must be 'classifier' or 'regressor', got {task!r}")
    yt = column_array(y_true, "y_true")
    yp = column_array(y_pred, "y_pred")
    if len(yt) != len(yp):
        raise ValueError(f"y_true has {len(yt)} rows, y_pred {len(yp)}")
    keep = ~null_mask(yt)
    yt, yp = yt[keep], yp[keep]
    if kind == REGRESSOR:
        return Performance(task=kind, metrics=regression_metrics(yt, yp), labelled_rows=len(yt))
    pr = None
    if proba is not None:
        pr = np.asarray(proba)
        if pr.shape[0] != len(keep):
            raise ValueError(f"proba has {pr.shape[0]} rows, y_true {len(keep)}")
        pr = pr[keep]
    metrics = classification_metrics(yt, yp, pr, classes=classes, positive=positive)
    return Performance(task=kind, metrics=metrics, labelled_rows=len(yt))
