"""``modelport monitor`` and ``modelport labels``: drift, quality and performance of served models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from modelport.cli.output import console, print_json

app = typer.Typer(
    help="Drift, data quality and performance of a model version over time.", no_args_is_help=True
)
labels_app = typer.Typer(help="Record true outcomes that arrive after the predictions.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _job(target: str) -> dict[str, Any]:
    """A monitoring job file (kind: monitor) or just a reference."""
    if target.endswith((".yaml", ".yml")):
        import yaml

        from modelport.errors import InvalidInput

        path = Path(target)
        if not path.is_file():
            raise InvalidInput(f"Monitoring job file '{target}' does not exist.")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict) or "model" not in data:
            raise InvalidInput(f"Monitoring job file '{target}' needs 'model' (e.g. credit@production).")
        known = {"kind", "name", "model", "schedule", "timezone", "window", "drift_share", "tests"}
        known |= {"thresholds", "alerts", "sample_size"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(f"Unknown monitoring setting(s): {', '.join(unknown)}.")
        return data
    return {"model": target}


@app.command("run")
def run(
    target: Annotated[
        str, typer.Argument(help="A model reference (credit@production) or a monitoring job file.")
    ],
    window: Annotated[str | None, typer.Option(help="Window length: 1h, 1d, 7d … [1d].")] = None,
    since: Annotated[
        str | None, typer.Option(help="Compute every window from this time (ISO date) until now.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Compare production data with the training reference; store the result (and send alerts).

    Example: modelport monitor run credit@production --window 1d --since 2026-11-01
    """
    from modelport.monitoring.monitor import monitor, monitor_windows

    job = _job(target)
    options = {k: job[k] for k in ("drift_share", "tests", "thresholds", "alerts", "sample_size") if k in job}
    win = window or job.get("window", "1d")
    results = (
        monitor_windows(job["model"], window=win, since=since, **options)
        if since
        else [monitor(job["model"], window=win, **options)]
    )
    if as_json:
        print_json([r.to_dict() for r in results])
        return
    out = console()
    for r in results:
        verdict = "[red]DRIFT[/]" if r.dataset_drift else "[green]no drift[/]"
        perf = r.performance or r.estimated_performance
        metrics = ""
        if perf is not None:
            shown = ", ".join(f"{k} {v:.3f}" for k, v in list(perf.metrics.items())[:3])
            metrics = f" · {'estimated ' if perf.estimated else ''}{shown}"
        span = f"{(r.window_start or '')[:16]} → {(r.window_end or '')[:16]}"
        drifted = escape(", ".join(r.drifted_columns)) or "none"
        out.print(
            f"{escape(r.model)}:{r.version} {span}: {verdict} ({r.drift_share:.0%} of {len(r.columns)} "
            f"columns; {drifted}) · {r.current_rows:,} rows · {len(r.quality)} quality issue(s){metrics}"
        )


@app.command("report")
def report(
    ref: Annotated[str, typer.Argument(help="Model reference, e.g. credit@production.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path(
        "report.html"
    ),
    window: Annotated[
        str, typer.Option(help="Compute a fresh window of this length when none is stored.")
    ] = "1d",
    as_json: JsonOption = False,
) -> None:
    """Write a self-contained HTML report (and with --json print the same as JSON): the latest
    stored window of the version, with the drift and performance timelines of all stored windows."""
    import modelport as mp
    from modelport.monitoring.monitor import monitor, store_for, timeline

    mv = mp.get(ref)
    result = store_for().latest(mv.name, mv.version) or monitor(ref, window=window)
    history = timeline(mv.name)
    result.to_html(output, timeline=history)
    if as_json:
        print_json({**result.to_dict(), "timeline": history, "report": str(output)})
        return
    console().print(f"Wrote {escape(str(output))}: {len(result.columns)} columns, {len(history)} window(s).")


@labels_app.command("add")
def add_labels(
    model: Annotated[str, typer.Argument(help="The model name.")],
    file: Annotated[Path, typer.Argument(help="Parquet, CSV or JSON-lines file with the outcomes.")],
    key: Annotated[
        str, typer.Option(help="Column joining the predictions (request id or batch key).")
    ] = "request_id",
    label: Annotated[str, typer.Option(help="Column with the true outcome.")] = "label",
    as_json: JsonOption = False,
) -> None:
    """Store outcomes that arrived: monitoring joins them to the logged predictions for performance.

    Example: modelport labels add credit labels.parquet --key request_id --label defaulted
    """
    from modelport.cli.tabular import read_frame
    from modelport.monitoring.monitor import log_labels

    frame = read_frame(file)
    n = log_labels(model, frame, key=key, label=label)
    if as_json:
        print_json({"model": model, "labels": n})
    else:
        console().print(f"Stored {n:,} label(s) for {escape(model)}.")
