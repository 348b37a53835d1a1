"""Named migrations, applied once each, in order, under a database-wide lock.

Each migration is a function of a connection inside the migration transaction. Later migrations
must be written against the schema as the earlier ones left it (add columns with ALTER TABLE,
never edit an applied migration).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, select, text

from modelport.store import db


def _0001_initial(conn: Connection) -> None:
    db.metadata.create_all(
        conn, tables=[db.models, db.versions, db.aliases, db.alias_events], checkfirst=True
    )


def _0002_compiled(conn: Connection) -> None:
    db.metadata.create_all(conn, tables=[db.compiled], checkfirst=True)


def _0003_batch(conn: Connection) -> None:
    tables = [db.batch_runs, db.batch_state, db.batch_files, db.batch_keys, db.locks]
    db.metadata.create_all(conn, tables=tables, checkfirst=True)


def _0004_monitoring(conn: Connection) -> None:
    db.metadata.create_all(conn, tables=[db.monitor_results, db.alerts], checkfirst=True)


def _0005_retraining(conn: Connection) -> None:
    db.metadata.create_all(conn, tables=[db.retrain_events], checkfirst=True)


def _0006_traffic(conn: Connection) -> None:
    db.metadata.create_all(conn, tables=[db.traffic_routes], checkfirst=True)


MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = [
    ("0001_initial", _0001_initial),
    ("0002_compiled_twins", _0002_compiled),
    ("0003_batch_jobs", _0003_batch),
    ("0004_monitoring", _0004_monitoring),
    ("0005_retraining", _0005_retraining),
    ("0006_traffic_routes", _0006_traffic),
]


def migrate(engine: Engine) -> list[str]:
    """Apply pending migrations; returns the names applied. Safe to call from many processes."""
    applied_now: list[str] = []
    with engine.begin() as conn:
        if db.is_postgres(engine):
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": db.lock_key("mp_migrate")})
        db.migrations.create(conn, checkfirst=True)
        done = set(conn.execute(select(db.migrations.c.name)).scalars())
        for name, fn in MIGRATIONS:
            if name in done:
                continue
            fn(conn)
            conn.execute(db.migrations.insert().values(name=name, applied_at=datetime.now(UTC)))
            applied_now.append(name)
    return applied_now
