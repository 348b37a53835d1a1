"""Scoring one chunk of a batch run: the watermark window, text typing, validation with
row-level rejects (bisection), prediction, the output rows and the log sample."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from modelport.batch import arrow_chunks
from modelport.batch.enrich import Enricher
from modelport.batch.jobs import Job
from modelport.batch.watermarks import wm_series, wm_text
from modelport.errors import ModelportError
from modelport.flavors.base import labels_from_proba
from modelport.predictor import Predictor
from modelport.schema import Batch


@dataclass(frozen=True)
class Admission:
    """Which rows of a chunk belong to this run: the watermark window minus look-back rows seen."""

    wm_col: str | None
    lower: Any = None
    upper: Any = None
    seen: frozenset[tuple[str, str]] | set[tuple[str, str]] = frozenset()
    key: str | None = None

    def admit(self, frame: pd.DataFrame, reject: Callable[[pd.DataFrame, str], None]) -> pd.DataFrame:
        if not self.wm_col:
            return frame
        wm = wm_series(frame[self.wm_col])
        missing = wm.isna()
        if missing.any():
            reject(frame[missing], f"the watermark column '{self.wm_col}' is empty")
        keep = ~missing
        if self.lower is not None:
            keep &= wm > self.lower
        if self.upper is not None:
            keep &= wm <= self.upper
        frame, wm = frame[keep], wm[keep]
        if self.seen and len(frame):
            pairs = zip(frame[str(self.key)].astype(str), wm.map(wm_text), strict=True)
            fresh = np.fromiter((p not in self.seen for p in pairs), bool, len(frame))
            frame, wm = frame[fresh], wm[fresh]
        return frame.assign(__wm=wm)  # copy-on-write: no copy of the data


@dataclass
class Scored:
    """One scored chunk: its output rows, their watermarks (None without one), its rejected rows."""

    table: pa.Table
    wm: pd.Series | None
    rejected: pd.DataFrame
    fast: bool = False  # scored on the Arrow path


class Scorer:
    """Types, validates and scores one chunk; rows that fail become rejects with their reason.

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
        self._codes: Any = _UNSET  # a flavors.onnx.TextCodes, or None, once the first chunk asks
        self._codes_lock = threading.Lock()

    def _reject(self, into: list[pd.DataFrame], rows: pd.DataFrame, reason: str | pd.Series) -> None:
        if not len(rows):
            return
        out = rows.drop(columns=["__wm"], errors="ignore").astype("string").astype(object)
        out["reject_reason"] = reason
        out["run_id"] = self.run_id
        into.append(out)

    def score_chunk(self, chunk: pa.RecordBatch | pd.DataFrame, admission: Admission) -> Scored:
        """One chunk of the local engine: Arrow straight through where the types allow (see
        :mod:`modelport.batch.arrow_chunks`), else the pandas path."""
        if isinstance(chunk, pa.RecordBatch):
            fast = self._score_arrow(chunk, admission)
            if fast is not None:
                return fast
            chunk = arrow_chunks.dense(chunk).to_pandas()
        scored, labels, proba, wm, rejected = self._score_frame(chunk, admission)
        table = pa.Table.from_pandas(self.output(scored, labels, proba), preserve_index=False)
        return Scored(table, wm, rejected)

    def _score_arrow(self, chunk: pa.RecordBatch, admission: Admission) -> Scored | None:
        if self.text or self.enricher is not None or admission.seen:
            return None
        rows = arrow_chunks.admit(chunk, admission.wm_col, admission.lower, admission.upper)
        if rows is None:
            return None
        proba: np.ndarray | None
        coded = self._coded(rows) if len(rows) else None
        if coded is not None:
            proba, sample = coded
            labels = labels_from_proba(proba, self.classes)
        else:
            batch = arrow_chunks.model_batch(rows, self.predictor.signature)
            if batch is None:
                return None
            try:
                labels, proba = self.predictor.predict_with_proba(batch) if len(rows) else (np.empty(0), None)
            except _MODEL_ERRORS:
                return None  # the pandas path finds the rows the model refuses
            labels = np.asarray(labels)
            proba = None if proba is None else np.asarray(proba)
            sample = _rows_of(batch.columns)
        if self.logger is not None and len(rows):
            self._log_arrow_sample(rows, sample, labels, proba)
        job = self.job
        table = arrow_chunks.output_table(
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
        return Scored(table, arrow_chunks.watermarks(rows, admission.wm_col), pd.DataFrame(), fast=True)

    def _coded(self, rows: pa.RecordBatch) -> tuple[np.ndarray, Sample] | None:
        """Probabilities with the model's text preprocessing run once per distinct value (an ONNX
        classifier whose text columns arrive dictionary-encoded), and the model's input at given
        rows (for the log sample); else None."""
        if self._codes is _UNSET:
            with self._codes_lock:  # built once, by the first chunk's worker
                if self._codes is _UNSET:
                    from modelport.flavors.onnx import text_codes

                    onnx = self.predictor.runtime == "onnx"
                    self._codes = text_codes(getattr(self.predictor, "_model", None)) if onnx else None
        codes = self._codes
        if codes is None:
            return None
        parts = arrow_chunks.model_codes(rows, self.predictor.signature)
        if parts is None or not parts[1]:
            return None
        columns, text = parts
        try:
            proba = codes.predict_proba(columns, text, rows.num_rows)
        except Exception:  # noqa: BLE001 - the whole graph runs instead, and says what is wrong
            return None
        if proba is None:
            return None

        def sample(picked: np.ndarray) -> dict[str, np.ndarray]:
            return {
                n: columns[n][picked] if n in columns else text[n][0][text[n][1][picked]] for n in self.names
            }

        return proba, sample

    def process(
        self, frame: pd.DataFrame, admission: Admission
    ) -> tuple[pd.DataFrame, pd.Series | None, pd.DataFrame]:
        """One chunk (the Ray engine's actors): (output rows, their watermarks or None, rejected rows)."""
        scored, labels, proba, wm, rejected = self._score_frame(frame, admission)
        return self.output(scored, labels, proba), wm, rejected

    def _score_frame(
        self, frame: pd.DataFrame, admission: Admission
    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None, pd.Series | None, pd.DataFrame]:
        rejects: list[pd.DataFrame] = []
        frame = admission.admit(frame, lambda rows, reason: self._reject(rejects, rows, reason))
        if self.enricher is not None and len(frame):
            frame = self.enricher.enrich(frame)
        scored, labels, proba = self.score(frame, rejects)
        wm = scored["__wm"].reset_index(drop=True) if "__wm" in scored else None
        rejected = pd.concat(rejects, ignore_index=True) if rejects else pd.DataFrame()
        return scored, labels, proba, wm, rejected

    def score(
        self, frame: pd.DataFrame, rejects: list[pd.DataFrame]
    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None]:
        """(scored rows, their labels, their probabilities); rejected rows go to ``rejects``."""
        if self.text and len(frame):
            frame = self._type_text(frame, rejects)
        labels: list[np.ndarray] = []
        probas: list[np.ndarray] = []
        kept: list[pd.DataFrame] = []
        for part, lab, proba in self._bisect(frame, rejects):
            kept.append(part)
            labels.append(lab)
            if proba is not None:
                probas.append(proba)
        scored = (pd.concat(kept) if len(kept) > 1 else kept[0]) if kept else frame.iloc[:0]
        labels_all = np.concatenate(labels) if labels else np.empty(0)
        proba_all = np.concatenate(probas) if probas else None
        if self.logger is not None and len(scored):
            self._log_sample(lambda picked: scored.iloc[picked], scored, labels_all, proba_all)
        return scored, labels_all, proba_all

    def _log_arrow_sample(
        self, rows: pa.RecordBatch, columns: Sample, labels: np.ndarray, proba: np.ndarray | None
    ) -> None:
        """The log sample of a chunk scored from Arrow: its rows are validated already, so the sample
        is taken from the model's input as it is (no DataFrame, no second validation)."""
        picked = self._pick(len(rows))
        if not len(picked):
            return
        sample = Batch(self.predictor.signature, columns(picked), len(picked))
        keys = None
        if self.job.key:
            col = rows.column(self.job.key)
            if arrow_chunks.is_text(col.type) and not col.null_count:  # strings already
                keys = col.take(picked).to_numpy(zero_copy_only=False)
            else:  # as the pandas path has it (the schema's pandas metadata applies)
                key = arrow_chunks.dense(rows.select([self.job.key]).take(picked)).to_pandas()
                keys = key[self.job.key].astype(str).to_numpy()
        self._log(picked, sample, keys, labels, proba)

    def _pick(self, n: int) -> np.ndarray:
        return np.flatnonzero(self._rng.random(n) < self.job.log_sample)

    def _log_sample(
        self,
        rows_at: Callable[[np.ndarray], pd.DataFrame],
        rows: Any,
        labels: np.ndarray,
        proba: np.ndarray | None,
    ) -> None:
        """A ``log_sample`` share of the scored rows to the prediction log (for monitoring), each with
        its key as the request id so that labels arriving later can be joined to it."""
        picked = self._pick(len(rows))
        if not len(picked):
            return
        sample = rows_at(picked)
        batch = self.predictor.prepare(sample[self.names])
        keys = sample[self.job.key].astype(str).to_numpy() if self.job.key else None
        self._log(picked, batch, keys, labels, proba)

    def _log(
        self,
        picked: np.ndarray,
        batch: Batch,
        keys: np.ndarray | None,
        labels: np.ndarray,
        proba: np.ndarray | None,
    ) -> None:
        from modelport.predictor import Prediction

        assert self.logger is not None
        result = Prediction(
            self.mv,
            labels[picked],
            None if proba is None else proba[picked],
            self.classes,
            len(picked),
            batch=batch,
            runtime=self.predictor.runtime,
        )
        # one record, with a request id (the key) per row
        self.logger.log(result, self.run_id if keys is None else keys, "batch", 0.0)

    def _bisect(
        self, frame: pd.DataFrame, rejects: list[pd.DataFrame]
    ) -> Iterator[tuple[pd.DataFrame, np.ndarray, np.ndarray | None]]:
        if not len(frame):
            return
        try:
            batch = self.predictor.prepare(frame[self.names])
            labels, proba = self.predictor.predict_with_proba(batch)
        except _MODEL_ERRORS as exc:
            if len(frame) == 1:
                message = exc.message if isinstance(exc, ModelportError) else f"the model refused it ({exc})"
                self._reject(rejects, frame, message)
                return
            half = len(frame) // 2
            yield from self._bisect(frame.iloc[:half], rejects)
            yield from self._bisect(frame.iloc[half:], rejects)
            return
        yield frame, np.asarray(labels), None if proba is None else np.asarray(proba)

    def _type_text(self, frame: pd.DataFrame, rejects: list[pd.DataFrame]) -> pd.DataFrame:
        """CSV/JSON values arrive as text: convert each column to its signature type, row by row."""
        frame = frame.copy()
        bad = pd.Series("", index=frame.index, dtype=object)
        for spec in self.predictor.signature.columns or ():
            col = frame[spec.name]
            if spec.type in ("string", "category"):
                frame[spec.name] = col.where(col.isna(), col.astype(str))
                continue
            if spec.type == "datetime":
                typed = pd.to_datetime(col, errors="coerce", utc=True)
            elif spec.type == "bool":
                typed = col.map(_parse_bool)
            else:
                typed = pd.to_numeric(col, errors="coerce")
                if spec.type.startswith(("int", "uint")):
                    whole = typed.isna() | (typed == np.floor(typed))
                    typed = typed.where(whole, np.nan)
            failed = typed.isna() & col.notna()
            if failed.any():
                got = col[failed].astype(str).str.slice(0, 50)
                _note(bad, failed, f"column '{spec.name}' expects {spec.type}, got '" + got + "'")
            integer = spec.type.startswith(("int", "uint"))
            if integer and not spec.nullable:
                empty = col.isna()
                if empty.any():
                    _note(bad, empty, pd.Series(f"column '{spec.name}' is empty", index=col.index)[empty])
            frame[spec.name] = typed
        rejected = bad != ""
        if rejected.any():
            self._reject(rejects, frame.loc[rejected], bad[rejected])
            frame = frame.loc[~rejected]
        for spec in self.predictor.signature.columns or ():
            if spec.type.startswith(("int", "uint")) and not frame[spec.name].isna().any():
                frame[spec.name] = frame[spec.name].astype(spec.type)
        return frame

    def output(self, scored: pd.DataFrame, labels: np.ndarray, proba: np.ndarray | None) -> pd.DataFrame:
        job = self.job
        data: dict[str, Any] = {}
        if job.key:
            data[job.key] = scored[job.key].to_numpy()
        for col in job.passthrough:
            if col != job.key:
                data[col] = scored[col].to_numpy()
        data["prediction"] = labels
        if proba is not None and self.classes is not None:
            for i, cls in enumerate(self.classes):
                data[f"proba_{cls}"] = proba[:, i]
        n = len(scored)
        data["model"] = np.full(n, self.mv.name, dtype=object)
        data["version"] = np.full(n, self.mv.version, dtype=np.int64)
        data["run_id"] = np.full(n, self.run_id, dtype=object)
        return pd.DataFrame(data)


_UNSET: Any = object()
Sample = Callable[[np.ndarray], dict[str, np.ndarray]]  # the model's input columns at given rows


def _rows_of(columns: dict[str, np.ndarray]) -> Sample:
    return lambda picked: {n: c[picked] for n, c in columns.items()}


_MODEL_ERRORS = (ModelportError, ValueError, TypeError, KeyError, IndexError)


def _note(bad: pd.Series, where: pd.Series, message: pd.Series) -> None:
    """Add ``message`` to the reject reasons of the rows ``where``."""
    bad[where] = np.where(bad[where] == "", message, bad[where] + "; " + message)


def _parse_bool(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "t", "y"):
        return True
    if text in ("false", "0", "no", "f", "n"):
        return False
    return None
