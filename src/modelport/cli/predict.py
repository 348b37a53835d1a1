"""``modelport predict``: score a Parquet or CSV file with a registered model, chunk by chunk."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

import modelport as mp
from modelport.cli.output import console, err_console, number, print_json, seconds
from modelport.cli.tabular import TableReader, TableWriter
from modelport.errors import InvalidInput, SchemaMismatch

PREDICTION = "prediction"
DEFAULT_CHUNK_ROWS = 100_000


def predict(
    ref: Annotated[str, typer.Argument(help="The model: name (latest), name:VERSION or name@ALIAS.")],
    input_path: Annotated[
        Path, typer.Option("--input", "-i", help="Rows to score: a .parquet or .csv file.")
    ],
    output_path: Annotated[
        Path,
        typer.Option("--output", "-o", help="Where to write the scored rows (.parquet or .csv, by suffix)."),
    ],
    proba: Annotated[
        bool,
        typer.Option("--proba/--no-proba", help="Add a proba_<class> column per class (classifiers)."),
    ] = True,
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", min=1, help="Rows read, scored and written at a time.")
    ] = DEFAULT_CHUNK_ROWS,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary instead.")] = False,
) -> None:
    """Score a Parquet or CSV file with a registered model.

    The output holds every input column plus `prediction` and, for classifiers, one `proba_<class>` column
    per class. Large inputs are streamed in chunks; the output file appears only when complete.

    Example: modelport predict credit@production --input new.parquet --output scored.parquet
    """
    if input_path.resolve() == output_path.resolve():
        raise InvalidInput("--output must be another file than --input.")
    started = time.perf_counter()
    predictor = mp.load(ref)
    reader = _reader(predictor, input_path, chunk_rows)
    added = _output_columns(predictor, proba)
    writer = TableWriter(output_path)
    _check_columns(predictor, reader, added, quiet=as_json)
    try:
        with _progress(reader, quiet=as_json) as progress:
            task = progress.add_task(f"Scoring with {predictor.model_version.ref}", total=reader.total)
            for table in reader:
                writer.write(_score(predictor, table, proba, writer.rows, input_path))
                progress.update(task, completed=reader.done)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    elapsed = time.perf_counter() - started
    _report(predictor, ref, input_path, output_path, writer.rows, elapsed, added, as_json)


def _reader(predictor: mp.Predictor, path: Path, chunk_rows: int) -> TableReader:
    sig = predictor.signature
    if sig.columns is None:
        raise InvalidInput(
            f"'{predictor.model_version.ref}' takes a tensor, not table columns; score it from "
            "Python: mp.load(ref).predict(array)."
        )
    text = tuple(c.name for c in sig.columns if c.type in ("string", "category"))
    return TableReader(path, chunk_rows, text_columns=text)


def _output_columns(predictor: mp.Predictor, proba: bool) -> list[str]:
    names = [PREDICTION]
    if proba and predictor.task == "classifier":
        names += [f"proba_{c}" for c in predictor.classes or ()]
    return names


def _check_columns(predictor: mp.Predictor, reader: TableReader, added: list[str], quiet: bool) -> None:
    names = predictor.signature.names
    clash = [c for c in added if c in reader.columns]
    if clash:
        raise InvalidInput(
            f"{reader.path} already has column(s) {', '.join(clash)}, which predict adds; "
            "rename them in the input."
        )
    missing = [n for n in names if n not in reader.columns]
    if missing:
        raise SchemaMismatch(
            f"{reader.path} lacks {len(missing)} column(s) the model needs: {', '.join(missing)}. "
            f"'{predictor.model_version.ref}' expects {len(names)}: {', '.join(names)}.",
            [{"column": n, "error": "missing"} for n in missing],
        )
    used = set(names)
    extra = [c for c in reader.columns if c not in used]
    if extra and not quiet:
        shown = ", ".join(extra[:8]) + (", …" if len(extra) > 8 else "")
        err_console().print(
            f"[dim]Passing through {len(extra)} column(s) the model does not use: {escape(shown)}[/]"
        )


def _score(predictor: mp.Predictor, table: Any, proba: bool, offset: int, path: Path) -> Any:
    import pyarrow as pa

    try:
        batch = predictor.prepare(table.select(predictor.signature.names))
    except SchemaMismatch as exc:
        rows = f"rows {offset + 1:,}-{offset + table.num_rows:,}" if table.num_rows else "no rows"
        raise SchemaMismatch(f"{path} ({rows}): {exc.message}", exc.details) from exc
    if proba and predictor.task == "classifier":
        labels, probs = predictor.predict_with_proba(batch)
    else:
        labels, probs = predictor.predict_batch(batch), None
    out = table.append_column(PREDICTION, pa.array(labels))
    if probs is not None:
        for i, cls in enumerate(predictor.classes or ()):
            out = out.append_column(f"proba_{cls}", pa.array(probs[:, i]))
    return out


def _progress(reader: TableReader, quiet: bool) -> Progress:
    amount = MofNCompleteColumn() if reader.unit == "rows" else DownloadColumn()
    stderr = err_console()
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        amount,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        disable=quiet or not stderr.is_terminal,
        transient=True,
    )


def _report(
    predictor: mp.Predictor,
    ref: str,
    input_path: Path,
    output_path: Path,
    rows: int,
    elapsed: float,
    added: list[str],
    as_json: bool,
) -> None:
    mv = predictor.model_version
    if as_json:
        print_json(
            {
                "model": mv.ref,
                "reference": ref,
                "input": str(input_path),
                "output": str(output_path),
                "rows": rows,
                "seconds": round(elapsed, 4),
                "columns_added": added,
            }
        )
        return
    rate = f" ({number(round(rows / elapsed))} rows/s)" if elapsed > 0 and rows else ""
    shown = ref if ref == mv.ref else f"{ref} = {mv.ref}"
    out = console()
    out.print(f"[green]✓[/] Scored [bold]{rows:,}[/] rows with [bold]{shown}[/] in {seconds(elapsed)}{rate}")
    out.print(f"  → {escape(str(output_path))} [dim](input columns + {', '.join(added)})[/]", soft_wrap=True)
