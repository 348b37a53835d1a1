"""Prediction logging for monitoring: served predictions (and a sample of batch-scored ones), written
to Parquet off the request path.

The request path only enqueues (never blocks, never raises): when the bounded queue is full the
request's rows are dropped and counted. A daemon writer thread flushes every ``flush_rows`` rows or
``flush_seconds`` seconds to ``<root>/<model>/date=YYYY-MM-DD/<uuid>.parquet`` (written to a
hidden temporary name, then renamed), and once more on :meth:`PredictionLogger.close`.

The columns, one row per input row, are listed in :mod:`modelport.predlog.columns`; read them back
with ``mp.prediction_log(name)`` (:func:`modelport.predlog.reader.read_prediction_log`).
"""

from __future__ import annotations

import importlib
import logging
import os
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from modelport.parquet_encoding import dictionary_columns
from modelport.predictor import Prediction
from modelport.predlog.columns import INPUT_PREFIX, PROBA_PREFIX
from modelport.predlog.rows import Rows, constant_columns

log = logging.getLogger(__name__)
__all__ = ["INPUT_PREFIX", "PROBA_PREFIX", "PredictionLogger"]
_DAY = 86_400.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Record(NamedTuple):
    result: Prediction
    request_id: Any  # one id for the whole request, or (batch runs) an array with one per row
    protocol: str
    latency_ms: float
    timestamp: float  # seconds since the epoch (UTC); a datetime per request costs the request path


class PredictionLogger:
    """Queue predictions from requests; a background thread writes them as Parquet.

    ``on_rows(model, result, n)`` is told about rows ``"logged"``, ``"dropped"`` (queue full) and
    ``"failed"`` (the write failed: logged, never raised).
    """

    def __init__(
        self,
        root: Path,
        *,
        sample_rate: float = 1.0,
        max_queue: int = 10_000,
        flush_rows: int = 10_000,
        flush_seconds: float = 5.0,
        on_rows: Callable[[str, str, int], None] | None = None,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"log_sample_rate must be between 0 and 1, got {sample_rate}")
        self.root = Path(root)
        self.sample_rate = sample_rate
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self._on_rows = on_rows
        self.max_queue = max_queue
        # The request path only appends to a deque (no lock, no wake-up of the writer per request:
        # waking a thread per request costs the event loop the GIL); the writer polls it.
        self._queue: deque[_Record | Rows] = deque()
        self._queued_rows = 0
        # one-row requests: kept column by column per version until full or flush_seconds old
        self._open: dict[tuple[str, int, str], Rows] = {}
        self._rows_lock = threading.Lock()
        self._wake = threading.Event()  # set when a flush is due by size, or to stop
        self._stop = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.logged = 0
        self.dropped = 0
        self.failed = 0
        self._dictionary: dict[tuple[str, tuple[str, ...]], list[str]] = {}  # writer thread only

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="modelport-prediction-log", daemon=True
                )
                self._thread.start()

    def log(self, result: Prediction, request_id: Any, protocol: str, seconds: float) -> None:
        """Enqueue one request's prediction (sampled); never blocks and never raises.

        ``request_id`` is a string, or an array with one id per row (a batch run's keys).
        """
        try:
            if result.batch is None or result.rows == 0:
                return
            if self.sample_rate < 1.0 and random.random() >= self.sample_rate:
                return
            if self._thread is None:
                self.start()
            now = time.time()
            if (
                type(request_id) is str
                and Rows.takes(result)
                and self._add_row(result, request_id, protocol, seconds * 1000.0, now)
            ):
                return
            if len(self._queue) >= self.max_queue:
                self._drop(result.model_version.name, result.rows)
                return
            self._queue.append(_Record(result, request_id, protocol, seconds * 1000.0, now))
            self._queued_rows += result.rows  # a hint for waking the writer: races only delay it
            if self._queued_rows >= self.flush_rows and not self._wake.is_set():
                self._wake.set()
        except Exception:  # logging must never fail a request
            log.exception("could not queue a prediction for logging")

    def _add_row(self, result: Prediction, request_id: str, protocol: str, ms: float, now: float) -> bool:
        mv = result.model_version
        key = (mv.name, mv.version, result.runtime)
        with self._rows_lock:
            rows = self._open.get(key)
            if rows is None:
                rows = self._open[key] = Rows(result, self.flush_rows)
            if not rows.add(result, request_id, protocol, ms, now):
                return False
            if not rows.full:
                return True
            del self._open[key]
        if len(self._queue) >= self.max_queue:
            self._drop(rows.name, rows.n)
        else:
            self._queue.append(rows)
            self._wake.set()
        return True

    def _drop(self, name: str, n: int) -> None:
        self.dropped += n
        self._count(name, "dropped", n)

    def close(self, timeout: float = 10.0) -> None:
        """Write everything queued, then stop the writer thread."""
        thread = self._thread
        if thread is None:
            return
        self._stop = True
        self._wake.set()
        thread.join(timeout)
        with self._lock:
            self._thread = None
            self._stop = False

    # --- the writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        # now, not in the first flush's time (pyarrow imports pandas on its first array)
        for module in ("pandas", "pyarrow.compute", "pyarrow.parquet"):
            importlib.import_module(module)

        poll = min(self.flush_seconds, 0.5)
        pending: list[_Record] = []
        rows = 0
        first = 0.0
        while True:
            self._wake.wait(poll)
            self._wake.clear()
            stop = self._stop
            for item in self._taken(stop):
                if isinstance(item, Rows):
                    self._flush_rows(item)
                    continue
                if not pending:
                    first = time.monotonic()
                pending.append(item)
                rows += item.result.rows
                if rows >= self.flush_rows:
                    self._flush(pending)
                    pending, rows = [], 0
            if pending and (stop or time.monotonic() - first >= self.flush_seconds):
                self._flush(pending)
                pending, rows = [], 0
            if stop:
                return

    def _taken(self, stop: bool) -> list[_Record | Rows]:
        """What is queued, then the one-row buffers that are flush_seconds old (all when stopping)."""
        queue = self._queue
        self._queued_rows = 0
        items: list[_Record | Rows] = [queue.popleft() for _ in range(len(queue))]
        now = time.monotonic()
        with self._rows_lock:
            aged = [k for k, r in self._open.items() if stop or now - r.opened >= self.flush_seconds]
            items += [self._open.pop(k) for k in aged]
        return items

    def _flush_rows(self, rows: Rows) -> None:
        def write() -> None:
            import pyarrow as pa

            table = _arrow_table(rows.columns())
            days = (rows.timestamp[: rows.n] // _DAY).astype(np.int64)
            for day in np.unique(days):  # one day, but for the buffers that span midnight
                part = table if days[0] == days[-1] else table.filter(pa.array(days == day))
                self._write_table(rows.name, _date(int(day)), part)

        self._counted(rows.name, rows.n, write)

    def _flush(self, records: list[_Record]) -> None:
        groups: dict[tuple[str, int], list[_Record]] = {}
        for r in records:
            groups.setdefault((r.result.model_version.name, int(r.timestamp // _DAY)), []).append(r)
        for (name, day), group in groups.items():
            n = sum(r.result.rows for r in group)
            self._counted(name, n, lambda: self._write(name, _date(day), group))  # noqa: B023 - called now

    def _counted(self, name: str, n: int, write: Callable[[], None]) -> None:
        """Run ``write`` for ``n`` rows of ``name``; count them logged, or failed (never raised)."""
        try:
            write()
        except Exception:
            self.failed += n
            log.exception("could not write %d prediction log rows of %s", n, name)
            self._count(name, "failed", n)
        else:
            self.logged += n
            self._count(name, "logged", n)

    def _write(self, name: str, day: str, group: list[_Record]) -> None:
        import pyarrow as pa

        by_version: dict[tuple[int, str], list[_Record]] = {}
        for r in group:  # one Arrow table per version (and runtime): their columns may differ
            by_version.setdefault((r.result.model_version.version, r.result.runtime), []).append(r)
        tables = [_table(records) for records in by_version.values()]
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
        self._write_table(name, day, table)

    def _write_table(self, name: str, day: str, table: Any) -> None:
        import pyarrow.parquet as pq

        folder = self.root / name / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        file_id = uuid.uuid4().hex
        tmp = folder / f".{file_id}.parquet.tmp"
        key = (name, tuple(table.column_names))
        dictionary = self._dictionary.get(key)
        if dictionary is None:  # judged once per model and layout
            dictionary = self._dictionary[key] = dictionary_columns(table)
        try:
            pq.write_table(table, tmp, use_dictionary=dictionary)
            os.replace(tmp, folder / f"{file_id}.parquet")
        finally:
            tmp.unlink(missing_ok=True)

    def _count(self, name: str, result: str, n: int) -> None:
        if self._on_rows is not None:
            try:
                self._on_rows(name, result, n)
            except Exception:  # a broken callback must not stop the writer
                log.exception("prediction log metrics callback failed")


def _table(records: list[_Record]) -> Any:
    """The rows of many requests of ONE version as an Arrow table, built column by column.

    No per-request DataFrame: the writer thread holds the GIL while it works, so its cost per
    request is taken from the server's requests.
    """
    import pyarrow as pa

    results = [r.result for r in records]
    rows = np.fromiter((res.rows for res in results), np.int64, len(records))
    single = bool((rows == 1).all())  # one row per request (the usual case): nothing to repeat
    first = results[0]
    mv = first.model_version
    n = int(rows.sum())

    stamps = (np.asarray([r.timestamp for r in records]) * 1e6).astype("datetime64[us]")
    data: dict[str, Any] = {
        "request_id": _request_ids(records, rows, single),
        "timestamp": pa.array(stamps if single else np.repeat(stamps, rows), pa.timestamp("us", tz="UTC")),
        **constant_columns(mv.name, mv.version, first.runtime, n),
        "protocol": _per_request([r.protocol for r in records], rows, single),
        "role": _per_request([res.role for res in results], rows, single),
        "latency_ms": np.repeat(np.asarray([r.latency_ms for r in records]), rows),
    }
    batches = [res.batch for res in results if res.batch is not None]
    if batches and batches[0].tensor is not None:
        tensor = np.concatenate([np.asarray(b.tensor) for b in batches])
        data[f"{INPUT_PREFIX}tensor"] = _rows_as_lists(tensor)
    elif batches:
        columns = [b.columns for b in batches]  # one lookup per batch, not one per batch and column
        for col in columns[0]:
            data[f"{INPUT_PREFIX}{col}"] = _column(np.concatenate([c[col] for c in columns]))
    data["prediction"] = _column(np.concatenate([np.asarray(res.predictions) for res in results]))
    if first.probabilities is not None and first.classes is not None:
        proba = np.concatenate([np.asarray(res.probabilities) for res in results])
        for i, cls in enumerate(first.classes):
            data[f"{PROBA_PREFIX}{cls}"] = proba[:, i]
    return _arrow_table(data)


def _arrow_table(data: dict[str, Any]) -> Any:
    """An Arrow table of the log's columns (numpy arrays, lists or Arrow arrays)."""
    import pyarrow as pa

    arrow = (pa.Array, pa.ChunkedArray)
    return pa.table({k: v if isinstance(v, arrow) else _arrow(v) for k, v in data.items()})


def _arrow(values: Any) -> Any:
    """An Arrow array; a missing value among strings (NaN or None) is a null, not a type error.

    Python objects are converted OBJECT_CHUNK at a time: each conversion holds the GIL, and the
    server's event loop waits for it; 10,000 strings at once would stall requests for ~1 ms."""
    import pyarrow as pa

    if not (isinstance(values, np.ndarray) and values.dtype == object):
        return pa.array(values)
    if len(values) <= OBJECT_CHUNK:
        return pa.array(values, from_pandas=True)
    pieces = [
        pa.array(values[i : i + OBJECT_CHUNK], from_pandas=True) for i in range(0, len(values), OBJECT_CHUNK)
    ]
    try:
        return pa.chunked_array(pieces)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # pieces of different types (one all null): as one
        return pa.array(values, from_pandas=True)


OBJECT_CHUNK = 1024


# the value type Arrow gives Python numbers of each numpy kind (what .tolist() rows were logged as)
_LIST_VALUE_TYPES: dict[str, Any] = {"f": np.float64, "i": np.int64, "u": np.int64, "b": np.bool_}


def _rows_as_lists(tensor: np.ndarray) -> Any:
    """Each row of ``tensor``, flattened, as one ``list<double>`` value: built from the flat values
    and their offsets, without a Python list per row."""
    import pyarrow as pa

    dtype = _LIST_VALUE_TYPES.get(tensor.dtype.kind)
    if dtype is None:  # anything but numbers and booleans: Python lists, as Arrow infers them
        return pa.array([row.reshape(-1).tolist() for row in tensor])
    n = len(tensor)
    width = int(np.prod(tensor.shape[1:], dtype=np.int64)) if tensor.ndim > 1 else 1
    values = pa.array(np.ascontiguousarray(tensor, dtype=dtype).reshape(-1))
    offsets = pa.array(np.arange(0, (n + 1) * width, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, values)


def _per_request(values: list[Any], rows: np.ndarray, single: bool) -> Any:
    """One value per request, repeated for each of its rows by Arrow (no Python object per row)."""
    import pyarrow as pa

    arr = pa.array(values)
    return arr if single else arr.take(pa.array(np.repeat(np.arange(len(values)), rows)))


def _request_ids(records: list[_Record], rows: np.ndarray, single: bool) -> Any:
    ids = [r.request_id for r in records]
    if all(type(i) is str for i in ids):
        return _per_request(ids, rows, single)
    parts = [
        np.full(r.result.rows, r.request_id, dtype=object)
        if isinstance(r.request_id, str)
        else np.asarray(r.request_id, dtype=object)
        for r in records
    ]
    return np.concatenate(parts) if parts else np.empty(0, dtype=object)


def _date(day: int) -> str:
    """``YYYY-MM-DD`` (UTC) of a day number since the epoch."""
    return (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")


def _column(values: Any) -> Any:
    arr = np.asarray(values)
    if arr.ndim > 1:
        return [row.reshape(-1).tolist() for row in arr]
    return arr
