"""Safe conversion of one column to its signature type: integers and booleans widen to floats,
narrower ints to wider ints, float64 <-> float32; floats never become integers and strings never
numbers. A column that does not fit raises :class:`ColumnError` naming what arrived."""

from __future__ import annotations

import numpy as np

from modelport.schema.signature import NUMERIC_TYPES, ColumnSpec

NUMPY_DTYPES = {t: np.dtype(t) for t in NUMERIC_TYPES}


INT_INFO = {t: np.iinfo(t) for t in NUMERIC_TYPES if t.startswith(("int", "uint"))}


class ColumnError(Exception):
    pass


def coerce_column(arr: np.ndarray, spec: ColumnSpec) -> np.ndarray:
    """Return ``arr`` itself when it already fits, a safe conversion, or raise."""
    t = spec.type
    kind = arr.dtype.kind
    if t.startswith("float"):
        if kind == "f":  # comparing dtype objects: dtype.name costs microseconds per call
            return arr if arr.dtype == NUMPY_DTYPES[t] else arr.astype(t)
        if kind in "iub":
            return arr.astype(t)
        if kind == "O":
            return objects_to_number(arr, t, allow_float=True)
        raise ColumnError(f"expected {t}, got {describe(arr)}")
    if t.startswith(("int", "uint")):
        if kind in "iub":
            return int_cast(arr, t)
        if kind == "O":
            return int_cast(objects_to_number(arr, "int64", allow_float=False), t)
        if kind == "f":
            if np.isnan(arr).any():
                raise ColumnError(f"expected {t} without missing values, got {count_nulls(arr)} null(s)")
            raise ColumnError(f"expected {t}, got {arr.dtype.name} (floats are not converted to integers)")
        raise ColumnError(f"expected {t}, got {describe(arr)}")
    if t == "bool":
        if kind == "b":
            return arr
        if kind == "O" and all(isinstance(v, (bool, np.bool_)) for v in arr):
            return arr.astype(bool)
        raise ColumnError(f"expected bool, got {describe(arr)}")
    if t in ("string", "category"):
        if kind == "O":
            return _objects_to_strings(arr)
        if kind in "US":
            return arr.astype(object)
        raise ColumnError(f"expected {t} (text), got {describe(arr)}")
    if t == "datetime":
        if kind == "M":
            return arr
        try:
            return np.asarray(arr, dtype="datetime64[ns]")
        except (ValueError, TypeError) as exc:
            raise ColumnError(f"expected datetime, got {describe(arr)}") from exc
    raise ColumnError(f"unsupported signature type {t}")


def objects_to_number(arr: np.ndarray, dtype: str, allow_float: bool) -> np.ndarray:
    bad: set[str] = set()
    has_float = False
    nulls = 0
    for v in arr:
        if v is None:
            nulls += 1
        elif isinstance(v, (bool, int, np.integer, np.bool_)):
            continue
        elif isinstance(v, (float, np.floating)):
            has_float = True
            if v != v:
                nulls += 1
        else:
            bad.add(type(v).__name__)
    if bad:
        raise ColumnError(f"expected {dtype}, got {', '.join(sorted(bad))} value(s)")
    if not allow_float:
        if nulls:
            raise ColumnError(f"expected {dtype} without missing values, got {nulls} null(s)")
        if has_float:
            raise ColumnError(f"expected {dtype}, got float values (floats are not converted)")
        try:
            return np.array(arr.tolist(), dtype=dtype)
        except OverflowError:
            raise ColumnError(f"values outside the range of {dtype}") from None
    try:
        return np.array([np.nan if v is None else v for v in arr], dtype=dtype)
    except OverflowError:
        raise ColumnError(f"values outside the range of {dtype}") from None


def _objects_to_strings(arr: np.ndarray) -> np.ndarray:
    """Keep text; normalise every kind of null (None, pd.NA, NaT, NaN) to ``np.nan``."""
    out = arr
    for i, v in enumerate(arr):
        if isinstance(v, str) or v is np.nan:
            continue
        if v is None or (isinstance(v, float) and v != v) or type(v).__name__ in _NULL_TYPES:
            if out is arr:
                out = arr.copy()
            out[i] = np.nan
            continue
        raise ColumnError(f"expected text, got {type(v).__name__} value(s)")
    return out


_NULL_TYPES = ("NAType", "NaTType")


def int_cast(arr: np.ndarray, t: str) -> np.ndarray:
    if arr.dtype == NUMPY_DTYPES[t]:
        return arr
    info = INT_INFO[t]
    if arr.size and arr.dtype.kind != "b" and (arr.min() < info.min or arr.max() > info.max):
        raise ColumnError(f"values outside the range of {t}")
    return arr.astype(t)


def describe(arr: np.ndarray) -> str:
    if arr.dtype.kind == "O":
        kinds = sorted({type(v).__name__ for v in arr[:100] if v is not None})
        return f"{'/'.join(kinds) or 'null'} values"
    return str(arr.dtype)


def count_nulls(arr: np.ndarray) -> int:
    return int(np.isnan(arr).sum())
