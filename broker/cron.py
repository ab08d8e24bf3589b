"""Minion's cron grammar (``Minion::Util::parse_cron`` / ``next_cron_time``), UTC only.

We parse and validate ourselves so that every accepted expression and every error message is
Minion's, byte for byte; croniter only does the date arithmetic, and only ever sees the parsed
fields re-rendered as plain numbers and ``*`` (see ``_croniter_expr`` for why).

One deliberate difference: digits are ASCII only. Perl's ``\\d`` also takes other scripts' digits
and then reads them as 0; we reject them (as an invalid name or step) instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from croniter import CroniterBadDateError, croniter

__all__ = ["CronError", "CronField", "CronSpec", "next_cron_time", "parse_cron"]

NICKNAMES: Mapping[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTH_NAMES: Mapping[str, int] = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_DAY_NAMES: Mapping[str, int] = {
    name: number for number, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))
}

# Minion's field table: name (as it appears in messages), min, max, allowed names.
_FIELDS: tuple[tuple[str, int, int, Mapping[str, int] | None], ...] = (
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day-of-month", 1, 31, None),
    ("month", 1, 12, _MONTH_NAMES),
    ("day-of-week", 0, 7, _DAY_NAMES),
)

# How far ahead next_cron_time looks before giving up (Minion: 5 * 366 days).
HORIZON_SECONDS = 5 * 366 * 86400

# Perl's \s (Unicode White_Space) is Python's \s without the \x1c-\x1f separators.
_WHITESPACE = re.compile(r"[^\S\x1c-\x1f]+")
_STEP = re.compile(r"[1-9][0-9]*")
_RANGE = re.compile(r"(\w+)-(\w+)")
_SINGLE = re.compile(r"\w+")
_NUMBER = re.compile(r"[0-9]+")


class CronError(ValueError):
    """An invalid cron expression, or one with no match in the horizon; str() is Minion's text."""


@dataclass(frozen=True)
class CronField:
    """One parsed field: the values it matches, and whether it was literally ``*``."""

    values: frozenset[int]
    is_star: bool


@dataclass(frozen=True)
class CronSpec:
    """A parsed five-field expression; day-of-week uses 0 for Sunday (7 is folded into 0)."""

    minute: CronField
    hour: CronField
    day_of_month: CronField
    month: CronField
    day_of_week: CronField


def parse_cron(expr: str) -> CronSpec:
    """Parse ``expr`` like Minion does; raise CronError with Minion's message if it is invalid."""
    if expr.startswith("@"):
        if expr not in NICKNAMES:
            raise CronError(f'Unknown cron nickname "{expr}"')
        expr = NICKNAMES[expr]

    fields = _drop_trailing_empty(_WHITESPACE.split(expr))
    if len(fields) != 5:
        raise CronError(f'Invalid cron expression "{expr}": expected 5 fields')

    minute, hour, dom, month, dow = (
        _parse_field(field, *spec) for field, spec in zip(fields, _FIELDS, strict=True)
    )
    return CronSpec(minute, hour, dom, month, dow)


def next_cron_time(cron: str | CronSpec, base: float) -> float:
    """First matching minute strictly after ``base`` (epoch seconds, UTC), within the horizon.

    Like Minion, ``cron`` may also be an already parsed CronSpec.
    """
    spec = cron if isinstance(cron, CronSpec) else parse_cron(cron)
    # Perl's int() truncates toward zero; that only differs from floor() before 1970.
    start = math.trunc(base / 60) * 60 + 60
    limit = start + HORIZON_SECONDS

    expr = _croniter_expr(spec)
    if expr is not None:
        try:
            # croniter returns the first match at or after the minute following its start;
            # 6 years covers the horizon and stops it hunting 50 years for "0 0 30 2 *".
            found = croniter(
                expr, float(start - 60), day_or=True, max_years_between_matches=6
            ).get_next(float)
        except CroniterBadDateError:
            pass
        else:
            if found < limit:
                return float(found)
    raise CronError("No matching time found for cron expression")


def _drop_trailing_empty(parts: list[str]) -> list[str]:
    """Finish a Perl ``split``: a leading empty field stays, trailing empty ones go."""
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def _parse_field(
    field: str, name: str, low: int, high: int, names: Mapping[str, int] | None
) -> CronField:
    values: set[int] = set()
    for part in _drop_trailing_empty(field.split(",")):
        range_, slash, step_text = part.partition("/")
        if not slash:
            step_text = "1"
        if not _STEP.fullmatch(step_text):
            raise CronError(f'Invalid step "{step_text}" in {name} field')

        if range_ == "*":
            first, last = low, high
        elif match := _RANGE.fullmatch(range_):
            first = _resolve(match[1], name, names)
            last = _resolve(match[2], name, names)
        elif _SINGLE.fullmatch(range_):
            first = last = _resolve(range_, name, names)
        else:
            raise CronError(f'Invalid {name} field "{part}"')
        if first < low or last > high or first > last:
            raise CronError(f'Value out of range in {name} field "{part}" ({low}-{high})')

        values.update(range(first, last + 1, _number(step_text)))

    if name == "day-of-week" and 7 in values:
        values.discard(7)
        values.add(0)
    return CronField(frozenset(values), field == "*")


def _resolve(value: str, name: str, names: Mapping[str, int] | None) -> int:
    """A number, or a (case-insensitive) month/day name where the field allows names."""
    if _NUMBER.fullmatch(value):
        return _number(value)
    if names is None or value.lower() not in names:
        raise CronError(f'Invalid name "{value}" in {name} field')
    return names[value.lower()]


def _number(digits: str) -> int:
    """An ASCII digit string as an int; absurdly long ones (past int()'s limit) as a huge one."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else 1 << 64


def _croniter_expr(spec: CronSpec) -> str | None:
    """Render ``spec`` as plain numbers for croniter, or None if it can never match.

    croniter has its own ideas about steps, names, 7 and "is this field a wildcard" (it folds a
    full list back into ``*``), so we settle the day rule here, Minion's way: only a literal
    ``*`` is unrestricted, and when both day fields are restricted a day matches if either does.
    """
    dom, dow = spec.day_of_month, spec.day_of_week
    if dom.is_star and dow.is_star:
        days = ("*", "*")
    elif dom.is_star:
        days = ("*", _render(dow.values, 0, 6))
    elif dow.is_star or not dow.values:
        days = (_render(dom.values, 1, 31), "*")
    elif not dom.values:
        days = ("*", _render(dow.values, 0, 6))
    elif len(dom.values) == 31 or len(dow.values) == 7:
        days = ("*", "*")  # One side alone already matches every day.
    else:
        days = (_render(dom.values, 1, 31), _render(dow.values, 0, 6))  # day_or: either.

    fields = (
        _render(spec.minute.values, 0, 59),
        _render(spec.hour.values, 0, 23),
        *days,
        _render(spec.month.values, 1, 12),
    )
    if "" in fields:
        # An empty field (Minion accepts "," or a leading blank) matches nothing. (For an empty
        # month Minion itself dies inside Time::Local; "no match" is the sane reading.)
        return None
    minute, hour, dom_text, dow_text, month = fields
    return f"{minute} {hour} {dom_text} {month} {dow_text}"


def _render(values: frozenset[int], low: int, high: int) -> str:
    if len(values) == high - low + 1:
        return "*"
    return ",".join(str(value) for value in sorted(values))
