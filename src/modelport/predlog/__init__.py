"""The prediction log: one format that serving and batch write and monitoring and retraining read.

- :mod:`modelport.predlog.columns`: where the files live and how the columns are named;
- :mod:`modelport.predlog.writer`: :class:`PredictionLogger`, which writes Parquet off the request path;
- :mod:`modelport.predlog.rows`: the column buffers of one-row requests (the writer's cheap path);
- :mod:`modelport.predlog.reader`: :func:`read_prediction_log` (``mp.prediction_log(name)``).

It sits below the features: it imports the registry's types (a :class:`~modelport.predictor.Prediction`),
never serving, batch, monitoring or retraining. (The package is not called ``prediction_log``:
importing ``modelport.prediction_log`` would replace the public function ``mp.prediction_log``
with the module on the package.)

>>> from modelport.predlog import read_prediction_log   # doctest: +SKIP
>>> read_prediction_log(home, "credit", since="2026-01-01")   # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelport.lazy import lazy_attribute
from modelport.predlog.columns import FOLDER, INPUT_PREFIX, PROBA_PREFIX, log_root

if TYPE_CHECKING:
    from modelport.predlog.reader import read_prediction_log
    from modelport.predlog.writer import PredictionLogger

# The writer needs numpy and the predictor's types, the reader pandas: each is imported on first use.
_LAZY = {
    "PredictionLogger": "modelport.predlog.writer",
    "read_prediction_log": "modelport.predlog.reader",
}

__all__ = ["FOLDER", "INPUT_PREFIX", "PROBA_PREFIX", "PredictionLogger", "log_root", "read_prediction_log"]


def __getattr__(name: str) -> Any:
    return lazy_attribute(globals(), _LAZY, name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
