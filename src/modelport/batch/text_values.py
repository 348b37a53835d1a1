"""Values that arrive as text (CSV, and JSON lines' loosely typed values) typed by the signature.

Vectorised on Arrow for the values written the plain way (``-12``, ``3.5``, ``1e-3``, ``true``);
only the other values are parsed one by one, the way pandas parses them (``pd.to_numeric``,
``pd.to_datetime``), so that a value which is not a number rejects its row alone, with a reason
that quotes it: ``column 'income' expects float64, got 'lots'``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from modelport.batch.arrow_rows import is_text
from modelport.schema import Signature

# plain decimal numbers both Arrow and pandas parse to the same (correctly rounded) double; longer
# strings (more digits than a double holds) are parsed the slow way, as pandas does
_FLOAT = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_FLOAT_CHARS = 24
_INT = r"^-?\d{1,18}$"  # Arrow takes no "+" before an integer
_TRUE = pa.array(["true", "1", "yes", "t", "y"])
_FALSE = pa.array(["false", "0", "no", "f", "n"])


def type_text(batch: pa.RecordBatch, signature: Signature) -> tuple[pa.RecordBatch, dict[int, str]]:
    """(``batch`` with its input columns typed, {row: why it cannot be typed})."""
    reasons: dict[int, str] = {}
    arrays = list(batch.columns)
    names = batch.schema.names
    for spec in signature.columns or ():
        if spec.name not in names:
            continue
        i = names.index(spec.name)
        col = arrays[i]
        if pa.types.is_dictionary(col.type):
            col = col.dictionary_decode()
        if spec.type in ("string", "category"):
            arrays[i] = col if is_text(col.type) or pa.types.is_null(col.type) else _as_text(col)
            continue
        if spec.type == "datetime":
            typed = _times(col)
        elif spec.type == "bool":
            typed = _bools(col)
        else:
            typed = _numbers(col, spec.type.startswith(("int", "uint")))
        failed = pc.and_(typed.is_null(), col.is_valid())
        for row in np.flatnonzero(np.asarray(failed.to_numpy(zero_copy_only=False), dtype=bool)):
            value = _text_of(col[int(row)].as_py())[:50]
            _note(reasons, int(row), f"column '{spec.name}' expects {spec.type}, got '{value}'")
        if spec.type.startswith(("int", "uint")) and not spec.nullable and col.null_count:
            for row in np.flatnonzero(np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)):
                _note(reasons, int(row), f"column '{spec.name}' is empty")
        arrays[i] = typed
    schema = pa.schema([pa.field(n, a.type) for n, a in zip(names, arrays, strict=True)])
    return pa.RecordBatch.from_arrays(arrays, schema=schema), reasons


def _note(reasons: dict[int, str], row: int, message: str) -> None:
    reasons[row] = f"{reasons[row]}; {message}" if row in reasons else message


def _text_of(value: Any) -> str:
    return str(value)


def _as_text(col: pa.Array) -> pa.Array:
    """Non-text values for a text input, written as pandas writes them (``str``)."""
    values = col.to_pandas()
    return pa.array(
        values.where(values.isna(), values.astype(str)).astype(object), pa.large_string(), from_pandas=True
    )


def _numbers(col: pa.Array, integer: bool) -> pa.Array:
    """Numbers (int64 for an integer input, else float64); a value that is none is null."""
    t = col.type
    if pa.types.is_null(t):
        return pa.nulls(len(col), pa.int64() if integer else pa.float64())
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        return col.cast(pa.int64()) if integer and not pa.types.is_boolean(t) else col
    if pa.types.is_floating(t):
        return _whole(col) if integer else col
    if not is_text(t):
        return _parsed(col, integer)
    plain = pc.match_substring_regex(col, _INT if integer else _FLOAT)
    if not integer:
        plain = pc.and_(plain, pc.less_equal(pc.utf8_length(col), _FLOAT_CHARS))
    plain = plain.fill_null(False)
    target = pa.int64() if integer else pa.float64()
    fast = pc.cast(pc.if_else(plain, col, pa.scalar(None, col.type)), target)
    others = pc.and_(pc.invert(plain), col.is_valid())
    if not pc.any(others).as_py():
        return fast
    rows = np.flatnonzero(np.asarray(others.to_numpy(zero_copy_only=False), dtype=bool))
    parsed = _parsed(col.take(pa.array(rows, pa.int64())), integer)
    out = fast.to_numpy(zero_copy_only=False).astype(object)
    out[rows] = parsed.to_numpy(zero_copy_only=False)
    return pa.array(out, target, from_pandas=True)


def _parsed(col: pa.Array, integer: bool) -> pa.Array:
    """Values parsed one by one the way pandas does (``pd.to_numeric``); integers must be whole."""
    values = pd.to_numeric(pd.Series(col.to_pylist(), dtype=object), errors="coerce")
    floats = pa.array(values.astype("float64"), pa.float64(), from_pandas=True)
    return _whole(floats) if integer else floats


def _whole(floats: pa.Array) -> pa.Array:
    """Whole floats as int64; other values (and NaN) null."""
    arr = floats.to_numpy(zero_copy_only=False).astype(np.float64)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(arr) & (arr == np.floor(arr)) & (np.abs(arr) < 2.0**63)
    ints = np.where(ok, arr, 0).astype(np.int64)
    return pa.array(ints, pa.int64(), mask=~ok)


def _bools(col: pa.Array) -> pa.Array:
    t = col.type
    if pa.types.is_boolean(t):
        return col
    if not is_text(t):
        col = _as_text(col)
    word = pc.utf8_lower(pc.utf8_trim_whitespace(col))
    yes, no = pc.is_in(word, value_set=_TRUE), pc.is_in(word, value_set=_FALSE)
    return pc.if_else(yes, True, pc.if_else(no, False, pa.scalar(None, pa.bool_())))


def _times(col: pa.Array) -> pa.Array:
    typed = pd.to_datetime(col.to_pandas(), errors="coerce", utc=True)
    return pa.array(typed, from_pandas=True)
