"""Cron expressions: the standard five fields, parsed and evaluated by cronsim, and when one fires.

Fields are ``minute hour day-of-month month day-of-week`` with the usual syntax: ``*``, lists
(``1,15``), ranges (``1-5``), steps (``*/15``, ``10-50/10``, and ``5/20`` meaning ``5-59/20``),
three-letter names (``jan``-``dec``, ``sun``-``sat``, any case) and day-of-week ``0`` or ``7`` for
Sunday; cronsim also reads ``L`` (the last day of the month), ``LW`` and ``5L`` / ``5#2`` in the
day fields. The macros ``@hourly @daily @midnight @weekly @monthly @yearly @annually`` are accepted.

Day matching follows Vixie (Debian) cron: when the day-of-month field and the day-of-week field
both restrict (neither starts with ``*``), a day matches if *either* matches — ``0 0 1,15 * mon``
fires on the 1st, the 15th and every Monday. When one of them starts with ``*`` (``*/2`` included)
both must match.

Times are wall-clock times of the datetime you pass: a naive datetime stays naive, an aware one keeps
its tzinfo. The scheduler passes UTC datetimes, so job schedules are evaluated in UTC unless a job
names a ``timezone``. In a zone with daylight-saving time, a wall time that does not exist (the hour
skipped in spring) is skipped, and a repeated wall time (autumn) fires once, at its first occurrence.
(cronsim itself would run a skipped time at the end of the gap, as Debian's cron does; the schedule
asks it for wall-clock times only and applies this rule on top.)

Example::

    >>> from datetime import datetime
    >>> CronSchedule.parse("*/15 9-17 * * mon-fri").next_after(datetime(2025, 5, 2, 17, 50))
    datetime.datetime(2025, 5, 5, 9, 0)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cronsim import CronSim, CronSimError

from modelport.errors import InvalidInput

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_EXPECTED = {
    "minute": "0-59",
    "hour": "0-23",
    "day-of-month": "1-31 (or L, LW)",
    "month": "1-12 or jan-dec",
    "day-of-week": "0-7 or sun-sat (0 and 7 are Sunday)",
}
_SYNTAX = "alone or in lists (1,15), ranges (1-5) and steps (*/15)"


@dataclass(frozen=True)
class CronSchedule:
    """A parsed cron expression. Build it with :meth:`parse`; ``expr`` is the text it came from and
    ``fields`` the five fields it stands for (a macro expanded)."""

    expr: str
    fields: tuple[str, str, str, str, str]

    @classmethod
    def parse(cls, expr: str) -> CronSchedule:
        """Parse a five-field expression or a macro; raises :class:`InvalidInput` naming the bad field.

        >>> CronSchedule.parse("@daily").next_after(datetime(2025, 1, 31, 8, 30))
        datetime.datetime(2025, 2, 1, 0, 0)
        """
        if not isinstance(expr, str):
            raise InvalidInput(
                f"Invalid cron expression {expr!r}: expected a string such as '*/15 * * * *' or '@daily'."
            )
        text = expr.strip()
        if text.startswith("@"):
            macro = MACROS.get(text.lower())
            if macro is None:
                raise InvalidInput(
                    f"Invalid cron expression '{expr}': unknown macro '{text}'. "
                    f"Known macros: {', '.join(MACROS)}."
                )
            text = macro
        parts = text.split()
        if len(parts) != len(FIELDS):  # cronsim would read six fields as seconds first
            raise InvalidInput(
                f"Invalid cron expression '{expr}': expected 5 fields "
                f"(minute hour day-of-month month day-of-week), got {len(parts)}."
            )
        schedule = cls(expr, (parts[0], parts[1], parts[2], parts[3], parts[4]))
        try:
            CronSim(schedule._cronsim_expr(), datetime(2000, 1, 1))
        except CronSimError as exc:
            raise schedule._error(str(exc)) from None
        return schedule

    def __str__(self) -> str:
        return self.expr

    def matches(self, dt: datetime) -> bool:
        """Whether the schedule fires in the minute of ``dt`` (its wall-clock fields; seconds ignored)."""
        minute = dt.replace(tzinfo=None, second=0, microsecond=0)
        return self._next_wall(minute - timedelta(minutes=1)) == minute

    def next_after(self, dt: datetime) -> datetime:
        """The first minute strictly after ``dt`` at which the schedule fires (seconds zeroed).

        A naive ``dt`` gives a naive result; an aware one gives a result with the same tzinfo.

        >>> CronSchedule.parse("0 0 29 2 *").next_after(datetime(2025, 3, 1))
        datetime.datetime(2028, 2, 29, 0, 0)
        """
        tz = dt.tzinfo
        wall = dt.replace(tzinfo=None, second=0, microsecond=0)
        if tz is None:
            return self._next_wall(wall)
        after = dt.astimezone(UTC)
        while True:
            wall = self._next_wall(wall)
            local = wall.replace(tzinfo=tz)  # fold=0: the first of a repeated wall time
            as_utc = local.astimezone(UTC)
            exists = as_utc.astimezone(tz).replace(tzinfo=None) == wall
            if exists and as_utc > after:
                return local

    def _cronsim_expr(self) -> str:
        """The fields as cronsim should read them: cronsim takes a one-value range with a step
        (``5-5/2``) for ``5/2`` (5 to the end, every 2nd); cron means just 5."""
        return " ".join(",".join(map(_one_value_range, field.split(","))) for field in self.fields)

    def _next_wall(self, wall: datetime) -> datetime:
        """The first firing wall-clock minute strictly after the naive minute ``wall``."""
        try:
            return next(CronSim(self._cronsim_expr(), wall))
        except StopIteration:  # cronsim looks 50 years ahead
            raise InvalidInput(
                f"Cron expression '{self.expr}' does not fire in the 50 years after {wall:%Y-%m-%d}."
            ) from None

    def _error(self, problem: str) -> InvalidInput:
        """cronsim says ``Bad minute``: name the field, its text and what it accepts."""
        for name, text in zip(FIELDS, self.fields, strict=True):
            if problem.lower() == f"bad {name}":
                if name == "day-of-month" and _never_occurs(self.fields):
                    return InvalidInput(
                        f"Invalid cron expression '{self.expr}': day-of-month '{text}' never occurs "
                        f"in month '{self.fields[3]}', so it would never run."
                    )
                return InvalidInput(
                    f"Invalid cron expression '{self.expr}': {name} field '{text}' is not valid: "
                    f"it takes {_EXPECTED[name]}, {_SYNTAX}."
                )
        return InvalidInput(f"Invalid cron expression '{self.expr}': {problem}.")


def _one_value_range(item: str) -> str:
    """``A-A/S`` (a range of one value, with a step) -> ``A``; any other list item unchanged."""
    span, slash, step = item.partition("/")
    first, dash, last = span.partition("-")
    if not (slash and dash and first and step.isascii() and step.isdigit() and int(step) > 0):
        return item  # not A-B/S, or a bad step cronsim should refuse
    same = first.lower() == last.lower() or (first.isdigit() and last.isdigit() and int(first) == int(last))
    return first if same else item


def _never_occurs(fields: tuple[str, ...]) -> bool:
    """Whether the day-of-month field parses alone (so cronsim refused it for the months given)."""
    try:
        CronSim(f"0 0 {fields[2]} * *", datetime(2000, 1, 1))
    except CronSimError:
        return False
    return True
