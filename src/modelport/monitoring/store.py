"""Where monitoring keeps its findings and the labels that arrive late.

- Results: one row per model version and window in ``mp_monitor_results`` (the full
  :class:`DriftResult` as JSON plus the columns a timeline needs), in the metadata database.
- Labels: Parquet files under ``MODELPORT_HOME/labels/<model>/`` with ``key, label, received_at``;
  a key labelled twice keeps its latest label. Joined to the prediction log on ``request_id``
  (the server's request id, or a batch job's key).
- Alert state: ``mp_alerts`` remembers which rules are firing, so a webhook goes out once per
  incident and not on every window.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, insert, select, update

from modelport.errors import InvalidInput
from modelport.files import plain
from modelport.monitoring.results import DriftResult
from modelport.store import db

LABELS = "labels"


class MonitorStore:
    def __init__(self, engine: Engine, home: Path) -> None:
        self.engine = engine
        self.home = Path(home)

    # --- results ----------------------------------------------------------------------------------------

    def save(self, result: DriftResult) -> int:
        with self.engine.begin() as conn:
            row = conn.execute(
                insert(db.monitor_results)
                .values(
                    model=result.model,
                    version=result.version,
                    window_start=_dt(result.window_start),
                    window_end=_dt(result.window_end),
                    computed_at=datetime.now(UTC),
                    drift_share=float(result.drift_share),
                    dataset_drift=bool(result.dataset_drift),
                    result=plain(result.to_dict()),
                )
                .returning(db.monitor_results.c.id)
            ).scalar_one()
        return int(row)

    def results(self, model: str, version: int | None = None, limit: int | None = None) -> list[DriftResult]:
        """Stored results of ``model`` (one version or all), oldest window first."""
        t = db.monitor_results
        q = select(t.c.result).where(t.c.model == model)
        if version is not None:
            q = q.where(t.c.version == version)
        q = q.order_by(t.c.window_end.desc().nulls_last(), t.c.id.desc())
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            rows = [DriftResult.from_dict(r) for r in conn.execute(q).scalars()]
        return rows[::-1]

    def latest(self, model: str, version: int | None = None) -> DriftResult | None:
        found = self.results(model, version, limit=1)
        return found[-1] if found else None

    # --- labels -----------------------------------------------------------------------------------------

    def add_labels(self, model: str, frame: Any, key: str, label: str) -> int:
        """Store ``frame[label]`` per ``frame[key]`` (appended; the newest label of a key wins)."""
        import pandas as pd

        for col in (key, label):
            if col not in frame.columns:
                raise InvalidInput(
                    f"The labels have no column '{col}'; they have: {', '.join(map(str, frame.columns))}."
                )
        data = pd.DataFrame(
            {
                "key": frame[key].astype(str).to_numpy(),
                "label": frame[label].to_numpy(),
                "received_at": pd.Timestamp.now(tz="UTC"),
            }
        ).dropna(subset=["label"])
        folder = self.home / LABELS / model
        folder.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        tmp = folder / f".{name}.parquet.tmp"
        data.to_parquet(tmp, index=False)
        tmp.replace(folder / f"{name}.parquet")
        return len(data)

    def labels(self, model: str) -> Any:
        """key -> label (newest wins), as a DataFrame with columns ``key, label, received_at``."""
        import pandas as pd

        folder = self.home / LABELS / model
        files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
        if not files:
            return pd.DataFrame({"key": pd.Series(dtype=str), "label": [], "received_at": []})
        frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        frame = frame.sort_values("received_at", kind="stable").drop_duplicates("key", keep="last")
        return frame.reset_index(drop=True)

    # --- alert incidents ----------------------------------------------------------------------------------

    def incident(self, model: str, rule: str, firing: bool, detail: str = "") -> bool:
        """Record whether ``rule`` fires now; True when this opens a new incident (notify once)."""
        t = db.alerts
        now = datetime.now(UTC)
        where = and_(t.c.model == model, t.c.rule == rule)
        with self.engine.begin() as conn:
            row = conn.execute(select(t.c.active).where(where)).first()
            opens = firing and (row is None or not row.active)
            values: dict[str, Any] = {"active": firing, "last_checked": now, "detail": detail[:2000]}
            if opens:
                values.update(since=now, last_sent=now)
            elif not firing:
                values["since"] = None
            if row is None:
                conn.execute(insert(t).values(model=model, rule=rule, **values))
            else:
                conn.execute(update(t).where(where).values(**values))
        return opens


def _dt(value: str | None) -> datetime | None:
    if not value:
        return None
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
