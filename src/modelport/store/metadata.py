"""Reads and writes of model metadata. The only module that issues SQL."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from modelport.errors import AliasNotFound, ModelNotFound, StoreError
from modelport.model_version import ModelVersion
from modelport.refs import ModelRef
from modelport.schema import Signature
from modelport.store import db
from modelport.store.migrations import migrate

_RETRIES = 60


@dataclass(frozen=True)
class ModelSummary:
    """One row of ``list_models``: a model name with its latest version and aliases."""

    name: str
    latest_version: int
    versions: int
    aliases: dict[str, int]
    flavor: str
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "latest_version": self.latest_version,
            "versions": self.versions,
            "aliases": dict(self.aliases),
            "flavor": self.flavor,
            "updated_at": self.updated_at.isoformat(),
        }


class MetadataStore:
    """Model, version and alias records in SQLite or PostgreSQL (same code for both)."""

    def __init__(self, url: str) -> None:
        self.url = db.normalize_url(url)
        try:
            self.engine: Engine = db.make_engine(url)
            migrate(self.engine)
        except OperationalError as exc:
            raise StoreError(f"Cannot open the metadata database {_safe(url)}: {exc.orig}") from exc

    # --- writes ---------------------------------------------------------------------------------
    def insert_version(self, record: dict[str, Any], alias: str | None = None) -> int:
        """Allocate the next version number of ``record['name']`` and insert it atomically."""
        name = record["name"]
        for attempt in range(_RETRIES):
            try:
                with self.engine.begin() as conn:
                    self._lock(conn, name)
                    now = datetime.now(UTC)
                    exists = conn.execute(select(db.models.c.name).where(db.models.c.name == name)).first()
                    if not exists:
                        conn.execute(db.models.insert().values(name=name, description="", created_at=now))
                    latest = conn.execute(
                        select(func.max(db.versions.c.version)).where(db.versions.c.name == name)
                    ).scalar()
                    version = (latest or 0) + 1
                    conn.execute(db.versions.insert().values(**record, version=version, created_at=now))
                    if alias:
                        self._set_alias(conn, name, alias, version, "set at registration")
                return version
            except (IntegrityError, OperationalError) as exc:
                if attempt == _RETRIES - 1:
                    raise StoreError(f"Could not allocate a version of {name!r}: {exc}") from exc
                time.sleep(random.uniform(0.01, 0.05) * (1 + attempt % 5))
        raise AssertionError("unreachable")

    def set_alias(self, name: str, alias: str, version: int, reason: str = "") -> int | None:
        """Point ``alias`` at ``version``; returns the version it pointed at before, if any."""
        with self.engine.begin() as conn:
            self._lock(conn, name)
            self._require_version(conn, name, version)
            return self._set_alias(conn, name, alias, version, reason)

    def delete_alias(self, name: str, alias: str, reason: str = "") -> int:
        """Remove an alias; returns the version it pointed at."""
        with self.engine.begin() as conn:
            self._lock(conn, name)
            current = self._alias_version(conn, name, alias)
            if current is None:
                raise AliasNotFound(self._alias_missing_message(conn, name, alias))
            conn.execute(delete(db.aliases).where(db.aliases.c.name == name, db.aliases.c.alias == alias))
            conn.execute(
                db.alias_events.insert().values(
                    name=name,
                    alias=alias,
                    version=None,
                    previous_version=current,
                    at=datetime.now(UTC),
                    reason=reason,
                )
            )
            return current

    def set_description(self, name: str, version: int, description: str) -> None:
        with self.engine.begin() as conn:
            self._require_version(conn, name, version)
            conn.execute(
                update(db.versions)
                .where(db.versions.c.name == name, db.versions.c.version == version)
                .values(description=description)
            )

    def put_compiled(self, name: str, version: int, runtime: str, record: dict[str, Any]) -> str | None:
        """Store (or replace) a compiled twin of a version; returns the replaced twin's URI."""
        key = (
            (db.compiled.c.name == name)
            & (db.compiled.c.version == version)
            & (db.compiled.c.runtime == runtime)
        )
        with self.engine.begin() as conn:
            self._lock(conn, name)
            self._require_version(conn, name, version)
            old = conn.execute(select(db.compiled.c.artifact_uri).where(key)).scalar()
            conn.execute(delete(db.compiled).where(key))
            conn.execute(
                db.compiled.insert().values(
                    **record, name=name, version=version, runtime=runtime, created_at=datetime.now(UTC)
                )
            )
        return old

    def add_compiled(self, name: str, version: int, runtime: str, record: dict[str, Any]) -> bool:
        """Store a compiled twin unless the version has one for ``runtime`` already (then leave that
        one and return False): two processes that built the same twin at once keep the first."""
        key = (
            (db.compiled.c.name == name)
            & (db.compiled.c.version == version)
            & (db.compiled.c.runtime == runtime)
        )
        try:
            with self.engine.begin() as conn:
                self._lock(conn, name)
                self._require_version(conn, name, version)
                if conn.execute(select(db.compiled.c.runtime).where(key)).first() is not None:
                    return False
                conn.execute(
                    db.compiled.insert().values(
                        **record, name=name, version=version, runtime=runtime, created_at=datetime.now(UTC)
                    )
                )
        except IntegrityError:  # the other writer's insert landed between our check and ours
            return False
        return True

    def get_compiled(self, name: str, version: int, runtime: str) -> dict[str, Any] | None:
        """The stored twin of a version for ``runtime`` (artifact_uri, files, info, report, passed)."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    select(db.compiled).where(
                        db.compiled.c.name == name,
                        db.compiled.c.version == version,
                        db.compiled.c.runtime == runtime,
                    )
                )
                .mappings()
                .first()
            )
        return None if row is None else {**dict(row), "created_at": _utc(row["created_at"])}

    # --- reads ----------------------------------------------------------------------------------
    def resolve(self, ref: str | ModelRef) -> ModelVersion:
        """The version a reference points at: ``name`` (latest), ``name:N`` or ``name@alias``."""
        r = ModelRef.parse(ref)
        with self.engine.connect() as conn:
            if r.alias is not None:
                version = self._alias_version(conn, r.name, r.alias)
                if version is None:
                    raise AliasNotFound(self._alias_missing_message(conn, r.name, r.alias))
            elif r.version is not None:
                version = r.version
            else:
                version = conn.execute(
                    select(func.max(db.versions.c.version)).where(db.versions.c.name == r.name)
                ).scalar()
                if version is None:
                    raise ModelNotFound(self._model_missing_message(conn, r.name))
            row = (
                conn.execute(
                    select(db.versions).where(db.versions.c.name == r.name, db.versions.c.version == version)
                )
                .mappings()
                .first()
            )
            if row is None:
                self._require_version(conn, r.name, version)
            assert row is not None
            return self._to_version(conn, row)

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(db.versions).where(db.versions.c.name == name).order_by(db.versions.c.version)
                )
                .mappings()
                .all()
            )
            if not rows:
                raise ModelNotFound(self._model_missing_message(conn, name))
            return [self._to_version(conn, r) for r in rows]

    def list_models(self) -> list[ModelSummary]:
        with self.engine.connect() as conn:
            stats = conn.execute(
                select(
                    db.versions.c.name,
                    func.max(db.versions.c.version),
                    func.count(),
                    func.max(db.versions.c.created_at),
                )
                .group_by(db.versions.c.name)
                .order_by(db.versions.c.name)
            ).all()
            alias_rows = conn.execute(
                select(db.aliases.c.name, db.aliases.c.alias, db.aliases.c.version)
            ).all()
            flavors = self._latest_flavors(conn)
        by_name: dict[str, dict[str, int]] = {}
        for n, a, v in alias_rows:
            by_name.setdefault(n, {})[a] = v
        return [
            ModelSummary(n, latest, count, by_name.get(n, {}), flavors.get(n, ""), _utc(updated))
            for n, latest, count, updated in stats
        ]

    def alias_history(self, name: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    select(db.alias_events)
                    .where(db.alias_events.c.name == name)
                    .order_by(db.alias_events.c.id)
                )
                .mappings()
                .all()
            )
        return [{**dict(r), "at": _utc(r["at"]).isoformat()} for r in rows]

    # --- helpers --------------------------------------------------------------------------------
    def _lock(self, conn: Connection, name: str) -> None:
        if db.is_postgres(self.engine):
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": db.lock_key(name)})

    def _set_alias(self, conn: Connection, name: str, alias: str, version: int, reason: str) -> int | None:
        previous = self._alias_version(conn, name, alias)
        now = datetime.now(UTC)
        if previous is None:
            conn.execute(db.aliases.insert().values(name=name, alias=alias, version=version, updated_at=now))
        else:
            conn.execute(
                update(db.aliases)
                .where(db.aliases.c.name == name, db.aliases.c.alias == alias)
                .values(version=version, updated_at=now)
            )
        conn.execute(
            db.alias_events.insert().values(
                name=name, alias=alias, version=version, previous_version=previous, at=now, reason=reason
            )
        )
        return previous

    def _alias_version(self, conn: Connection, name: str, alias: str) -> int | None:
        return conn.execute(
            select(db.aliases.c.version).where(db.aliases.c.name == name, db.aliases.c.alias == alias)
        ).scalar()

    def _require_version(self, conn: Connection, name: str, version: int) -> None:
        found = conn.execute(
            select(db.versions.c.version).where(db.versions.c.name == name, db.versions.c.version == version)
        ).first()
        if found:
            return
        existing = list(
            conn.execute(
                select(db.versions.c.version)
                .where(db.versions.c.name == name)
                .order_by(db.versions.c.version)
            ).scalars()
        )
        if not existing:
            raise ModelNotFound(self._model_missing_message(conn, name))
        raise ModelNotFound(
            f"Model '{name}:{version}' not found. Versions of '{name}': {_ranges(existing)}. "
            f"See `modelport models show {name}`."
        )

    def _model_missing_message(self, conn: Connection, name: str) -> str:
        names = list(conn.execute(select(db.models.c.name).order_by(db.models.c.name)).scalars())
        close = [n for n in names if n.lower().startswith(name[:3].lower())][:5]
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        return f"Model '{name}' not found.{hint} See `modelport models list`."

    def _alias_missing_message(self, conn: Connection, name: str, alias: str) -> str:
        existing = list(
            conn.execute(
                select(db.aliases.c.alias).where(db.aliases.c.name == name).order_by(db.aliases.c.alias)
            ).scalars()
        )
        if not existing:
            has_model = conn.execute(select(db.models.c.name).where(db.models.c.name == name)).first()
            if not has_model:
                return self._model_missing_message(conn, name)
        known = ", ".join(existing) if existing else "none"
        return (
            f"Model '{name}@{alias}' not found. Aliases of '{name}': {known}. "
            f"See `modelport models show {name}`."
        )

    def _latest_flavors(self, conn: Connection) -> dict[str, str]:
        latest = (
            select(db.versions.c.name, func.max(db.versions.c.version).label("v"))
            .group_by(db.versions.c.name)
            .subquery()
        )
        rows = conn.execute(
            select(db.versions.c.name, db.versions.c.flavor).join(
                latest, (latest.c.name == db.versions.c.name) & (latest.c.v == db.versions.c.version)
            )
        ).all()
        return {n: f for n, f in rows}

    def _to_version(self, conn: Connection, row: Any) -> ModelVersion:
        names = conn.execute(
            select(db.aliases.c.alias)
            .where(db.aliases.c.name == row["name"], db.aliases.c.version == row["version"])
            .order_by(db.aliases.c.alias)
        ).scalars()
        compiled = {
            r.runtime: {"passed": bool(r.passed), "created_at": _utc(r.created_at).isoformat()}
            for r in conn.execute(
                select(db.compiled.c.runtime, db.compiled.c.passed, db.compiled.c.created_at).where(
                    db.compiled.c.name == row["name"], db.compiled.c.version == row["version"]
                )
            )
        }
        return ModelVersion(
            name=row["name"],
            version=row["version"],
            flavor=row["flavor"],
            task=row["task"],
            created_at=_utc(row["created_at"]),
            artifact_uri=row["artifact_uri"],
            signature=Signature.from_dict(row["signature"]),
            aliases=tuple(names),
            description=row["description"] or "",
            tags=dict(row["tags"]),
            metrics=dict(row["metrics"]),
            flavor_info=dict(row["flavor_info"]),
            environment=dict(row["environment"]),
            requirements=tuple(row["requirements"]),
            files=dict(row["files"]),
            lineage=dict(row["lineage"]),
            reference=dict(row["reference"]),
            compiled=compiled,
        )


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _ranges(nums: Sequence[int]) -> str:
    if len(nums) <= 6:
        return ", ".join(map(str, nums))
    return f"{nums[0]}–{nums[-1]}"


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(db.normalize_url(url)).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return "<database>"
