"""The audit trail (``mp_retrain_events``): every retraining check, run, decision, shadow or canary
phase, promotion, rollback and failure, with its time and reasons.

A shared lower part: retraining writes it (:func:`record`), monitoring's timeline and retraining's
history read it (:func:`events`); neither imports the other for it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select

from modelport.files import plain
from modelport.store import db

KINDS = ("check", "run", "failure", "decision", "phase", "promotion", "rollback")


def record(engine: Engine, model: str, kind: str, summary: str, **details: Any) -> dict[str, Any]:
    assert kind in KINDS, kind
    row = {
        "model": model,
        "at": datetime.now(UTC),
        "kind": kind,
        "summary": summary,
        "details": plain(details),
    }
    with engine.begin() as conn:
        conn.execute(insert(db.retrain_events).values(**row))
    return {**row, "at": row["at"].isoformat()}


def events(engine: Engine, model: str, kinds: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """The model's events, oldest first."""
    t = db.retrain_events
    q = select(t).where(t.c.model == model)
    if kinds:
        q = q.where(t.c.kind.in_(kinds))
    with engine.connect() as conn:
        rows = conn.execute(q.order_by(t.c.id)).mappings().all()
    out = []
    for r in rows:
        at = r["at"] if r["at"].tzinfo else r["at"].replace(tzinfo=UTC)
        out.append({"id": r["id"], "model": r["model"], "at": at.isoformat(), "kind": r["kind"],
                    "summary": r["summary"], "details": dict(r["details"] or {})})  # fmt: skip
    return out
