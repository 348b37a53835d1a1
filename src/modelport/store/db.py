"""The metadata database: table definitions and engine set-up for SQLite and PostgreSQL.

One SQLAlchemy Core code path serves both. SQLite transactions start with ``BEGIN IMMEDIATE`` so
concurrent writers queue on the database lock instead of failing on upgrade; PostgreSQL writers
that allocate versions take a per-model advisory lock (see :func:`lock_key`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import make_url

from modelport.errors import StoreError

metadata = MetaData()

migrations = Table(
    "mp_migrations",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

models = Table(
    "mp_models",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

versions = Table(
    "mp_model_versions",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("flavor", String(64), nullable=False),
    Column("task", String(32)),
    Column("description", Text, nullable=False, default=""),
    Column("artifact_uri", Text, nullable=False),
    Column("signature", JSON, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("flavor_info", JSON, nullable=False),
    Column("environment", JSON, nullable=False),
    Column("requirements", JSON, nullable=False),
    Column("files", JSON, nullable=False),
    Column("lineage", JSON, nullable=False),
    Column("reference", JSON, nullable=False),
    ForeignKeyConstraint(["name"], ["mp_models.name"]),
)

aliases = Table(
    "mp_aliases",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("alias", String(128), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(["name", "version"], ["mp_model_versions.name", "mp_model_versions.version"]),
)

alias_events = Table(
    "mp_alias_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, index=True),
    Column("alias", String(128), nullable=False),
    Column("version", Integer),
    Column("previous_version", Integer),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False, default=""),
)


compiled = Table(
    "mp_compiled",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("runtime", String(32), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("artifact_uri", Text, nullable=False),
    Column("files", JSON, nullable=False),
    Column("info", JSON, nullable=False),
    Column("report", JSON, nullable=False),
    Column("passed", Boolean, nullable=False),
    ForeignKeyConstraint(["name", "version"], ["mp_model_versions.name", "mp_model_versions.version"]),
)

# --- batch jobs (modelport.batch) ------------------------------------------------------------------

batch_runs = Table(
    "mp_batch_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("job", String(200), nullable=False, index=True),
    # running -> committed (state advanced, output staged) -> published; or failed / crashed
    Column("state", String(16), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("engine", String(16), nullable=False),
    Column("model", String(128), nullable=False),
    Column("version", Integer),
    Column("stats", JSON, nullable=False),  # rows in/out/rejected, watermarks, files, duration ...
    Column("publish", JSON, nullable=False),  # what publishing this run does (for roll-forward)
    Column("error", Text, nullable=False, default=""),
)

batch_state = Table(
    "mp_batch_state",
    metadata,
    Column("job", String(200), primary_key=True),
    Column("watermark", JSON),  # {"type": ..., "value": ...} of the last committed run
    Column("run_id", String(64)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

batch_files = Table(
    "mp_batch_files",
    metadata,
    Column("job", String(200), primary_key=True),
    Column("path", Text, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("mtime", String(40), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("run_id", String(64), nullable=False),
)

batch_keys = Table(  # (key, watermark) pairs inside the look-back window that were already scored
    "mp_batch_keys",
    metadata,
    Column("job", String(200), primary_key=True),
    Column("key", Text, primary_key=True),
    Column("watermark", String(64), primary_key=True),
    Column("run_id", String(64), nullable=False),
)

# --- monitoring (modelport.monitoring) ---------------------------------------------------------------

monitor_results = Table(
    "mp_monitor_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(128), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("window_start", DateTime(timezone=True)),
    Column("window_end", DateTime(timezone=True)),
    Column("computed_at", DateTime(timezone=True), nullable=False),
    Column("drift_share", Float, nullable=False),
    Column("dataset_drift", Boolean, nullable=False),
    Column("result", JSON, nullable=False),
)

alerts = Table(  # one row per (model, rule): an incident is open while its rule keeps firing
    "mp_alerts",
    metadata,
    Column("model", String(128), primary_key=True),
    Column("rule", String(300), primary_key=True),
    Column("active", Boolean, nullable=False),
    Column("since", DateTime(timezone=True)),
    Column("last_checked", DateTime(timezone=True), nullable=False),
    Column("last_sent", DateTime(timezone=True)),
    Column("detail", Text, nullable=False, default=""),
)

retrain_events = Table(  # the retraining audit trail: checks, runs, decisions, promotions, rollbacks
    "mp_retrain_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(128), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("summary", Text, nullable=False),
    Column("details", JSON, nullable=False),
)

traffic_routes = Table(  # canary and shadow routes that running servers follow (see modelport.traffic_routes)
    "mp_traffic_routes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(128), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # canary | shadow
    Column("ref", String(300), nullable=False),
    Column("share", Float, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("source", String(64), nullable=False),  # who set it: cli, api, retraining
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=True),  # a phase's planned end (informational)
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("details", JSON, nullable=False),
)

locks = Table(
    "mp_locks",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
)


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use the psycopg 3 driver for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str) -> Engine:
    """Create an engine with the settings each backend needs for safe concurrent writes."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"Cannot create the folder {folder} for the metadata database: {exc.strerror}. "
                    "Set MODELPORT_HOME to a writable folder."
                ) from exc
        engine = create_engine(url, connect_args={"timeout": 60})
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit BEGIN is deferred).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_xact_lock``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
