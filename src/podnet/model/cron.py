"""Cron schedules as the CronJob controller reads them (robfig/cron v3's standard parser).

Five fields (minute hour day-of-month month day-of-week) or a descriptor (`@hourly`,
`@daily`, `@midnight`, `@weekly`, `@monthly`, `@yearly`, `@annually`, `@every <duration>`).
`cron_errors(text)` gives the parser's error text (empty when valid) and `Schedule.next(t)`
the first activation strictly after t, both as robfig/cron word and compute them.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_BOUNDS: tuple[tuple[int, int, dict[str, int]], ...] = (
    (0, 59, {}),
    (0, 23, {}),
    (1, 31, {}),
    (
        1,
        12,
        {
            n: i + 1
            for i, n in enumerate(
                ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
            )
        },
    ),
    (0, 6, {n: i for i, n in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}),
)
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class CronError(ValueError):
    pass


def _go_fields(fields: list[str]) -> str:
    return "[" + " ".join(fields) + "]"


def _int(text: str, expr: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", text):
        raise CronError(f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": invalid syntax')
    value = int(text)
    if value < 0:
        raise CronError(f"negative number ({value}) not allowed: {expr}")
    return value


def _int_or_name(text: str, names: dict[str, int], expr: str) -> int:
    if names and text.lower() in names:
        return names[text.lower()]
    return _int(text, expr)


def _range(expr: str, lo: int, hi: int, names: dict[str, int]) -> set[int]:
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    single = len(low_and_high) == 1
    if low_and_high[0] in ("*", "?"):
        start, end = lo, hi
    else:
        start = _int_or_name(low_and_high[0], names, expr)
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end = _int_or_name(low_and_high[1], names, expr)
        else:
            raise CronError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _int(range_and_step[1], expr)
        if single and low_and_high[0] not in ("*", "?"):
            end = hi  # "N/step" means N-max/step
    else:
        raise CronError(f"too many slashes: {expr}")
    if start < lo:
        raise CronError(f"beginning of range ({start}) below minimum ({lo}): {expr}")
    if end > hi:
        raise CronError(f"end of range ({end}) above maximum ({hi}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")
    return set(range(start, end + 1, step))


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    dom: frozenset[int]
    months: frozenset[int]
    dow: frozenset[int]
    dom_star: bool
    dow_star: bool
    every: dt.timedelta | None = None

    def _day_matches(self, t: dt.datetime) -> bool:
        dom_ok = t.day in self.dom
        dow_ok = (t.weekday() + 1) % 7 in self.dow
        if self.dom_star or self.dow_star:
            return dom_ok and dow_ok
        return dom_ok or dow_ok

    def next(self, after: dt.datetime) -> dt.datetime:
        """The first activation strictly after `after` (minute resolution), or far in the future."""
        if self.every is not None:
            base = after.replace(microsecond=0)
            return base + self.every
        t = after.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        limit = t + dt.timedelta(days=366 * 5)
        while t < limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + dt.timedelta(days=32)).replace(day=1)
                continue
            if not self._day_matches(t):
                t = t.replace(hour=0, minute=0) + dt.timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0) + dt.timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t += dt.timedelta(minutes=1)
                continue
            return t
        return limit


def parse(text: str) -> Schedule:
    """Parse a schedule; CronError with robfig/cron's message when it is not valid."""
    spec = text.strip()
    if spec.startswith("@"):
        if spec.startswith("@every "):
            m = re.fullmatch(r"@every\s+(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", spec)
            if m is None or not any(m.groups()):
                raise CronError(
                    f'failed to parse duration {spec}: time: invalid duration "{spec[len("@every ") :]}"'
                )
            h, mi, s = (int(g or 0) for g in m.groups())
            return Schedule(
                frozenset(),
                frozenset(),
                frozenset(),
                frozenset(),
                frozenset(),
                True,
                True,
                dt.timedelta(hours=h, minutes=mi, seconds=s),
            )
        if spec not in _DESCRIPTORS:
            raise CronError(f"unrecognized descriptor: {spec}")
        spec = _DESCRIPTORS[spec]
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: {_go_fields(fields)}")
    sets: list[set[int]] = []
    for field, (lo, hi, names) in zip(fields, _BOUNDS, strict=True):
        values: set[int] = set()
        for expr in field.split(","):
            values |= _range(expr, lo, hi, names)
        sets.append(values)
    return Schedule(
        frozenset(sets[0]),
        frozenset(sets[1]),
        frozenset(sets[2]),
        frozenset(sets[3]),
        frozenset(sets[4]),
        fields[2] in ("*", "?"),
        fields[4] in ("*", "?"),
    )


def cron_errors(text: str) -> list[str]:
    try:
        parse(text)
    except CronError as e:
        return [str(e)]
    return []
