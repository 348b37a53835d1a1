"""The small interface every flavor module implements.

A flavor module (``modelport.flavors.<name>``) defines::

    NAME: str                  # "sklearn", "xgboost", ...
    FORMAT_VERSION: int        # bump when the on-disk layout changes
    PACKAGES: tuple[str, ...]  # distributions whose versions are recorded and checked at load
    OPTIONS: tuple[str, ...]   # keys of register(..., flavor_options=...) it accepts
    FILE_SUFFIXES: tuple[str, ...]  # model files `modelport register FILE` can read

    def detect(obj) -> bool            # without importing the framework
    def save(obj, path, sample, **options) -> Saved  # sample: a validated Batch or None
    def load(path, info, threads=None) -> LoadedModel   # threads: the model's compute threads
    def read_file(path) -> object      # a model object from a user's file
    def signature_from_model(obj) -> Signature | None   # optional: when no sample is given
    def to_onnx(raw, signature, sample, info) -> Converted   # optional: the compiled twin

The framework is imported only inside these functions, so ``import modelport`` stays light and
a missing framework only matters to the models that need it.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from modelport.errors import FlavorError, InvalidInput
from modelport.schema import Batch


@dataclass
class Saved:
    """What a flavor reports after writing a model into a folder."""

    task: str | None  # "classifier" | "regressor" | None
    info: dict[str, Any] = field(default_factory=dict)
    packages: tuple[str, ...] = ()


@dataclass
class Converted:
    """An ONNX twin of a model, as a flavor's ``to_onnx`` returns it.

    The graph takes the signature's columns as inputs: either one input per column (named like the
    column, shape (n, 1)) or one 2-d input holding all columns in signature order, or the tensor.
    ``task`` and ``classes`` say how to read its outputs (see the onnx flavor's ``save`` options);
    ``notes`` tell the user what the conversion did (e.g. "tree thresholds kept in double").
    """

    model: Any  # onnx.ModelProto
    task: str | None
    classes: list[Any] | None = None
    notes: list[str] = field(default_factory=list)


class ConversionUnsupported(FlavorError):
    """The model (or a step of it) has no ONNX converter; the native runtime keeps working."""


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


def check_threads(threads: Any) -> int | None:
    """``threads`` as given to a flavor's ``load``: ``None`` (the framework's default) or an int >= 1."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InvalidInput(f"threads must be a whole number of at least 1 (or None), got {threads!r}.")
    return threads


def classes_list(classes: Any) -> list[Any] | None:
    if classes is None:
        return None
    return [c.item() if isinstance(c, np.generic) else c for c in np.asarray(classes).tolist()]


def labels_from_proba(proba: np.ndarray, classes: list[Any] | None) -> np.ndarray:
    idx = np.asarray(proba).argmax(axis=1)
    return idx if classes is None else np.asarray(classes)[idx]
