"""Tabular files at the command line's edge: read a sample, stream an input, write an output.

Parquet and CSV, chosen by suffix. Inputs are streamed in chunks (Parquet row batches, pandas
``read_csv`` chunks) as pyarrow Tables; outputs are written to a temporary file beside the target
and renamed into place only when complete, so a failed run never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelport.errors import InvalidInput, ModelportError

SUFFIXES = (".parquet", ".pq", ".csv")


def file_kind(path: Path, what: str = "file") -> str:
    """``"parquet"`` or ``"csv"`` from the suffix, or a clear error."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".csv":
        return "csv"
    raise InvalidInput(
        f"Cannot tell the format of the {what} {path} from its suffix {suffix or '(none)'!r}; "
        f"use one of {', '.join(SUFFIXES)}."
    )


def _require_file(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(2, "No such file", str(path))
    if path.is_dir():
        raise IsADirectoryError(21, "Is a directory", str(path))


def read_frame(path: Path) -> Any:
    """A whole Parquet or CSV file as a pandas DataFrame (a registration sample)."""
    import pandas as pd

    kind = file_kind(path, "sample")
    _require_file(path)
    try:
        return pd.read_parquet(path) if kind == "parquet" else pd.read_csv(path)
    except (OSError, ModelportError):
        raise
    except Exception as exc:
        raise InvalidInput(f"Cannot read {path} as {kind}: {_first_line(exc)}") from exc


class TableReader:
    """Stream a Parquet or CSV file as pyarrow Tables of up to ``chunk_rows`` rows.

    ``total`` and ``done`` measure progress in rows (Parquet) or bytes (CSV, whose row count
    is unknown until the end); ``text_columns`` are read as text in CSV even when a chunk has
    only missing values in them.
    """

    def __init__(self, path: Path, chunk_rows: int, text_columns: tuple[str, ...] = ()) -> None:
        self.path = path
        self.kind = file_kind(path, "input")
        self.chunk_rows = chunk_rows
        self.text_columns = text_columns
        _require_file(path)
        self.unit = "rows" if self.kind == "parquet" else "bytes"
        self.done = 0
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            try:
                self._pf = pq.ParquetFile(path)
            except Exception as exc:
                raise InvalidInput(f"Cannot read {path} as Parquet: {_first_line(exc)}") from exc
            self.total = self._pf.metadata.num_rows
            self.columns = list(self._pf.schema_arrow.names)
        else:
            self.total = path.stat().st_size
            self.columns = self._csv_header()

    def _csv_header(self) -> list[str]:
        import pandas as pd

        try:
            return [str(c) for c in pd.read_csv(self.path, nrows=0).columns]
        except Exception as exc:
            raise InvalidInput(f"Cannot read {self.path} as CSV: {_first_line(exc)}") from exc

    def __iter__(self) -> Iterator[Any]:
        """The chunks; an input without rows gives one empty Table (so its columns are checked)."""
        try:
            empty = True
            for table in self._parquet() if self.kind == "parquet" else self._csv():
                empty = False
                yield table
            if empty:
                yield self._empty()
        except (OSError, ModelportError):
            raise
        except Exception as exc:
            raise InvalidInput(f"Cannot read {self.path}: {_first_line(exc)}") from exc

    def _empty(self) -> Any:
        import pyarrow as pa

        if self.kind == "parquet":
            return self._pf.schema_arrow.empty_table()
        return pa.table({c: pa.array([], pa.string()) for c in self.columns})

    def _parquet(self) -> Iterator[Any]:
        import pyarrow as pa

        for batch in self._pf.iter_batches(batch_size=self.chunk_rows):
            self.done += batch.num_rows
            yield pa.Table.from_batches([batch])

    def _csv(self) -> Iterator[Any]:
        import pandas as pd
        import pyarrow as pa

        dtype = {c: "str" for c in self.text_columns if c in self.columns}
        with open(self.path, "rb") as fh:
            for chunk in pd.read_csv(fh, chunksize=self.chunk_rows, dtype=dtype or None):
                self.done = min(fh.tell(), self.total)
                yield pa.Table.from_pandas(chunk, preserve_index=False)
        self.done = self.total


class TableWriter:
    """Write pyarrow Tables to Parquet or CSV; publish with :meth:`commit`, else nothing appears."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.kind = file_kind(path, "output")
        if not path.parent.is_dir():
            raise InvalidInput(f"The output folder {path.parent} does not exist.")
        self._tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self._writer: Any = None
        self._fh: Any = None
        self._schema: Any = None
        self.rows = 0

    def write(self, table: Any) -> None:
        if self.kind == "parquet":
            self._write_parquet(table)
        else:
            self._write_csv(table)
        self.rows += table.num_rows

    def _write_parquet(self, table: Any) -> None:
        import pyarrow.parquet as pq

        if self._writer is None:
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self._tmp, self._schema)
        elif table.schema != self._schema:
            try:
                table = table.cast(self._schema)
            except Exception as exc:
                raise InvalidInput(
                    f"A column changed type part-way through the input ({_first_line(exc)}); "
                    "write CSV output, or convert the input to Parquet first."
                ) from exc
        self._writer.write_table(table)

    def _write_csv(self, table: Any) -> None:
        import pyarrow.csv as pacsv

        if self._fh is None:
            self._fh = open(self._tmp, "wb")  # noqa: SIM115 - closed in commit/abort
        options = pacsv.WriteOptions(include_header=self.rows == 0, quoting_style="needed")
        pacsv.write_csv(table, self._fh, options)

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def commit(self) -> None:
        """Finish the file and move it into place."""
        self._close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
