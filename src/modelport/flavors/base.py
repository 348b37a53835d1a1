"""The small interface every flavor module implements.

A flavor module (``modelport.flavors.<name>``) defines::

    NAME: str                  # "sklearn", "xgboost", ...
    FORMAT_VERSION: int        # bump when the on-disk layout changes
    PACKAGES: tuple[str, ...]  # distributions whose versions are recorded and checked at load
    OPTIONS: tuple[str, ...]   # keys of register(..., flavor_options=...) it accepts
    FILE_SUFFIXES: tuple[str, ...]  # model files `modelport register FILE` can read

    def detect(obj) -> bool            # without importing the framework
    def save(obj, path, sample, **options) -> Saved  # sample: a validated Batch or None
    def load(path, info) -> LoadedModel
    def read_file(path) -> object      # a model object from a user's file
    def signature_from_model(obj) -> Signature | None   # optional: when no sample is given

The framework is imported only inside these functions, so ``import modelport`` stays light and
a missing framework only matters to the models that need it.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from modelport.errors import FlavorError
from modelport.schema import Batch


@dataclass
class Saved:
    """What a flavor reports after writing a model into a folder."""

    task: str | None  # "classifier" | "regressor" | None
    info: dict[str, Any] = field(default_factory=dict)
    packages: tuple[str, ...] = ()


class LoadedModel(Protocol):
    """A model ready to predict on validated batches."""

    task: str | None
    classes: list[Any] | None
    raw: Any

    def predict(self, batch: Batch) -> np.ndarray: ...

    def predict_proba(self, batch: Batch) -> np.ndarray: ...


def mro_modules(obj: Any) -> set[str]:
    """Top-level module names of the object's class and its bases (no imports needed)."""
    return {c.__module__.split(".")[0] for c in type(obj).__mro__}


def installed_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def require(module: str, extra: str) -> Any:
    """Import a framework or raise a clear error naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise FlavorError(
            f"This model needs the '{module}' package, which is not installed. "
            f"Install it with: pip install 'modelport[{extra}]'"
        ) from exc


def classes_list(classes: Any) -> list[Any] | None:
    if classes is None:
        return None
    return [c.item() if isinstance(c, np.generic) else c for c in np.asarray(classes).tolist()]


def labels_from_proba(proba: np.ndarray, classes: list[Any] | None) -> np.ndarray:
    idx = np.asarray(proba).argmax(axis=1)
    return idx if classes is None else np.asarray(classes)[idx]
