"""Text formatting, colours and JSON embedding for the monitoring report (see ``report.py``).

Everything here returns plain text; the templates escape it."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from modelport.monitoring.results import P_VALUE_TESTS

REF_COLOR = "#5b7bb2"
CUR_COLOR = "#ef8a2b"
DRIFT_COLOR = "#c9302c"
OK_COLOR = "#2b8a3e"
WARN_COLOR = "#b7791f"
METRIC_COLORS = ("#3b6fb6", "#8e44ad", "#16a085", "#c0392b", "#d35400", "#2c3e50")
MAX_CATEGORIES = 24  # categorical charts show the largest ones and fold the rest into "other"


# --- formatting --------------------------------------------------------------------------------------


def num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def finite(value: Any) -> float | None:
    f = num(value)
    return f if f is not None and math.isfinite(f) else None


def fmt(value: Any) -> str:
    """A statistic, threshold or metric: 4 significant digits, scientific for tiny p-values."""
    f = num(value)
    if f is None:
        return "—" if value is None else str(value)
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "∞" if f > 0 else "−∞"
    if f == 0:
        return "0"
    if abs(f) < 1e-3 or abs(f) >= 1e6:
        return f"{f:.2e}"
    if abs(f) >= 1e3:
        return f"{f:,.1f}".removesuffix(".0")
    return f"{f:.4g}"


def short(value: Any) -> str:
    """An axis label: 3 significant digits, k/M suffixes."""
    f = num(value)
    if f is None or math.isnan(f):
        return "—" if f is None else "NaN"
    if math.isinf(f):
        return "∞" if f > 0 else "−∞"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e4, "k")):
        if abs(f) >= div:
            return f"{f / (1e3 if suffix == 'k' else div):.3g}{suffix}"
    if abs(f) >= 1e3:
        return f"{f:.0f}"
    if f != 0 and abs(f) < 1e-3:
        return f"{f:.1e}"
    return f"{f:.3g}"


def int_text(value: Any) -> str:
    f = finite(value)
    return "—" if f is None else f"{int(f):,}"


def pct(value: Any, digits: int = 1) -> str:
    f = finite(value)
    return "—" if f is None else f"{f * 100:.{digits}f}%"


def tick_pct(value: float) -> str:
    return f"{value * 100:.3g}%"


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def when(value: Any) -> str:
    t = parse_time(value)
    if t is None:
        return "" if value is None else str(value)
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def rule(test: str, threshold: Any) -> str:
    if test == "ks":
        return f"p ≤ {fmt(threshold)}"
    if test in P_VALUE_TESTS:
        return f"p < {fmt(threshold)}"
    return f"d ≥ {fmt(threshold)}"


# --- JSON --------------------------------------------------------------------------------------------


def _clean(obj: Any) -> Any:
    """Plain JSON: non-finite floats become null, numpy scalars plain numbers, the rest strings."""
    if obj is None or isinstance(obj, str | bool | int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    item = getattr(obj, "item", None)
    if callable(item):
        try:
            return _clean(item())
        except (TypeError, ValueError):
            pass
    return str(obj)


def result_json_for_html(obj: Any) -> str:
    """JSON safe inside a ``<script>`` element: ``<``, ``>``, ``&`` and line separators escaped."""
    text = json.dumps(_clean(obj), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, esc)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
