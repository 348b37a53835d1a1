"""scikit-learn estimators and Pipelines (ColumnTransformer, encoders, ...), saved with joblib.

joblib files are pickles: they are only ever loaded from this store, after their sha256 has
been checked against the value recorded when this store wrote them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelport.flavors.base import Converted, Saved, classes_list, mro_modules, require
from modelport.schema import Batch, Signature

NAME = "sklearn"
FORMAT_VERSION = 1
PACKAGES = ("scikit-learn", "numpy", "scipy", "joblib")
OPTIONS: tuple[str, ...] = ()
FILE_SUFFIXES = (".joblib", ".pkl", ".pickle")
_FILE = "model.joblib"


def detect(obj: Any) -> bool:
    return "sklearn" in mro_modules(obj) and hasattr(obj, "predict")


def save(obj: Any, path: Path, sample: Batch | None, **options: Any) -> Saved:
    joblib = require("joblib", "sklearn")
    base = require("sklearn.base", "sklearn")
    if base.is_classifier(obj):
        task: str | None = "classifier"
    elif base.is_regressor(obj):
        task = "regressor"
    else:
        task = "classifier" if hasattr(obj, "predict_proba") else None
    joblib.dump(obj, path / _FILE)
    info = {
        "file": _FILE,
        "input": "pandas" if hasattr(obj, "feature_names_in_") else "numpy",
        "classes": classes_list(getattr(obj, "classes_", None)),
    }
    return Saved(task=task, info=info, packages=_nested_packages(obj))


def load(path: Path, info: dict[str, Any]) -> Any:
    joblib = require("joblib", "sklearn")
    return _Loaded(joblib.load(path / info.get("file", _FILE)), info)


def read_file(path: Path) -> Any:
    return require("joblib", "sklearn").load(path)


def to_onnx(raw: Any, signature: Signature, sample: Batch | None, info: dict[str, Any]) -> Converted:
    """The ONNX twin (skl2onnx, double precision; see :mod:`modelport.flavors.sklearn_onnx`).

    Raises :class:`~modelport.flavors.base.ConversionUnsupported` naming the step that has no
    converter.
    """
    from modelport.flavors.sklearn_onnx import convert

    return convert(raw, signature, sample, info)


class _Loaded:
    def __init__(self, model: Any, info: dict[str, Any]) -> None:
        self.raw = model
        self.classes = info.get("classes")
        self.task = "classifier" if self.classes is not None else None
        self._pandas = info.get("input") == "pandas"

    def _x(self, batch: Batch) -> Any:
        return batch.to_pandas() if self._pandas else batch.to_numpy()

    def predict(self, batch: Batch) -> np.ndarray:
        return np.asarray(self.raw.predict(self._x(batch)))

    def predict_proba(self, batch: Batch) -> np.ndarray:
        return np.asarray(self.raw.predict_proba(self._x(batch)))


def _nested_packages(obj: Any) -> tuple[str, ...]:
    """Distributions of estimators nested in Pipelines (e.g. an XGBoost step inside a Pipeline)."""
    import importlib.metadata

    mods: set[str] = set()
    params = obj.get_params(deep=True) if hasattr(obj, "get_params") else {}
    for value in [obj, *params.values()]:
        mods.add(type(value).__module__.split(".")[0])
    dists = importlib.metadata.packages_distributions()
    out = {d for m in mods for d in dists.get(m, []) if m not in ("builtins", "sklearn", "numpy")}
    return tuple(sorted(out))
