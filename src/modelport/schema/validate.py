"""Validate a batch against a signature and coerce it safely, vectorised per column: every input
kind (frames, records, column dicts, matrices, tensors) to a :class:`~modelport.schema.batch.Batch`,
through the fastest path its types allow. Safe coercions only (:mod:`modelport.schema.coerce`).
Every problem in a batch is reported in one error that names the column, the expected type and
what arrived.
"""

from __future__ import annotations

import warnings
from itertools import chain
from typing import Any

import numpy as np

from modelport.errors import ExtraColumnsWarning, SchemaMismatch
from modelport.schema.batch import Batch
from modelport.schema.coerce import (
    NUMPY_DTYPES,
    ColumnError,
    coerce_column,
    int_cast,
)
from modelport.schema.frames import column_arrays, kind_of, object_array
from modelport.schema.signature import ColumnSpec, Signature, TensorSpec

# Python types whose values numpy converts to the column's type exactly as the inferring path
# below would (bool is not int here: a bool in an integer column takes that path; None is a
# missing float, NaN, as there)
_EXACT_TYPES: dict[str, frozenset[type]] = {
    "float64": frozenset((float, int, type(None))),
    "float32": frozenset((float, int, type(None))),
    "int64": frozenset((int,)),
    "bool": frozenset((bool,)),
}
_STR = frozenset((str,))
_STR_OR_NONE = frozenset((str, type(None)))


def prepare(data: Any, signature: Signature) -> Batch:
    """Validate ``data`` against ``signature`` and return a :class:`Batch`.

    >>> from modelport.schema import Signature
    >>> sig = Signature.from_dict({"a": "float64"})
    >>> prepare([{"a": 1}], sig).columns["a"].dtype
    dtype('float64')
    """
    if signature.tensor is not None:
        return _prepare_tensor(data, signature)
    kind = kind_of(data)
    if kind in ("pandas", "numpy"):
        fast = (_prepare_typed_frame if kind == "pandas" else _prepare_matrix)(data, signature)
        if fast is not None:
            return fast
    names = signature.names
    if kind in ("records", "dict"):
        plain = _plain_columns(data, kind, names)
        if plain is not None:
            return _prepare_plain(plain, signature)
    arrays, extra, n_rows = column_arrays(data, names)
    missing = [n for n in names if n not in arrays]
    if missing:
        raise SchemaMismatch(
            f"Missing {len(missing)} input column(s): {', '.join(missing)}. "
            f"The model expects {len(names)}: {_shorten(names)}.",
            [{"column": n, "error": "missing"} for n in missing],
        )
    if extra:
        _warn_extra(extra)
    out: dict[str, np.ndarray] = {}
    problems: list[dict[str, object]] = []
    unchanged = True
    for spec in signature.columns or ():
        arr = arrays[spec.name]
        try:
            coerced = coerce_column(arr, spec)
        except ColumnError as exc:
            problems.append({"column": spec.name, "expected": spec.type, "error": str(exc)})
            continue
        unchanged = unchanged and coerced is arr
        out[spec.name] = coerced
    if problems:
        lines = "; ".join(f"column {p['column']!r}: {p['error']}" for p in problems)
        raise SchemaMismatch(f"Input does not match the signature: {lines}.", problems)
    frame = None
    if unchanged and kind_of(data) == "pandas" and _frame_dtypes_fit(data, signature):
        frame = data if list(data.columns) == names else data[names]
    return Batch(signature, out, n_rows, frame=frame)


def _plain_columns(data: Any, kind: str, names: list[str]) -> list[list[Any]] | None:
    """The values of each signature column, in order, when ``data`` is JSON-shaped (row dicts, or
    a dict of equally long column lists) and has exactly the signature's columns; else None."""
    width = len(names)
    if kind == "records":
        if type(data) is not list or not data:
            return None
        for r in data:
            if type(r) is not dict or len(r) != width:
                return None
        try:
            if len(data) == 1:
                row = data[0]
                return [[row[n]] for n in names]
            return [[r[n] for r in data] for n in names]
        except KeyError:
            return None
    if type(data) is not dict or len(data) != width:
        return None
    try:
        cols = [data[n] for n in names]
    except KeyError:
        return None
    if not all(type(c) is list for c in cols) or len({len(c) for c in cols}) != 1:
        return None
    return cols


def _prepare_plain(values: list[list[Any]], signature: Signature) -> Batch:
    """Validate plain Python column lists: one numpy conversion per column where its values are
    all of a fitting kind; a column with anything else (nulls, mixed or wrong kinds) takes the
    per-value path of :func:`coerce_column`, with the same result and the same errors."""
    t = signature.float_type
    if t is not None and values and set(map(type, chain.from_iterable(values))) <= _EXACT_TYPES[t]:
        # every column of one float type and every value a number or None: one matrix, one call
        try:
            matrix = np.array(values, dtype=NUMPY_DTYPES[t]).T
        except OverflowError:  # an integer beyond float range: the per-column path names it
            pass
        else:
            return Batch(signature, None, matrix.shape[0], matrix=matrix)
    out: dict[str, np.ndarray] = {}
    problems: list[dict[str, object]] = []
    for spec, col in zip(signature.columns or (), values, strict=True):
        arr = _plain_column(col, spec)
        if arr is None:
            try:
                arr = coerce_column(object_array(col), spec)
            except ColumnError as exc:
                problems.append({"column": spec.name, "expected": spec.type, "error": str(exc)})
                continue
        out[spec.name] = arr
    if problems:
        lines = "; ".join(f"column {p['column']!r}: {p['error']}" for p in problems)
        raise SchemaMismatch(f"Input does not match the signature: {lines}.", problems)
    return Batch(signature, out, len(values[0]) if values else 0)


def _plain_column(values: list[Any], spec: ColumnSpec) -> np.ndarray | None:
    """One column of plain values converted at once, or None when it needs the per-value path."""
    t = spec.type
    kinds = set(map(type, values))  # one C loop, not a Python one per value
    if t in ("string", "category"):
        if kinds == _STR:
            return object_array(values)
        if kinds <= _STR_OR_NONE:  # missing text is NaN, as coerce_column makes it
            return object_array([np.nan if v is None else v for v in values])
        return None
    if t == "datetime":
        return None
    exact = _EXACT_TYPES.get(t)
    if exact is not None and kinds <= exact:
        try:  # every value converts exactly to the column's type: one call, no inference
            return np.array(values, dtype=NUMPY_DTYPES[t])
        except OverflowError:  # an integer beyond int64: the checks below name it
            pass
    try:
        arr = np.array(values)
    except (ValueError, TypeError, OverflowError):
        return None
    kind = arr.dtype.kind
    if arr.ndim != 1 or kind not in "fiub":
        return None
    if t.startswith("float"):  # numbers and booleans widen to floats
        return arr if arr.dtype == NUMPY_DTYPES[t] else arr.astype(t)
    if t == "bool":
        return arr if kind == "b" else None
    if kind == "f":  # floats never become integers: the per-value path names the problem
        return None
    try:
        return int_cast(arr, t)
    except ColumnError:
        return None


def _warn_extra(extra: list[str]) -> None:
    warnings.warn(
        f"Ignoring column(s) the model does not use: {', '.join(extra[:20])}.",
        ExtraColumnsWarning,
        stacklevel=4,
    )


def _prepare_typed_frame(df: Any, signature: Signature) -> Batch | None:
    """The hot path for DataFrames whose dtypes already are the signature's: check dtypes only.

    Values need no scan: numpy int/bool columns cannot hold nulls and pandas string/categorical
    dtypes hold only text. Anything else (object columns, other dtypes) takes the full path.
    """
    import pandas as pd

    names = signature.names
    if signature.float_type is not None and df.columns.tolist() == names:
        # Every column is the same float type: one array for the frame (DataFrame.dtypes alone
        # costs more than that). Numeric columns come out as a numeric array (ints and bools
        # widen, as coerce_column does); any other column makes it an object array.
        arr = df.to_numpy()
        if arr.dtype.kind in "fiub":
            return Batch(signature, None, len(df), matrix=arr.astype(signature.float_type, copy=False))
        return None
    dtypes = dict(zip(df.columns, df.dtypes, strict=True))
    for spec in signature.columns or ():
        dtype = dtypes.get(spec.name)
        if dtype is None:
            return None
        t = spec.type
        if t == "string":
            ok = isinstance(dtype, pd.StringDtype)
        elif t == "category":
            ok = isinstance(dtype, pd.CategoricalDtype)
        elif t == "datetime":
            ok = isinstance(dtype, np.dtype) and dtype.kind == "M"
        else:  # comparing dtype objects; dtype.name is slow enough to matter here
            ok = isinstance(dtype, np.dtype) and dtype == NUMPY_DTYPES[t]
        if not ok:
            return None
    if len(dtypes) != len(names):
        _warn_extra([str(c) for c in df.columns if c not in signature._index])
    frame = df if list(df.columns) == names else df[names]
    return Batch(signature, None, len(df), frame=frame)


def _prepare_matrix(data: Any, signature: Signature) -> Batch | None:
    """The hot path for a 2-d numeric array whose columns all share one numeric type: no split."""
    arr = np.asarray(data)
    width = len(signature.names)
    if arr.ndim == 1 and arr.shape[0] == width:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != width:
        return None
    types = {c.type for c in signature.columns or ()}
    if len(types) != 1:
        return None
    t = types.pop()
    if arr.dtype.name != t:
        if not (t.startswith("float") and arr.dtype.kind in "iubf"):
            return None
        arr = arr.astype(t)
    return Batch(signature, None, arr.shape[0], matrix=arr)


def _frame_dtypes_fit(df: Any, signature: Signature) -> bool:
    import pandas as pd

    dtypes = dict(zip(df.columns, df.dtypes, strict=True))
    for spec in signature.columns or ():
        is_cat = isinstance(dtypes[spec.name], pd.CategoricalDtype)
        if (spec.type == "category") != is_cat:
            return False
    return True


def _shorten(names: list[str], limit: int = 12) -> str:
    more = f", … (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _prepare_tensor(data: Any, signature: Signature) -> Batch:
    spec: TensorSpec = signature.tensor  # type: ignore[assignment]
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError) as exc:
        raise SchemaMismatch(f"Expected an array of shape {spec.shape}, got {type(data).__name__}.") from exc
    if arr.dtype.kind == "O":
        raise SchemaMismatch(f"Expected a numeric array of {spec.dtype}, got mixed/object values.")
    if arr.ndim == len(spec.shape) - 1:
        arr = arr[None, ...]
    ok = arr.ndim == len(spec.shape) and all(
        want in (-1, got) for want, got in zip(spec.shape[1:], arr.shape[1:], strict=True)
    )
    if not ok:
        raise SchemaMismatch(f"Expected an array of shape {spec.shape}, got {arr.shape}.")
    target = np.dtype(spec.dtype)
    if arr.dtype != target:
        if target.kind in "iu" and arr.dtype.kind == "f":
            raise SchemaMismatch(f"Expected {target.name} values, got {arr.dtype.name}.")
        if target.kind in "iuf" and arr.dtype.kind not in "iufb":
            raise SchemaMismatch(f"Expected {target.name} values, got {arr.dtype.name}.")
        arr = arr.astype(target)
    return Batch(signature, n_rows=arr.shape[0], tensor=arr)
