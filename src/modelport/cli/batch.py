"""``modelport batch``: run a batch job once, show its status and its run history."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from modelport.cli.output import console, err_console, print_json
from modelport.cli.render import titled_table

app = typer.Typer(help="Score what is new since the last run: run a job, show its status and history.")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


@app.command("run")
def run(
    job_file: Annotated[Path, typer.Argument(help="The job file (YAML).")],
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Forget the watermark and seen files; rescore everything.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be scored; write nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Run a job once: score the rows (or files) that are new since its last committed run.

    Example: modelport batch run jobs/credit-nightly.yaml. Safe to call from cron or a Kubernetes
    CronJob: a second run of the same job at the same time refuses, and a run commits all or nothing.
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from modelport.batch import load_job
    from modelport.batch import run as run_job

    job = load_job(job_file)
    started = time.perf_counter()
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.completed:,.0f} rows"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=err_console(),
        transient=True,
        disable=as_json,
    ) as bar:
        task = bar.add_task(job.name, total=None, rate="")

        def progress(rows: int) -> None:
            rate = rows / max(time.perf_counter() - started, 1e-9)
            bar.update(task, completed=rows, rate=f"{rate:,.0f} rows/s")

        result = run_job(job, full_refresh=full_refresh, dry_run=dry_run, progress=progress)
    if as_json:
        print_json(result.to_dict())
        return
    s = result.stats
    if result.state == "dry-run":
        since = f"above watermark {s.get('watermark_before')}" if job.source.watermark else "in new files"
        console().print(
            f"[bold]{escape(job.name)}[/] (dry run): {s['rows_in']:,} rows {since} would be scored; "
            f"{s['files_new']} new file(s). Nothing was written."
        )
        return
    rate = s["rows_in"] / s["duration_s"] if s.get("duration_s") else 0.0
    console().print(
        f"[green]✓[/] [bold]{escape(job.name)}[/] run {result.run_id}: {s['rows_out']:,} rows scored, "
        f"{s['rows_rejected']:,} rejected, with {escape(job.model)} (version {s['model_version']}, "
        f"{s['runtime']}) in {s['duration_s']:.1f}s ({rate:,.0f} rows/s)."
    )
    if job.source.watermark:
        console().print(f"  watermark {s.get('watermark_before')} → {s.get('watermark_after')}")
    else:
        console().print(f"  {s['files_new']} new file(s)")


@app.command("status")
def status(
    job: Annotated[str, typer.Argument(help="The job name.")],
    as_json: JsonOption = False,
) -> None:
    """A job's state: last run, committed watermark, rows so far, and whether a run is going on."""
    from modelport.batch import status as job_status

    info = job_status(job)
    if as_json:
        print_json(info)
        return
    if not info["runs"]:
        console().print(f"Job '{escape(job)}' has not run yet.")
        return
    last = info["last_run"]
    out = console()
    out.print(f"[bold]{escape(job)}[/]: {info['runs']} run(s), {info['successful_runs']} published")
    out.print(
        f"  last run {last['run_id']}: {last['state']}, {last.get('rows_out', 0):,} rows out, "
        f"{last.get('rows_rejected', 0):,} rejected, {last.get('duration_s', 0):.1f}s"
        + (f" — {escape(last['error'])}" if last.get("error") else "")
    )
    out.print(f"  watermark: {info['watermark']}   files seen: {info['files_seen']}")
    out.print(f"  rows scored in all: {info['rows_out_total']:,}")
    holder = info["running"]
    if holder:
        state = "stale lock" if holder["stale"] else "running now"
        out.print(f"  {state}: pid {holder['pid']} on {escape(holder['host'])} since {holder['since']}")


@app.command("history")
def history(
    job: Annotated[str, typer.Argument(help="The job name.")],
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many runs.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Every run of a job, newest first: state, rows in/out/rejected, watermark, duration, version."""
    from modelport.batch import history as job_history

    runs = job_history(job, limit=limit)
    if as_json:
        print_json([r.to_dict() for r in runs])
        return
    table = titled_table(f"Runs of {escape(job)}")
    for col in ("run", "state", "started", "version", "in", "out", "rejected", "watermark after", "seconds"):
        table.add_column(
            col, justify="right" if col in ("in", "out", "rejected", "seconds", "version") else "left"
        )
    for r in runs:
        s: dict[str, Any] = r.stats
        table.add_row(
            r.run_id,
            r.state,
            f"{r.started_at:%Y-%m-%d %H:%M:%S}",
            str(r.version or ""),
            f"{s.get('rows_in', 0):,}",
            f"{s.get('rows_out', 0):,}",
            f"{s.get('rows_rejected', 0):,}",
            str(s.get("watermark_after", "") or ""),
            f"{s.get('duration_s', 0):.1f}",
        )
    console().print(table)
