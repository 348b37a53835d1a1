"""XGBoost: scikit-learn wrappers (XGBClassifier, XGBRegressor, ...) and raw ``xgboost.Booster``.

Models are saved with XGBoost's own ``save_model`` in UBJSON, never pickled: the format is stable
across XGBoost releases and loading it runs no code. The scikit-learn wrapper is re-created on
load (the file carries its ``_estimator_type``), so its ``predict``/``predict_proba`` - best
iteration, class decoding - give exactly what the user's object gave. A raw Booster predicts
through a ``DMatrix`` and its task comes from its objective.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from modelport.errors import FlavorError
from modelport.flavors.base import Converted, Saved, check_threads, classes_list, mro_modules, require
from modelport.schema import Batch, Signature

NAME = "xgboost"
FORMAT_VERSION = 1
# XGBoost is published as `xgboost` and as the smaller `xgboost-cpu`; the registry records
# whichever of the two is installed.
PACKAGES = ("xgboost", "xgboost-cpu", "numpy")
OPTIONS: tuple[str, ...] = ()
FILE_SUFFIXES = (".ubj", ".json")
_FILE = "model.ubj"
# Only these wrapper classes are re-created on load: a class name read from the database never
# picks an arbitrary attribute of the xgboost module.
_WRAPPERS = ("XGBClassifier", "XGBRegressor", "XGBRFClassifier", "XGBRFRegressor", "XGBRanker")


def detect(obj: Any) -> bool:
    return "xgboost" in mro_modules(obj) and hasattr(obj, "predict") and hasattr(obj, "save_model")


def save(obj: Any, path: Path, sample: Batch | None, **options: Any) -> Saved:
    xgb = require("xgboost", "xgboost")
    if isinstance(obj, xgb.Booster):
        booster, wrapper = obj, None
    else:
        wrapper = type(obj).__name__
        if wrapper not in _WRAPPERS:
            raise FlavorError(f"Unsupported XGBoost model type {wrapper}; supported: {', '.join(_WRAPPERS)}.")
        booster = obj.get_booster()
    obj.save_model(path / _FILE)
    objective = _objective(booster)
    if wrapper is not None:
        base = require("sklearn.base", "xgboost")  # the wrappers need scikit-learn anyway
        task = "classifier" if base.is_classifier(obj) else "regressor" if base.is_regressor(obj) else None
        classes = classes_list(getattr(obj, "classes_", None))
    else:
        task, classes = _task_from_objective(booster, objective)
    feature_types = booster.feature_types or []
    info = {
        "file": _FILE,
        "task": task,
        "wrapper": wrapper,
        "objective": objective,
        # DataFrames carry the feature names XGBoost checks and the category dtypes it needs.
        "input": "pandas" if booster.feature_names is not None else "numpy",
        "categorical": "c" in feature_types,
        "classes": classes,
    }
    return Saved(task=task, info=info, packages=("scikit-learn",) if wrapper else ())


def load(path: Path, info: dict[str, Any], threads: int | None = None) -> Any:
    """The saved Booster or wrapper; ``threads`` sets its ``nthread`` (``n_jobs``) for prediction."""
    xgb = require("xgboost", "xgboost")
    threads = check_threads(threads)
    wrapper = info.get("wrapper")
    file = path / info.get("file", _FILE)
    if wrapper is None:
        model: Any = xgb.Booster(model_file=str(file))
    elif wrapper in _WRAPPERS:
        model = getattr(xgb, wrapper)()
        model.load_model(file)
    else:
        raise FlavorError(f"Unknown XGBoost model type {wrapper!r} in the model record.")
    if threads is not None:
        if wrapper is None:
            model.set_param({"nthread": threads})
        else:
            model.set_params(n_jobs=threads)
    return _Loaded(model, info)


def to_onnx(raw: Any, signature: Signature, sample: Batch | None, info: dict[str, Any]) -> Converted:
    """The ONNX twin: one tree-ensemble node + the link/classifier head (see ``xgboost_onnx``).

    Raises ``ConversionUnsupported`` for what it cannot reproduce exactly (categorical splits,
    other objectives); the native runtime keeps working.
    """
    from modelport.flavors import xgboost_onnx

    return xgboost_onnx.convert(raw, signature, info)


def read_file(path: Path) -> Any:
    """A Booster, or the scikit-learn wrapper the file was saved from (its type is in the file)."""
    xgb = require("xgboost", "xgboost")
    booster = xgb.Booster(model_file=str(path))
    meta = json.loads(booster.attr("scikit_learn") or "{}")
    kind = {"classifier": "XGBClassifier", "regressor": "XGBRegressor"}.get(meta.get("_estimator_type"))
    if kind is None:
        return booster
    model = getattr(xgb, kind)()
    model.load_model(path)
    return model


def _objective(booster: Any) -> str:
    config = json.loads(booster.save_config())
    return str(config["learner"]["objective"]["name"])


def _task_from_objective(booster: Any, objective: str) -> tuple[str, list[Any] | None]:
    if objective.startswith("binary:"):
        return "classifier", [0, 1]
    if objective.startswith("multi:"):
        config = json.loads(booster.save_config())
        n = int(config["learner"]["learner_model_param"]["num_class"])
        return "classifier", list(range(n))
    return "regressor", None


class _Loaded:
    def __init__(self, model: Any, info: dict[str, Any]) -> None:
        self.raw = model
        self.classes = info.get("classes")
        self._info = info
        self.task = info.get("task")
        self._booster = info.get("wrapper") is None

    def _x(self, batch: Batch) -> Any:
        if self._info.get("input") == "pandas":
            return batch.to_pandas()
        return batch.to_numpy()

    def _dmatrix(self, batch: Batch) -> Any:
        xgb = require("xgboost", "xgboost")
        return xgb.DMatrix(self._x(batch), enable_categorical=bool(self._info.get("categorical")))

    def predict(self, batch: Batch) -> np.ndarray:
        if not self._booster:
            return np.asarray(self.raw.predict(self._x(batch)))
        if self.task != "classifier":
            return np.asarray(self.raw.predict(self._dmatrix(batch)))
        proba = self.predict_proba(batch)
        return np.asarray(self.classes)[proba.argmax(axis=1)]

    def predict_proba(self, batch: Batch) -> np.ndarray:
        if not self._booster:
            return np.asarray(self.raw.predict_proba(self._x(batch)))
        objective = str(self._info.get("objective", ""))
        if objective in ("binary:logistic", "multi:softprob"):
            out = np.asarray(self.raw.predict(self._dmatrix(batch)))
        else:
            # binary:logitraw, multi:softmax, ...: their plain output is a margin or a label, so
            # probabilities are rebuilt from the raw margin.
            margin = np.asarray(self.raw.predict(self._dmatrix(batch), output_margin=True))
            out = _sigmoid(margin) if objective.startswith("binary:") else _softmax(margin)
        if out.ndim == 1:
            return np.column_stack([1.0 - out, out])
        return out


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))
