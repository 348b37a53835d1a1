"""Where batch results go, staged per run and published all at once.

- ``parquet`` / ``csv`` folders: a run writes ``<path>/_staging/<run_id>/part-NNNNN.*`` (readers
  such as pyarrow and Spark skip ``_``-prefixed folders) and publishes it with ONE rename to
  ``<path>/run_date=YYYY-MM-DD/<run_id>/`` — the whole run appears at once or not at all.
- ``sql`` tables: a run inserts into a staging table and publishes by upserting it into the target
  by key and dropping it, in ONE transaction.

Publishing is idempotent (roll forward after a crash repeats it safely); aborting removes staging.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelport.batch.jobs import OutputSpec
from modelport.errors import InvalidInput
from modelport.parquet_encoding import dictionary_columns

log = logging.getLogger(__name__)
ROWS_PER_FILE = 1_000_000


def make_sink(spec: OutputSpec, key: str | None) -> FolderSink | SqlSink:
    if spec.kind == "sql":
        return SqlSink(spec, key)
    return FolderSink(spec)


class FolderSink:
    def __init__(self, spec: OutputSpec) -> None:
        assert spec.path
        if "://" in spec.path and not spec.path.startswith("file://"):
            raise InvalidInput(
                f"Output {spec.path}: folder outputs must be on a local or mounted file system "
                "(publishing relies on an atomic rename)."
            )
        self.spec = spec
        self.root = Path(spec.path.removeprefix("file://"))

    def plan(self, run_id: str, run_date: str) -> dict[str, Any]:
        return {
            "kind": self.spec.kind,
            "staging": str(self.root / "_staging" / run_id),
            "final": str(self.root / f"run_date={run_date}" / run_id),
        }

    def writer(self, plan: Mapping[str, Any]) -> FolderWriter:
        return FolderWriter(Path(plan["staging"]), self.spec.kind)

    def publish(self, plan: Mapping[str, Any], replace: bool = False) -> None:
        staging, final = Path(plan["staging"]), Path(plan["final"])
        if staging.exists():
            if any(staging.iterdir()):
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging, final)  # the run's output appears in one step
                _fsync_dir(final.parent)
            else:
                staging.rmdir()
        if replace:  # full refresh: the new run replaces every earlier one
            for old in self.root.glob("run_date=*/*"):
                if old != final:
                    shutil.rmtree(old, ignore_errors=True)
            for day in self.root.glob("run_date=*"):
                if day.is_dir() and not any(day.iterdir()):
                    day.rmdir()

    def abort(self, plan: Mapping[str, Any]) -> None:
        shutil.rmtree(plan["staging"], ignore_errors=True)

    def describe(self) -> str:
        return str(self.root)


class FolderWriter:
    """Appends Arrow tables to part files in the staging folder (a new part every ROWS_PER_FILE)."""

    def __init__(self, folder: Path, kind: str) -> None:
        self.folder, self.kind = folder, kind
        self.rows = 0
        self._part = 0
        self._in_part = 0
        self._writer: Any = None
        self._path = folder
        self._schema: Any = None
        self._dictionary: list[str] = []

    def write(self, table: Any) -> None:
        if table.num_rows == 0:
            return
        if self._schema is None:
            self._schema = table.schema
            self._dictionary = dictionary_columns(table)
        elif table.schema != self._schema:
            table = table.select(self._schema.names).cast(self._schema)
        if self._writer is None or self._in_part >= ROWS_PER_FILE:
            self._open()
        self._writer.write_table(table) if self.kind == "parquet" else self._writer.write(table)
        self.rows += table.num_rows
        self._in_part += table.num_rows

    def _open(self) -> None:
        self._close_part()
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"part-{self._part:05d}.{self.kind}"
        self._path = path
        self._part += 1
        self._in_part = 0
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(path, self._schema, use_dictionary=self._dictionary)
        else:
            import pyarrow.csv as pcsv

            self._writer = pcsv.CSVWriter(path, self._schema)

    def _close_part(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            # durable before the commit that makes it count; synced as each part is finished, so
            # that a big run does not wait for all its parts at the end
            with open(self._path, "rb") as fh:
                os.fsync(fh.fileno())

    def close(self) -> None:
        self._close_part()


class SqlSink:
    def __init__(self, spec: OutputSpec, key: str | None) -> None:
        from sqlalchemy import create_engine

        from modelport.store.db import normalize_url

        assert spec.url and spec.table
        self.spec = spec
        self.key = key
        self.engine = create_engine(normalize_url(spec.url))

    def plan(self, run_id: str, run_date: str) -> dict[str, Any]:
        return {
            "kind": "sql",
            "staging": f"mp_stage_{run_id.replace('-', '_')}"[:60],
            "final": self.spec.table,
        }

    def writer(self, plan: Mapping[str, Any]) -> SqlWriter:
        return SqlWriter(self.engine, plan["staging"])

    def publish(self, plan: Mapping[str, Any], replace: bool = False) -> None:
        from sqlalchemy import MetaData, Table, inspect, text

        stage_name, target_name = plan["staging"], plan["final"]
        with self.engine.begin() as conn:
            if not inspect(conn).has_table(stage_name):
                return  # published already (or the run wrote nothing)
            meta = MetaData()
            stage = Table(stage_name, meta, autoload_with=conn)
            if not inspect(conn).has_table(target_name):
                target = Table(
                    target_name,
                    meta,
                    *[_column(c, primary=c.name == self.key) for c in stage.columns],
                )
                target.create(conn)
            elif replace:
                conn.execute(text(f"DELETE FROM {self._q(target_name)}"))
            cols = [c.name for c in stage.columns]
            col_list = ", ".join(self._q(c) for c in cols)
            updates = ", ".join(f"{self._q(c)} = excluded.{self._q(c)}" for c in cols if c != self.key)
            target_q, stage_q, key_q = self._q(target_name), self._q(stage_name), self._q(str(self.key))
            conn.execute(
                text(
                    f"INSERT INTO {target_q} ({col_list}) SELECT {col_list} FROM {stage_q} "
                    f"WHERE true ON CONFLICT ({key_q}) DO UPDATE SET {updates}"
                )
            )
            stage.drop(conn)

    def abort(self, plan: Mapping[str, Any]) -> None:
        from sqlalchemy import text

        with self.engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {self._q(plan['staging'])}"))

    def _q(self, name: str) -> str:
        return str(self.engine.dialect.identifier_preparer.quote(name))

    def describe(self) -> str:
        return f"table {self.spec.table}"


class SqlWriter:
    def __init__(self, engine: Any, table: str) -> None:
        self.engine, self.name = engine, table
        self.rows = 0
        self._table: Any = None

    def write(self, table: Any) -> None:
        if table.num_rows == 0:
            return
        from sqlalchemy import MetaData, Table

        if self._table is None:
            meta = MetaData()
            self._table = Table(self.name, meta, *[_arrow_column(f) for f in table.schema])
            with self.engine.begin() as conn:
                self._table.drop(conn, checkfirst=True)
                self._table.create(conn)
        records = table.to_pylist()
        with self.engine.begin() as conn:
            conn.execute(self._table.insert(), records)
        self.rows += table.num_rows

    def close(self) -> None:
        pass


def _arrow_column(field: Any) -> Any:
    import pyarrow as pa
    from sqlalchemy import BigInteger, Boolean, Column, DateTime, Float, Text

    t = field.type
    if pa.types.is_boolean(t):
        sql_type: Any = Boolean()
    elif pa.types.is_integer(t):
        sql_type = BigInteger()
    elif pa.types.is_floating(t):
        sql_type = Float()
    elif pa.types.is_timestamp(t):
        sql_type = DateTime(timezone=t.tz is not None)
    else:
        sql_type = Text()
    return Column(field.name, sql_type)


def _column(col: Any, primary: bool) -> Any:
    from sqlalchemy import Column

    return Column(col.name, col.type, primary_key=primary, nullable=not primary)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
