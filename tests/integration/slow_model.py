"""A model whose predict call takes a fixed time whatever the batch size: for queueing tests.

It lives in an importable module so that its pickle loads in a server subprocess too.
"""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin


class SlowDoubler(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Predicts ``2 * x`` after sleeping ``delay`` seconds per call."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay

    def fit(self, X: pd.DataFrame, y: Any = None) -> SlowDoubler:
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        return self

    threads: ClassVar[list[str]] = []  # the thread of each predict call (in-process servers)

    def predict(self, X: Any) -> np.ndarray:
        SlowDoubler.threads.append(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay)
        return 2.0 * np.asarray(X, dtype=float)[:, 0]


def frame(n: int = 20) -> pd.DataFrame:
    return pd.DataFrame({"x": np.arange(n, dtype=float)})
