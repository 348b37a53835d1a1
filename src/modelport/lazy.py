"""Attributes of a package imported on first use (PEP 562), for the facade and the feature packages."""

from __future__ import annotations

import importlib
from typing import Any


def lazy_attribute(namespace: dict[str, Any], lazy: dict[str, str], name: str) -> Any:
    """PEP 562 for a package: ``name`` from the module ``lazy`` maps it to, kept in ``namespace``."""
    module = lazy.get(name)
    if module is None:
        raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    namespace[name] = value
    return value
