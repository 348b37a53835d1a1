"""``modelport scheduler``: run every job file's schedule until stopped.

Job files are the ``*.yaml`` files in the jobs folder that have ``name:`` and ``schedule:`` (a
five-field cron expression or ``@daily`` …, evaluated in UTC unless the file sets ``timezone:``);
``kind:`` (``batch`` by default, ``monitor``, ``retrain``) picks the command that each run starts
as a subprocess: ``modelport batch run FILE`` and so on. See :mod:`modelport.scheduler`.

This scheduler is a convenience, not a requirement: each job is just as safe to trigger from an
external cron, a Kubernetes CronJob or a CI pipeline (``modelport batch run jobs/scores.yaml``),
because a run takes a lock in the store — two runs of one job never overlap, wherever they were
started — and commits its output and watermark all-or-nothing, so an interrupted run is simply
redone by the next one.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelport.cli.output import console, print_error, print_warning, when

if TYPE_CHECKING:
    from modelport.scheduler import ScheduledRun


def scheduler(
    jobs: Annotated[
        Path,
        typer.Argument(help="Folder of job files (*.yaml with name: and schedule:); re-read every loop."),
    ] = Path("jobs"),
    once: Annotated[
        bool,
        typer.Option("--once", help="Run every job now, wait for all, exit 1 if any failed."),
    ] = False,
    poll: Annotated[
        float, typer.Option(min=0.05, help="Seconds between checks of the clock and the folder [1].")
    ] = 1.0,
    grace: Annotated[
        float,
        typer.Option(min=0.0, help="On SIGTERM / Ctrl-C, seconds running jobs get before termination [30]."),
    ] = 30.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print each run as one JSON line.")] = False,
) -> None:
    """Run every job file's schedule until stopped (SIGTERM or Ctrl-C; a second one terminates jobs).

    Example: `modelport scheduler jobs/` with `jobs/scores.yaml` holding `name: scores` and
    `schedule: "0 2 * * *"` (quote schedules that start with `*` or `@`). Each run is a subprocess;
    a job still running when it is due again is skipped; firings missed while the scheduler was
    down are not caught up. Runs are appended to `$MODELPORT_HOME/scheduler/runs.jsonl`.
    """
    from modelport.scheduler import Scheduler

    def show(run: ScheduledRun) -> None:
        if as_json:
            typer.echo(json.dumps(run.to_dict()))
        else:
            console().print(_line(run), soft_wrap=True, markup=False)

    handler = _StderrHandler()
    logger = logging.getLogger("modelport.scheduler")
    logger.addHandler(handler)
    try:
        sched = Scheduler(jobs, on_event=show)
        if once:
            records = sched.run_once()
            if not records:
                print_warning(f"No scheduled jobs in {jobs} (job files need name: and schedule:).")
            failed = [r.job for r in records if not r.ok]
            if failed:
                print_error(f"{len(failed)} of {len(records)} jobs failed: {', '.join(failed)}.")
                raise typer.Exit(1)
            return
        sched.tick()
        nexts = sched.next_fires()
        if not as_json:
            out = console()
            out.print(f"Scheduler: {len(nexts)} job(s) in {jobs}. Ctrl-C to stop.", markup=False)
            for name, at in sorted(nexts.items(), key=lambda item: item[1]):
                out.print(f"  {name}: next run {when(at, seconds=False)}", markup=False)
        sched.run_forever(poll=poll, grace=grace)
    finally:
        logger.removeHandler(handler)


def _line(run: ScheduledRun) -> str:
    kind = f"{run.job} ({run.kind}"
    kind += f", scheduled {when(run.scheduled, seconds=False)})" if run.scheduled else ", run now)"
    if run.skipped:
        return f"skipped   {kind}: {run.skipped}"
    if run.end is None:
        return f"started   {kind}"
    took = f"in {run.duration_s:.1f} s"
    if run.error:
        return f"failed    {kind}: {run.error}"
    if run.terminated:
        return f"stopped   {kind}: terminated at shutdown (exit {run.exit_code}) {took}"
    verdict = "finished" if run.exit_code == 0 else "failed  "
    return f"{verdict}  {kind}: exit {run.exit_code} {took}"


class _StderrHandler(logging.Handler):
    """Job-file problems and shutdown notices as one line each on stderr; runs are printed by ``show``."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == "modelport.scheduler"

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        (print_error if record.levelno >= logging.ERROR else print_warning)(message)
