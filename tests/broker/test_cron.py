"""Minion's cron grammar: parsing, exact error messages, and next_cron_time against a reference."""

from __future__ import annotations

import calendar
import math
import random
import time
from collections.abc import Iterator

import pytest

from broker.cron import HORIZON_SECONDS, CronError, CronSpec, next_cron_time, parse_cron


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return calendar.timegm((year, month, day, hour, minute, second))


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %a", time.gmtime(epoch))


def nxt(expr: str, base: float) -> str:
    return iso(next_cron_time(expr, base))


def fields(expr: str) -> list[set[int]]:
    spec = parse_cron(expr)
    return [
        set(field.values)
        for field in (spec.minute, spec.hour, spec.day_of_month, spec.month, spec.day_of_week)
    ]


def error(expr: str) -> str:
    with pytest.raises(CronError) as info:
        parse_cron(expr)
    return str(info.value)


# Wednesday 2027-03-10 12:34:56 UTC.
WED = utc(2027, 3, 10, 12, 34, 56)


# --- nicknames -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nickname", "expansion", "expected"),
    [
        ("@yearly", "0 0 1 1 *", "2028-01-01 00:00:00 Sat"),
        ("@annually", "0 0 1 1 *", "2028-01-01 00:00:00 Sat"),
        ("@monthly", "0 0 1 * *", "2027-04-01 00:00:00 Thu"),
        ("@weekly", "0 0 * * 0", "2027-03-14 00:00:00 Sun"),
        ("@daily", "0 0 * * *", "2027-03-11 00:00:00 Thu"),
        ("@midnight", "0 0 * * *", "2027-03-11 00:00:00 Thu"),
        ("@hourly", "0 * * * *", "2027-03-10 13:00:00 Wed"),
    ],
)
def test_nicknames(nickname: str, expansion: str, expected: str) -> None:
    assert parse_cron(nickname) == parse_cron(expansion)
    assert nxt(nickname, WED) == expected


@pytest.mark.parametrize("expr", ["@x", "@", "@Daily", "@HOURLY", "@reboot", "@daily ", "@every"])
def test_unknown_nickname(expr: str) -> None:
    assert error(expr) == f'Unknown cron nickname "{expr}"'


# --- fields and whitespace -------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr", ["", "   ", "* * * *", "* * * * * *", "0 0 * * * 2027", " * * * * *"]
)
def test_expected_five_fields(expr: str) -> None:
    assert error(expr) == f'Invalid cron expression "{expr}": expected 5 fields'


@pytest.mark.parametrize(
    "expr", ["0 0 * * *", "0\t0  *\n*   *", "0 0 * * *\n", "0 0 * * *  ", "0\u00a00\u2003* * *"]
)
def test_fields_split_on_any_whitespace(expr: str) -> None:
    # Perl's split /\s+/: runs of (Unicode) whitespace, trailing whitespace ignored.
    assert parse_cron(expr) == parse_cron("0 0 * * *")


def test_perl_split_quirks() -> None:
    # Leading whitespace yields an empty first field; empty fields and trailing commas match
    # nothing / are dropped, exactly as Perl's split leaves them.
    assert fields("1,2, * * * *")[0] == {1, 2}
    assert error(",1 * * * *") == 'Invalid minute field ""'
    assert fields(" * * * *")[0] == set()
    assert fields("0 0 , * *")[2] == set()
    with pytest.raises(CronError, match="^No matching time found for cron expression$"):
        next_cron_time(" * * * *", WED)
    with pytest.raises(CronError, match="^No matching time found for cron expression$"):
        next_cron_time("0 0 * , *", WED)


def test_ranges_and_lists() -> None:
    assert fields("* * * * *") == [
        set(range(60)),
        set(range(24)),
        set(range(1, 32)),
        set(range(1, 13)),
        set(range(7)),
    ]
    assert fields("0,59 0-23 1,15-16,31 12 0-7") == [
        {0, 59},
        set(range(24)),
        {1, 15, 16, 31},
        {12},
        set(range(7)),
    ]
    assert fields("007 00 01 1 0")[:3] == [{7}, {0}, {1}]


def test_is_star_only_for_literal_star() -> None:
    spec = parse_cron("* */1 1-31/1 1-12 *")
    assert spec.minute.is_star and spec.day_of_week.is_star
    assert not spec.hour.is_star and not spec.day_of_month.is_star and not spec.month.is_star
    assert not parse_cron("*,* * * * *").minute.is_star


# --- names -----------------------------------------------------------------------------------

MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


@pytest.mark.parametrize("case", [str.upper, str.lower, str.title, lambda s: s[0] + s[1:].upper()])
def test_names_any_case(case) -> None:
    for number, name in enumerate(MONTHS, start=1):
        assert fields(f"0 0 1 {case(name)} *")[3] == {number}
    for number, name in enumerate(DAYS):
        assert fields(f"0 0 * * {case(name)}")[4] == {number}
    assert fields(f"0 0 * {case('jan')}-{case('mar')} {case('mon')}-{case('fri')}")[3:] == [
        {1, 2, 3},
        {1, 2, 3, 4, 5},
    ]


def test_names_in_lists_and_ranges_with_steps() -> None:
    assert fields("0 0 * JAN-DEC/3,dec * ")[3] == {1, 4, 7, 10, 12}
    assert fields("0 0 * * sun,Wed-FRI/2,7")[4] == {0, 3, 5}
    assert fields("0 0 * * MON-7")[4] == {1, 2, 3, 4, 5, 6, 0}
    assert nxt("0 9 * * MON-FRI", utc(2027, 3, 12, 10)) == "2027-03-15 09:00:00 Mon"
    assert nxt("0 0 1 jul *", WED) == "2027-07-01 00:00:00 Thu"


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("JAN * * * *", 'Invalid name "JAN" in minute field'),
        ("0 MON * * *", 'Invalid name "MON" in hour field'),
        ("0 0 Mon * *", 'Invalid name "Mon" in day-of-month field'),
        ("0 0 * MON *", 'Invalid name "MON" in month field'),
        ("0 0 * * JAN", 'Invalid name "JAN" in day-of-week field'),
        ("0 0 * JANUARY *", 'Invalid name "JANUARY" in month field'),
        ("0 0 * * MONDAY", 'Invalid name "MONDAY" in day-of-week field'),
        ("0 0 * * MO", 'Invalid name "MO" in day-of-week field'),
        ("0 0 * * 1x", 'Invalid name "1x" in day-of-week field'),
        ("0 0 * * _", 'Invalid name "_" in day-of-week field'),
        ("0 0 * jan-foo *", 'Invalid name "foo" in month field'),
        ("0 0 * foo-bar *", 'Invalid name "foo" in month field'),
        ("0 1-MON * * *", 'Invalid name "MON" in hour field'),
    ],
)
def test_names_rejected(expr: str, message: str) -> None:
    assert error(expr) == message


# --- day of week 7 ---------------------------------------------------------------------------


def test_seven_is_sunday() -> None:
    assert parse_cron("0 0 * * 7") == parse_cron("0 0 * * 0") == parse_cron("0 0 * * sun")
    assert fields("0 0 * * 5-7")[4] == {5, 6, 0}
    assert fields("0 0 * * 0,7")[4] == {0}
    assert fields("0 0 * * */7")[4] == {0}
    assert nxt("0 0 * * 7", WED) == "2027-03-14 00:00:00 Sun"


# --- steps -----------------------------------------------------------------------------------


def test_steps() -> None:
    assert fields("*/15 */6 */10 */4 */2") == [
        {0, 15, 30, 45},
        {0, 6, 12, 18},
        {1, 11, 21, 31},
        {1, 5, 9},
        {0, 2, 4, 6},
    ]
    assert fields("10-20/5 1-2/5 * * *")[:2] == [{10, 15, 20}, {1}]
    # A step on a single value is just that value (not "from a to the end").
    assert fields("5/10 3/2 7/1 2/5 1/3") == [{5}, {3}, {7}, {2}, {1}]
    assert fields("*/99999999999999999999999 * * * *")[0] == {0}
    assert nxt("*/20 * * * *", WED) == "2027-03-10 12:40:00 Wed"
    assert nxt("5/10 * * * *", WED) == "2027-03-10 13:05:00 Wed"
    assert nxt("10-50/20 * * * *", WED) == "2027-03-10 12:50:00 Wed"


# --- error messages --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0/0 * * * *", 'Invalid step "0" in minute field'),
        ("*/0 * * * *", 'Invalid step "0" in minute field'),
        ("* */01 * * *", 'Invalid step "01" in hour field'),
        ("* * */ * *", 'Invalid step "" in day-of-month field'),
        ("* * * / *", 'Invalid step "" in month field'),
        ("* * * * */x", 'Invalid step "x" in day-of-week field'),
        ("1/2/3 * * * *", 'Invalid step "2/3" in minute field'),
        ("*/-1 * * * *", 'Invalid step "-1" in minute field'),
        ("*/+1 * * * *", 'Invalid step "+1" in minute field'),
        ("?? * * * *", 'Invalid minute field "??"'),
        ("1-2-3 * * * *", 'Invalid minute field "1-2-3"'),
        ("-5 * * * *", 'Invalid minute field "-5"'),
        ("/5 * * * *", 'Invalid minute field "/5"'),
        ("*-5 * * * *", 'Invalid minute field "*-5"'),
        ("** * * * *", 'Invalid minute field "**"'),
        ("0 0 L * *", 'Invalid name "L" in day-of-month field'),
        ("0 0 15W * *", 'Invalid name "15W" in day-of-month field'),
        ("0 0 * * 5#3", 'Invalid day-of-week field "5#3"'),
        ("0 0 ? * *", 'Invalid day-of-month field "?"'),
        ("5-2 * * * *", 'Value out of range in minute field "5-2" (0-59)'),
        ("5-2/3 * * * *", 'Value out of range in minute field "5-2/3" (0-59)'),
        ("60 * * * *", 'Value out of range in minute field "60" (0-59)'),
        ("0 24 * * *", 'Value out of range in hour field "24" (0-23)'),
        ("0 0 0 * *", 'Value out of range in day-of-month field "0" (1-31)'),
        ("0 0 1-32 * *", 'Value out of range in day-of-month field "1-32" (1-31)'),
        ("0 0 * 0 *", 'Value out of range in month field "0" (1-12)'),
        ("0 0 * 13 *", 'Value out of range in month field "13" (1-12)'),
        ("0 0 * DEC-JAN *", 'Value out of range in month field "DEC-JAN" (1-12)'),
        ("0 0 * * 8", 'Value out of range in day-of-week field "8" (0-7)'),
        ("0 0 * * sat-sun", 'Value out of range in day-of-week field "sat-sun" (0-7)'),
        ("0 0 * * 1,9/2", 'Value out of range in day-of-week field "9/2" (0-7)'),
        (
            "99999999999999999999 * * * *",
            'Value out of range in minute field "99999999999999999999" (0-59)',
        ),  # noqa: E501
        # Checks run step, then syntax, then names, then bounds; the first bad field wins.
        ("x/0 * * * *", 'Invalid step "0" in minute field'),
        ("?? MON * * *", 'Invalid minute field "??"'),
        ("1 MON 0 * *", 'Invalid name "MON" in hour field'),
        ("70,?? * * * *", 'Value out of range in minute field "70" (0-59)'),
    ],
)
def test_error_messages(expr: str, message: str) -> None:
    assert error(expr) == message
    with pytest.raises(CronError) as info:
        next_cron_time(expr, WED)
    assert str(info.value) == message


def test_cron_error_is_value_error() -> None:
    assert issubclass(CronError, ValueError)


# --- day matching (Vixie) --------------------------------------------------------------------


def test_any_day_when_both_day_fields_are_star() -> None:
    assert nxt("0 0 * * *", WED) == "2027-03-11 00:00:00 Thu"


def test_only_day_of_week_restricted() -> None:
    assert nxt("0 0 * * 1", WED) == "2027-03-15 00:00:00 Mon"
    # A restricted month does not turn this into an AND with anything else.
    assert nxt("0 0 * 4 1", WED) == "2027-04-05 00:00:00 Mon"


def test_only_day_of_month_restricted() -> None:
    # The 13th, whatever the weekday (no AND with a Friday).
    assert nxt("0 0 13 * *", WED) == "2027-03-13 00:00:00 Sat"
    assert nxt("0 0 1-31 * *", WED) == "2027-03-11 00:00:00 Thu"


def test_both_restricted_is_or() -> None:
    # Friday the 12th comes before the 13th; from the Friday, the 13th comes next.
    assert nxt("0 0 13 * 5", WED) == "2027-03-12 00:00:00 Fri"
    assert nxt("0 0 13 * 5", utc(2027, 3, 12)) == "2027-03-13 00:00:00 Sat"
    assert nxt("0 0 13 * 5", utc(2027, 3, 13)) == "2027-03-19 00:00:00 Fri"
    # An impossible day-of-month does not stop the day-of-week side (within February).
    assert nxt("0 0 30 2 MON", WED) == "2028-02-07 00:00:00 Mon"
    assert nxt("0 0 30 2 MON", utc(2027, 1, 31)) == "2027-02-01 00:00:00 Mon"


def test_step_one_is_restricted() -> None:
    # "*/1" covers every day but is not a literal "*": OR with it matches every day.
    assert nxt("0 0 */1 * 1", WED) == "2027-03-11 00:00:00 Thu"
    assert nxt("0 0 13 * */1", WED) == "2027-03-11 00:00:00 Thu"
    assert nxt("0 0 1-31 * 1", WED) == "2027-03-11 00:00:00 Thu"
    assert nxt("0 0 13 * 0-6", WED) == "2027-03-11 00:00:00 Thu"
    # Whereas with a literal "*" on the other side, only the restricted side counts.
    assert nxt("0 0 * * 1", WED) == "2027-03-15 00:00:00 Mon"
    assert nxt("0 0 13 * *", WED) == "2027-03-13 00:00:00 Sat"
    # A full day-of-week list with "*" day-of-month is every day too.
    assert nxt("0 0 * * */1", WED) == "2027-03-11 00:00:00 Thu"


# --- next_cron_time --------------------------------------------------------------------------


def test_feb_29() -> None:
    assert nxt("0 0 29 2 *", utc(2027, 1, 1)) == "2028-02-29 00:00:00 Tue"
    assert nxt("0 0 29 2 *", utc(2028, 2, 29)) == "2032-02-29 00:00:00 Sun"
    # 2100 is no leap year: 2096-02-29 to 2104-02-29 is beyond the horizon.
    with pytest.raises(CronError, match="^No matching time found for cron expression$"):
        next_cron_time("0 0 29 2 *", utc(2096, 3, 1))


def test_strictly_after() -> None:
    noon = utc(2027, 3, 10, 12)
    assert nxt("0 12 * * *", noon) == "2027-03-11 12:00:00 Thu"
    assert nxt("0 12 * * *", noon - 1) == "2027-03-10 12:00:00 Wed"
    assert nxt("0 12 * * *", noon - 0.001) == "2027-03-10 12:00:00 Wed"
    assert nxt("0 12 * * *", noon + 59.999) == "2027-03-11 12:00:00 Thu"
    assert nxt("* * * * *", noon) == "2027-03-10 12:01:00 Wed"
    assert nxt("* * * * *", noon + 30.5) == "2027-03-10 12:01:00 Wed"
    assert next_cron_time("* * * * *", noon) == float(noon + 60)
    assert isinstance(next_cron_time("* * * * *", noon), float)


def test_rollovers() -> None:
    assert nxt("59 23 31 12 *", utc(2027, 12, 31, 23, 59)) == "2028-12-31 23:59:00 Sun"
    assert nxt("0 0 31 * *", utc(2027, 4, 1)) == "2027-05-31 00:00:00 Mon"
    assert nxt("0 0 1 */2 *", utc(2027, 11, 15)) == "2028-01-01 00:00:00 Sat"


@pytest.mark.parametrize(
    "expr", ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 2,4,6,9,11 *", "0 0 30,31 FEB *"]
)
def test_no_match(expr: str) -> None:
    started = time.perf_counter()
    with pytest.raises(CronError) as info:
        next_cron_time(expr, WED)
    assert str(info.value) == "No matching time found for cron expression"
    assert time.perf_counter() - started < 1


def test_horizon_is_exclusive() -> None:
    # Between 2096-02-29 and 2104-02-29 lies more than the 5 * 366 day horizon.
    target = utc(2104, 2, 29)
    start = target - HORIZON_SECONDS  # first minute searched; target is then the limit
    with pytest.raises(CronError, match="^No matching time found"):
        next_cron_time("0 0 29 2 *", start - 60)
    assert next_cron_time("0 0 29 2 *", start) == target


def test_accepts_parsed_spec() -> None:
    spec = parse_cron("30 4 * * *")
    assert isinstance(spec, CronSpec)
    assert next_cron_time(spec, WED) == next_cron_time("30 4 * * *", WED)


def test_utc_regardless_of_local_timezone(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = next_cron_time("0 2 * * *", utc(2027, 3, 28))
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        assert next_cron_time("0 2 * * *", utc(2027, 3, 28)) == expected == utc(2027, 3, 28, 2)
    finally:
        monkeypatch.undo()
        time.tzset()


# --- against a port of Minion's own search loop ----------------------------------------------


def minion_next(spec: CronSpec, base: float) -> float | None:
    """Minion::Util::next_cron_time, line by line (None where Minion croaks)."""

    def day_match(mday: int, wday: int) -> bool:
        dom, dow = spec.day_of_month, spec.day_of_week
        if dom.is_star and dow.is_star:
            return True
        if dom.is_star:
            return wday in dow.values
        if dow.is_star:
            return mday in dom.values
        return mday in dom.values or wday in dow.values

    def next_value(values: frozenset[int], after: int) -> int | None:
        return min((v for v in values if v >= after), default=None)

    if not spec.month.values:
        return None  # Minion dies inside Time::Local here; we report "no match".
    t = math.trunc(base / 60) * 60 + 60
    limit = t + 5 * 366 * 86400
    while t < limit:
        tm = time.gmtime(t)
        year, mon, mday, hour, minute = tm[:5]
        wday = (tm.tm_wday + 1) % 7
        if mon not in spec.month.values:
            month = next_value(spec.month.values, mon)
            t = utc(year, month, 1) if month else utc(year + 1, min(spec.month.values), 1)
        elif not day_match(mday, wday):
            t = utc(year, mon, mday) + 86400
        elif hour not in spec.hour.values:
            h = next_value(spec.hour.values, hour)
            t = utc(year, mon, mday, h) if h is not None else utc(year, mon, mday) + 86400
        elif minute not in spec.minute.values:
            m = next_value(spec.minute.values, minute)
            t = (
                utc(year, mon, mday, hour, m)
                if m is not None
                else utc(year, mon, mday, hour) + 3600
            )
        else:
            return float(t)
    return None


def random_field(rng: random.Random, low: int, high: int, names: list[str] | None) -> str:
    def value() -> str:
        v = rng.randint(low, high)
        if names and rng.random() < 0.3 and v - low < len(names):  # day-of-week 7 has no name
            return rng.choice([str.upper, str.lower, str.title])(names[v - low])
        return str(v)

    def part() -> str:
        kind = rng.randrange(6)
        step = f"/{rng.randint(1, high - low + 2)}" if rng.random() < 0.4 else ""
        if kind == 0:
            return "*" + step
        if kind in (1, 2):
            return value() + step
        a, b = sorted((rng.randint(low, high), rng.randint(low, high)))
        return f"{a}-{b}{step}"

    if rng.random() < 0.25:
        return "*"
    return ",".join(part() for _ in range(rng.choice([1, 1, 1, 2, 3])))


def random_exprs(count: int) -> Iterator[str]:
    rng = random.Random(20260912)
    for _ in range(count):
        yield " ".join(
            [
                random_field(rng, 0, 59, None),
                random_field(rng, 0, 23, None),
                rng.choice(["*", "*", "13", "31", "29", "30,31", random_field(rng, 1, 31, None)]),
                rng.choice(["*", "*", "2", "4,6", random_field(rng, 1, 12, MONTHS)]),
                rng.choice(["*", "*", "7", "*/1", random_field(rng, 0, 7, DAYS)]),
            ]
        )


def test_matches_minion_search_loop() -> None:
    rng = random.Random(7)
    bases: list[float] = [
        utc(2027, 3, 10, 12, 34, 56),
        utc(2096, 2, 28, 23, 59, 30),
        utc(2099, 12, 31, 23, 59),
    ]
    bases += [rng.uniform(946684800, 4102444800) for _ in range(3)]
    checked = 0
    for expr in random_exprs(400):
        spec = parse_cron(expr)
        for base in bases:
            expected = minion_next(spec, base)
            if expected is None:
                with pytest.raises(CronError, match="^No matching time found"):
                    next_cron_time(expr, base)
            else:
                assert next_cron_time(expr, base) == expected, (expr, iso(base))
            checked += 1
    assert checked == 2400


def test_non_ascii_digits_rejected() -> None:
    # Deliberate difference: Perl would read these as 0 (or 1 for the step); we refuse them.
    assert error("\u0663 * * * *") == 'Invalid name "\u0663" in minute field'
    assert error("*/1\u0663 * * * *") == 'Invalid step "1\u0663" in minute field'
