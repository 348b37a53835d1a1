"""A chunk's model input, validated column by column on Arrow, with the rows that need a per-value
decision marked.

Each signature column is taken straight from its Arrow column where the type says every value is
valid (a float column for a float input, text for text, ...). Where only some values can be in
doubt — a null in an integer column, an integer outside the input's range, a null boolean — those
ROWS are marked ``slow``: they are validated one by one by :func:`modelport.schema.prepare` (which
names what is wrong) while the other rows are scored as they are. A column whose type cannot be
judged here at all (text for a number, a time-zone-aware time) marks every row.

Text columns read dictionary-encoded stay ``(distinct values, a code per row)`` until the model's
input is built (:meth:`ModelInput.batch`), so that an ONNX model's text preprocessing can run once
per distinct value (``flavors.onnx_text.TextCodes``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from modelport.batch.arrow_rows import is_text
from modelport.schema import Batch, Signature

_FLOATS = {"float16", "float32", "float64"}


@dataclass
class ModelInput:
    """The validated input of ``n`` rows; rows marked in ``slow`` hold placeholders."""

    signature: Signature
    n: int
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    text: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    slow: np.ndarray | None = None  # bool per row, None when no row needs a per-value decision

    def take(self, rows: np.ndarray) -> ModelInput:
        """The rows at positions ``rows`` (none of them slow)."""
        columns = {n: c[rows] for n, c in self.columns.items()}
        text = {n: (values, codes[rows]) for n, (values, codes) in self.text.items()}
        return ModelInput(self.signature, len(rows), columns, text)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every input column as a numpy array, in signature order (text: one object per row)."""
        out = {}
        for name in self.signature.names:
            if name in self.text:
                values, codes = self.text[name]
                out[name] = np.asarray(values[codes], dtype=object)
            else:
                out[name] = self.columns[name]
        return out

    def batch(self) -> Batch:
        return Batch(self.signature, self.arrays(), self.n)


def check(batch: pa.RecordBatch, signature: Signature) -> ModelInput | None:
    """The model input of ``batch``; None for a signature without named columns (a tensor)."""
    if signature.columns is None:
        return None
    n = batch.num_rows
    out = ModelInput(signature, n)
    slow = np.zeros(n, dtype=bool)
    names = batch.schema.names
    for spec in signature.columns:
        if spec.name not in names:
            slow[:] = True  # the schema check names the missing column
            out.columns[spec.name] = np.zeros(n)
            continue
        col = batch.column(spec.name)
        t = col.type
        if pa.types.is_dictionary(t) and spec.type in ("string", "category") and is_text(t.value_type):
            out.text[spec.name] = _codes(col)
            continue
        arr, bad = _column(col, spec.type)
        if arr is None:
            slow[:] = True
            arr = np.zeros(n)
        elif bad is not None:
            slow |= bad
        out.columns[spec.name] = arr
    out.slow = slow if slow.any() else None
    return out


def _codes(col: pa.DictionaryArray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, a code per row); a null gets a code of its own, whose value is NaN (the
    form validation gives a missing text)."""
    values = np.asarray(col.dictionary.to_numpy(zero_copy_only=False), dtype=object)
    codes = col.indices
    if col.null_count:
        values = np.append(values, np.array([np.nan], dtype=object))
        codes = codes.fill_null(len(values) - 1)
    return values, codes.to_numpy(zero_copy_only=False)


def _null_mask(col: pa.Array) -> np.ndarray | None:
    if not col.null_count:
        return None
    return np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _column(col: pa.Array, want: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(the column as the model takes it, the rows needing a per-value decision or None); the
    array is None where no value of the column can be judged here."""
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.dictionary_decode()
        t = col.type
    if want in _FLOATS:
        if pa.types.is_floating(t) or pa.types.is_integer(t):
            # nulls become NaN: what a float column means by missing
            return col.to_numpy(zero_copy_only=False).astype(want, copy=False), None
        if pa.types.is_boolean(t):
            return col.fill_null(False).to_numpy(zero_copy_only=False).astype(want), _null_mask(col)
        return None, None
    if want.startswith(("int", "uint")):
        if not (pa.types.is_integer(t) or pa.types.is_boolean(t)):
            return None, None  # floats are never integers here: validation says so per row
        bad = _null_mask(col)
        arr = (col.fill_null(0) if bad is not None else col).to_numpy(zero_copy_only=False)
        if arr.dtype == np.dtype(want):
            return arr, bad
        if arr.size and arr.dtype.kind != "b":
            info = np.iinfo(want)
            outside = (arr < info.min) | (arr > info.max)
            if outside.any():
                bad = outside if bad is None else bad | outside
                arr = np.where(outside, 0, arr)
        return arr.astype(want), bad
    if want == "bool":
        if not pa.types.is_boolean(t):
            return None, None
        bad = _null_mask(col)
        return (col.fill_null(False) if bad is not None else col).to_numpy(zero_copy_only=False), bad
    if want in ("string", "category"):
        if not is_text(t):
            return None, None
        arr = np.asarray(col.to_numpy(zero_copy_only=False), dtype=object)
        if col.null_count:
            arr[np.asarray(col.is_null())] = np.nan  # the form validation gives a missing text
        return arr, None
    if want == "datetime" and pa.types.is_timestamp(t) and t.tz is None:
        return col.to_numpy(zero_copy_only=False), None
    return None, None
