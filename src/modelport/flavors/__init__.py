"""Framework flavors: one module per framework, all with the interface of :mod:`.base`.

>>> from modelport import flavors
>>> flavors.names()
['xgboost', 'lightgbm', 'torch', 'onnx', 'sklearn']
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from modelport.errors import FlavorError

# Detection order matters: XGBoost and LightGBM estimators are also scikit-learn estimators.
_ORDER = ("xgboost", "lightgbm", "torch", "onnx", "sklearn")


def names() -> list[str]:
    return list(_ORDER)


def get(name: str) -> ModuleType:
    """The flavor module called ``name``."""
    if name not in _ORDER:
        raise FlavorError(f"Unknown flavor {name!r}; known flavors: {', '.join(_ORDER)}.")
    return importlib.import_module(f"modelport.flavors.{name}")


def detect(obj: Any) -> ModuleType:
    """The flavor module that can save ``obj``, or a clear error."""
    for name in _ORDER:
        mod = get(name)
        if mod.detect(obj):
            return mod
    raise FlavorError(
        f"Cannot tell which framework a {type(obj).__module__}.{type(obj).__qualname__} "
        f"belongs to. Supported: scikit-learn, XGBoost, LightGBM, PyTorch nn.Module, ONNX. "
        "Pass flavor=... if it is one of them."
    )


def for_file(path: Path, flavor: str | None = None) -> ModuleType:
    """The flavor that reads a model file, by ``flavor`` or by the file's suffix."""
    if flavor:
        return get(flavor)
    suffix = path.suffix.lower()
    matches = [n for n in _ORDER if suffix in get(n).FILE_SUFFIXES]
    if len(matches) == 1:
        return get(matches[0])
    known = sorted({s for n in _ORDER for s in get(n).FILE_SUFFIXES})
    if matches:
        raise FlavorError(f"A {suffix} file could be {' or '.join(matches)}; pass --flavor to say which.")
    raise FlavorError(
        f"Cannot read a model from a {suffix or 'suffix-less'} file; known suffixes: "
        f"{', '.join(known)}. Pass --flavor to say which framework wrote it."
    )
