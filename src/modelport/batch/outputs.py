"""The two tables a chunk writes: its output rows (key, passthrough columns, prediction,
probabilities, model, version, run) and its rejected rows (every column as text, with the reason)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from modelport.batch.arrow_rows import to_frame


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
    """The output rows of the scored rows ``batch``; text is ``large_string`` in every chunk."""
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


def reject_table(rows: pa.RecordBatch, reasons: str | Sequence[str], run_id: str) -> pa.Table:
    """Rejected rows as the reader gave them, every value as text, with ``reject_reason`` and
    ``run_id`` (rejects are few: they go through pandas, which writes each type as people read it)."""
    frame = to_frame(rows).astype("string").astype(object)
    frame["reject_reason"] = reasons if isinstance(reasons, str) else list(reasons)
    frame["run_id"] = run_id
    # text even where a chunk's column is all empty, so that every chunk's rejects have one schema
    schema = pa.schema([(str(c), pa.string()) for c in frame.columns])
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def _large(col: pa.Array) -> pa.Array:
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
