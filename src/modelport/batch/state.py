"""What batch jobs remember in the metadata store (SQLite or PostgreSQL, same code): runs and their
statistics, each job's committed watermark, the files and look-back keys already scored, and locks.

A run is committed in ONE transaction that advances the watermark, records the files and keys it
scored and marks the run ``committed`` with its publish plan; publishing then makes the staged
output visible (an atomic rename or one SQL transaction) and marks it ``published``. A run that
died before committing is ``crashed`` and its staging is removed; one that died after committing
is published by the next run (roll forward). So every input row reaches the output exactly once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from modelport.errors import ModelportError
from modelport.store import db

log = logging.getLogger(__name__)
LOCK_TTL = timedelta(seconds=60)  # a lock whose holder has not renewed it for this long is stale


class JobLocked(ModelportError):
    """Another run of the same job holds its lock."""

    status = 409


@dataclass(frozen=True)
class FileRecord:
    path: str
    size: int
    mtime: str
    sha256: str


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    job: str
    state: str
    started_at: datetime
    finished_at: datetime | None
    engine: str
    model: str
    version: int | None
    stats: dict[str, Any]
    publish: dict[str, Any]
    error: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "job": self.job,
            "state": self.state,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "engine": self.engine,
            "model": self.model,
            "version": self.version,
            **self.stats,
            "error": self.error,
        }


class BatchStore:
    """Runs, watermarks, seen files, look-back keys and job locks of every batch job."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- locks ---------------------------------------------------------------------------------------

    def acquire(self, name: str, ttl: timedelta = LOCK_TTL) -> Lock:
        """Take the lock ``name`` or raise :class:`JobLocked`; a stale lock is taken over."""
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        now = datetime.now(UTC)
        row = {"name": name, "owner": owner, "host": socket.gethostname(), "pid": os.getpid()}
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(db.locks).values(**row, acquired_at=now, heartbeat_at=now))
            return Lock(self, name, owner, ttl)
        except IntegrityError:
            pass
        with self.engine.begin() as conn:
            held = conn.execute(select(db.locks).where(db.locks.c.name == name)).mappings().first()
            if held is not None and not _stale(held, now, ttl):
                raise JobLocked(
                    f"Job '{name}' is already running (pid {held['pid']} on {held['host']}, since "
                    f"{_aware(held['acquired_at']):%Y-%m-%d %H:%M:%S} UTC). Wait for it to finish; a lock "
                    f"not renewed for {int(ttl.total_seconds())} s is taken over."
                )
            if held is None:
                conn.execute(insert(db.locks).values(**row, acquired_at=now, heartbeat_at=now))
            else:  # compare-and-swap: only if the stale holder is still the one we saw
                taken = conn.execute(
                    update(db.locks)
                    .where(and_(db.locks.c.name == name, db.locks.c.owner == held["owner"]))
                    .values(**row, acquired_at=now, heartbeat_at=now)
                ).rowcount
                if taken != 1:
                    raise JobLocked(f"Job '{name}' was just started by another process.")
                log.warning("took over the stale lock of %s from %s", name, held["owner"])
        return Lock(self, name, owner, ttl)

    def lock_holder(self, name: str) -> dict[str, Any] | None:
        """Who holds lock ``name`` (host, pid, since), or None; a stale holder is reported as such."""
        with self.engine.connect() as conn:
            held = conn.execute(select(db.locks).where(db.locks.c.name == name)).mappings().first()
        if held is None:
            return None
        return {
            "host": held["host"],
            "pid": held["pid"],
            "since": _aware(held["acquired_at"]).isoformat(),
            "stale": _stale(held, datetime.now(UTC), LOCK_TTL),
        }

    def _renew(self, name: str, owner: str) -> bool:
        with self.engine.begin() as conn:
            n = conn.execute(
                update(db.locks)
                .where(and_(db.locks.c.name == name, db.locks.c.owner == owner))
                .values(heartbeat_at=datetime.now(UTC))
            ).rowcount
        return n == 1

    def _release(self, name: str, owner: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(db.locks).where(and_(db.locks.c.name == name, db.locks.c.owner == owner)))

    # --- runs ------------------------------------------------------------------------------------------

    def start_run(self, run_id: str, job: str, engine: str, model: str, publish: Mapping[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(db.batch_runs).values(
                    run_id=run_id,
                    job=job,
                    state="running",
                    started_at=datetime.now(UTC),
                    engine=engine,
                    model=model,
                    stats={},
                    publish=dict(publish),
                    error="",
                )
            )

    def finish_run(
        self, run_id: str, state: str, stats: Mapping[str, Any] | None = None, error: str = ""
    ) -> None:
        values: dict[str, Any] = {"state": state, "finished_at": datetime.now(UTC), "error": error[:4000]}
        if stats is not None:
            values["stats"] = dict(stats)
        with self.engine.begin() as conn:
            conn.execute(update(db.batch_runs).where(db.batch_runs.c.run_id == run_id).values(**values))

    def commit_run(
        self,
        run_id: str,
        job: str,
        *,
        version: int,
        stats: Mapping[str, Any],
        watermark: Mapping[str, Any] | None,
        files: Iterable[FileRecord] = (),
        keys: Iterable[tuple[str, str]] = (),
        prune_keys_below: str | None = None,
        full_refresh: bool = False,
    ) -> None:
        """Advance the job's state and mark the run committed, in one transaction."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            if full_refresh:
                conn.execute(delete(db.batch_files).where(db.batch_files.c.job == job))
                conn.execute(delete(db.batch_keys).where(db.batch_keys.c.job == job))
            for f in files:
                conn.execute(
                    delete(db.batch_files).where(
                        and_(db.batch_files.c.job == job, db.batch_files.c.path == f.path)
                    )
                )
                conn.execute(
                    insert(db.batch_files).values(
                        job=job, path=f.path, size=f.size, mtime=f.mtime, sha256=f.sha256, run_id=run_id
                    )
                )
            key_rows = [{"job": job, "key": k, "watermark": w, "run_id": run_id} for k, w in keys]
            if key_rows:
                conn.execute(insert(db.batch_keys), key_rows)
            if prune_keys_below is not None:
                conn.execute(
                    delete(db.batch_keys).where(
                        and_(db.batch_keys.c.job == job, db.batch_keys.c.watermark < prune_keys_below)
                    )
                )
            if watermark is not None or full_refresh:
                exists = conn.execute(select(db.batch_state.c.job).where(db.batch_state.c.job == job)).first()
                values = {"watermark": watermark, "run_id": run_id, "updated_at": now}
                if exists:
                    conn.execute(update(db.batch_state).where(db.batch_state.c.job == job).values(**values))
                else:
                    conn.execute(insert(db.batch_state).values(job=job, **values))
            conn.execute(
                update(db.batch_runs)
                .where(db.batch_runs.c.run_id == run_id)
                .values(state="committed", version=version, stats=dict(stats))
            )

    def runs(
        self, job: str, states: Iterable[str] | None = None, limit: int | None = None
    ) -> list[RunRecord]:
        """Runs of ``job``, newest first."""
        q = select(db.batch_runs).where(db.batch_runs.c.job == job)
        if states is not None:
            q = q.where(db.batch_runs.c.state.in_(list(states)))
        q = q.order_by(db.batch_runs.c.started_at.desc(), db.batch_runs.c.run_id.desc())
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [_run(r) for r in conn.execute(q).mappings()]

    def jobs(self) -> list[str]:
        with self.engine.connect() as conn:
            return sorted(set(conn.execute(select(db.batch_runs.c.job)).scalars()))

    # --- incremental state -------------------------------------------------------------------------------

    def watermark(self, job: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(db.batch_state.c.watermark).where(db.batch_state.c.job == job)
            ).scalar()
        return dict(value) if value else None

    def files(self, job: str) -> dict[str, FileRecord]:
        q = select(db.batch_files).where(db.batch_files.c.job == job)
        with self.engine.connect() as conn:
            return {
                r["path"]: FileRecord(r["path"], r["size"], r["mtime"], r["sha256"])
                for r in conn.execute(q).mappings()
            }

    def keys(self, job: str, at_or_above: str) -> set[tuple[str, str]]:
        q = select(db.batch_keys.c.key, db.batch_keys.c.watermark).where(
            and_(db.batch_keys.c.job == job, db.batch_keys.c.watermark >= at_or_above)
        )
        with self.engine.connect() as conn:
            return {(k, w) for k, w in conn.execute(q)}


class Lock:
    """A held job lock, renewed by a daemon thread until :meth:`release`."""

    def __init__(self, store: BatchStore, name: str, owner: str, ttl: timedelta) -> None:
        self.store, self.name, self.owner = store, name, owner
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._heartbeat, args=(ttl.total_seconds() / 4,), name=f"lock-{name}", daemon=True
        )
        self._thread.start()

    def _heartbeat(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                if not self.store._renew(self.name, self.owner):
                    log.error("lost the lock of %s", self.name)
            except Exception:
                log.warning("could not renew the lock of %s", self.name, exc_info=True)

    def release(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.store._release(self.name, self.owner)

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _stale(held: Any, now: datetime, ttl: timedelta) -> bool:
    if now - _aware(held["heartbeat_at"]) > ttl:
        return True
    if held["host"] == socket.gethostname() and held["pid"] != os.getpid():
        try:
            os.kill(int(held["pid"]), 0)
        except ProcessLookupError:
            return True  # the holder died on this machine (e.g. SIGKILL): no need to wait for the TTL
        except PermissionError:
            return False
    return False


def _run(r: Any) -> RunRecord:
    return RunRecord(
        run_id=r["run_id"],
        job=r["job"],
        state=r["state"],
        started_at=_aware(r["started_at"]),
        finished_at=_aware(r["finished_at"]) if r["finished_at"] else None,
        engine=r["engine"],
        model=r["model"],
        version=r["version"],
        stats=dict(r["stats"] or {}),
        publish=dict(r["publish"] or {}),
        error=r["error"] or "",
    )
