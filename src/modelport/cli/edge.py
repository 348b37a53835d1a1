"""``modelport export`` (edge bundle) and ``modelport edge-run`` (score a file with a bundle)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from modelport.cli.output import console, err_console, print_json
from modelport.errors import InvalidInput


def export_command(
    ref: Annotated[str, typer.Argument(help="name (latest), name:VERSION or name@ALIAS.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The bundle folder to create.")],
    quantize: Annotated[
        str,
        typer.Option(help="none, int8 (dynamic), int8-static (calibrated on the reference sample) or fp16."),
    ] = "none",
    zip_bundle: Annotated[bool, typer.Option("--zip", help="Also write OUTPUT.zip.")] = False,
    force: Annotated[
        bool, typer.Option(help="Export even when a parity or quantization gate failed.")
    ] = False,
    labels: Annotated[
        Path | None,
        typer.Option(
            help="A .csv/.parquet with one column of true outcomes for the reference sample's rows, "
            "in order: quantization is then judged on accuracy."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Export a version as an edge bundle that runs with numpy + onnxruntime alone.

    Compiles the version first when it has no ONNX twin yet. The bundle holds model.onnx,
    manifest.json (signature, outputs, checksums, parity report) and the tiny runtime:
    `python OUTPUT/run.py --input new.csv --output scored.csv`.

    Example: modelport export credit:3 --output credit-edge/ --zip
    """
    from modelport.client import default_client
    from modelport.edge.export import export_bundle

    truth = None
    if labels is not None:
        from modelport.cli.tabular import read_frame

        frame = read_frame(labels)
        if frame.shape[1] != 1:
            raise InvalidInput(f"{labels} must hold exactly one column of labels; it has {frame.shape[1]}.")
        truth = frame.iloc[:, 0].to_numpy()
    with err_console().status(f"Exporting {ref}…"):
        result = export_bundle(
            default_client().registry,
            ref,
            output,
            quantize=quantize,
            zip_bundle=zip_bundle,
            force=force,
            labels=truth,
        )
    if as_json:
        print_json(
            {
                "path": str(result.path),
                "quantize": result.quantize,
                "model_bytes": result.model_bytes,
                "fp32_bytes": result.fp32_bytes,
                "notes": result.notes,
                "quantization": result.quantization,
            }
        )
        return
    out = console()
    size = f"{result.model_bytes / 1024:,.0f} KiB"
    if result.quantize != "none":
        size += f" (fp32: {result.fp32_bytes / 1024:,.0f} KiB, {result.model_bytes / result.fp32_bytes:.2f}×)"
    out.print(f"[green]✓[/] Bundle [bold]{escape(str(result.path))}[/] · model.onnx {size}")
    for note in result.notes:
        out.print(f"  note: {escape(note)}")
    if zip_bundle:
        out.print(f"  zip: {escape(str(result.path))}.zip")
    out.print(f"  run: python {escape(str(result.path))}/run.py --input new.csv --output scored.csv")


def edge_run_command(
    bundle: Annotated[Path, typer.Argument(help="The bundle folder or .zip.")],
    input_path: Annotated[Path, typer.Option("--input", "-i", help="Rows to score (.csv or .jsonl).")],
    output_path: Annotated[Path, typer.Option("--output", "-o", help="Where to write (.csv or .jsonl).")],
    no_proba: Annotated[bool, typer.Option("--no-proba", help="Omit the proba_<class> columns.")] = False,
) -> None:
    """Score a file with an edge bundle, through the same runtime the bundle ships.

    Example: modelport edge-run credit-edge/ --input new.csv --output scored.csv
    """
    from modelport.edge.__main__ import score_file

    start = time.perf_counter()
    rows = score_file(bundle, input_path, output_path, proba=not no_proba)
    took = time.perf_counter() - start
    console().print(f"[green]✓[/] Scored {rows:,} rows in {took:.2f} s → {escape(str(output_path))}")
