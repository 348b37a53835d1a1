"""Run job files on their cron schedules (``modelport scheduler``).

A *job file* is any ``*.yaml`` / ``*.yml`` file in the jobs folder with a ``name`` and a ``schedule``
(a cron expression, see :mod:`modelport.scheduler.cron`); files without ``schedule`` are ignored. Its
``kind`` picks the command: ``batch`` (the default) runs ``modelport batch run FILE``, ``monitor``
runs ``modelport monitor run FILE``, ``retrain`` runs ``modelport retrain run FILE``. An optional
``timezone`` (e.g. ``Europe/Paris``) sets the zone the schedule is read in; the default is UTC.

The folder is re-read on every loop, so added, edited and removed files take effect at once. A file
that does not parse, or has a bad schedule, is logged once per change and skipped; it never stops
the scheduler or the other jobs.

Each run is a subprocess, so a crashing job cannot take the scheduler down, and runs do not block
the loop: different jobs run at the same time, but never two runs of one job — a firing that comes
while the previous run still runs is skipped and recorded. Like cron, firings missed while the
scheduler was down are not caught up; firings missed while the loop was late (a suspended laptop)
are merged into one run. Every run and every skip is logged and appended as one JSON line to
``$MODELPORT_HOME/scheduler/runs.jsonl``.

Example::

    from modelport.scheduler import Scheduler
    Scheduler(Path("jobs")).run_forever()   # until SIGTERM / Ctrl-C
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelport.errors import InvalidInput, ModelportError
from modelport.scheduler.job_files import KINDS, Job, parse_job

log = logging.getLogger("modelport.scheduler")  # job files and the scheduler itself
run_log = logging.getLogger("modelport.scheduler.runs")  # each run: started, finished, skipped

SKIPPED_STILL_RUNNING = "previous run still running"


@dataclass
class ScheduledRun:
    """One run (or skipped firing) of a job, as written to ``runs.jsonl``."""

    job: str
    file: str
    kind: str
    scheduled: datetime | None  # None for runs started by run_once
    start: datetime | None = None
    end: datetime | None = None
    exit_code: int | None = None
    duration_s: float | None = None
    skipped: str | None = None
    error: str | None = None  # the command could not be started or the runner raised
    terminated: bool = False  # stopped by the scheduler's shutdown

    @property
    def ok(self) -> bool:
        return self.skipped is None and self.error is None and self.exit_code == 0

    def to_dict(self) -> dict[str, Any]:
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(self).items()}


def modelport_argv() -> list[str]:
    """How to run the ``modelport`` command from here: ``python -m modelport`` or the console script."""
    if importlib.util.find_spec("modelport.__main__") is not None:
        return [sys.executable, "-m", "modelport"]
    for script in ("modelport", "modelport.exe"):
        path = Path(sys.executable).parent / script
        if path.exists():
            return [str(path)]
    return [sys.executable, "-c", "import sys; from modelport.cli import main; sys.exit(main())"]


def default_command(job: Job) -> list[str]:
    """``modelport <kind> run FILE`` for the job."""
    return [*modelport_argv(), *KINDS[job.kind], str(job.path)]


def default_runs_log() -> Path:
    from modelport.config import Settings

    return Settings.from_env().home / "scheduler" / "runs.jsonl"


@dataclass
class _Entry:
    """What the scheduler remembers about one file between loops."""

    digest: str
    job: Job | None
    next_fire: datetime | None = None


@dataclass
class _Run:
    record: ScheduledRun
    thread: threading.Thread | None = None
    proc: subprocess.Popen[bytes] | None = None
    started_mono: float = 0.0


class Scheduler:
    """Runs every job file in ``jobs_dir`` on its schedule.

    ``command`` maps a :class:`Job` to the argv of its subprocess (default: ``modelport <kind> run
    FILE``). ``runner``, if given, replaces the subprocess: it is called with the job file in a
    thread and returns an exit code (it cannot be terminated at shutdown). ``clock`` returns the
    current time as an aware datetime; ``sleep`` waits between loops (default: an interruptible wait).
    ``on_event`` is called with each :class:`ScheduledRun` when a run starts, ends or is skipped.
    """

    def __init__(
        self,
        jobs_dir: Path,
        runner: Callable[[Path], int] | None = None,
        *,
        command: Callable[[Job], list[str]] | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], object] | None = None,
        runs_log: Path | None = None,
        on_event: Callable[[ScheduledRun], None] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.jobs_dir = Path(jobs_dir)
        if not self.jobs_dir.is_dir():
            raise InvalidInput(
                f"Jobs folder '{self.jobs_dir}' does not exist or is not a folder. "
                "Create it and put job files (*.yaml with name: and schedule:) in it."
            )
        self.runner = runner
        self.command = command or default_command
        self.clock = clock or (lambda: datetime.now(UTC))
        self._sleep = sleep
        self.runs_log = runs_log or default_runs_log()
        self.on_event = on_event
        self.env = env
        self._entries: dict[Path, _Entry] = {}
        self._reported: dict[Path, str] = {}  # file -> digest whose error was already logged
        self._runs: dict[str, _Run] = {}  # job name -> its live run
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stopping = threading.Event()
        self._force = threading.Event()

    # ----------------------------------------------------------------- job files
    def scan(self) -> list[Job]:
        """Re-read the jobs folder; returns the valid scheduled jobs (one per name)."""
        try:
            paths = sorted(p for p in self.jobs_dir.iterdir() if p.suffix in (".yaml", ".yml"))
            self._reported.pop(self.jobs_dir, None)
        except OSError as exc:
            self._report(self.jobs_dir, "missing", f"Cannot read jobs folder '{self.jobs_dir}': {exc}")
            paths = []
        seen: dict[str, Path] = {}
        jobs: list[Job] = []
        entries: dict[Path, _Entry] = {}
        for path in paths:
            try:
                data = path.read_bytes()
            except OSError:
                continue  # removed between listing and reading: next loop sees it gone
            digest = hashlib.sha256(data).hexdigest()
            entry = self._entries.get(path)
            if entry is None or entry.digest != digest:
                entry = _Entry(digest, self._parse(path, data, digest), None)
                old = self._entries.get(path)
                if old and old.job and entry.job and _timing(old.job) == _timing(entry.job):
                    entry.next_fire = old.next_fire  # an edit that keeps the schedule keeps its timing
            entries[path] = entry
            job = entry.job
            if job is None:
                continue
            if job.name in seen:
                self._report(
                    path,
                    digest + "dup",
                    f"Job file {path}: name '{job.name}' is already used by {seen[job.name]}; skipped.",
                )
                continue
            seen[job.name] = path
            jobs.append(job)
            self._reported.pop(path, None)  # fixed: a later breakage is reported again
        self._entries = entries
        self._reported = {p: d for p, d in self._reported.items() if p in entries or p == self.jobs_dir}
        return jobs

    def _parse(self, path: Path, data: bytes, digest: str) -> Job | None:
        try:
            return parse_job(path, data)
        except ModelportError as exc:
            self._report(path, digest, exc.message)
            return None

    def _report(self, path: Path, key: str, message: str) -> None:
        if self._reported.get(path) != key:
            self._reported[path] = key
            log.error("%s", message)

    # ----------------------------------------------------------------- scheduling
    def tick(self, now: datetime | None = None) -> list[str]:
        """One evaluation step at ``now`` (default: the clock): start the due jobs; returns their names.

        A job first seen at ``now`` waits for its next firing after ``now``.
        """
        now = now or self.clock()
        if now.tzinfo is None:
            raise InvalidInput("Scheduler.tick needs an aware datetime (e.g. datetime.now(UTC)).")
        started: list[str] = []
        jobs = self.scan()
        by_path = {job.path: job for job in jobs}
        for path, entry in self._entries.items():
            job = by_path.get(path)
            if job is None:
                continue
            if entry.next_fire is None:
                entry.next_fire = job.schedule.next_after(now.astimezone(job.timezone))
                continue
            if now < entry.next_fire:
                continue
            scheduled = entry.next_fire  # the latest firing due; earlier missed ones merge into it
            while (later := job.schedule.next_after(scheduled)) <= now:
                scheduled = later
            entry.next_fire = later
            if self._stopping.is_set():
                continue
            if self._start(job, scheduled):
                started.append(job.name)
        return started

    def running(self) -> list[str]:
        """Names of the jobs that are running now."""
        with self._lock:
            return sorted(self._runs)

    def next_fires(self) -> dict[str, datetime]:
        """When each known job fires next (after the first :meth:`tick`)."""
        return {
            e.job.name: e.next_fire
            for e in self._entries.values()
            if e.job is not None and e.next_fire is not None
        }

    def run_forever(
        self, stop: threading.Event | None = None, poll: float = 1.0, grace: float = 30.0
    ) -> None:
        """Loop until ``stop`` is set, or SIGTERM / SIGINT arrives (when called in the main thread).

        On stop no new runs start; running ones get ``grace`` seconds to finish, then are
        terminated. A second signal terminates them at once.
        """
        stop = stop or threading.Event()
        restore = self._install_signals(stop)
        try:
            while not stop.is_set():
                self.tick(self.clock())
                if self._sleep is not None:
                    self._sleep(poll)
                else:
                    stop.wait(poll)
        finally:
            self.shutdown(grace)
            restore()

    def run_once(self) -> list[ScheduledRun]:
        """Start every valid job now, regardless of schedule, and wait for all; returns their records."""
        runs: list[_Run] = []
        for job in self.scan():
            run = self._start(job, None)
            if run is not None:
                runs.append(run)
        try:
            for run in runs:
                while run.thread is not None and run.thread.is_alive():
                    run.thread.join(0.2)
        except BaseException:  # Ctrl-C while waiting: do not leave children behind
            self.shutdown(0)
            raise
        return [run.record for run in runs]

    def shutdown(self, grace: float = 30.0) -> None:
        """Start nothing more; wait up to ``grace`` seconds for running jobs, then terminate them."""
        self._stopping.set()
        deadline = time.monotonic() + grace
        while self.running() and time.monotonic() < deadline and not self._force.is_set():
            time.sleep(0.05)
        with self._lock:
            left = list(self._runs.values())
        for run in left:
            self._terminate(run)
        for run in left:
            if run.thread is not None:
                run.thread.join(10.0)

    def _install_signals(self, stop: threading.Event) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, frame: types.FrameType | None) -> None:
            if stop.is_set():
                self._force.set()
            log.warning("Stopping (%s): no new runs; waiting for running jobs.", signal.Signals(signum).name)
            stop.set()

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    # ----------------------------------------------------------------- runs
    def _start(self, job: Job, scheduled: datetime | None) -> _Run | None:
        record = ScheduledRun(job.name, str(job.path), job.kind, scheduled)
        run = _Run(record, started_mono=time.monotonic())
        with self._lock:
            busy = job.name in self._runs
            if not busy:
                record.start = datetime.now(UTC)
                try:
                    if self.runner is None:
                        run.proc = self._spawn(job, scheduled)
                except (OSError, ValueError, ModelportError) as exc:
                    record.end, record.duration_s = record.start, 0.0
                    record.error = f"could not start: {exc}"
                else:
                    self._runs[job.name] = run
        if busy:
            record.skipped = SKIPPED_STILL_RUNNING
            run_log.warning("Job %s (%s): skipped: %s.", job.name, _when(scheduled), SKIPPED_STILL_RUNNING)
            self._finish(record)
            return None
        if record.error:
            run_log.error("Job %s: %s", job.name, record.error)
            self._finish(record)
            return None
        run_log.info("Job %s started (%s).", job.name, _when(scheduled))
        self._emit(record)
        run.thread = threading.Thread(target=self._watch, args=(job, run), name=job.name, daemon=True)
        run.thread.start()
        return run

    def _spawn(self, job: Job, scheduled: datetime | None) -> subprocess.Popen[bytes]:
        env = dict(os.environ if self.env is None else self.env)
        if scheduled is not None:
            env["MODELPORT_SCHEDULED_AT"] = scheduled.isoformat()
        # Own session: Ctrl-C in the terminal reaches only the scheduler, which then lets runs finish.
        return subprocess.Popen(
            self.command(job), stdin=subprocess.DEVNULL, env=env, start_new_session=os.name == "posix"
        )

    def _watch(self, job: Job, run: _Run) -> None:
        record = run.record
        try:
            if run.proc is not None:
                record.exit_code = run.proc.wait()
            elif self.runner is not None:
                record.exit_code = int(self.runner(job.path))
        except Exception as exc:  # noqa: BLE001 -- a runner's bug is recorded, never raised in the loop
            record.error = f"{type(exc).__name__}: {exc}"
        record.end = datetime.now(UTC)
        record.duration_s = round(time.monotonic() - run.started_mono, 3)
        level = logging.INFO if record.ok else logging.ERROR
        run_log.log(level, "Job %s finished: %s in %.1f s.", job.name, _outcome(record), record.duration_s)
        self._append(record)  # recorded before the job stops counting as running
        with self._lock:
            self._runs.pop(job.name, None)
        self._emit(record)

    def _terminate(self, run: _Run) -> None:
        proc = run.proc
        if proc is None:
            log.warning("Job %s runs in-process and cannot be terminated; waiting.", run.record.job)
            return
        if proc.poll() is not None:
            return
        run.record.terminated = True
        log.warning("Job %s: terminating (shutdown).", run.record.job)
        _signal(proc, signal.SIGTERM)
        try:
            proc.wait(5.0)
        except subprocess.TimeoutExpired:
            _signal(proc, signal.SIGKILL if os.name == "posix" else signal.SIGTERM)

    def _finish(self, record: ScheduledRun) -> None:
        self._append(record)
        self._emit(record)

    def _append(self, record: ScheduledRun) -> None:
        line = json.dumps(record.to_dict()) + "\n"
        with self._write_lock:
            try:
                self.runs_log.parent.mkdir(parents=True, exist_ok=True)
                with self.runs_log.open("a", encoding="utf-8") as fh:
                    fh.write(line)
            except OSError as exc:
                log.error("Cannot append to %s: %s", self.runs_log, exc)

    def _emit(self, record: ScheduledRun) -> None:
        if self.on_event is not None:
            try:
                self.on_event(replace(record))  # a snapshot: the run's record changes as it goes
            except Exception:  # a display callback must not break scheduling
                log.exception("on_event callback failed")


def _timing(job: Job) -> tuple[str, str]:
    return job.schedule.expr.strip(), str(job.timezone)


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        if os.name == "posix":
            os.killpg(proc.pid, sig)  # the job's own children too
        else:
            proc.terminate()
    except (ProcessLookupError, PermissionError):
        pass


def _when(scheduled: datetime | None) -> str:
    return f"scheduled {scheduled.isoformat()}" if scheduled else "run now"


def _outcome(record: ScheduledRun) -> str:
    if record.error:
        return record.error
    if record.terminated:
        return f"terminated (exit {record.exit_code})"
    return f"exit {record.exit_code}"


__all__ = [
    "KINDS",
    "SKIPPED_STILL_RUNNING",
    "Job",
    "ScheduledRun",
    "Scheduler",
    "default_command",
    "parse_job",
]
