"""Repeat rules of to-dos: one RFC 5545 RRULE value, computed with python-dateutil's rrule.

A task's `repeat` is the value of an RRULE line ("FREQ=WEEKLY;BYDAY=MO"), never DTSTART,
RDATE or EXDATE lines: the DTSTART is the task's own `repeat_start`, persisted when the rule
is set, so COUNT and INTERVAL keep counting from the same start across completions.

Occurrences are computed on naive wall-clock time in the task's zone (dateutil adds days and
months to the wall clock, as a person means "every monday 9:00") and each one is then placed
on the time line through UTC: 02:30 in a spring-forward gap becomes 03:30, and in an autumn
fold the first 02:30 is taken (ZoneInfo's fold=0).

Bounds, so that no rule a client sends can make a worker or a web request spin:
- FREQ=SECONDLY, MINUTELY and HOURLY are refused before dateutil sees the rule, and so are
  BYHOUR, BYMINUTE and BYSECOND (the time of day is repeat_start's), so a rule yields at most
  one occurrence per day.
- dateutil loops period by period until year 9999 when a rule never matches
  ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30" took 26 s of CPU): `_Bounded` counts the months it
  walks and stops after the reach of one computation (10 years past the point asked about).
- We take at most MAX_OCCURRENCES occurrences from it per computation, and a series whose
  start lies more than MAX_WALK_MONTHS before the end of the reach has ended.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

MAX_LENGTH = 256
MAX_OCCURRENCES = 100
REACH = timedelta(days=3653)  # "within 10 years", leap days included
# The longest walk from a rule's start: a COUNT rule keeps its start (a year-1 one would
# otherwise cost seconds per completion); a rule without COUNT restarts at each completion.
MAX_WALK_MONTHS = 12 * 60
REFUSED_FREQUENCIES = ("SECONDLY", "MINUTELY", "HOURLY")
# The parts of RFC 5545 section 3.3.10 a to-do's rule may use; the time of day is the start's.
ALLOWED_PARTS = ("FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYYEARDAY",
                 "BYWEEKNO", "BYMONTH", "BYSETPOS", "WKST")
_PART = re.compile(r"([A-Z]+)=([A-Z0-9,+\-]+)\Z")
MAX_INTERVAL = 1000
MAX_COUNT = 10000


class RepeatError(ValueError):
    """A rule we do not take; `code` is the API's error code, the message is for people."""

    def __init__(self, message: str, code: str = "validation_error"):
        super().__init__(message)
        self.code = code


class _OutOfReach(Exception):
    """dateutil walked further than one computation may (see _Bounded)."""


class _Bounded(rrule):
    """An rrule that stops dateutil's walk after `_months_left` months.

    dateutil's iterator yields nothing while periods do not match, so an outside counter
    cannot stop it; but it rebuilds its masks at least once per month it walks, and each
    rebuild reads `_byeaster`. This class's property counts those reads.
    """

    @property
    def _byeaster(self):
        self._months_left -= 1
        if self._months_left < 0:
            raise _OutOfReach()
        return self.__dict__["_byeaster"]

    @_byeaster.setter
    def _byeaster(self, value):
        self.__dict__["_byeaster"] = value


def normalize(value: str) -> str:
    """The rule in canonical spelling (upper case, no "RRULE:"); RepeatError when it is not one we take."""
    if not isinstance(value, str):
        raise RepeatError("Send the rule as a string such as FREQ=WEEKLY;BYDAY=MO.")
    if len(value) > MAX_LENGTH:
        raise RepeatError(f"A repeat rule is at most {MAX_LENGTH} characters.")
    text = value.strip().upper()
    if text.startswith("RRULE:"):
        text = text[len("RRULE:"):]
    if not text or any(c in text for c in "\r\n:"):
        raise RepeatError("Send one RRULE value such as FREQ=WEEKLY;BYDAY=MO, without DTSTART, RDATE or "
                          "EXDATE lines.")
    parts: dict[str, str] = {}
    for part in text.split(";"):
        match = _PART.match(part)
        if match is None:
            raise RepeatError(f"{part!r} is not a NAME=VALUE part of an RRULE.")
        name, part_value = match.groups()
        if name not in ALLOWED_PARTS:
            raise RepeatError(f"{name} is not allowed in a task's repeat rule; use {', '.join(ALLOWED_PARTS)} "
                              "(the time of day is the task's due time).")
        if name in parts:
            raise RepeatError(f"{name} is given twice.")
        parts[name] = part_value
    freq = parts.get("FREQ")
    if freq is None:
        raise RepeatError("The rule needs a FREQ (DAILY, WEEKLY, MONTHLY or YEARLY).")
    if freq in REFUSED_FREQUENCIES:
        raise RepeatError(f"FREQ={freq} repeats too often for a task; use DAILY, WEEKLY, MONTHLY or YEARLY.")
    if "COUNT" in parts and "UNTIL" in parts:
        raise RepeatError("A rule has COUNT or UNTIL, not both (RFC 5545).")
    for name, limit in (("INTERVAL", MAX_INTERVAL), ("COUNT", MAX_COUNT)):
        if name in parts and not (parts[name].isdigit() and 1 <= int(parts[name]) <= limit):
            raise RepeatError(f"{name} is a whole number from 1 to {limit}.")
    return ";".join(f"{name}={part_value}" for name, part_value in parts.items())


def _wall_clock_until(value: str, zone: ZoneInfo) -> str:
    """The rule with a UTC UNTIL ("...Z") turned into the zone's wall-clock time, as computed."""
    def local(match: re.Match[str]) -> str:
        try:
            moment = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        except ValueError:
            raise RepeatError(f"UNTIL={match.group(1)}Z is not a date-time such as 20271231T235959Z.") from None
        return "UNTIL=" + _local(moment, zone).strftime("%Y%m%dT%H%M%S")
    return re.sub(r"UNTIL=([0-9T]+)Z", local, value)


def _rule(value: str, start_local: datetime, months: int, zone: ZoneInfo) -> _Bounded:
    """The parsed rule starting at the naive wall-clock `start_local`, walking at most `months`."""
    try:
        parsed = rrulestr(_wall_clock_until(value, zone), dtstart=start_local, ignoretz=True)
    except (ValueError, TypeError, IndexError, KeyError, OverflowError) as exc:
        raise RepeatError(f"Not a valid RRULE: {exc}.") from None
    # rrulestr builds a plain rrule; the bounded class adds only the counting property.
    parsed.__class__ = _Bounded
    parsed._months_left = months
    return parsed


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def _placed(local: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time in `zone` as a UTC instant, through ZoneInfo (gap: later; fold: first)."""
    return local.replace(tzinfo=zone).astimezone(UTC)


def next_occurrence(value: str, *, start: datetime, zone: ZoneInfo, after: datetime) -> datetime | None:
    """The first occurrence strictly after `after` (UTC), or None when the rule ends before it
    or has none within REACH of it."""
    start_local = _local(start, zone)
    after_local = _local(after, zone)
    # Months from the start to the end of the reach, plus one either side.
    span = max(after_local - start_local, timedelta(0)) + REACH
    months = span.days * 12 // 365 + 3
    if months > MAX_WALK_MONTHS:
        return None
    rule = _rule(value, start_local, months, zone)
    # Near year 9999 the reach ends with the calendar.
    limit = after_local + REACH if after_local < datetime.max - REACH else datetime.max
    # Two hours of slack below: in a fold the wall clock runs an hour behind the instant.
    since = max(start_local, after_local - timedelta(hours=2))
    try:
        for taken, local in enumerate(rule.xafter(since, inc=True)):
            if taken >= MAX_OCCURRENCES or local > limit:
                return None
            moment = _placed(local, zone)
            if moment > after:
                return moment
    except (_OutOfReach, OverflowError):
        return None
    return None


def check(value: str, *, start: datetime, zone: ZoneInfo) -> str:
    """The normalised rule, if it has an occurrence within 10 years of `start`; RepeatError if not."""
    value = normalize(value)
    if next_occurrence(value, start=start, zone=zone, after=start - timedelta(microseconds=1)) is None:
        raise RepeatError("The rule has no occurrence within 10 years of its start.", code="repeat_no_occurrence")
    return value
