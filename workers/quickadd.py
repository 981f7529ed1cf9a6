"""Parse a quick-add line such as "call mom tomorrow 5pm #family !high" into task fields.

Pure function: no database, no Celery, no network. Matching is case-insensitive.

Grammar
-------
* Tags: ``#word`` at the start of a whitespace-separated token; letters, digits, ``-`` and
  ``_``. Returned lowercase, de-duplicated, in order of appearance. ``C#`` is not a tag.
* Priority: a standalone ``!low``, ``!normal``, ``!high``, ``!urgent``, ``!!`` (high) or
  ``!!!`` (urgent). The last marker wins; the default is "normal". ``done!!`` is no marker.
* Due date: the first *date phrase*, i.e. one or more adjacent date cues, optionally joined
  by ``,``, ``at``, ``on``, ``by`` or ``@`` ("tomorrow at 17:00", "on 24 december at 8pm").
  The cues are:

  - ``today``, ``tomorrow``, ``tonight``, ``yesterday``, ``day after tomorrow``, and weekday
    names (``monday``, ``mon``, ``tue(s)``, ``thu(r)(s)``, ``fri`` ...), optionally followed
    by ``morning``/``afternoon``/``evening``/``night``;
  - ``next``/``this`` + weekday, ``week``, ``month`` or ``year``; ``this morning`` etc.;
  - ``in N minutes|hours|days|weeks|months|years`` (N: digits, ``a``/``an``, ``one``..``twelve``);
  - a month name with a day number: ``dec 24``, ``december 24th, 2027``, ``24th of dec``;
  - an ISO date: ``2026-12-24``, ``2026-12-24T18:30``;
  - a clock time: ``5pm``, ``5:30 pm``, ``5 p.m.``, ``17:00``.

  ``wed``, ``sat``, ``sun``, ``noon`` and ``midnight`` are ordinary words too ("study for the
  SAT", "midnight snack"), so they count only next to another cue or right after a
  preposition ("on sat", "by noon"). Anything else dateparser would read as a date (a bare
  year such as "read 1984", a bare month such as "may the force", "second") is no cue.
  The phrase and any ``on``/``at``/``by``/``due`` right before it are removed from the title.
* Recurrence ("every monday", "every 2 weeks") is out of scope: when the text has one, no date
  is parsed at all, the text stays in the title and ``due_at`` is None.

Due-date semantics
------------------
* A phrase with a time of day gives that wall-clock time in the user's zone, ``all_day=False``.
  A bare clock time ("at 5pm") means today if still ahead, else tomorrow.
* A date without a time of day gives ``all_day=True`` and ``due_at`` = that date at 00:00
  local time (the start of the day; clients show all-day tasks as a date only).
* ``in N minutes/hours`` is exact elapsed time from ``now``, so it stays right across a DST
  change; every other phrase is wall-clock time in the user's zone.

Why not ``dateparser.search.search_dates`` on the whole line: it reads "1984", "may the" and
"march" as dates and glues neighbours onto real ones ("read 1984 on friday" -> 1984-11-26).
So the cues above are found with explicit regular expressions and only the resulting phrase is
handed to ``dateparser.parse``. dateparser runs on naive local wall-clock time (RELATIVE_BASE =
``now`` in the user's zone) and the ZoneInfo is attached here, because its own
TO_TIMEZONE / RETURN_AS_TIMEZONE_AWARE conversion uses the UTC offset of ``now`` and is an hour
off when the due date is on the other side of a DST change.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dateparser

MAX_TITLE_LENGTH = 500

_FLAGS = re.IGNORECASE

# --- vocabulary --------------------------------------------------------------------------
_WEEKDAYS = r"monday|tuesday|wednesday|thursday|friday|saturday|sunday"
# Abbreviations that are not ordinary English words; longest first so "thurs" beats "thu".
_SAFE_WEEKDAY_ABBREVIATIONS = r"tues|tue|thurs|thur|thu|mon|fri"
# "wed", "sat" and "sun" are also words/acronyms, so alone they are weak cues.
_WEAK_WEEKDAY_ABBREVIATIONS = r"wed|sat|sun"
_ANY_WEEKDAY = rf"{_WEEKDAYS}|{_SAFE_WEEKDAY_ABBREVIATIONS}|{_WEAK_WEEKDAY_ABBREVIATIONS}"
_MONTHS = (
    r"january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec"
)
_DAY_NUMBER = r"(?:3[01]|[12]\d|0?[1-9])(?:st|nd|rd|th)?"
_YEAR = r"(?:,?\s+20\d\d)"
_PART_OF_DAY = r"morning|afternoon|evening|night"
_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}
_AMOUNT = r"\d+|" + "|".join(_NUMBER_WORDS)
_SUB_DAY_UNITS = {"min": "minutes", "minute": "minutes", "hr": "hours", "hour": "hours"}

# --- date cues ---------------------------------------------------------------------------
# Each cue is (name, pattern, strong). Order matters: at one position the first alternative
# that matches wins, so longer forms come first. A weak cue alone is not a date.
_CUES: list[tuple[str, str, bool]] = [
    ("iso", r"\d{4}-\d{2}-\d{2}(?:T(?:[01]?\d|2[0-3]):[0-5]\d)?", True),
    ("in_sub_day", rf"in\s+(?:{_AMOUNT})\s+(?:minutes?|mins?|hours?|hrs?)", True),
    ("in_days", rf"in\s+(?:{_AMOUNT})\s+(?:days?|weeks?|months?|years?)", True),
    ("this_part", rf"this\s+(?:{_PART_OF_DAY})", True),
    ("next_this", rf"(?:next|this)\s+(?:{_ANY_WEEKDAY}|week|month|year)", True),
    ("month_day", rf"(?:{_MONTHS})\.?\s+{_DAY_NUMBER}{_YEAR}?", True),
    ("day_month", rf"{_DAY_NUMBER}\.?\s+(?:of\s+)?(?:{_MONTHS}){_YEAR}?", True),
    ("tonight", r"tonight", True),
    (
        "day_word",
        rf"(?:(?:the\s+)?day\s+after\s+tomorrow|today|tomorrow|yesterday"
        rf"|{_WEEKDAYS}|{_SAFE_WEEKDAY_ABBREVIATIONS})(?:\s+(?:{_PART_OF_DAY}))?",
        True,
    ),
    ("clock_12h", r"(?:1[0-2]|0?[1-9])(?::[0-5]\d)?\s*(?:a\.m\.|p\.m\.|am|pm)", True),
    ("clock_24h", r"(?:[01]?\d|2[0-3]):[0-5]\d(?!:)", True),
    ("weak_day", rf"(?:{_WEAK_WEEKDAY_ABBREVIATIONS})(?:\s+(?:{_PART_OF_DAY}))?", False),
    ("weak_time", r"noon|midnight", False),
]
_STRONG_CUES = {name for name, _, strong in _CUES if strong}
_CUE_RE = re.compile(
    "|".join(rf"(?<![\w#-])(?P<{name}>{pattern})(?![\w-])" for name, pattern, _ in _CUES), _FLAGS
)
# Cues that carry a time of day (the rest only name a date).
_TIME_OF_DAY_RE = re.compile(
    rf"\d:\d|\d\s*(?:a\.m\.|p\.m\.|am|pm)\b|\b(?:noon|midnight|tonight|{_PART_OF_DAY})\b", _FLAGS
)
# What may sit between two cues of one phrase: "tomorrow at 5pm", "5pm on friday", "fri, 3pm".
_JOINER_RE = re.compile(r"\s*(?:,\s*|(?:at|on|by|@)\s+)?", _FLAGS)
# A dangling preposition right before the phrase ("due by friday"); removed with it.
_PREPOSITION_BEFORE_RE = re.compile(r"(?:^|\s)(?:on|at|by|due)\s*$", _FLAGS)
_RECURRENCE_RE = re.compile(
    rf"(?<!\w)every\s+(?:other\s+)?(?:(?:{_AMOUNT})\s+)?"
    rf"(?:{_ANY_WEEKDAY}|{_MONTHS}|\d+(?:st|nd|rd|th)"
    rf"|(?:day|week|month|year|hour|minute|weekday|weekend|{_PART_OF_DAY})s?)(?!\w)",
    _FLAGS,
)
_IN_SUB_DAY_RE = re.compile(rf"in\s+({_AMOUNT})\s+(min|minute|hr|hour)", _FLAGS)
# dateparser knows "thursday" and "thu" but not "thur"/"thurs".
_THURSDAY_RE = re.compile(r"\bthurs?\b", _FLAGS)

# --- tags and priority -------------------------------------------------------------------
# At most 64 characters, as the tasks API allows; a longer "#word" stays in the title.
_TAG_RE = re.compile(r"(?<!\S)#(\w[\w-]{0,63})(?![\w-])")
MAX_TAGS = 50
_PRIORITY_RE = re.compile(r"(?<!\S)(!!!|!!|!(?:low|normal|high|urgent))(?!\S)", _FLAGS)
_PRIORITY_BY_MARKER = {"!!!": "urgent", "!!": "high"}
_TITLE_EDGE_JUNK = " \t\r\n,;:-\u2013\u2014"


@dataclass(frozen=True)
class ParsedTask:
    """The task fields parsed from one quick-add line."""

    title: str
    due_at: datetime | None  # timezone-aware, in the user's timezone (ZoneInfo), or None
    tags: list[str]  # lowercase, de-duplicated, order of appearance, without '#'
    priority: str  # "low" | "normal" | "high" | "urgent"
    all_day: bool  # True when a date was given without a time of day
    repeat: str | None = None  # an RRULE value without DTSTART (shared.repeat); due_at is the first occurrence


@dataclass(frozen=True)
class _DatePhrase:
    """A run of date cues found in the text, with the span it covers."""

    start: int
    end: int
    cues: list[re.Match[str]]

    @property
    def text(self) -> str:
        """The cues joined by spaces: joiners like "at"/"on" are left out for dateparser."""
        return " ".join(cue.group() for cue in self.cues)

    @property
    def has_time_of_day(self) -> bool:
        """Whether any cue names a time of day rather than only a date."""
        return bool(_TIME_OF_DAY_RE.search(self.text))


def parse_quick_add(text: str, *, now: datetime, timezone: str, locale: str = "en-US") -> ParsedTask:
    """Parse a quick-add line into a ParsedTask; raise ValueError on a bad zone or no title."""
    zone = _load_zone(timezone)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    rest, tags = _extract_tags(text)
    rest, priority = _extract_priority(rest)
    due_at, all_day = None, False
    if not _RECURRENCE_RE.search(rest):
        found = _find_due_date(rest, now=now, zone=zone)
        if found is not None:
            phrase, due_at, all_day = found
            rest = _remove_phrase(rest, phrase)
    title = _clean_title(rest)
    if not title:
        raise ValueError("the text has no title")
    return ParsedTask(title=title, due_at=due_at, tags=tags, priority=priority, all_day=all_day)


def _load_zone(name: str) -> ZoneInfo:
    """Return the ZoneInfo for an IANA name, raising ValueError for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        # ZoneInfoNotFoundError is a KeyError; callers expect ValueError for bad input.
        raise ValueError(f"unknown timezone: {name!r}") from exc


def _extract_tags(text: str) -> tuple[str, list[str]]:
    """Remove #tags from the text and return them lowercase, de-duplicated, in order."""
    tags = list(dict.fromkeys(match.group(1).lower() for match in _TAG_RE.finditer(text)))[:MAX_TAGS]
    # Replace with a space, not "", so the words on either side do not fuse.
    return _TAG_RE.sub(" ", text), tags


def _extract_priority(text: str) -> tuple[str, str]:
    """Remove priority markers from the text and return the last one's priority."""
    priority = "normal"
    for match in _PRIORITY_RE.finditer(text):
        marker = match.group(1).lower()
        priority = _PRIORITY_BY_MARKER.get(marker, marker.lstrip("!"))
    return _PRIORITY_RE.sub(" ", text), priority


def _find_due_date(text: str, *, now: datetime, zone: ZoneInfo) -> tuple[_DatePhrase, datetime, bool] | None:
    """Return the first date phrase that resolves to a date, its due_at and all_day flag."""
    for phrase in _date_phrases(text):
        if not _is_credible(phrase, text):
            continue
        resolved = _resolve(phrase, now=now, zone=zone)
        if resolved is not None:
            return phrase, *resolved
    return None


def _date_phrases(text: str) -> list[_DatePhrase]:
    """Group the cues found in the text into phrases of adjacent (or joined) cues."""
    phrases: list[_DatePhrase] = []
    cues: list[re.Match[str]] = []
    for cue in _CUE_RE.finditer(text):
        if cues and not _JOINER_RE.fullmatch(text, cues[-1].end(), cue.start()):
            phrases.append(_DatePhrase(cues[0].start(), cues[-1].end(), cues))
            cues = []
        cues.append(cue)
    if cues:
        phrases.append(_DatePhrase(cues[0].start(), cues[-1].end(), cues))
    return phrases


def _is_credible(phrase: _DatePhrase, text: str) -> bool:
    """Whether the phrase is a real date: a strong cue, or weak ones after a preposition."""
    if any(cue.lastgroup in _STRONG_CUES for cue in phrase.cues):
        return True
    return bool(_PREPOSITION_BEFORE_RE.search(text[: phrase.start]))


def _resolve(phrase: _DatePhrase, *, now: datetime, zone: ZoneInfo) -> tuple[datetime, bool] | None:
    """Turn a phrase into (due_at, all_day) in the user's zone, or None if dateparser fails."""
    local_now = now.astimezone(zone)
    if len(phrase.cues) == 1 and phrase.cues[0].lastgroup == "in_sub_day":
        # Elapsed time, not wall-clock time: "in 2 hours" is 2 real hours even across DST.
        return (now.astimezone(UTC) + _sub_day_delta(phrase.text)).astimezone(zone), False
    parsed = dateparser.parse(
        _THURSDAY_RE.sub("thursday", phrase.text),
        languages=["en"],
        settings={
            "PREFER_DATES_FROM": "future",
            # Naive local wall-clock time in, naive wall-clock time out (see module docstring).
            "RELATIVE_BASE": local_now.replace(tzinfo=None),
            "RETURN_AS_TIMEZONE_AWARE": False,
        },
    )
    if parsed is None:
        return None
    if phrase.has_time_of_day:
        return _localize(parsed.replace(second=0, microsecond=0), zone), False
    # dateparser gives "tomorrow" the current time of day; an all-day task starts at 00:00.
    return _localize(datetime.combine(parsed.date(), time()), zone), True


def _sub_day_delta(text: str) -> timedelta:
    """Return the timedelta of an "in N minutes/hours" cue."""
    match = _IN_SUB_DAY_RE.match(text)
    assert match is not None  # only called for cues that matched the "in_sub_day" pattern
    amount_text, unit = match.group(1).lower(), match.group(2).lower()
    amount = int(amount_text) if amount_text.isdigit() else _NUMBER_WORDS[amount_text]
    return timedelta(**{_SUB_DAY_UNITS[unit]: amount})


def _localize(wall_time: datetime, zone: ZoneInfo) -> datetime:
    """Attach the zone to a naive wall-clock time, moving a time in a DST gap forward."""
    # The round trip through UTC turns a non-existent 02:30 on a spring-forward night into
    # the real instant (03:30) instead of keeping an impossible wall time.
    return wall_time.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)


def _remove_phrase(text: str, phrase: _DatePhrase) -> str:
    """Cut the phrase and any dangling prepositions right before it out of the text."""
    before = text[: phrase.start]
    while (preposition := _PREPOSITION_BEFORE_RE.search(before)) is not None:
        before = before[: preposition.start()]  # loop, so "due by friday" loses both words
    return f"{before} {text[phrase.end:]}"


def _clean_title(text: str) -> str:
    """Collapse whitespace, trim separators left at the edges and cap the length."""
    title = " ".join(text.split()).strip(_TITLE_EDGE_JUNK)
    return title[:MAX_TITLE_LENGTH].rstrip()
