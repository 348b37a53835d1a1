"""Which rows of a chunk belong to this run: the watermark window, minus the look-back rows seen.

One implementation for every source and engine, on Arrow: the watermark column becomes one
comparable array (:func:`~modelport.batch.watermarks.wm_array`), the window is one vectorised
filter, and only rows inside the look-back span (those that may have been scored already) are
checked one by one against the (key, watermark) pairs the earlier runs recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modelport.batch.arrow_rows import key_text
from modelport.batch.watermarks import wm_array, wm_texts, wm_window


@dataclass(frozen=True)
class Admitted:
    """A chunk's rows of this run, their watermarks (None without a watermark column) and the rows
    rejected for an empty watermark (None when there are none)."""

    rows: pa.RecordBatch
    wm: pa.Array | None
    empty: pa.RecordBatch | None = None


@dataclass(frozen=True)
class Admission:
    """The window ``lower < watermark <= upper`` and the look-back pairs already scored (``seen``,
    all with a watermark at or below ``seen_upto``)."""

    wm_col: str | None
    lower: Any = None
    upper: Any = None
    seen: frozenset[tuple[str, str]] | set[tuple[str, str]] = frozenset()
    key: str | None = None
    seen_upto: Any = None

    @property
    def reason(self) -> str:
        return f"the watermark column '{self.wm_col}' is empty"

    def admit(self, batch: pa.RecordBatch) -> Admitted:
        if not self.wm_col:
            return Admitted(batch, None)
        wm = wm_array(batch.column(self.wm_col))
        empty = None
        keep = wm_window(wm, self.lower, self.upper)
        if wm.null_count:
            missing = wm.is_null()
            empty = batch.filter(missing)
            if keep is None:
                keep = pc.invert(missing)
        if keep is not None and not pc.all(keep).as_py():
            batch, wm = batch.filter(keep), wm.filter(keep)
        if self.seen and batch.num_rows:
            fresh = self._fresh(batch, wm)
            if fresh is not None:
                batch, wm = batch.filter(fresh), wm.filter(fresh)
        return Admitted(batch, wm, empty)

    def _fresh(self, batch: pa.RecordBatch, wm: pa.Array) -> pa.Array | None:
        """Rows not scored before; only those at or below ``seen_upto`` can have been."""
        maybe = np.ones(batch.num_rows, dtype=bool)
        if self.seen_upto is not None:
            window = wm_window(wm, None, self.seen_upto)
            if window is not None:
                maybe = np.asarray(window.to_numpy(zero_copy_only=False), dtype=bool)
        rows = np.flatnonzero(maybe)
        if not len(rows):
            return None
        at = pa.array(rows, pa.int64())
        keys = key_text(batch.column(str(self.key)).take(at))
        pairs = zip(keys, wm_texts(wm.take(at)), strict=True)
        seen = np.fromiter((p in self.seen for p in pairs), bool, len(rows))
        if not seen.any():
            return None
        fresh = np.ones(batch.num_rows, dtype=bool)
        fresh[rows[seen]] = False
        return pa.array(fresh)
