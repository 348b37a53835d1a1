"""Read the prediction log that serving and batch write (see :mod:`modelport.predlog.writer`).

Files live under ``<MODELPORT_HOME>/prediction_logs/<model>/date=YYYY-MM-DD/<uuid>.parquet``
(:mod:`modelport.predlog.columns`). Needs only pandas and pyarrow.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from modelport.predlog.columns import log_root

__all__ = ["log_root", "read_prediction_log"]


def read_prediction_log(
    home: Path | str,
    name: str,
    since: datetime | date | str | None = None,
    until: datetime | date | str | None = None,
    *,
    version: int | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> Any:
    """Every logged row of ``name`` with ``since <= timestamp < until`` (UTC), oldest first.

    ``version`` keeps one model version. ``sample`` bounds the memory: files are read one at a time
    and each keeps a random share of its rows so that about ``sample`` rows remain; the number of
    rows before sampling is in ``df.attrs["rows_before_sampling"]``.
    """
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    lo = _utc(since)
    hi = _utc(until)
    folder = log_root(home) / name
    files = []
    if folder.is_dir():
        for part in sorted(folder.glob("date=*")):
            day = part.name[len("date=") :]
            if lo is not None and day < lo.strftime("%Y-%m-%d"):
                continue
            if hi is not None and day > hi.strftime("%Y-%m-%d"):
                continue
            files.extend(sorted(part.glob("[!.]*.parquet")))
    rate = 1.0
    if sample is not None and files:
        total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        rate = min(1.0, sample / max(total, 1))
    rng = np.random.default_rng(seed)
    frames = []
    seen = 0
    for f in files:
        df = pq.read_table(f).to_pandas()
        if lo is not None:
            df = df[df["timestamp"] >= lo]
        if hi is not None:
            df = df[df["timestamp"] < hi]
        if version is not None and "version" in df:
            df = df[df["version"] == version]
        seen += len(df)
        if rate < 1.0:
            df = df[rng.random(len(df)) < rate]
        if len(df):
            frames.append(df)
    if not frames:
        empty = pd.DataFrame(
            {
                "request_id": pd.Series(dtype=object),
                "timestamp": pd.Series(dtype="datetime64[us, UTC]"),
                "model": pd.Series(dtype=object),
                "version": pd.Series(dtype="int64"),
                "runtime": pd.Series(dtype=object),
                "protocol": pd.Series(dtype=object),
                "latency_ms": pd.Series(dtype="float64"),
            }
        )
        empty.attrs["rows_before_sampling"] = seen
        return empty
    out = pd.concat(frames, ignore_index=True, sort=False)
    out = out.sort_values("timestamp", kind="stable").reset_index(drop=True)
    out.attrs["rows_before_sampling"] = seen
    return out


def _utc(value: datetime | date | str | None) -> Any:
    import pandas as pd

    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    ts = pd.Timestamp(value)
    return ts.tz_localize(UTC) if ts.tzinfo is None else ts.tz_convert(UTC)
