"""Accepting data at the edges: pandas, polars, pyarrow, numpy, dicts and lists of dicts.

Everything is turned once into either a pandas frame (for profiling and for models that want
one) or a mapping of column name -> numpy array (the hot path), never more than once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from modelport.errors import SchemaMismatch


def kind_of(data: Any) -> str:
    """Name the container type without importing optional libraries."""
    mod = type(data).__module__.split(".")[0]
    name = type(data).__name__
    if mod == "pandas" and name == "DataFrame":
        return "pandas"
    if mod == "polars" and name == "DataFrame":
        return "polars"
    if mod == "pyarrow" and name in ("Table", "RecordBatch"):
        return "arrow"
    if isinstance(data, np.ndarray):
        return "structured" if data.dtype.names else "numpy"
    if isinstance(data, Mapping):
        return "dict"
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        # a list of rows given as lists/tuples is positional, like a 2-d array
        if data and all(isinstance(r, (list, tuple)) for r in data):
            return "numpy"
        return "records"
    if hasattr(data, "__array__"):
        return "numpy"
    return "unknown"


def to_pandas_frame(data: Any) -> Any:
    """Convert any accepted input to a pandas DataFrame (positional numpy columns: x0, x1, ...)."""
    import pandas as pd

    kind = kind_of(data)
    if kind == "pandas":
        return data
    if kind == "polars":
        return data.to_pandas()
    if kind == "arrow":
        return data.to_pandas()
    if kind == "structured":
        return pd.DataFrame(data)
    if kind == "numpy":
        arr = np.asarray(data)
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2:
            raise SchemaMismatch(f"Expected a 2-d array of rows, got shape {arr.shape}.")
        return pd.DataFrame({f"x{i}": arr[:, i] for i in range(arr.shape[1])})
    if kind == "dict":
        if data and all(np.ndim(v) == 0 for v in data.values()):
            return pd.DataFrame([dict(data)])
        return pd.DataFrame(dict(data))
    if kind == "records":
        if data and not all(isinstance(r, Mapping) for r in data):
            raise SchemaMismatch("A list input must hold one dict per row, e.g. [{'income': 5.0}].")
        return pd.DataFrame(list(data))
    raise SchemaMismatch(
        f"Unsupported input type {type(data).__name__}; pass a pandas or polars DataFrame, "
        "a pyarrow Table, a numpy array, a dict of columns or a list of row dicts."
    )


def column_arrays(data: Any, names: Sequence[str]) -> tuple[dict[str, np.ndarray], list[str], int]:
    """Return (arrays of the wanted columns that are present, names of extra columns, row count).

    numpy 2-d input is positional: its width must equal ``len(names)``.
    """
    kind = kind_of(data)
    if kind == "numpy":
        arr = np.asarray(data)
        if arr.ndim == 1 and arr.shape[0] == len(names):
            arr = arr.reshape(1, -1)
        if arr.ndim != 2 or arr.shape[1] != len(names):
            raise SchemaMismatch(
                f"Expected an array of shape (rows, {len(names)}) with columns "
                f"{', '.join(names)}; got shape {arr.shape}."
            )
        return {n: arr[:, i] for i, n in enumerate(names)}, [], arr.shape[0]
    if kind == "pandas":
        present = [c for c in data.columns]
        out = {n: data[n].to_numpy() for n in names if n in data.columns}
        return out, [str(c) for c in present if c not in set(names)], len(data)
    if kind == "polars":
        cols = data.columns
        out = {n: data.get_column(n).to_numpy() for n in names if n in cols}
        return out, [c for c in cols if c not in set(names)], data.height
    if kind == "arrow":
        cols = data.schema.names
        out = {n: _arrow_to_numpy(data.column(n)) for n in names if n in cols}
        return out, [c for c in cols if c not in set(names)], data.num_rows
    if kind == "structured":
        cols = list(data.dtype.names)
        out = {n: data[n] for n in names if n in cols}
        return out, [c for c in cols if c not in set(names)], len(data)
    if kind == "dict":
        scalar = bool(data) and all(np.ndim(v) == 0 for v in data.values())
        out = {}
        for n in names:
            if n in data:
                v = data[n]
                out[n] = object_array([v]) if scalar else _sequence_array(v)
        lengths = {len(v) for v in out.values()}
        if len(lengths) > 1:
            raise SchemaMismatch(f"Columns have different lengths: {sorted(lengths)}.")
        n_rows = lengths.pop() if lengths else (1 if scalar else 0)
        return out, [str(k) for k in data if k not in set(names)], n_rows
    if kind == "records":
        if not all(isinstance(r, Mapping) for r in data):
            raise SchemaMismatch("A list input must hold one dict per row, e.g. [{'income': 5.0}].")
        seen: set[str] = set()
        for r in data:
            seen.update(r.keys())
        out = {n: object_array([r.get(n) for r in data]) for n in names if n in seen}
        return out, sorted(str(k) for k in seen if k not in set(names)), len(data)
    return column_arrays(to_pandas_frame(data), names)


def _arrow_to_numpy(col: Any) -> np.ndarray:
    import pyarrow as pa

    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    return np.asarray(col.to_numpy(zero_copy_only=False))


def _sequence_array(v: Any) -> np.ndarray:
    if isinstance(v, np.ndarray):
        return v
    if hasattr(v, "to_numpy"):
        return np.asarray(v.to_numpy())
    return object_array(list(v))


def object_array(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
