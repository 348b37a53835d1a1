"""The fast path of a batch chunk: Arrow record batch in, Arrow output table out, no pandas.

A Parquet chunk whose columns already have the signature's types (the common case) is admitted
(watermark window), validated and handed to the model as numpy arrays taken straight from the
Arrow columns, and its output rows are built as an Arrow table. Each function returns ``None``
when it cannot decide with certainty — null watermarks, look-back keys, text watermarks, a type
that needs coercion or may be invalid — and the chunk then takes the pandas path
(:class:`~modelport.batch.scoring.Scorer`), which rejects rows with reasons; so both paths score
the same rows the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from modelport.schema import Batch, Signature

_FLOATS = {"float16", "float32", "float64"}
_UNITS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def admit(batch: pa.RecordBatch, wm_col: str | None, lower: Any, upper: Any) -> pa.RecordBatch | None:
    """The rows with ``lower < watermark <= upper``; None where the pandas path must decide."""
    if not wm_col:
        return batch
    if wm_col not in batch.schema.names:
        return None
    col = batch.column(wm_col)
    if col.null_count:
        return None  # rows with an empty watermark are rejects: the pandas path names them
    values = _comparable(col)
    if values is None:
        return None
    bounds = [_bound(b, col.type) for b in (lower, upper)]
    if any(b is _UNKNOWN for b in bounds):
        return None
    keep = None
    if bounds[0] is not None:
        keep = pc.greater(values, bounds[0])
    if bounds[1] is not None:
        upper_ok = pc.less_equal(values, bounds[1])
        keep = upper_ok if keep is None else pc.and_(keep, upper_ok)
    if keep is None or pc.all(keep).as_py():
        return batch
    return batch.filter(keep)


_UNKNOWN = object()


def _comparable(col: pa.Array) -> pa.Array | None:
    """Timestamps as int64 nanoseconds since the epoch in UTC (a naive timestamp counts as UTC,
    as in :func:`~modelport.batch.watermarks.wm_series`); numbers as they are."""
    t = col.type
    if pa.types.is_timestamp(t):
        ints = col.cast(pa.int64())
        factor = _UNITS[t.unit]
        try:
            return ints if factor == 1 else pc.multiply_checked(ints, factor)
        except pa.ArrowInvalid:  # beyond nanosecond range: let pandas decide
            return None
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return col
    return None


def _bound(value: Any, arrow_type: pa.DataType) -> Any:
    if value is None:
        return None
    if pa.types.is_timestamp(arrow_type):
        if not isinstance(value, pd.Timestamp):
            return _UNKNOWN
        ts = value.tz_convert("UTC") if value.tzinfo else value.tz_localize("UTC")
        return pa.scalar(int(ts.value), pa.int64())
    if isinstance(value, pd.Timestamp | bool):
        return _UNKNOWN
    if isinstance(value, int | float | np.integer | np.floating):
        return pa.scalar(value.item() if isinstance(value, np.generic) else value)
    return _UNKNOWN


def watermarks(batch: pa.RecordBatch, wm_col: str | None) -> pd.Series | None:
    """The watermark column as the pandas path has it (UTC Timestamps or numbers)."""
    if not wm_col:
        return None
    from modelport.batch.watermarks import wm_series

    values = batch.column(wm_col).to_pandas()
    return wm_series(values).reset_index(drop=True)


def model_batch(batch: pa.RecordBatch, signature: Signature) -> Batch | None:
    """The model's input as a validated :class:`Batch`, when every column already has a type that
    is valid without a per-value check; else None."""
    if signature.columns is None:
        return None
    columns: dict[str, np.ndarray] = {}
    names = batch.schema.names
    for spec in signature.columns:
        if spec.name not in names:
            return None
        arr = _column(batch.column(spec.name), spec.type)
        if arr is None:
            return None
        columns[spec.name] = arr
    return Batch(signature, columns, batch.num_rows)


def model_codes(
    batch: pa.RecordBatch, signature: Signature
) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]] | None:
    """What :func:`model_batch` validates, with its dictionary-encoded text columns left as they are
    read: (other columns, {text column: (distinct values, a code per row)}); nulls get a code of
    their own, whose value is NaN (as in :func:`model_batch`)."""
    if signature.columns is None:
        return None
    columns: dict[str, np.ndarray] = {}
    text: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    names = batch.schema.names
    for spec in signature.columns:
        if spec.name not in names:
            return None
        col = batch.column(spec.name)
        t = col.type
        if pa.types.is_dictionary(t) and spec.type in ("string", "category") and is_text(t.value_type):
            values = col.dictionary.to_numpy(zero_copy_only=False)
            codes = col.indices
            if col.null_count:
                values = np.append(values, np.array([np.nan], dtype=object))
                codes = codes.fill_null(len(values) - 1)
            text[spec.name] = (values, codes.to_numpy(zero_copy_only=False))
            continue
        arr = _column(col, spec.type)
        if arr is None:
            return None
        columns[spec.name] = arr
    return columns, text


def _column(col: pa.Array, want: str) -> np.ndarray | None:
    t = col.type
    if pa.types.is_dictionary(t):
        if want in ("string", "category") and is_text(t.value_type):
            return _text_from_dictionary(col)
        col = col.dictionary_decode()
        t = col.type
    if want in _FLOATS:
        numeric = pa.types.is_floating(t) or pa.types.is_integer(t)
        if numeric or (pa.types.is_boolean(t) and not col.null_count):
            # nulls become NaN: what a float column means by missing
            return col.to_numpy(zero_copy_only=False).astype(want, copy=False)
        return None
    if want.startswith(("int", "uint")):
        if col.null_count or not (pa.types.is_integer(t) or pa.types.is_boolean(t)):
            return None  # nulls, floats: the pandas path says which rows are wrong
        arr = col.to_numpy(zero_copy_only=False)
        if arr.dtype == np.dtype(want):
            return arr
        info = np.iinfo(want)
        if arr.size and arr.dtype.kind != "b" and (arr.min() < info.min or arr.max() > info.max):
            return None
        return arr.astype(want)
    if want == "bool":
        if col.null_count or not pa.types.is_boolean(t):
            return None
        return col.to_numpy(zero_copy_only=False)
    if want in ("string", "category"):
        if not is_text(t):
            return None
        arr = col.to_numpy(zero_copy_only=False)
        if col.null_count:
            arr[np.asarray(col.is_null())] = np.nan  # the form validation gives a missing text
        return arr
    return None  # datetime and anything else: the pandas path


def is_text(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def _text_from_dictionary(col: pa.DictionaryArray) -> np.ndarray:
    """Text read dictionary-encoded (as Parquet stores repetitive text): each distinct value
    becomes one Python string, shared by its rows, instead of one string per row."""
    values = col.dictionary.to_numpy(zero_copy_only=False)
    if col.null_count:
        values = np.append(values, np.nan)
        idx = col.indices.fill_null(len(values) - 1)
    else:
        idx = col.indices
    return np.asarray(values[idx.to_numpy(zero_copy_only=False)], dtype=object)


def dense(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with dictionary-encoded columns decoded (what the pandas path expects)."""
    if not any(pa.types.is_dictionary(f.type) for f in batch.schema):
        return batch
    arrays = [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in batch.columns]
    fields = [f.with_type(a.type) for f, a in zip(batch.schema, arrays, strict=True)]
    # the schema's pandas metadata (nullable integers stay nullable) must survive
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields, metadata=batch.schema.metadata))


def output_table(
    batch: pa.RecordBatch,
    key: str | None,
    passthrough: tuple[str, ...],
    labels: np.ndarray,
    proba: np.ndarray | None,
    classes: list[Any] | None,
    model: str,
    version: int,
    run_id: str,
) -> pa.Table:
    """The output rows, with the column names and types the pandas path writes."""
    n = batch.num_rows
    arrays: dict[str, pa.Array] = {}
    if key:
        arrays[key] = _large(batch.column(key))
    for col in passthrough:
        if col != key:
            arrays[col] = _large(batch.column(col))
    arrays["prediction"] = _large(pa.array(labels))
    if proba is not None and classes is not None:
        for i, cls in enumerate(classes):
            arrays[f"proba_{cls}"] = pa.array(np.ascontiguousarray(proba[:, i]))
    arrays["model"] = constant_text(model, n)
    arrays["version"] = pa.array(np.full(n, version, dtype=np.int64))
    arrays["run_id"] = constant_text(run_id, n)
    return pa.Table.from_pydict(arrays)


def _large(col: pa.Array) -> pa.Array:
    """Text as ``large_string`` (what pandas hands to Arrow), so every chunk has one schema."""
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.dictionary_decode()
        t = col.type
    if pa.types.is_string(t) or pa.types.is_string_view(t):
        return col.cast(pa.large_string())
    return col


def constant_text(value: str, n: int) -> pa.Array:
    """``n`` copies of ``value`` as a ``large_string`` array, built from its buffers in one go."""
    data = value.encode()
    offsets = np.arange(n + 1, dtype=np.int64) * len(data)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data * n))
