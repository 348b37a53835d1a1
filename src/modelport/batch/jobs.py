"""Batch job files: what to score, from where, into where, and how often.

```yaml
# jobs/credit-nightly.yaml — relative paths are relative to this file's folder
name: credit-nightly
model: credit@production
source:   {kind: parquet, path: data/applications/, watermark: updated_at, lookback: 1h}
key: application_id
output:   {kind: parquet, path: scores/}
schedule: "0 2 * * *"
engine: local            # or ray
```

Sources: ``parquet``, ``csv``, ``json`` (JSON lines) — a file, a folder or a glob, local or an
fsspec URL — and ``sql`` (``url`` plus ``table`` or ``query``). With ``watermark``, a run scores
the rows whose watermark is above the last committed one (minus ``lookback``, re-scored
idempotently by ``key``); without it, a run scores the files it has not seen before (a SQL source
needs a watermark). Outputs: ``parquet`` and ``csv`` folders (one partition per run date) and
``sql`` tables (upsert by ``key``).

Throughput (``engine: local``): ``batch_size`` rows are read, scored and written at a time, and
``workers`` chunks are scored at once (default: one per CPU with the ONNX runtime, each with a
single-threaded session; 1 with the native runtime, whose framework brings its own threads).
``threads`` sets the model's compute threads explicitly (``load(..., threads=)``); by default the
workers share the CPUs (CPUs // workers each) and one native worker keeps its framework's default.
With ``engine: ray`` each actor loads the model with ``threads`` (default 1: an actor holds one CPU).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from modelport.durations import parse_duration
from modelport.errors import InvalidInput
from modelport.files import read_yaml_mapping, resolve_path
from modelport.refs import ModelRef

FILE_KINDS = ("parquet", "csv", "json")
SOURCE_KINDS = (*FILE_KINDS, "sql")
OUTPUT_KINDS = ("parquet", "csv", "sql")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class SourceSpec:
    kind: str
    path: str | None = None  # file kinds: a file, folder or glob (local or fsspec URL)
    url: str | None = None  # sql: a SQLAlchemy URL
    table: str | None = None
    query: str | None = None
    watermark: str | None = None
    lookback: Any = None  # a duration ("1h") for timestamp watermarks, a number for numeric ones
    options: Mapping[str, Any] = field(default_factory=dict)  # reader options (csv: delimiter)


@dataclass(frozen=True)
class OutputSpec:
    kind: str
    path: str | None = None
    url: str | None = None
    table: str | None = None


@dataclass(frozen=True)
class Job:
    """One batch job (see the module docstring for the file format)."""

    name: str
    model: str
    source: SourceSpec
    output: OutputSpec
    key: str | None = None
    schedule: str | None = None
    engine: str = "local"
    runtime: str = "auto"
    batch_size: int = 65_536  # rows per chunk read, scored and written: bounds the memory
    # chunks scored at once (threads); default: one per CPU with the ONNX runtime, 1 with native
    workers: int | None = None
    threads: int | None = None  # the model's compute threads per worker; default: the CPUs shared out
    on_error: str = "reject"  # or "fail": the first invalid row fails the run
    rejects: OutputSpec | None = None  # default: <output>/_rejects (files) or <table>_rejects (sql)
    passthrough: tuple[str, ...] = ()  # source columns copied to the output besides the key
    log_sample: float = 0.01  # share of scored rows written to the prediction log (monitoring)
    ray: Mapping[str, Any] = field(default_factory=dict)  # engine: ray options (num_actors, address)
    # features joined to each new row before scoring, e.g. {kind: feast, repo: ..., features: [...]}
    features: Mapping[str, Any] | None = None
    path: Path | None = None  # the job file, when loaded from one

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise InvalidInput(
                f"Job name '{self.name}' must start with a letter or digit and use only letters, digits, "
                "'_', '.' and '-' (at most 128 characters)."
            )
        ModelRef.parse(self.model)
        src, out = self.source, self.output
        if src.kind not in SOURCE_KINDS:
            raise InvalidInput(f"source.kind must be one of {', '.join(SOURCE_KINDS)}; got '{src.kind}'.")
        if out.kind not in OUTPUT_KINDS:
            raise InvalidInput(f"output.kind must be one of {', '.join(OUTPUT_KINDS)}; got '{out.kind}'.")
        if src.kind in FILE_KINDS and not src.path:
            raise InvalidInput(f"A {src.kind} source needs 'path' (a file, folder, glob or URL).")
        if src.kind == "sql":
            if not src.url or bool(src.table) == bool(src.query):
                raise InvalidInput("A sql source needs 'url' and exactly one of 'table' or 'query'.")
            if not src.watermark:
                raise InvalidInput("A sql source needs 'watermark': the column that says which rows are new.")
        if out.kind in ("parquet", "csv") and not out.path:
            raise InvalidInput(f"A {out.kind} output needs 'path' (a folder).")
        if out.kind == "sql" and not (out.url and out.table):
            raise InvalidInput("A sql output needs 'url' and 'table'.")
        if out.kind == "sql" and not self.key:
            raise InvalidInput("A sql output upserts by 'key': name the key column.")
        if src.lookback is not None and not self.key:
            raise InvalidInput("'lookback' re-scores late rows idempotently by 'key': name the key column.")
        if self.engine not in ("local", "ray"):
            raise InvalidInput(f"engine must be 'local' or 'ray'; got '{self.engine}'.")
        if self.on_error not in ("reject", "fail"):
            raise InvalidInput(f"on_error must be 'reject' or 'fail'; got '{self.on_error}'.")
        if self.batch_size < 1:
            raise InvalidInput("batch_size must be at least 1.")
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise InvalidInput(f"workers must be a whole number of at least 1; got {self.workers!r}.")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise InvalidInput(f"threads must be a whole number of at least 1; got {self.threads!r}.")
        if not 0.0 <= self.log_sample <= 1.0:
            raise InvalidInput("log_sample must be between 0 and 1.")
        if self.features is not None and self.features.get("kind") != "feast":
            raise InvalidInput("features.kind must be 'feast' (the only feature store supported).")

    @property
    def model_name(self) -> str:
        return ModelRef.parse(self.model).name

    def lookback_value(self) -> float | timedelta | None:
        """The look-back as a timedelta (duration strings) or a number (numeric watermarks)."""
        lb = self.source.lookback
        if lb is None or isinstance(lb, int | float):
            return lb
        return parse_duration(str(lb), what="source.lookback")

    def rejects_spec(self) -> OutputSpec:
        if self.rejects is not None:
            return self.rejects
        out = self.output
        if out.kind == "sql":
            return OutputSpec("sql", url=out.url, table=f"{out.table}_rejects")
        return OutputSpec("parquet", path=f"{str(out.path).rstrip('/')}/_rejects")


def load_job(path: str | Path) -> Job:
    """Read a job file (YAML); relative paths in it are relative to the file's folder."""
    p = Path(path)
    data = read_yaml_mapping(p, "Job file", "name, model, source, output ...")
    return job_from_dict(data, base=p.resolve().parent, path=p)


def job_from_dict(data: Mapping[str, Any], base: Path | None = None, path: Path | None = None) -> Job:
    data = dict(data)
    data.pop("kind", None)  # the scheduler's job kind ("batch")
    data.pop("timezone", None)  # the scheduler's: the time zone of ``schedule``
    known = {f.name for f in dataclasses.fields(Job)} - {"path"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidInput(
            f"Unknown job setting(s): {', '.join(unknown)}. Known: {', '.join(sorted(known))}."
        )
    for required in ("name", "model", "source", "output"):
        if required not in data:
            raise InvalidInput(f"A job needs '{required}'.")
    data["source"] = _spec(SourceSpec, data["source"], "source", base)
    data["output"] = _spec(OutputSpec, data["output"], "output", base)
    if data.get("rejects") is not None:
        data["rejects"] = _spec(OutputSpec, data["rejects"], "rejects", base)
    if data.get("features") is not None:
        features = dict(data["features"])
        if "repo" in features and base is not None:
            features["repo"] = resolve_path(str(features["repo"]), base)
        data["features"] = features
    if "passthrough" in data:
        data["passthrough"] = tuple(data["passthrough"] or ())
    data["name"] = str(data["name"])
    data["model"] = str(data["model"])
    try:
        return Job(**data, path=path)
    except TypeError as exc:
        raise InvalidInput(f"Invalid job: {exc}") from None


def _spec(cls: Any, raw: Any, where: str, base: Path | None) -> Any:
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"'{where}' must be a mapping with 'kind' and its settings.")
    raw = dict(raw)
    known = {f.name for f in dataclasses.fields(cls)}
    if cls is SourceSpec:  # reader options may sit beside the known keys
        raw["options"] = {**raw.get("options", {}), **{k: raw.pop(k) for k in list(raw) if k not in known}}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise InvalidInput(f"Unknown {where} setting(s): {', '.join(unknown)}.")
    if "kind" not in raw:
        raise InvalidInput(f"'{where}' needs 'kind'.")
    if raw.get("path") is not None and base is not None:
        raw["path"] = resolve_path(str(raw["path"]), base)
    return cls(**raw)
