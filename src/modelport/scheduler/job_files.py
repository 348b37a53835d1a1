"""Scheduled job files: which files in a jobs folder are scheduled jobs, of which kind, on which
schedule (see :mod:`modelport.scheduler.loop`).

A job *kind* is the ``modelport`` command that runs its file: ``kind: monitor`` runs
``modelport monitor run FILE``. The scheduler starts every run as a subprocess of that command, so
it imports nothing of batch, monitoring or retraining: it sits below them. A new kind of job is a
new CLI command plus one :func:`register_kind` call (or one entry in :data:`KINDS`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from modelport.errors import InvalidInput
from modelport.scheduler.cron import CronSchedule

# kind -> the modelport subcommand that runs a job file of that kind
KINDS: dict[str, tuple[str, ...]] = {
    "batch": ("batch", "run"),
    "monitor": ("monitor", "run"),
    "retrain": ("retrain", "run"),
}


def register_kind(kind: str, command: Sequence[str]) -> None:
    """Let job files say ``kind: KIND``: each run is ``modelport *command* FILE``."""
    if not kind or not command or not all(isinstance(part, str) and part for part in command):
        raise InvalidInput(f"A job kind needs a name and a modelport command; got {kind!r}: {command!r}.")
    KINDS[kind] = tuple(command)


@dataclass(frozen=True)
class Job:
    """One scheduled job file: its ``name``, ``schedule`` and ``kind`` plus the whole parsed file."""

    name: str
    path: Path
    kind: str
    schedule: CronSchedule
    timezone: tzinfo
    spec: dict[str, Any] = field(compare=False, repr=False)


def parse_job(path: Path, data: bytes | None = None) -> Job | None:
    """Read one job file; ``None`` when it has no ``schedule``. Raises :class:`InvalidInput`."""
    text = (path.read_bytes() if data is None else data).decode("utf-8", errors="replace")
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        hint = ""
        if re.search(r"^\s*schedule:\s*[@*]", text, re.MULTILINE):
            hint = ' Quote a schedule that starts with @ or *: schedule: "*/15 * * * *".'
        raise InvalidInput(f"Job file {path} is not valid YAML: {_yaml_problem(exc)}.{hint}") from exc
    if not isinstance(spec, dict) or "schedule" not in spec:
        return None
    name, expr, kind = spec.get("name"), spec["schedule"], spec.get("kind") or "batch"
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"Job file {path} has a schedule but no name: add `name: my-job`.")
    if kind not in KINDS:
        raise InvalidInput(f"Job file {path}: kind '{kind}' is not one of {', '.join(KINDS)}.")
    try:
        schedule = CronSchedule.parse(expr)
    except InvalidInput as exc:
        raise InvalidInput(f"Job file {path}: {exc.message}") from exc
    zone_name = spec.get("timezone") or "UTC"
    try:
        zone: tzinfo = UTC if zone_name == "UTC" else ZoneInfo(str(zone_name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"Job file {path}: unknown timezone '{zone_name}' (e.g. Europe/Paris).") from exc
    return Job(name=name.strip(), path=path, kind=str(kind), schedule=schedule, timezone=zone, spec=spec)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        return f"{exc.problem}{where}"
    return " ".join(str(exc).split())
