"""The prediction log's cheap path: one-row requests of one version kept column by column in
preallocated arrays, filled on the event loop (a few array stores per request) and turned into one
Arrow table by the writer without a Python step per row.

Keeping each request's objects until a flush instead costs the writer thread several µs of Python
per row (a concatenation per column of a thousand one-element arrays), time in which it holds the
GIL and the event loop waits.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from modelport.predictor import Prediction
from modelport.predlog.columns import INPUT_PREFIX, PROBA_PREFIX


def _buffer(capacity: int, dtype: np.dtype[Any]) -> np.ndarray:
    # fixed-width text would cut longer values: text is kept as objects
    return np.empty(capacity, dtype=object if dtype.kind in "USO" else dtype)


class Rows:
    """Up to ``capacity`` one-row predictions of the version (and runtime) of ``first``."""

    def __init__(self, first: Prediction, capacity: int) -> None:
        mv = first.model_version
        self.name, self.version, self.runtime = mv.name, mv.version, first.runtime
        batch = first.batch
        assert batch is not None
        columns = batch.columns
        self.names = list(columns)
        self.inputs = [_buffer(capacity, col.dtype) for col in columns.values()]
        self.prediction = _buffer(capacity, np.asarray(first.predictions).dtype)
        self.classes = first.classes if first.probabilities is not None else None
        self.proba = (
            None
            if self.classes is None
            else np.empty((capacity, len(self.classes)), dtype=np.asarray(first.probabilities).dtype)
        )
        self.request_id = np.empty(capacity, dtype=object)
        self.protocol = np.empty(capacity, dtype=object)
        self.role = np.empty(capacity, dtype=object)
        self.latency_ms = np.empty(capacity)
        self.timestamp = np.empty(capacity)
        self.capacity = capacity
        self.n = 0
        self.opened = time.monotonic()

    @staticmethod
    def takes(result: Prediction) -> bool:
        """Is ``result`` one row of named columns (the usual request)?"""
        batch = result.batch
        return result.rows == 1 and batch is not None and batch.tensor is None

    def add(
        self, result: Prediction, request_id: str, protocol: str, latency_ms: float, timestamp: float
    ) -> bool:
        """Keep one row; False (and nothing kept) when it does not fit this buffer's layout."""
        i = self.n
        batch = result.batch
        assert batch is not None
        columns = batch.columns
        proba = result.probabilities
        if len(columns) != len(self.inputs) or (proba is None) != (self.proba is None):
            return False
        try:
            for buf, col in zip(self.inputs, columns.values(), strict=True):
                buf[i] = col[0]
            self.prediction[i] = result.predictions[0]
            if self.proba is not None:
                self.proba[i] = proba[0]  # type: ignore[index]
        except (ValueError, TypeError, IndexError):
            return False
        self.request_id[i] = request_id
        self.protocol[i] = protocol
        self.role[i] = result.role
        self.latency_ms[i] = latency_ms
        self.timestamp[i] = timestamp
        self.n = i + 1
        return True

    @property
    def full(self) -> bool:
        return self.n >= self.capacity

    def columns(self) -> dict[str, Any]:
        """The rows kept, as the prediction log's columns (numpy arrays and Arrow arrays)."""
        import pyarrow as pa

        n = self.n
        stamps = (self.timestamp[:n] * 1e6).astype("datetime64[us]")
        data: dict[str, Any] = {
            "request_id": self.request_id[:n],
            "timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            **constant_columns(self.name, self.version, self.runtime, n),
            "protocol": self.protocol[:n],
            "role": self.role[:n],
            "latency_ms": self.latency_ms[:n],
        }
        for name, buf in zip(self.names, self.inputs, strict=True):
            data[f"{INPUT_PREFIX}{name}"] = buf[:n]
        data["prediction"] = self.prediction[:n]
        if self.proba is not None and self.classes is not None:
            for j, cls in enumerate(self.classes):
                data[f"{PROBA_PREFIX}{cls}"] = self.proba[:n, j]
        return data


def constant_columns(name: str, version: int, runtime: str, n: int) -> dict[str, Any]:
    """The log's columns that one version's rows share, as Arrow arrays made without a Python
    object per row."""
    import pyarrow as pa

    return {
        "model": pa.repeat(name, n),
        "version": pa.repeat(pa.scalar(version, pa.int64()), n),
        "runtime": pa.repeat(runtime, n),
    }
