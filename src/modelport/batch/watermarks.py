"""Watermark values of batch jobs: pandas Timestamps (UTC) or numbers, their stored forms, and a
chunk's watermark column as an Arrow array (compared, maxed and keyed without pandas)."""

from __future__ import annotations

import struct
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import pyarrow as pa


def wm_series(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.to_datetime(values, utc=True)
    if pd.api.types.is_numeric_dtype(values):
        return values
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().sum() == values.notna().sum():
        return numeric
    return pd.to_datetime(values, errors="coerce", utc=True, format="mixed")


def normalize_scalar(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime | pd.Timestamp | np.datetime64):
        ts = pd.Timestamp(value)
        return ts.tz_convert("UTC") if ts.tzinfo else ts.tz_localize("UTC")
    return value


def wm_state(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, pd.Timestamp):
        return {"type": "timestamp", "value": value.isoformat()}
    return {"type": "number", "value": value.item() if isinstance(value, np.generic) else value}


def wm_value(state: dict[str, Any] | None) -> Any:
    if not state:
        return None
    if state["type"] == "timestamp":
        return pd.Timestamp(state["value"]).tz_convert("UTC")
    return state["value"]


def wm_display(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get("value")
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value.item() if isinstance(value, np.generic) else value


def wm_text(value: Any) -> str:
    """An order-preserving text form (for the look-back keys table's range queries)."""
    if isinstance(value, pd.Timestamp):
        return "t" + value.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%f")
    bits = struct.unpack(">Q", struct.pack(">d", float(value)))[0]
    bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | (1 << 63)
    return f"n{bits:016x}"


# --- watermark columns as Arrow arrays (one comparable form for every source type) ---

_UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def wm_array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A chunk's watermark column in its comparable form: timestamps in UTC (a naive one counts as
    UTC), numbers as they are; an empty value (null, NaN, text that is no time) is null. Text
    (CSV, JSON) is parsed as :func:`wm_series` parses it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    t = col.type
    if pa.types.is_timestamp(t):
        return col if t.tz == "UTC" else col.cast(pa.timestamp(t.unit, "UTC"))
    if pa.types.is_integer(t):
        return col
    if pa.types.is_floating(t):
        return pc.if_else(pc.is_nan(col), None, col) if len(col) else col
    parsed = wm_series(col.to_pandas())
    arr = pa.array(parsed, from_pandas=True)
    if pa.types.is_timestamp(arr.type) or pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        return wm_array(arr)
    return arr.cast(pa.float64())


def wm_window(wm: pa.Array, lower: Any, upper: Any) -> pa.Array | None:
    """Where ``lower < wm <= upper`` (either bound may be None); None when both are. Nulls: False."""
    import pyarrow.compute as pc

    from modelport.errors import InvalidInput

    keep = None
    for bound, op in ((lower, pc.greater), (upper, pc.less_equal)):
        if bound is None:
            continue
        timestamps = pa_is_timestamp(wm)
        if timestamps != isinstance(bound, pd.Timestamp):
            raise InvalidInput(
                f"The watermark column holds {'timestamps' if timestamps else 'numbers'} but the "
                f"job's watermark is {bound!r}; the column's type changed. Run with full_refresh."
            )
        if timestamps:  # compared in the column's own unit: no overflow, exact (floor division)
            values, scalar = _ticks(wm), _bound_ticks(bound, wm.type.unit)
        else:
            values, scalar = wm, bound.item() if isinstance(bound, np.generic) else bound
        part = op(values, scalar)
        keep = part if keep is None else pc.and_(keep, part)
    return None if keep is None else keep.fill_null(False)


def wm_max(wm: pa.Array) -> Any:
    """The highest watermark (a UTC Timestamp or a number), None for no values."""
    import pyarrow.compute as pc

    if not len(wm) or wm.null_count == len(wm):
        return None
    if pa_is_timestamp(wm):
        return pd.Timestamp(pc.max(_ticks(wm)).as_py(), unit=wm.type.unit, tz="UTC")
    return pc.max(wm).as_py()


def wm_above(wm: pa.Array, value: Any) -> np.ndarray:
    """Where ``wm > value`` (``value`` in the form :func:`wm_max` returns), as a numpy mask."""
    import pyarrow.compute as pc

    if pa_is_timestamp(wm):
        mask = pc.greater(_ticks(wm), _bound_ticks(value, wm.type.unit))
    else:
        mask = pc.greater(wm, value)
    return np.asarray(mask.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def wm_texts(wm: pa.Array) -> list[str]:
    """:func:`wm_text` of every value (no nulls), without a Python object per timestamp."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa_is_timestamp(wm):
        micro = wm.cast(pa.timestamp("us", "UTC"), safe=False)  # wm_text keeps microseconds
        text = pc.binary_join_element_wise("t", pc.strftime(micro, format="%Y-%m-%dT%H:%M:%S"), "")
        return list(text.to_pylist())
    bits = np.ascontiguousarray(wm.to_numpy(zero_copy_only=False), dtype=">f8").view(">u8").astype(np.uint64)
    bits = np.where(bits >> np.uint64(63), ~bits, bits | np.uint64(1 << 63))
    return [f"n{int(b):016x}" for b in bits]


def pa_is_timestamp(arr: pa.Array) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_timestamp(arr.type))


def _ticks(wm: pa.Array) -> pa.Array:
    import pyarrow as pa

    return wm.cast(pa.int64())


def _bound_ticks(bound: pd.Timestamp, unit: str) -> int:
    ts = bound.tz_convert("UTC") if bound.tzinfo else bound.tz_localize("UTC")
    return int(ts.value) // _UNIT_NS[unit]
