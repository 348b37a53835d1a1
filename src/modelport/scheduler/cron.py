"""Cron expressions: parse the standard five fields and find the next time one fires.

Fields are ``minute hour day-of-month month day-of-week`` with the usual syntax: ``*``, lists
(``1,15``), ranges (``1-5``), steps (``*/15``, ``10-50/10``, and ``5/20`` meaning ``5-59/20``),
three-letter names (``jan``-``dec``, ``sun``-``sat``, any case) and day-of-week ``0`` or ``7`` for
Sunday. The macros ``@hourly @daily @midnight @weekly @monthly @yearly @annually`` are accepted.

Day matching follows Vixie cron: when the day-of-month field and the day-of-week field both
restrict (neither starts with ``*``), a day matches if *either* matches — ``0 0 1,15 * mon`` fires on
the 1st, the 15th and every Monday. When one of them starts with ``*`` (``*/2`` included, as in Vixie
cron) both must match.

Times are wall-clock times of the datetime you pass: a naive datetime stays naive, an aware one keeps
its tzinfo. The scheduler passes UTC datetimes, so job schedules are evaluated in UTC unless a job
names a ``timezone``. In a zone with daylight-saving time, a wall time that does not exist (the hour
skipped in spring) is skipped, and a repeated wall time (autumn) fires once, at its first occurrence.

Example::

    >>> from datetime import datetime
    >>> CronSchedule.parse("*/15 9-17 * * mon-fri").next_after(datetime(2025, 5, 2, 17, 50))
    datetime.datetime(2025, 5, 5, 9, 0)
"""

from __future__ import annotations

import calendar
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

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

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}  # jan -> 1 …
_WEEKDAYS = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}

# (name, lowest, highest, names accepted in that field)
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _WEEKDAYS),
)
_DAYS_IN_MONTH_MAX = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # index 1..12, leap February
# Every valid calendar date falls on every weekday within one 400-year Gregorian cycle, so a
# schedule that parsed fires within this many years.
_SEARCH_YEARS = 401


@dataclass(frozen=True)
class CronSchedule:
    """A parsed cron expression. Build it with :meth:`parse`; ``expr`` is the text it came from."""

    expr: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: tuple[int, ...]  # 0 = Sunday … 6 = Saturday
    day_or: bool  # Vixie rule: both day fields restrict, so either may match

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
        if len(parts) != 5:
            raise InvalidInput(
                f"Invalid cron expression '{expr}': expected 5 fields "
                f"(minute hour day-of-month month day-of-week), got {len(parts)}."
            )
        sets = [_parse_field(expr, part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]
        weekdays = sorted({d % 7 for d in sets[4]})
        dom_star, dow_star = parts[2].startswith("*"), parts[4].startswith("*")
        schedule = cls(
            expr=expr,
            minutes=tuple(sorted(sets[0])),
            hours=tuple(sorted(sets[1])),
            days=tuple(sorted(sets[2])),
            months=tuple(sorted(sets[3])),
            weekdays=tuple(weekdays),
            day_or=not dom_star and not dow_star,
        )
        if not schedule.day_or and not any(
            schedule.days[0] <= _DAYS_IN_MONTH_MAX[m] for m in schedule.months
        ):
            raise InvalidInput(
                f"Invalid cron expression '{expr}': day-of-month '{parts[2]}' never occurs "
                f"in month '{parts[3]}', so it would never run."
            )
        return schedule

    def __str__(self) -> str:
        return self.expr

    def matches(self, dt: datetime) -> bool:
        """Whether the schedule fires in the minute of ``dt`` (its wall-clock fields; seconds ignored)."""
        return (
            dt.minute in self.minutes
            and dt.hour in self.hours
            and dt.month in self.months
            and self._day_matches(dt.year, dt.month, dt.day)
        )

    def next_after(self, dt: datetime) -> datetime:
        """The first minute strictly after ``dt`` at which the schedule fires (seconds zeroed).

        A naive ``dt`` gives a naive result; an aware one gives a result with the same tzinfo.

        >>> CronSchedule.parse("0 0 29 2 *").next_after(datetime(2025, 3, 1))
        datetime.datetime(2028, 2, 29, 0, 0)
        """
        tz = dt.tzinfo
        start = dt.replace(tzinfo=None, second=0, microsecond=0) + timedelta(minutes=1)
        if tz is None:
            return self._next_naive(start)
        after = dt.astimezone(UTC)
        while True:
            naive = self._next_naive(start)
            local = naive.replace(tzinfo=tz)
            as_utc = local.astimezone(UTC)
            exists = as_utc.astimezone(tz).replace(tzinfo=None) == naive
            if exists and as_utc > after:
                return local
            start = naive + timedelta(minutes=1)

    def _day_matches(self, year: int, month: int, day: int) -> bool:
        dom_ok = day in self.days
        dow_ok = (calendar.weekday(year, month, day) + 1) % 7 in self.weekdays
        return (dom_ok or dow_ok) if self.day_or else (dom_ok and dow_ok)

    def _next_naive(self, t: datetime) -> datetime:
        """The first matching minute at or after the naive ``t``: skips whole months, days and hours."""
        last_year = t.year + _SEARCH_YEARS
        while t.year <= last_year:
            if t.month not in self.months:
                i = bisect_right(self.months, t.month)
                t = (
                    datetime(t.year, self.months[i], 1)
                    if i < len(self.months)
                    else datetime(t.year + 1, self.months[0], 1)
                )
                continue
            if not self._day_matches(t.year, t.month, t.day):
                t = datetime.combine(t.date() + timedelta(days=1), time())
                continue
            if t.hour not in self.hours:
                i = bisect_right(self.hours, t.hour)
                if i == len(self.hours):
                    t = datetime.combine(t.date() + timedelta(days=1), time())
                else:
                    t = t.replace(hour=self.hours[i], minute=0)
                continue
            if t.minute not in self.minutes:
                i = bisect_right(self.minutes, t.minute)
                if i == len(self.minutes):
                    t = t.replace(minute=0) + timedelta(hours=1)
                else:
                    t = t.replace(minute=self.minutes[i])
                continue
            return t
        raise InvalidInput(f"Cron expression '{self.expr}' does not fire in the next {_SEARCH_YEARS} years.")


def _parse_field(expr: str, text: str, field: str, lo: int, hi: int, names: dict[str, int]) -> set[int]:
    def bad(problem: str) -> InvalidInput:
        return InvalidInput(f"Invalid cron expression '{expr}': {field} field '{text}': {problem}.")

    def value(token: str) -> int:
        if not token:
            raise bad("a number is missing")
        if token.isascii() and token.isdigit():
            number = int(token)
        elif token.lower() in names:
            return names[token.lower()]
        else:
            hint = f" or a name ({', '.join(names)})" if names else ""
            raise bad(f"'{token}' is not a number{hint}")
        if not lo <= number <= hi:
            raise bad(f"{number} is out of range {lo}-{hi}")
        return number

    result: set[int] = set()
    for item in text.split(","):
        if not item:
            raise bad("empty list item")
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not (step_text.isascii() and step_text.isdigit()) or int(step_text) == 0:
                raise bad(f"step '{step_text}' must be a whole number of at least 1")
            step = int(step_text)
        if base == "*":
            first, last = lo, hi
        elif "-" in base:
            start_text, _, end_text = base.partition("-")
            first, last = value(start_text), value(end_text)
            if first > last:
                raise bad(f"range '{base}' starts after it ends")
        else:
            first = value(base)
            last = hi if slash else first
        result.update(range(first, last + 1, step))
    return result
