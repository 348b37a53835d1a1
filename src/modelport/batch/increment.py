"""Which rows a run reads: the watermark window (minus the look-back pairs scored already) or
the files never seen, and what the run learns as its chunks are scored (the new watermark, the
look-back pairs to remember)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from modelport.batch.admission import Admission
from modelport.batch.arrow_rows import key_text
from modelport.batch.enrich import make_enricher
from modelport.batch.jobs import FILE_KINDS, Job
from modelport.batch.sources import Bounds, FileSource, SqlSource
from modelport.batch.state import BatchStore, FileRecord
from modelport.batch.watermarks import (
    normalize_scalar,
    wm_above,
    wm_max,
    wm_state,
    wm_text,
    wm_texts,
    wm_value,
)
from modelport.errors import SchemaMismatch
from modelport.schema import Signature

log = logging.getLogger("modelport.batch.runner")


class Increment:
    """Which rows this run reads: the watermark window or the unseen files."""

    def __init__(
        self, job: Job, store: BatchStore, before: dict[str, Any] | None, full_refresh: bool
    ) -> None:
        self.job = job
        spec = job.source
        self.wm_col = spec.watermark
        self.before = wm_value(before)
        self.lookback = job.lookback_value()
        self.text = spec.kind in ("csv", "json")
        self.source: FileSource | SqlSource
        self.new_files: list[FileRecord] = []
        self.keys: list[tuple[str, str]] = []
        self.enricher = make_enricher(job.features) if job.features is not None else None
        self._max: Any = None
        self._seen: set[tuple[str, str]] = set()
        lower = self.before
        if lower is not None and self.lookback:
            lower = lower - (
                pd.Timedelta(self.lookback) if isinstance(lower, pd.Timestamp) else self.lookback
            )
            self._seen = store.keys(job.name, wm_text(lower))
        self.lower = lower
        if spec.kind in FILE_KINDS:
            self.source = FileSource(spec, job.batch_size)
            listed = self.source.discover()
            if self.wm_col:
                self.paths = [p for p, _, _ in listed]
            else:
                known = {} if full_refresh else store.files(job.name)
                for path, size, mtime in listed:
                    seen = known.get(path)
                    if seen is not None and seen.size == size and seen.mtime == mtime:
                        continue
                    rec = self.source.record(path, size, mtime)
                    if seen is not None and seen.sha256 == rec.sha256:
                        continue  # touched, not changed
                    if seen is not None:
                        log.warning("%s changed since run %s scored it; scoring it again", path, "earlier")
                    self.new_files.append(rec)
                self.paths = [f.path for f in self.new_files]
            self.upper = None
        else:
            self.source = SqlSource(spec, job.batch_size)
            self.paths = []
            self.upper = normalize_scalar(self.source.upper(lower))

    def check_columns(self, signature: Signature) -> list[str]:
        """The source columns to read; a missing one fails the run before anything is written."""
        provided = set(self.enricher.provides()) if self.enricher is not None else set()
        wanted = [c for c in signature.names if c not in provided]
        needs = self.enricher.needs() if self.enricher is not None else []
        for extra in (self.job.key, self.wm_col, *self.job.passthrough, *needs):
            if extra and extra not in wanted:
                wanted.append(extra)
        have = (
            self.source.columns() if isinstance(self.source, SqlSource) else self.source.columns(self.paths)
        )
        if isinstance(self.source, FileSource) and not self.paths:
            return wanted
        missing = [c for c in wanted if c not in have]
        if missing:
            raise SchemaMismatch(
                f"The source {self.job.source.path or self.job.source.table or 'query'} lacks column(s) "
                f"{', '.join(missing)} that the job needs (model {self.job.model}"
                f"{', key' if self.job.key in missing else ''}). Nothing was written.",
                [{"column": c, "error": "missing"} for c in missing],
            )
        return wanted

    def chunks(self, columns: list[str], text: Sequence[str] = ()) -> Iterator[pa.RecordBatch]:
        """The increment's rows in Arrow chunks (from Parquet, the model's ``text`` columns
        dictionary-encoded, as Parquet stores them)."""
        bounds = Bounds(self.wm_col, self.lower, self.upper) if self.wm_col else None
        if isinstance(self.source, SqlSource):
            assert bounds is not None
            yield from self.source.read(columns, bounds)
        else:
            pushed = bounds if (bounds is not None and not self.text) else None
            yield from self.source.read(self.paths, columns, pushed, text)

    @property
    def admission(self) -> Admission:
        # the pairs seen all have a watermark at or below the committed one
        return Admission(self.wm_col, self.lower, self.upper, self._seen, self.job.key, self.before)

    def scored(self, scored: pa.Table, wm: pa.Array | None) -> None:
        """Track the highest watermark scored and the look-back's (key, watermark) pairs."""
        if wm is None or not len(wm):
            return
        top = wm_max(wm)
        if top is None:
            return
        if self._max is None or top > self._max:
            self._max = top
        if self.lookback and self.job.key:
            span = pd.Timedelta(self.lookback) if isinstance(self._max, pd.Timestamp) else self.lookback
            recent = wm_above(wm, self._max - span)
            if recent.any():
                at = pa.array(np.flatnonzero(recent))
                keys = key_text(scored.column(self.job.key).take(at))
                self.keys.extend(zip(keys, wm_texts(wm.take(at)), strict=True))

    def watermark_after(self) -> Any:
        if self._max is None:
            return self.before
        return self._max if self.before is None or self._max > self.before else self.before

    def watermark_state(self) -> dict[str, Any] | None:
        return wm_state(self.watermark_after()) if self.wm_col else None

    def prune_below(self) -> str | None:
        after = self.watermark_after()
        if not self.lookback or after is None:
            return None
        return wm_text(
            after - (pd.Timedelta(self.lookback) if isinstance(after, pd.Timestamp) else self.lookback)
        )
