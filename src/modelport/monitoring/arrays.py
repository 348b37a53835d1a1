"""Label and probability arrays as the performance metrics and CBPE read them: one column of values,
floats, class indices, the classes, a 2-d probability matrix, safe ratios."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray


def column_array(values: ArrayLike, name: str) -> NDArray[Any]:
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def as_float(values: NDArray[Any]) -> NDArray[np.floating[Any]]:
    """Probabilities keep a floating dtype (its eps is what log loss clips with); others -> float64."""
    if values.dtype.kind == "f":
        return values
    return values.astype(np.float64)


def encode_labels(values: NDArray[Any], classes: NDArray[Any]) -> NDArray[np.intp]:
    """Index of each value in ``classes``; -1 for a value that is not one of them."""
    k = len(classes)
    if k == 0 or len(values) == 0:
        return np.full(len(values), -1, dtype=np.intp)
    try:
        order = np.argsort(classes, kind="stable")
        ordered = classes[order]
        pos = np.clip(np.searchsorted(ordered, values), 0, k - 1)
        hit = np.asarray(ordered[pos] == values, dtype=bool)
        if hit.shape != values.shape:
            raise TypeError("elementwise comparison failed")
        return np.where(hit, order[pos], -1).astype(np.intp)
    except (TypeError, ValueError):  # mixed / incomparable types: a dict lookup
        lookup: dict[Any, int] = {}
        for i, c in enumerate(classes.tolist()):
            lookup.setdefault(c, i)
        return np.fromiter((lookup.get(v, -1) for v in values.tolist()), dtype=np.intp, count=len(values))


def resolve_classes(classes: ArrayLike | None, *observed: NDArray[Any]) -> NDArray[Any]:
    if classes is not None:
        if isinstance(classes, np.ndarray):
            out = classes
        else:
            items = list(cast(Iterable[Any], classes))
            out = np.asarray(items)
            if out.dtype.kind == "U" and not all(isinstance(c, str) for c in items):
                out = np.asarray(items, dtype=object)  # mixed types: numpy would turn 1 into "1"
        if out.ndim != 1:
            raise ValueError("classes must be a flat sequence")
        return out
    present = [o for o in observed if len(o)]
    if not present:
        return np.asarray([])
    return np.unique(np.concatenate(present))


def proba_2d(proba: ArrayLike, n_rows: int, n_classes: int) -> NDArray[np.floating[Any]]:
    """Predicted probabilities as (n_rows, n_classes); a 1-D array is P(classes[1]) of a binary model."""
    p = as_float(np.asarray(proba))
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.ndim == 1:
        if n_classes > 2:
            raise ValueError(f"a 1-D proba needs a binary model; there are {n_classes} classes")
        p = np.stack([1 - p, p], axis=1)
    if p.ndim != 2 or p.shape[0] != n_rows:
        raise ValueError(f"proba must have {n_rows} rows, got shape {p.shape}")
    if p.shape[1] != n_classes:
        raise ValueError(
            f"proba has {p.shape[1]} columns but there are {n_classes} classes (pass the model's classes)"
        )
    return p


def ratio(num: float, den: float) -> float:
    """num/den, 0.0 when den is 0 (scikit-learn's zero_division default: warn, then 0)."""
    return float(num / den) if den else 0.0


def positive_index(classes: NDArray[Any], positive: Any) -> int:
    if positive is None:
        return 1 if len(classes) >= 2 else 0
    idx = encode_labels(np.asarray([positive]), classes)[0]
    if idx < 0:
        raise ValueError(f"positive class {positive!r} is not one of the classes {classes.tolist()}")
    return int(idx)


# --------------------------------------------------------------------------------------------------
# ROC AUC
