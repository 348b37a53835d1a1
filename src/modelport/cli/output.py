"""Shared rendering: Rich consoles, JSON on stdout, the one-line error, small formatters.

Consoles are made per call, never at import time, so they write to whatever ``sys.stdout`` /
``sys.stderr`` are when a command runs (the test runner swaps them).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape


def console() -> Console:
    """Human-readable output (stdout)."""
    return Console(highlight=False)


def err_console() -> Console:
    """Progress, warnings and errors (stderr), so that stdout stays clean for pipes and --json."""
    return Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    """Machine-readable output: plain JSON on stdout, nothing else."""
    sys.stdout.write(json.dumps(data, indent=2, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat()
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def one_line(message: str) -> str:
    """Collapse a message onto one line (errors and warnings are one line each)."""
    return " ".join(str(message).split())


def print_error(message: str) -> None:
    err_console().print(f"[bold red]Error:[/] [red]{escape(one_line(message))}[/]", soft_wrap=True)


def print_warning(message: str) -> None:
    err_console().print(f"[yellow]Warning: {escape(one_line(message))}[/]", soft_wrap=True)


def when(dt: datetime, seconds: bool = True) -> str:
    """A UTC timestamp, e.g. ``2025-05-01 12:03:44 UTC`` (or to the minute)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def ago(dt: datetime, now: datetime | None = None) -> str:
    """``12 s ago``, ``5 min ago``, ``3 h ago``, ``2 d ago``."""
    seconds = max(0.0, ((now or datetime.now(UTC)) - dt).total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def number(value: Any) -> str:
    """Metrics and statistics, compactly: ``0.7812``, ``52,300``, ``1.2e-05``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 1e15):
        return f"{int(value):,}"
    if value != value:
        return "nan"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 0.01:
        return f"{value:.4g}"
    return f"{value:.3g}"


def key_values(mapping: dict[str, Any]) -> str:
    """``auc=0.78, ks=0.41`` or ``-``."""
    if not mapping:
        return "-"
    return ", ".join(f"{k}={number(v)}" for k, v in mapping.items())


def aliases_text(aliases: dict[str, int] | tuple[str, ...] | list[str]) -> str:
    if not aliases:
        return "-"
    if isinstance(aliases, dict):
        return ", ".join(f"{a}→{v}" for a, v in sorted(aliases.items()))
    return ", ".join(aliases)
