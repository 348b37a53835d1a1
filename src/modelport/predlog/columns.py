"""The prediction log's layout: where its files live and how its columns are named.

Files: ``<MODELPORT_HOME>/prediction_logs/<model>/date=YYYY-MM-DD/<uuid>.parquet``.

Columns, one row per input row: ``request_id, timestamp`` (UTC), ``model, version, runtime,
protocol, role`` (``primary``, ``canary`` or ``shadow``: a shadow's row shares its request's id),
``latency_ms`` (of the whole request; 0 for shadows), ``in_<column>`` for each input column
(``in_tensor`` for a tensor model, the row flattened), ``prediction``, and ``proba_<class>`` per
class for classifiers.
"""

from __future__ import annotations

from pathlib import Path

FOLDER = "prediction_logs"  # under MODELPORT_HOME
INPUT_PREFIX = "in_"  # in_<column>: the request's inputs
PROBA_PREFIX = "proba_"  # proba_<class>: a classifier's probabilities


def log_root(home: Path | str) -> Path:
    """The folder of every model's log under ``home`` (``MODELPORT_HOME``)."""
    return Path(home) / FOLDER
