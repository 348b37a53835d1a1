"""Parsing and printing the quantities of a target: rates, durations, row counts, memory sizes.

>>> parse_rate("300/s"), parse_duration("25ms"), parse_count("20M"), parse_bytes("256MB")
(300.0, 0.025, 20000000, 256000000)
"""

from __future__ import annotations

import math
import re

import modelport.durations as durations
from modelport.errors import InvalidInput

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)(?:e([+-]?\d+))?"
_PER = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "d": 86_400.0,
    "day": 86_400.0,
}
_COUNT = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000, "g": 1_000_000_000}
_BYTES = {
    "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
    "k": 1024, "m": 1024**2, "g": 1024**3,
}  # fmt: skip


def _split(text: str, what: str, example: str) -> tuple[float, str]:
    m = re.fullmatch(rf"\s*{_NUMBER}\s*([a-zA-Zµ/]*)\s*", text.replace(",", "").replace("_", ""))
    if m is None:
        raise InvalidInput(f"{what} must be a number with a unit, e.g. {example}; got {text!r}.")
    value = float(m.group(1)) * (10 ** int(m.group(2)) if m.group(2) else 1)
    if not math.isfinite(value) or value <= 0:
        raise InvalidInput(f"{what} must be greater than 0, e.g. {example}; got {text!r}.")
    return value, m.group(3).lower()


def parse_rate(text: str) -> float:
    """Requests per second from ``300/s``, ``20/min``, ``5000/h``, ``1e6/day`` (or a bare ``300``)."""
    value, unit = _split(text, "--rate", "300/s or 20/min")
    unit = unit.removeprefix("/").removesuffix("s") if unit not in ("s", "/s") else "s"
    per = _PER.get(unit or "s")
    if per is None:
        raise InvalidInput(f"--rate: unknown unit in {text!r}; use /s, /min, /h or /day (e.g. 300/s).")
    return value / per


def parse_duration(text: str) -> float:
    """Seconds from ``25ms``, ``0.5s``, ``800us``, ``2min`` (a bare number is seconds): the product's
    one duration grammar (:mod:`modelport.durations`)."""
    seconds = durations.parse_duration(text, what="--p99", bare_unit="s").total_seconds()
    if seconds <= 0:
        raise InvalidInput(f"--p99 must be greater than 0, e.g. 25ms or 0.5s; got {text!r}.")
    return seconds


def parse_count(text: str) -> int:
    """Rows from ``20M``, ``500k``, ``1.5B``, ``20000000``."""
    value, unit = _split(text, "--rows-per-day", "20M or 500k")
    scale = _COUNT.get(unit.removesuffix("rows").removesuffix("/day").removesuffix("/d"))
    if scale is None:
        raise InvalidInput(f"--rows-per-day: unknown suffix in {text!r}; use k, M or B (e.g. 20M).")
    rows = value * scale
    if rows < 1:
        raise InvalidInput(f"--rows-per-day must be at least 1 row; got {text!r}.")
    return round(rows)


def parse_bytes(text: str) -> int:
    """Bytes from ``256MB`` (10^6), ``1GiB`` (2^30), ``512M`` (2^20, as Kubernetes reads ``Mi``)."""
    value, unit = _split(text, "--device-memory", "256MB or 1GiB")
    scale = _BYTES.get(unit.removesuffix("i") + "ib" if unit.endswith("i") else unit or "b")
    if scale is None:
        raise InvalidInput(f"--device-memory: unknown unit in {text!r}; use KB, MB, GB, KiB, MiB or GiB.")
    return int(value * scale)


def fmt_bytes(n: float | None) -> str:
    """``1.2 MiB``; a round decimal size (as a user gives a device's, ``256MB``) stays decimal."""
    if n is None:
        return "-"
    for unit, size in (("GB", 10**9), ("MB", 10**6)):
        if n >= size and n % size == 0 and n % 1024**2 != 0:
            return f"{n // size:,} {unit}"
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if abs(n) >= size:
            return f"{n / size:,.0f} {unit}" if abs(n) >= 100 * size else f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.2f} µs" if s < 1e-5 else f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    if s < 120:
        return f"{s:.2f} s"
    return f"{s / 60:.1f} min"


def fmt_rate(per_second: float | None) -> str:
    if per_second is None:
        return "-"
    if per_second >= 1:
        return f"{per_second:,.0f}/s" if per_second >= 10 else f"{per_second:.2f}/s"
    return f"{per_second * 60:.2f}/min"


def fmt_count(n: float | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:,.0f}"
