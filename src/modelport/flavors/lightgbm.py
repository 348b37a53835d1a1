"""LightGBM: LGBMClassifier / LGBMRegressor and raw ``lightgbm.Booster``, saved as native text.

Only the Booster is stored (``model.txt``, LightGBM's own stable text format - no pickle); the
scikit-learn wrapper adds nothing at predict time except label decoding, so the class labels go
into the record and ``predict``/``predict_proba`` are rebuilt from the Booster exactly as
``LGBMClassifier`` does it (binary -> ``[1-p, p]``, labels = ``classes[argmax]``).

The text file also carries LightGBM's ``pandas_categorical`` (the categories of each category
column at training time). Such models get a DataFrame with category dtypes, and LightGBM maps the
values to its training codes by category *value*, so a batch with fewer or reordered categories
still predicts correctly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelport.errors import FlavorError
from modelport.flavors.base import Converted, Saved, check_threads, classes_list, mro_modules, require
from modelport.schema import Batch, Signature

NAME = "lightgbm"
FORMAT_VERSION = 1
PACKAGES = ("lightgbm", "numpy")
OPTIONS: tuple[str, ...] = ()
FILE_SUFFIXES = (".txt",)
_FILE = "model.txt"


def detect(obj: Any) -> bool:
    return "lightgbm" in mro_modules(obj) and hasattr(obj, "predict")


def save(obj: Any, path: Path, sample: Batch | None, **options: Any) -> Saved:
    lgb = require("lightgbm", "lightgbm")
    if isinstance(obj, lgb.Booster):
        booster, classes = obj, None
    elif hasattr(obj, "booster_"):
        booster, classes = obj.booster_, classes_list(getattr(obj, "classes_", None))
    else:
        raise FlavorError(
            f"Unsupported LightGBM object {type(obj).__name__}: register a fitted LGBMClassifier, "
            "LGBMRegressor or lightgbm.Booster."
        )
    # save_model keeps only up to the best iteration when there is one, as sklearn's predict does.
    booster.save_model(str(path / _FILE))
    header = _header(path / _FILE)
    objective = header.get("objective", "").split(" ")[0]
    n_class = int(header.get("num_class", "1"))
    if objective in ("binary", "multiclass", "multiclassova"):
        task: str | None = "classifier"
        classes = classes if classes is not None else list(range(max(n_class, 2)))
    else:
        regression = objective.startswith("regression") or objective in _REGRESSION
        task, classes = ("regressor" if regression else None), None
    info = {
        "file": _FILE,
        "task": task,
        "objective": objective,
        "num_class": n_class,
        "classes": classes,
        "input": "pandas" if booster.pandas_categorical else "numpy",
    }
    return Saved(task=task, info=info)


# Objectives that predict a number per row, besides the "regression*" family.
_REGRESSION = (
    "huber",
    "fair",
    "poisson",
    "quantile",
    "mape",
    "gamma",
    "tweedie",
    "cross_entropy",
    "xentropy",
)


def load(path: Path, info: dict[str, Any], threads: int | None = None) -> Any:
    """The saved Booster; ``threads`` is the ``num_threads`` of every predict call."""
    lgb = require("lightgbm", "lightgbm")
    booster = lgb.Booster(model_file=str(path / info.get("file", _FILE)))
    return _Loaded(booster, info, check_threads(threads))


def to_onnx(raw: Any, signature: Signature, sample: Batch | None, info: dict[str, Any]) -> Converted:
    """The ONNX twin: one tree-ensemble node + the link/classifier head (see ``lightgbm_onnx``).

    Raises ``ConversionUnsupported`` for what it cannot reproduce exactly (categorical splits,
    other objectives); the native runtime keeps working.
    """
    from modelport.flavors import lightgbm_onnx

    return lightgbm_onnx.convert(raw, signature, info)


def read_file(path: Path) -> Any:
    return require("lightgbm", "lightgbm").Booster(model_file=str(path))


def _header(file: Path) -> dict[str, str]:
    """``key=value`` lines before the first tree: objective, num_class, ... (no full model dump)."""
    out: dict[str, str] = {}
    with open(file, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("Tree="):
                break
            key, sep, value = line.strip().partition("=")
            if sep:
                out[key] = value
    return out


class _Loaded:
    def __init__(self, booster: Any, info: dict[str, Any], threads: int | None = None) -> None:
        self.raw = booster
        self.classes = info.get("classes")
        self.task = info.get("task")
        self.threads = threads
        self._pandas = info.get("input") == "pandas"
        self._predict_params = {} if threads is None else {"num_threads": threads}

    def _x(self, batch: Batch) -> Any:
        if not self._pandas:
            return batch.to_numpy()
        df = batch.to_pandas()
        # Text columns of a category model become categories; LightGBM then re-codes them with the
        # training categories it stored (`pandas_categorical`), so codes always match training.
        text = [c.name for c in batch.signature.columns or () if c.type == "string"]
        return df.astype({c: "category" for c in text}) if text else df

    def _scores(self, batch: Batch) -> np.ndarray:
        return np.asarray(self.raw.predict(self._x(batch), **self._predict_params))

    def predict(self, batch: Batch) -> np.ndarray:
        if self.classes is None:
            return self._scores(batch)
        return np.asarray(self.classes)[self.predict_proba(batch).argmax(axis=1)]

    def predict_proba(self, batch: Batch) -> np.ndarray:
        if self.classes is None:
            raise FlavorError("This LightGBM model is not a classifier; use predict().")
        out = self._scores(batch)
        return np.column_stack([1.0 - out, out]) if out.ndim == 1 else out
