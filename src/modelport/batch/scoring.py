"""Scoring one chunk of a batch run, Arrow in and Arrow out, for both engines.

A chunk goes through ONE path: admission (the watermark window, look-back pairs seen), the
feature join (if any), text typing (CSV/JSON), validation, prediction, the output rows, the
rejects and the log sample. Rows are scored straight from their Arrow columns; only the ROWS that
need a per-value decision take a slower way:

- a row with an empty watermark is rejected (:mod:`~modelport.batch.admission`);
- a text value that is not written the plain way is parsed alone, and rejects its row when it is
  no value of the input's type (:mod:`~modelport.batch.text_values`);
- a row whose values the Arrow column checks cannot vouch for (a null in an integer input, a
  value outside its range, a column of the wrong type) is validated by
  :func:`modelport.schema.prepare`, which scores it or names what is wrong
  (:mod:`~modelport.batch.model_input`);
- when the model refuses a set of rows, it is split in halves until the rows it refuses are
  found, each rejected with the model's message; the others are scored.

The output keeps the input order of the scored rows whichever way each took.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from modelport.batch.admission import Admission
from modelport.batch.arrow_rows import as_batch, concat, from_frame, key_text, take, to_frame
from modelport.batch.enrich import Enricher
from modelport.batch.jobs import Job
from modelport.batch.model_input import ModelInput, check
from modelport.batch.outputs import output_table, reject_table
from modelport.batch.text_values import type_text
from modelport.errors import ModelportError
from modelport.flavors.base import labels_from_proba
from modelport.predictor import Predictor
from modelport.schema import Batch

_MODEL_ERRORS = (ModelportError, ValueError, TypeError, KeyError, IndexError)
_UNSET: Any = object()


@dataclass
class Scored:
    """One scored chunk: its output rows, their watermarks (None without a watermark column),
    its rejected rows (None when there are none), and how many rows took the per-value path."""

    table: pa.Table
    wm: pa.Array | None
    rejected: pa.Table | None = None
    slow_rows: int = 0


@dataclass
class _Predicted:
    """Model results for some rows of a chunk (positions in it) and the rows refused, with why."""

    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]
    refused: dict[int, str]


class Scorer:
    """Admits, types, validates and scores chunks; rows that fail become rejects with their reason.

    Holds no per-chunk state, so several threads may score chunks with one Scorer at once.
    """

    def __init__(
        self, job: Job, predictor: Predictor, run_id: str, text: bool, enricher: Enricher | None = None
    ) -> None:
        self.job, self.predictor, self.run_id, self.text = job, predictor, run_id, text
        self.enricher = enricher
        self.logger: Any = None  # a PredictionLogger when the run logs a sample of its rows
        self._rng = np.random.default_rng()
        self.mv = predictor.model_version
        self.classes = predictor.classes
        self.names = list(predictor.signature.names)
        self._codes: Any = _UNSET  # a flavors.onnx_text.TextCodes, or None, once the first chunk asks
        self._codes_lock = threading.Lock()

    def score_chunk(self, chunk: pa.RecordBatch | pa.Table, admission: Admission) -> Scored:
        rejects: list[pa.Table] = []
        admitted = admission.admit(as_batch(chunk))
        if admitted.empty is not None and admitted.empty.num_rows:
            rejects.append(reject_table(admitted.empty, admission.reason, self.run_id))
        rows, wm = admitted.rows, admitted.wm
        if self.enricher is not None and rows.num_rows:
            rows = from_frame(self.enricher.enrich(to_frame(rows)))
        untyped: dict[int, str] = {}
        if self.text and rows.num_rows:
            rows, untyped = type_text(rows, self.predictor.signature)
        n = rows.num_rows
        labels, proba, refused, slow = self._predict(rows, untyped)
        ok = np.ones(n, dtype=bool)
        if refused:
            at = np.array(sorted(refused), dtype=np.int64)
            ok[at] = False
            rejects.append(reject_table(take(rows, at), [refused[int(i)] for i in at], self.run_id))
        if not ok.all():
            rows = rows.filter(pa.array(ok))
            wm = None if wm is None else wm.filter(pa.array(ok))
            labels = labels[ok]
            proba = None if proba is None else proba[ok]
        job = self.job
        table = output_table(
            rows,
            job.key,
            job.passthrough,
            labels,
            proba,
            self.classes,
            self.mv.name,
            self.mv.version,
            self.run_id,
        )
        rejected = None
        if rejects:
            rejected = (
                rejects[0] if len(rejects) == 1 else pa.concat_tables(rejects, promote_options="permissive")
            )
        return Scored(table, wm, rejected, slow)

    def _predict(
        self, rows: pa.RecordBatch, untyped: dict[int, str]
    ) -> tuple[np.ndarray, np.ndarray | None, dict[int, str], int]:
        """(labels, probabilities, {row: why refused}, rows that took the per-value path) for
        every row of ``rows``; a refused row's label and probabilities are placeholders."""
        n = rows.num_rows
        refused = dict(untyped)
        if not n:
            return np.empty(0), None, refused, 0
        inp = check(rows, self.predictor.signature)
        slow_mask = np.ones(n, dtype=bool) if inp is None else inp.slow
        if slow_mask is None:
            slow_mask = np.zeros(n, dtype=bool)
        todo = np.ones(n, dtype=bool)
        if untyped:
            todo[list(untyped)] = False
        fast = np.flatnonzero(todo & ~slow_mask)
        slow = np.flatnonzero(todo & slow_mask)
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
        fast_input = None
        if len(fast):
            assert inp is not None
            fast_input = inp if len(fast) == n else inp.take(fast)
            done = self._score_input(fast_input)
            parts += [(fast[at], lab, pro) for at, lab, pro in done.rows]
            refused.update({int(fast[i]): why for i, why in done.refused.items()})
        frame = None
        if len(slow):
            frame = to_frame(take(rows, slow))
            done = self._score_frame(frame)
            parts += [(slow[at], lab, pro) for at, lab, pro in done.rows]
            refused.update({int(slow[i]): why for i, why in done.refused.items()})
        if not parts:
            return np.empty(n), None, refused, len(slow)
        labels = concat([(at, lab) for at, lab, _ in parts], n)
        proba = None
        if parts[0][2] is not None:
            proba = concat([(at, pro) for at, _, pro in parts if pro is not None], n)
        if self.logger is not None:
            self._log_sample(rows, n, refused, labels, proba, (fast, fast_input), (slow, frame))
        return labels, proba, refused, len(slow)

    def _score_input(self, inp: ModelInput) -> _Predicted:
        """Rows validated on Arrow: the text cut of an ONNX model where it applies, else the model
        on the whole input, halved where it refuses some rows."""
        proba = self._coded(inp)
        if proba is not None:
            return _Predicted([(np.arange(inp.n), labels_from_proba(proba, self.classes), proba)], {})
        refused: dict[int, str] = {}
        rows = list(self._halves(inp.batch(), 0, inp.n, refused))
        return _Predicted(rows, refused)

    def _halves(
        self, batch: Batch, lo: int, hi: int, refused: dict[int, str]
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        part = batch if (lo, hi) == (0, batch.n_rows) else batch.rows(lo, hi)
        try:
            labels, proba = self.predictor.predict_with_proba(part)
        except _MODEL_ERRORS as exc:
            if hi - lo == 1:
                refused[lo] = _refusal(exc)
                return
            mid = (lo + hi) // 2
            yield from self._halves(batch, lo, mid, refused)
            yield from self._halves(batch, mid, hi, refused)
            return
        yield np.arange(lo, hi), np.asarray(labels), None if proba is None else np.asarray(proba)

    def _score_frame(self, frame: pd.DataFrame) -> _Predicted:
        """Rows the Arrow checks could not vouch for, validated value by value by the schema."""
        refused: dict[int, str] = {}
        rows = list(self._frame_halves(frame, refused))
        return _Predicted(rows, refused)

    def _frame_halves(
        self, frame: pd.DataFrame, refused: dict[int, str]
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        if not len(frame):
            return
        try:
            batch = self.predictor.prepare(frame[self.names])
            labels, proba = self.predictor.predict_with_proba(batch)
        except _MODEL_ERRORS as exc:
            if len(frame) == 1:
                refused[int(frame.index[0])] = _refusal(exc)
                return
            half = len(frame) // 2
            yield from self._frame_halves(frame.iloc[:half], refused)
            yield from self._frame_halves(frame.iloc[half:], refused)
            return
        yield frame.index.to_numpy(), np.asarray(labels), None if proba is None else np.asarray(proba)

    def _coded(self, inp: ModelInput) -> np.ndarray | None:
        """Probabilities with the model's text preprocessing run once per distinct value (an ONNX
        classifier whose text columns arrive dictionary-encoded); else None."""
        if not inp.text:
            return None
        if self._codes is _UNSET:
            with self._codes_lock:  # built once, by the first chunk's worker
                if self._codes is _UNSET:
                    from modelport.flavors.onnx_text import text_codes

                    onnx = self.predictor.runtime == "onnx"
                    self._codes = text_codes(self.predictor.loaded) if onnx else None
        codes = self._codes
        if codes is None:
            return None
        try:
            proba = codes.predict_proba(inp.columns, inp.text, inp.n)
        except Exception:  # noqa: BLE001 - the whole graph runs instead, and says what is wrong
            return None
        return None if proba is None else np.asarray(proba)

    def _log_sample(
        self,
        rows: pa.RecordBatch,
        n: int,
        refused: dict[int, str],
        labels: np.ndarray,
        proba: np.ndarray | None,
        fast: tuple[np.ndarray, ModelInput | None],
        slow: tuple[np.ndarray, pd.DataFrame | None],
    ) -> None:
        """A ``log_sample`` share of the scored rows to the prediction log (for monitoring), each with
        its key as the request id so that labels arriving later can be joined to it. The model's
        input is logged as it was validated, whichever way each row took."""
        scored = np.ones(n, dtype=bool)
        if refused:
            scored[list(refused)] = False
        picked = np.flatnonzero(scored)[self._pick(int(scored.sum()))]
        if not len(picked):
            return
        parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in self.names}
        where = np.arange(len(picked))
        (fast_rows, fast_input), (slow_rows, frame) = fast, slow
        in_fast = np.isin(picked, fast_rows)
        if in_fast.any() and fast_input is not None:
            local = np.searchsorted(fast_rows, picked[in_fast])
            for name, col in fast_input.take(local).arrays().items():
                parts[name].append((where[in_fast], col))
        if (~in_fast).any() and frame is not None:
            local = np.searchsorted(slow_rows, picked[~in_fast])
            for name, col in self.predictor.prepare(frame.iloc[local][self.names]).columns.items():
                parts[name].append((where[~in_fast], col))
        columns = {name: concat(p, len(picked)) for name, p in parts.items()}
        sample = Batch(self.predictor.signature, columns, len(picked))
        keys = key_text(rows.column(self.job.key).take(pa.array(picked))) if self.job.key else None
        self.log_rows(sample, keys, labels[picked], None if proba is None else proba[picked])

    def _pick(self, n: int) -> np.ndarray:
        return np.flatnonzero(self._rng.random(n) < self.job.log_sample)

    def log_rows(
        self, batch: Batch, keys: np.ndarray | None, labels: np.ndarray, proba: np.ndarray | None
    ) -> None:
        """Scored rows (their validated input, predictions, keys) to the prediction logger."""
        from modelport.predictor import Prediction

        assert self.logger is not None
        result = Prediction(
            self.mv, labels, proba, self.classes, batch.n_rows, batch=batch, runtime=self.predictor.runtime
        )
        # one record, with a request id (the key) per row
        self.logger.log(result, self.run_id if keys is None else keys, "batch", 0.0)


def _refusal(exc: Exception) -> str:
    return exc.message if isinstance(exc, ModelportError) else f"the model refused it ({exc})"
