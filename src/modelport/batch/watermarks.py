"""Watermark values of batch jobs: pandas Timestamps (UTC) or numbers, and their stored forms."""

from __future__ import annotations

import struct
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd


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
