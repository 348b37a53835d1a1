"""Cron expressions: parsing, next fire times (checked by hand against a calendar), errors.

The fields are read by cronsim; these tests hold the behaviour users see: which minutes fire, the
day-of-month / day-of-week rule, macros, time zones, and errors that name the field.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cronsim import CronSim

from modelport.errors import InvalidInput
from modelport.scheduler.cron import CronSchedule


def nxt(expr: str, *args: int) -> datetime:
    return CronSchedule.parse(expr).next_after(datetime(*args))  # type: ignore[arg-type]


def fires(expr: str, start: datetime, count: int) -> list[datetime]:
    schedule, out = CronSchedule.parse(expr), []
    for _ in range(count):
        start = schedule.next_after(start)
        out.append(start)
    return out


def fired(expr: str, start: datetime, end: datetime) -> list[datetime]:
    """Every firing in [start, end)."""
    schedule, out = CronSchedule.parse(expr), []
    t = schedule.next_after(start - timedelta(minutes=1))
    while t < end:
        out.append(t)
        t = schedule.next_after(t)
    return out


def minutes_of(expr: str) -> tuple[int, ...]:
    """The minutes at which ``expr`` fires in its first firing hour of 2025."""
    first = CronSchedule.parse(expr).next_after(datetime(2024, 12, 31, 23, 59)).replace(minute=0)
    return tuple(t.minute for t in fired(expr, first, first + timedelta(hours=1)))


def hours_of(expr: str) -> tuple[int, ...]:
    """The hours in which ``expr`` fires on 2025-01-01."""
    return tuple(sorted({t.hour for t in fired(expr, datetime(2025, 1, 1), datetime(2025, 1, 2))}))


def weekdays_of(expr: str) -> tuple[int, ...]:
    """The days of the week (0 = Sunday) on which ``expr`` fires in the week of Sunday 2025-01-05."""
    days = fired(expr, datetime(2025, 1, 5), datetime(2025, 1, 12))
    return tuple(sorted({t.isoweekday() % 7 for t in days}))


def months_of(expr: str) -> tuple[int, ...]:
    """The months in which ``expr`` fires in 2025."""
    return tuple(sorted({t.month for t in fired(expr, datetime(2025, 1, 1), datetime(2026, 1, 1))}))


# ---------------------------------------------------------------- basics and steps


def test_every_minute_is_strictly_after_and_zeroes_seconds() -> None:
    assert nxt("* * * * *", 2025, 1, 1, 12, 0) == datetime(2025, 1, 1, 12, 1)
    assert nxt("* * * * *", 2025, 1, 1, 12, 0, 59, 999999) == datetime(2025, 1, 1, 12, 1)
    assert nxt("* * * * *", 2025, 12, 31, 23, 59, 30) == datetime(2026, 1, 1, 0, 0)


def test_steps_over_star_and_over_ranges() -> None:
    assert nxt("*/15 * * * *", 2025, 1, 1, 12, 7) == datetime(2025, 1, 1, 12, 15)
    assert nxt("*/15 * * * *", 2025, 1, 1, 12, 45) == datetime(2025, 1, 1, 13, 0)
    assert nxt("*/15 * * * *", 2025, 12, 31, 23, 50) == datetime(2026, 1, 1, 0, 0)
    assert minutes_of("10-50/10 * * * *") == (10, 20, 30, 40, 50)
    assert nxt("10-50/10 * * * *", 2025, 1, 1, 12, 50) == datetime(2025, 1, 1, 13, 10)
    assert hours_of("0 9-17/4 * * *") == (9, 13, 17)
    assert nxt("0 9-17/4 * * *", 2025, 1, 1, 17, 0) == datetime(2025, 1, 2, 9, 0)
    # N/S means N-max/S
    assert minutes_of("5/20 * * * *") == (5, 25, 45)
    assert minutes_of("*/7 * * * *") == (0, 7, 14, 21, 28, 35, 42, 49, 56)
    # a range of one value with a step is that value (cronsim alone would read 5-5/2 as 5/2)
    assert minutes_of("5-5/2 * * * *") == (5,)
    assert months_of("0 0 1 8-8/2 *") == (8,)
    assert weekdays_of("0 0 * * sun-SUN/2") == (0,)


def test_lists_ranges_and_mixes() -> None:
    assert minutes_of("0,30 8-10,20 * * *") == (0, 30)
    assert hours_of("0,30 8-10,20 * * *") == (8, 9, 10, 20)
    assert fires("0,30 8-10,20 * * *", datetime(2025, 1, 1, 10, 15), 4) == [
        datetime(2025, 1, 1, 10, 30),
        datetime(2025, 1, 1, 20, 0),
        datetime(2025, 1, 1, 20, 30),
        datetime(2025, 1, 2, 8, 0),
    ]
    assert minutes_of("1,1,2 * * * *") == (1, 2)  # duplicates collapse


def test_hour_and_day_rollover() -> None:
    assert nxt("30 23 * * *", 2025, 1, 31, 23, 30) == datetime(2025, 2, 1, 23, 30)
    assert nxt("0 0 * * *", 2025, 12, 31, 0, 0) == datetime(2026, 1, 1, 0, 0)
    assert nxt("59 23 31 12 *", 2025, 12, 31, 23, 59) == datetime(2026, 12, 31, 23, 59)


# ---------------------------------------------------------------- month ends and leap years


def test_day_31_skips_short_months() -> None:
    assert fires("0 0 31 * *", datetime(2025, 1, 31), 4) == [
        datetime(2025, 3, 31),
        datetime(2025, 5, 31),
        datetime(2025, 7, 31),
        datetime(2025, 8, 31),
    ]
    assert nxt("0 12 30 * *", 2025, 1, 30, 12, 0) == datetime(2025, 3, 30, 12, 0)


def test_february_29_finds_the_next_leap_year() -> None:
    assert nxt("0 0 29 2 *", 2024, 2, 29, 0, 0) == datetime(2028, 2, 29)
    assert nxt("0 0 29 2 *", 2025, 3, 1) == datetime(2028, 2, 29)
    assert nxt("0 0 29 2 *", 2024, 2, 28, 23, 59) == datetime(2024, 2, 29)
    # 2100 is not a leap year (divisible by 100, not by 400); 2000 was.
    assert nxt("0 0 29 2 *", 2096, 3, 1) == datetime(2104, 2, 29)
    assert nxt("0 0 29 2 *", 1997, 1, 1) == datetime(2000, 2, 29)


def test_february_29_is_fast_enough_to_call_in_a_loop() -> None:
    schedule, t = CronSchedule.parse("0 0 29 2 *"), datetime(2001, 1, 1)
    for _ in range(100):  # 400 years; a minute-by-minute search would take hours
        t = schedule.next_after(t)
    # 24 leap years per century 2001-2400 (2100, 2200, 2300 are not), then 2400, 2404, 2408, 2412
    assert t == datetime(2412, 2, 29)


def test_last_days_of_february() -> None:
    assert nxt("0 0 28 2 *", 2025, 2, 28) == datetime(2026, 2, 28)
    assert nxt("0 0 28-29 2 *", 2027, 2, 28) == datetime(2028, 2, 28)
    assert nxt("0 0 28-29 2 *", 2028, 2, 28) == datetime(2028, 2, 29)


# ---------------------------------------------------------------- day-of-month / day-of-week


def test_both_day_fields_restricted_means_either() -> None:
    # Friday OR the 13th. May 2025: Fri 2, 9, 16; 13th is a Tuesday.
    assert fires("0 0 13 * fri", datetime(2025, 5, 2), 4) == [
        datetime(2025, 5, 9),
        datetime(2025, 5, 13),
        datetime(2025, 5, 16),
        datetime(2025, 5, 23),
    ]
    # June 13th 2025 is a Friday: it fires once.
    assert fires("0 0 13 * 5", datetime(2025, 6, 7), 3) == [
        datetime(2025, 6, 13),
        datetime(2025, 6, 20),
        datetime(2025, 6, 27),
    ]
    # 1st, 15th and Mondays. June 2025: Mon 2, 9, 16.
    assert fires("0 0 1,15 * mon", datetime(2025, 5, 31), 5) == [
        datetime(2025, 6, 1),
        datetime(2025, 6, 2),
        datetime(2025, 6, 9),
        datetime(2025, 6, 15),
        datetime(2025, 6, 16),
    ]


def test_a_star_day_field_means_both_must_match() -> None:
    assert fires("0 0 * * mon", datetime(2025, 5, 1), 2) == [datetime(2025, 5, 5), datetime(2025, 5, 12)]
    assert nxt("0 0 13 * *", 2025, 5, 1) == datetime(2025, 5, 13)
    # `*/2` starts with `*` (Vixie cron): odd days of the month that are also Mondays.
    assert fires("0 0 */2 * mon", datetime(2025, 5, 1), 2) == [datetime(2025, 5, 5), datetime(2025, 5, 19)]
    # `1-31/2` does not start with `*`: odd days OR Mondays, so Monday the 12th fires too.
    assert datetime(2025, 5, 12) in fires("0 0 1-31/2 * mon", datetime(2025, 5, 1), 8)
    assert datetime(2025, 5, 12) not in fires("0 0 */2 * mon", datetime(2025, 5, 1), 3)


def test_sunday_is_0_or_7_and_ranges_may_end_at_7() -> None:
    sunday = datetime(2025, 1, 5)  # a Sunday
    for expr in ("0 0 * * 0", "0 0 * * 7", "0 0 * * sun", "0 0 * * SUN"):
        assert nxt(expr, 2025, 1, 1) == sunday, expr
        assert weekdays_of(expr) == (0,)
    assert weekdays_of("0 0 * * 5-7") == (0, 5, 6)
    assert weekdays_of("0 0 * * *") == (0, 1, 2, 3, 4, 5, 6)


def test_names_in_any_case_and_in_ranges() -> None:
    assert months_of("0 0 1 JAN,jul *") == (1, 7)
    assert months_of("0 0 1 Mar-May *") == (3, 4, 5)
    assert weekdays_of("0 0 * * Mon-Fri") == (1, 2, 3, 4, 5)
    assert weekdays_of("0 0 * * mon-fri/2") == (1, 3, 5)
    # Weekdays 9:00-17:45 every 15 min; Friday 17:50 -> Monday 9:00.
    assert nxt("*/15 9-17 * * mon-fri", 2025, 5, 2, 17, 50) == datetime(2025, 5, 5, 9, 0)
    assert nxt("0 6 1 dec *", 2025, 1, 1) == datetime(2025, 12, 1, 6, 0)


# ---------------------------------------------------------------- macros


@pytest.mark.parametrize(
    ("macro", "equivalent"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
        ("  @hourly ", "0 * * * *"),
    ],
)
def test_macros_equal_their_expansion(macro: str, equivalent: str) -> None:
    for start in (datetime(2025, 1, 1, 12, 30), datetime(2028, 2, 28, 23, 59)):
        assert fires(macro, start, 5) == fires(equivalent, start, 5)
    assert str(CronSchedule.parse(macro)) == macro


def test_macro_next_times() -> None:
    start = datetime(2025, 1, 1, 12, 30)  # a Wednesday
    assert CronSchedule.parse("@hourly").next_after(start) == datetime(2025, 1, 1, 13, 0)
    assert CronSchedule.parse("@daily").next_after(start) == datetime(2025, 1, 2)
    assert CronSchedule.parse("@midnight").next_after(start) == datetime(2025, 1, 2)
    assert CronSchedule.parse("@weekly").next_after(start) == datetime(2025, 1, 5)
    assert CronSchedule.parse("@monthly").next_after(start) == datetime(2025, 2, 1)
    assert CronSchedule.parse("@yearly").next_after(start) == datetime(2026, 1, 1)
    assert CronSchedule.parse("@annually").next_after(datetime(2025, 12, 31, 23, 59)) == datetime(2026, 1, 1)


# ---------------------------------------------------------------- time zones


def test_aware_datetimes_keep_their_tzinfo() -> None:
    got = CronSchedule.parse("0 2 * * *").next_after(datetime(2025, 1, 1, 3, 0, tzinfo=UTC))
    assert got == datetime(2025, 1, 2, 2, 0, tzinfo=UTC)
    assert got.tzinfo is UTC
    plus2 = timezone(timedelta(hours=2))
    got = CronSchedule.parse("0 2 * * *").next_after(datetime(2025, 1, 1, 1, 0, tzinfo=plus2))
    assert got == datetime(2025, 1, 1, 2, 0, tzinfo=plus2)
    assert got.tzinfo is plus2
    # the wall clock of the zone, not UTC: 02:00 at +02:00 is 00:00 UTC
    assert got.astimezone(UTC) == datetime(2025, 1, 1, 0, 0, tzinfo=UTC)
    naive = CronSchedule.parse("0 2 * * *").next_after(datetime(2025, 1, 1))
    assert naive.tzinfo is None


def test_daylight_saving_gap_is_skipped_and_repeat_fires_once() -> None:
    zoneinfo = pytest.importorskip("zoneinfo")
    try:
        berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip("no time zone database")
    schedule = CronSchedule.parse("30 2 * * *")
    # 2025-03-30 02:00 -> 03:00 in Berlin: 02:30 does not exist that day.
    spring = schedule.next_after(datetime(2025, 3, 29, 3, 0, tzinfo=berlin))
    assert spring == datetime(2025, 3, 31, 2, 30, tzinfo=berlin)
    # 2025-10-26 03:00 -> 02:00: 02:30 happens twice; it fires at the first (00:30 UTC) only.
    autumn = schedule.next_after(datetime(2025, 10, 26, 0, 0, tzinfo=berlin))
    assert autumn.astimezone(UTC) == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)
    again = schedule.next_after(autumn)
    assert again == datetime(2025, 10, 27, 2, 30, tzinfo=berlin)
    # Strictly after in real time: from the second 02:10 (fold=1, 01:10 UTC) the wall times 02:20
    # and 02:40 already fired during the first pass, so the next is 03:00 (02:00 UTC).
    second_pass = datetime(2025, 10, 26, 2, 10, tzinfo=berlin, fold=1)
    every_20 = CronSchedule.parse("*/20 * * * *").next_after(second_pass)
    assert every_20.astimezone(UTC) == datetime(2025, 10, 26, 2, 0, tzinfo=UTC)


# ---------------------------------------------------------------- matches


def test_matches() -> None:
    s = CronSchedule.parse("*/15 9-17 * * mon-fri")
    assert s.matches(datetime(2025, 5, 2, 9, 45, 59))  # Friday; seconds are ignored
    assert not s.matches(datetime(2025, 5, 3, 9, 45))  # Saturday
    assert not s.matches(datetime(2025, 5, 2, 18, 0))
    assert not s.matches(datetime(2025, 5, 2, 9, 46))
    either = CronSchedule.parse("0 0 13 * fri")
    assert either.matches(datetime(2025, 5, 13))  # Tuesday the 13th
    assert either.matches(datetime(2025, 5, 9))  # Friday the 9th
    assert not either.matches(datetime(2025, 5, 14))
    assert CronSchedule.parse("0 0 29 2 *").matches(datetime(2024, 2, 29, tzinfo=UTC))


@pytest.mark.parametrize(
    "expr",
    [
        "* * * * *",
        "*/7 * * * *",
        "3-58/11 1,5,22 * * *",
        "0 */5 * * 1-5",
        "15 10 1,15 * 1",
        "0 0 */3 * 6",
        "45 23 28-31 * *",
        "0 12 * 2,3 sat,sun",
        "30 4 31 * *",
        "0 0 10 * 4",
        "@weekly",
    ],
)
def test_nothing_fires_between_a_start_and_next_after(expr: str) -> None:
    """``next_after(start)`` fires, and the firing before it (cronsim's backward search, a code path
    of its own) is at or before ``start``: no firing was skipped. (A minute-by-minute search over
    ``matches`` checks the same, at ~60 µs a minute over months of minutes.)"""
    schedule, rng = CronSchedule.parse(expr), random.Random(expr)
    for _ in range(20):
        start = datetime(2024, 1, 1) + timedelta(
            minutes=rng.randrange(60 * 24 * 500), seconds=rng.randrange(60)
        )
        got = schedule.next_after(start)
        assert got.second == 0 and schedule.matches(got), (expr, start)
        before = next(CronSim(" ".join(schedule.fields), got, reverse=True))
        assert before <= start < got, (expr, start, before, got)


def test_next_after_equals_minute_by_minute_search_on_dense_schedules() -> None:
    for expr in ("* * * * *", "*/7 * * * *", "3-58/11 1,5,22 * * *", "0 */5 * * 1-5"):
        schedule, rng = CronSchedule.parse(expr), random.Random(expr)
        for _ in range(3):
            start = datetime(2024, 1, 1) + timedelta(minutes=rng.randrange(60 * 24 * 500))
            t = start + timedelta(minutes=1)
            while not schedule.matches(t):
                t += timedelta(minutes=1)
            assert schedule.next_after(start) == t, (expr, start)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "expected 5 fields .* got 0"),
        ("* * * *", "expected 5 fields .* got 4"),
        ("* * * * * *", "expected 5 fields .* got 6"),
        ("@reboot", "unknown macro '@reboot'"),
        ("@often", "unknown macro '@often'"),
        ("60 * * * *", "minute field '60' is not valid: it takes 0-59"),
        ("* 24 * * *", "hour field '24' is not valid: it takes 0-23"),
        ("* * 0 * *", "day-of-month field '0' is not valid: it takes 1-31"),
        ("* * 32 * *", "day-of-month field '32' is not valid: it takes 1-31"),
        ("* * * 0 *", "month field '0' is not valid: it takes 1-12 or jan-dec"),
        ("* * * 13 *", "month field '13' is not valid"),
        ("* * * * 8", "day-of-week field '8' is not valid: it takes 0-7 or sun-sat"),
        ("x * * * *", "minute field 'x' is not valid"),
        ("jan * * * *", "minute field 'jan' is not valid"),
        ("* * * mon *", "month field 'mon' is not valid: it takes 1-12 or jan-dec"),
        ("* * * * jan", "day-of-week field 'jan' is not valid: it takes 0-7 or sun-sat"),
        ("* * * * monday", "day-of-week field 'monday'"),
        ("*/0 * * * *", "minute field '\\*/0' is not valid"),
        ("*/x * * * *", "minute field '\\*/x' is not valid"),
        ("*/ * * * *", "minute field '\\*/' is not valid"),
        ("1/2/3 * * * *", "minute field '1/2/3' is not valid"),
        ("5-1 * * * *", "minute field '5-1' is not valid"),
        ("* * * * fri-mon", "day-of-week field 'fri-mon' is not valid"),
        ("1,,2 * * * *", "minute field '1,,2' is not valid"),
        ("1, * * * *", "minute field '1,' is not valid"),
        ("-5 * * * *", "minute field '-5' is not valid"),
        ("1- * * * *", "minute field '1-' is not valid"),
        ("1-2-3 * * * *", "minute field '1-2-3' is not valid"),
        ("+5 * * * *", "minute field '\\+5' is not valid"),
        ("١ * * * *", "minute field"),  # non-ASCII digit
        ("0 0 30 2 *", "day-of-month '30' never occurs in month '2'"),
        ("0 0 31 4,6,9,11 *", "day-of-month '31' never occurs in month '4,6,9,11'"),
        ("0 0 30-31 feb *", "never occurs"),
    ],
)
def test_errors_name_the_field_and_value(expr: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        CronSchedule.parse(expr)
    assert f"'{expr}'" in info.value.message
    assert info.value.status == 400


@pytest.mark.parametrize("value", [None, 5, ["* * * * *"]])
def test_a_non_string_is_rejected(value: object) -> None:
    with pytest.raises(InvalidInput, match="expected a string"):
        CronSchedule.parse(value)  # type: ignore[arg-type]


def test_impossible_day_with_or_rule_is_fine() -> None:
    # Feb 30 never happens, but with a weekday restriction too the day fields are OR-ed.
    assert nxt("0 0 30 2 mon", 2025, 1, 1) == datetime(2025, 2, 3)
    # Feb 29 exists in leap years only, so it is accepted.
    assert nxt("0 0 29 2 *", 2025, 1, 1) == datetime(2028, 2, 29)
