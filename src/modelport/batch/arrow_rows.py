"""Arrow helpers every step of a batch chunk shares: pandas in and out at the edges, row picks, keys.

A chunk travels as one :class:`pyarrow.RecordBatch` from the source to the sink. pandas appears
only where the outside world speaks it — CSV/JSON readers, SQL cursors and feature stores hand
over DataFrames (:func:`from_frame` converts them once) — and for the few rows that need a
per-value decision (:func:`to_frame`, on those rows only).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa


def is_text(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def as_batch(data: pa.RecordBatch | pa.Table) -> pa.RecordBatch:
    """One record batch (a table's chunks combined; what Ray Data hands to ``map_batches``)."""
    if isinstance(data, pa.RecordBatch):
        return data
    if data.num_rows == 0:
        return pa.RecordBatch.from_pylist([], schema=data.schema)
    batches = data.combine_chunks().to_batches()
    return (
        batches[0] if len(batches) == 1 else pa.Table.from_batches(batches).combine_chunks().to_batches()[0]
    )


def from_frame(frame: pd.DataFrame) -> pa.RecordBatch:
    """A DataFrame from a reader at the edge as a record batch. A column Arrow cannot type as it
    is (an object column mixing numbers and text, as JSON lines give) becomes text, value by value:
    typing it by the signature then rejects only the rows whose value does not fit."""
    try:
        return pa.RecordBatch.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    arrays, names = [], []
    for name in frame.columns:
        col = frame[name]
        try:
            arr = pa.array(col, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arr = pa.array(
                col.where(col.isna(), col.astype(str)).astype(object), pa.large_string(), from_pandas=True
            )
        arrays.append(arr)
        names.append(str(name))
    return pa.RecordBatch.from_arrays(arrays, names=names)


def dense(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with dictionary-encoded columns decoded."""
    if not any(pa.types.is_dictionary(f.type) for f in batch.schema):
        return batch
    arrays = [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in batch.columns]
    fields = [f.with_type(a.type) for f, a in zip(batch.schema, arrays, strict=True)]
    # the schema's pandas metadata (nullable integers stay nullable) must survive
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields, metadata=batch.schema.metadata))


def to_frame(batch: pa.RecordBatch) -> pd.DataFrame:
    """Rows as pandas has them (the schema's pandas metadata applies), with a fresh 0..n-1 index."""
    return dense(batch).to_pandas().reset_index(drop=True)


def take(batch: pa.RecordBatch, rows: np.ndarray) -> pa.RecordBatch:
    """The rows at positions ``rows`` (sorted), a slice where they are contiguous."""
    if len(rows) == batch.num_rows:
        return batch
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
        return batch.slice(int(rows[0]), len(rows))
    return batch.take(pa.array(rows, pa.int64()))


def key_text(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A key column as text, one Python string per row (look-back pairs, prediction-log request ids):
    text as it is, integers in decimal, anything else as pandas writes it (``astype(str)``)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    if not col.null_count:
        if is_text(col.type):
            return np.asarray(col.to_numpy(zero_copy_only=False), dtype=object)
        if pa.types.is_integer(col.type):
            return np.asarray(col.cast(pa.string()).to_numpy(zero_copy_only=False), dtype=object)
    return np.asarray(col.to_pandas().astype(str).to_numpy(), dtype=object)


def concat(parts: list[Any], n: int) -> Any:
    """Arrays that cover rows 0..n-1 in pieces ``(rows, values)``, as one array in row order."""
    first = next(v for _, v in parts)
    out = np.empty((n, *first.shape[1:]), dtype=np.result_type(*(v.dtype for _, v in parts)))
    for rows, values in parts:
        out[rows] = values
    return out
