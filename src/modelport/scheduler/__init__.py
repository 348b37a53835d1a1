"""The scheduler: cron schedules for batch, monitor and retrain jobs (``modelport scheduler``).

- :mod:`modelport.scheduler.cron`: :class:`CronSchedule`, a cron expression (read by cronsim) and
  its next firing in a time zone;
- :mod:`modelport.scheduler.job_files`: which files in a jobs folder are scheduled jobs, their kind
  (the ``modelport`` command that runs them) and schedule;
- :mod:`modelport.scheduler.loop`: :class:`Scheduler`, which runs each job as a subprocess when due.

A shared lower part: it runs jobs through the CLI's commands, never by importing batch, monitoring
or retraining, and retraining's ``schedule:`` trigger uses its :class:`CronSchedule`.

>>> from modelport.scheduler import Scheduler   # doctest: +SKIP
>>> Scheduler(Path("jobs")).run_forever()        # doctest: +SKIP
"""

from __future__ import annotations

from modelport.scheduler.cron import CronSchedule
from modelport.scheduler.job_files import KINDS, Job, parse_job, register_kind
from modelport.scheduler.loop import SKIPPED_STILL_RUNNING, ScheduledRun, Scheduler, default_command

__all__ = [
    "KINDS",
    "SKIPPED_STILL_RUNNING",
    "CronSchedule",
    "Job",
    "ScheduledRun",
    "Scheduler",
    "default_command",
    "parse_job",
    "register_kind",
]
