"""One duration grammar for the whole product: batch look-backs, monitoring windows, retraining
windows and phases, the advisor's latency targets.

A duration is a number and a unit, in any case, spaces allowed: ``800us`` (or ``µs``), ``25ms``,
``30s`` (or ``sec``), ``15m`` (or ``min``), ``1h``, ``2d``, ``1w``; decimals (``1.5h``) and an
exponent (``2e3ms``) too. A bare number is refused unless the caller names the unit it means
(``bare_unit="s"``), so ``window: 30`` never silently means 30 seconds where days were meant.

>>> parse_duration("90d")
datetime.timedelta(days=90)
>>> parse_duration("25ms").total_seconds()
0.025
>>> parse_duration("0.5", bare_unit="s")
datetime.timedelta(microseconds=500000)
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

from modelport.errors import InvalidInput

UNITS: dict[str, float] = {
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86_400.0,
    "w": 604_800.0,
}
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)(?:e([+-]?\d+))?\s*([a-zµ]*)\s*", re.IGNORECASE)
_EXAMPLES = "us, ms, s, m, h, d or w, e.g. 25ms, 30s, 15m, 1h, 2d or 1w"


def parse_duration(
    text: str | int | float | timedelta, *, what: str | None = None, bare_unit: str | None = None
) -> timedelta:
    """``"90s"``, ``"15m"``, ``"1h"``, ``"2d"``, ``"1w"``, ``"25ms"`` -> a :class:`~datetime.timedelta`.

    A timedelta is returned as it is. ``what`` names the setting in the error (``--p99``,
    ``window``); ``bare_unit`` is the unit of a bare number (default: a unit is required).
    Raises :class:`InvalidInput` naming the value and the units accepted.
    """
    if isinstance(text, timedelta):
        return text
    where = f"{what}: " if what else ""
    if isinstance(text, int | float) and not isinstance(text, bool):
        if bare_unit is None:
            raise InvalidInput(f"{where}{text!r} is not a duration: add a unit ({_EXAMPLES}).")
        text = f"{text}{bare_unit}"
    m = _DURATION.fullmatch(text) if isinstance(text, str) else None
    unit = (m.group(3) or bare_unit or "").lower() if m else ""
    if m is None or unit not in UNITS:
        raise InvalidInput(f"{where}{text!r} is not a duration; use a number and a unit: {_EXAMPLES}.")
    try:
        value = float(m.group(1)) * 10.0 ** int(m.group(2) or 0) * UNITS[unit]
        if not math.isfinite(value):
            raise OverflowError
        return timedelta(seconds=value)
    except OverflowError:
        raise InvalidInput(f"{where}{text!r} is too long a duration.") from None
