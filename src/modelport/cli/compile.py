"""``modelport compile``: build a version's ONNX twin and show its parity report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

import modelport as mp
from modelport.cli.output import console, err_console, number, print_json
from modelport.cli.render import titled_table


def compile_command(
    ref: Annotated[str, typer.Argument(help="name (latest), name:VERSION or name@ALIAS.")],
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="Held-out rows (.parquet/.csv) for the gate; default: the reference sample."
        ),
    ] = None,
    rtol: Annotated[float, typer.Option(help="Largest |Δ| allowed, relative to max(1, |native|).")] = 1e-5,
    min_label_agreement: Annotated[
        float, typer.Option(help="Share of rows whose class label must be identical.")
    ] = 0.9999,
    as_json: Annotated[bool, typer.Option("--json", help="Print the parity report as JSON.")] = False,
) -> None:
    """Convert a version to ONNX, gate it on parity with the native model, store the twin.

    Once the twin passed, `mp.load(ref)` and the server run it (runtime "auto"). Exits with
    status 1 when the gate fails (the failed twin is stored for inspection, never used).

    Example: modelport compile credit:3
    """
    frame = None
    if data is not None:
        from modelport.cli.tabular import read_frame

        frame = read_frame(data)
    with err_console().status(f"Compiling {ref} to ONNX and checking parity…"):
        report = mp.compile(ref, data=frame, rtol=rtol, min_label_agreement=min_label_agreement)
    if as_json:
        print_json(report.to_dict())
    else:
        out = console()
        table = titled_table(f"Parity of {escape(report.ref)}: native vs {report.runtime}")
        table.add_column("check", style="bold")
        table.add_column("measured", justify="right")
        table.add_column("allowed", justify="right")
        table.add_row("rows compared", f"{report.rows:,}", "> 0")
        if report.max_rel_diff is not None:
            table.add_row("max |Δ| output", number(report.max_abs_diff), "")
            table.add_row(
                "max relative |Δ|", number(report.max_rel_diff), f"≤ {number(report.tolerance.rtol)}"
            )
        if report.label_agreement is not None:
            table.add_row(
                "label agreement",
                f"{report.label_agreement:.4%}",
                f"≥ {report.tolerance.min_label_agreement:.4%}",
            )
        table.add_row("model.onnx size", f"{report.model_bytes / 1024:,.0f} KiB", "")
        out.print(table)
        for note in report.notes:
            out.print(f"  note: {escape(note)}")
        mark = "[green]✓[/]" if report.passed else "[red]✗[/]"
        out.print(f"{mark} {escape(report.summary())}")
    if not report.passed:
        raise typer.Exit(1)
