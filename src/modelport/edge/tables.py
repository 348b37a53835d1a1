"""CSV and JSON-lines in and out without pandas, typed by the bundle's signature.

CSV cells are text: each is parsed as the signature says (numbers as int/float, an empty cell as
a missing value); a cell that doesn't parse is reported with its column and line, never guessed.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from modelport.errors import InvalidInput, SchemaMismatch
from modelport.schema import Signature


def read_rows(path: Path, signature: Signature, chunk_rows: int = 10_000) -> Iterator[dict[str, list[Any]]]:
    """Yield chunks as ``{column: values}`` (all file columns, signature columns typed)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _read_csv(path, signature, chunk_rows)
    elif suffix in (".jsonl", ".ndjson"):
        yield from _read_jsonl(path, chunk_rows)
    else:
        raise InvalidInput(f"The edge runtime reads .csv and .jsonl files, got {path.name!r}.")


def _read_csv(path: Path, signature: Signature, chunk_rows: int) -> Iterator[dict[str, list[Any]]]:
    types = {c.name: c.type for c in signature.columns or ()}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None:
            raise InvalidInput(f"{path} is empty: expected a header line.")
        names = list(reader.fieldnames)
        chunk: dict[str, list[Any]] = {n: [] for n in names}
        for line, row in enumerate(reader, start=2):
            for n in names:
                chunk[n].append(_parse(row.get(n), types.get(n), n, line))
            if len(chunk[names[0]]) >= chunk_rows:
                yield chunk
                chunk = {n: [] for n in names}
        if chunk[names[0]] or not names:
            yield chunk


def _parse(cell: str | None, kind: str | None, column: str, line: int) -> Any:
    if cell is None or cell == "":
        return None
    if kind is None or kind in ("string", "category", "datetime"):
        return cell
    try:
        if kind == "bool":
            return {"true": True, "false": False, "1": True, "0": False}[cell.strip().lower()]
        if kind.startswith(("int", "uint")):
            return int(cell)
        return float(cell)
    except (ValueError, KeyError) as exc:
        raise SchemaMismatch(f"Line {line}, column {column!r}: expected {kind}, got {cell!r}.") from exc


def _read_jsonl(path: Path, chunk_rows: int) -> Iterator[dict[str, list[Any]]]:
    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"Line {line_no} of {path} is not JSON: {exc.msg}.") from exc
            if len(rows) >= chunk_rows:
                yield _columns(rows)
                rows = []
    if rows:
        yield _columns(rows)


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    names = list(dict.fromkeys(k for r in rows for k in r))
    return {n: [r.get(n) for r in rows] for n in names}


class RowWriter:
    """Writes input columns + ``prediction`` (+ ``proba_<class>``) as CSV or JSON lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.kind = "csv" if path.suffix.lower() == ".csv" else "jsonl"
        if path.suffix.lower() not in (".csv", ".jsonl", ".ndjson"):
            raise InvalidInput(f"The edge runtime writes .csv or .jsonl files, got {path.name!r}.")
        self._f = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._csv: Any = None

    def write(self, columns: dict[str, list[Any]], outputs: dict[str, np.ndarray]) -> None:
        data = {**columns, **{k: v.tolist() for k, v in outputs.items()}}
        names = list(data)
        n = len(next(iter(outputs.values())))
        if self.kind == "csv":
            if self._csv is None:
                self._csv = csv.writer(self._f)
                self._csv.writerow(names)
            for i in range(n):
                self._csv.writerow(["" if _missing(data[c][i]) else data[c][i] for c in names])
        else:
            for i in range(n):
                row = {c: (None if _missing(data[c][i]) else data[c][i]) for c in names}
                self._f.write(json.dumps(row) + "\n")

    def close(self) -> None:
        self._f.close()


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))
