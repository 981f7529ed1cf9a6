"""Parse a quick-add line such as "call mom tomorrow 5pm #family !high" into task fields.

Pure function: no database, no Celery, no network. Matching is case-insensitive. English is
always read; German, French and Spanish phrasing too when the user's locale says so
(``locale="de-DE"``). The grammar is this module's own (measured against dateparser and the
former dateparser-based reader on the corpus in tests/quickadd_corpus/: bench/results/quickadd.md).

Grammar
-------
* Tags: ``#word`` at the start of a whitespace-separated token; letters, digits, ``-`` and
  ``_``. Returned lowercase, de-duplicated, in order of appearance. ``C#`` is not a tag.
* Priority: a standalone ``!low``, ``!normal``, ``!high``, ``!urgent``, ``!!`` (high) or
  ``!!!`` (urgent). The last marker wins; the default is "normal". ``done!!`` is no marker.
* Repeat: "every day/weekday/monday/2 weeks/month on the 1st/quarter/year", "every other tuesday",
  "every 2 weeks on saturday", "the last friday of the month", "every morning" (daily at 09:00),
  "daily", "weekly", "quarterly", with "until <date>" and "for N times" (and the same in de/fr/es:
  "jeden Montag", "tous les lundis", "todos los lunes", ...) become ``repeat``, an RFC 5545 RRULE
  value without DTSTART built and checked with python-dateutil's rrule (UNTIL floating local time,
  as DTSTART is); ``due_at`` is its first occurrence at or after now (at the time of day the line
  gives, if any). The phrase combines with a time, a part of the day after it, an until date and a
  count in any order ("yoga every day at 7am until Jan 31"), and all of them leave the title. A rule
  that cannot be built (an until that names no day right after the phrase, COUNT with UNTIL, a
  rule dateutil refuses, or no occurrence within 10 years) is no rule: the words stay in the title.
* Due date: the first *date phrase*: adjacent date and time pieces, joined by spaces, commas or
  "at/on/um/am/à/le/a las/...". Everything the phrase covers, and a dangling preposition right
  before it ("due by", "am", "le"), leaves the title; a phrase that is not understood leaves the
  title untouched.

Semantics (fixed; docs/quick-add.md says the same)
--------------------------------------------------
* "friday" said on a Friday is today; "this friday" is the coming Friday, today included;
  "next friday" is the Friday of next week (weeks start on Monday: +7 said on a Friday, +9 said
  on a Wednesday); "last friday" is the latest past Friday.
* A date said on that very day means today ("December 10" said on December 10); a day and
  month without a year are the next such date, today included; with a year, that date even if
  past.
* Numeric dates follow the user's locale (CLDR day/month order through Babel): en-US 8/10 is
  August 10, en-GB, de, fr and es 10 August. Year first (2027/05/25) is always year-month-day.
* A month alone is its first day, all-day, and counts only after a preposition or with a year
  ("in May", "May 2027", "im Mai", "en mai"), never "may" the verb.
* "EOD" is 17:00; "end of week" Friday and "end of month" its last day, all-day; "this weekend"
  Saturday, "next weekend" the Saturday of next week; "next week"/"next month"/"next year" their
  first day, all-day; "midnight" the 00:00 that ends today; "tonight" 20:00 and "11 tonight"
  23:00; parts of the day: morning 09:00, noon 12:00, afternoon 15:00, evening 19:00, night 20:00.
* A bare hour 1-7 ("at 3", "um 3", "a las tres") means pm; 8-12 the next such time. In English
  "3:30" is 15:30 by the same rule; in German, French and Spanish a time with minutes is on the
  24-hour clock, and "5h" and "5 Uhr" are 05:00. "12.30" is a time only after at/um/à/a las or with am/pm,
  never after a currency sign; "10:00:00" is ten o'clock.
* A time without a date is the next such wall-clock time: today if still ahead, else tomorrow.
* A stated zone ("9am PST", "11am JST", "+01:00", "Z") is converted to the user's zone.
* Ranges ("Feb 20 - 29", "from Tuesday to Friday") are no date; past phrases ("last friday",
  "yesterday", "2 hours ago") still parse.
* Durations: "in 2 hours", "+15 minutes", "2 hours later", "in half an hour" are elapsed time
  from now (right across a DST change); "in 3 days", "within 3 days", "in a couple of days",
  "next 2 weeks" the calendar day, all-day.
* A date without a time of day gives ``all_day=True`` and ``due_at`` = that date at 00:00 local
  time; every other due date is a wall-clock time in the user's zone, localised through UTC so a
  time in a DST gap moves forward (02:30 on a spring-forward night is 03:30).
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from datetime import timezone as fixed_zone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from dateutil.relativedelta import relativedelta
from dateutil.rrule import rrulestr

from workers import quickadd_vocab as vocab

MAX_TITLE_LENGTH = 500
# What the parser reads of a line: more is title text, never a date (keeps every regex linear).
MAX_TEXT_LENGTH = 2000
MAX_REPEAT_LENGTH = 256

_FLAGS = re.IGNORECASE

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
    remind_at: datetime | None = None  # quick add sets none; the field keeps the task shape whole
    repeat: str | None = None  # an RFC 5545 RRULE value without DTSTART ("FREQ=WEEKLY;BYDAY=MO")


def parse_quick_add(text: str, *, now: datetime, timezone: str, locale: str = "en-US") -> ParsedTask:
    """Parse a quick-add line into a ParsedTask; raise ValueError on a bad zone or no title."""
    zone = _load_zone(timezone)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    language, day_first = _locale_info(locale)
    rest, tags = _extract_tags(text)
    rest, priority = _extract_priority(rest)
    ctx = _Context(now=now.astimezone(zone), zone=zone, languages=_languages(language), day_first=day_first)
    head, tail = rest[:MAX_TEXT_LENGTH], rest[MAX_TEXT_LENGTH:]
    due_at, all_day, repeat = None, False, None
    found_repeat = _find_repeat(head, ctx)
    if found_repeat is not None:
        spans, rule = found_repeat
        without = head
        mark = _REPEAT_MARK if _REPEAT_MARK not in head else ""  # a line that has the character keeps it
        for start, end in sorted(spans, reverse=True):
            # a mark where the phrase was: it parts the words around it ("date night | at 7pm") and lets a
            # part of the day right after it count ("every sunday | evening")
            without = without[:start] + f" {mark} " + without[end:]
        phrase = _find_due_date(without, ctx)
        first = _first_occurrence(rule, phrase, ctx)
        if first is not None:
            due_at, all_day, repeat = first
            head = _remove_phrase(without, phrase) if phrase is not None else without
            head = head.replace(mark, " ") if mark else head
    else:
        phrase = _find_due_date(head, ctx)
        if phrase is not None:
            due_at, all_day = phrase.due_at, phrase.all_day
            head = _remove_phrase(head, phrase)
    title = _clean_title(head + tail)
    if not title:
        raise ValueError("the text has no title")
    return ParsedTask(title=title, due_at=due_at, tags=tags, priority=priority, all_day=all_day, repeat=repeat)


def _load_zone(name: str) -> ZoneInfo:
    """Return the ZoneInfo for an IANA name, raising ValueError for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        # ZoneInfoNotFoundError is a KeyError; callers expect ValueError for bad input.
        raise ValueError(f"unknown timezone: {name!r}") from exc


@lru_cache(maxsize=256)
def _locale_info(tag: str) -> tuple[str, bool]:
    """Return (language, day-before-month) for a BCP 47 tag; unknown tags read as en-US."""
    try:
        parsed = Locale.parse(str(tag).replace("_", "-"), sep="-")
    except (UnknownLocaleError, ValueError, TypeError):
        return "en", False
    language = parsed.language if parsed.language in vocab.LANGUAGES else "en"
    pattern = parsed.date_formats["short"].pattern.lower()
    return language, pattern.find("d") < pattern.find("m")


def _languages(language: str) -> tuple[str, ...]:
    """The user's language first, then English, which always works."""
    return (language,) if language == "en" else (language, "en")


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


def _clean_title(text: str) -> str:
    """Collapse whitespace, trim separators left at the edges and cap the length."""
    title = " ".join(text.split()).strip(_TITLE_EDGE_JUNK)
    return title[:MAX_TITLE_LENGTH].rstrip()


# --- context and pieces ------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    """Who says the line, where and when."""

    now: datetime  # aware, in the user's zone
    zone: ZoneInfo
    languages: tuple[str, ...]
    day_first: bool

    @property
    def today(self) -> date:
        """The user's calendar day."""
        return self.now.date()


@dataclass
class _Piece:
    """One recognised bit of a date phrase and what it says."""

    start: int
    end: int
    strong: bool = True
    day: date | None = None
    hour: int | None = None
    minute: int = 0
    meridiem: str | None = None  # "am" / "pm" when stated
    literal_hour: bool = False  # 24-hour clock: never moved to pm
    part_of_day: int | None = None  # the hour a part of the day means ("evening" -> 19)
    instant: datetime | None = None  # an exact instant (durations, "now")
    zone: tzinfo | None = None  # a stated zone for the time
    month_day: int | None = None  # "the 15th": a day of month still to place
    month_and_day: tuple[int, int] | None = None  # a date said without a year (a weekday may place it)
    weekday: int | None = None  # a weekday still to place (with month_day)
    midnight: bool = False
    range_only: bool = False  # a piece that only makes sense in a range ("to")
    needs_day: bool = False  # a bare hour: a time only right after a day ("tmrw 9")


@dataclass
class _Phrase:
    """A resolved date phrase: its span in the text and the due date it gives."""

    start: int
    end: int
    due_at: datetime
    all_day: bool
    pieces: list[_Piece] = field(default_factory=list)

    @property
    def time_of_day(self) -> time | None:
        """The wall-clock time, for repeats; None for all-day."""
        return None if self.all_day else self.due_at.timetz().replace(tzinfo=None)


# --- small helpers -----------------------------------------------------------------------


def _alt(words) -> str:
    """A regex alternation of the words, longest first, escaped."""
    return "|".join(re.escape(word) for word in sorted(set(words), key=len, reverse=True))


def _number(text: str, language: str) -> float | None:
    """Digits or a number word of the language (or English) as a number."""
    text = " ".join(text.lower().replace("-", " ").split())
    if re.fullmatch(r"\d+(?:[.,]\d+)?", text):
        return float(text.replace(",", "."))
    for lang in (language, "en"):
        if text in vocab.NUMBERS[lang]:
            return vocab.NUMBERS[lang][text]
    words = text.split()
    if len(words) == 2 and all(w in vocab.NUMBERS[language] or w in vocab.NUMBERS["en"] for w in words):
        total = sum(vocab.NUMBERS[language].get(w, vocab.NUMBERS["en"].get(w, 0)) for w in words)
        return total
    return None


def _year(text: str | None, default: int | None = None) -> int | None:
    """A 2- or 4-digit year (2-digit: 70-99 -> 19xx, else 20xx)."""
    if not text:
        return default
    digits = text.strip(" ,'")
    value = int(digits)
    if len(digits) <= 2:
        value += 1900 if value >= 70 else 2000
    return value


def _safe_date(year: int, month: int, day: int) -> date | None:
    """The date, or None when it does not exist."""
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _next_date(ctx: _Context, month: int, day: int) -> date | None:
    """The next date with that month and day, today included."""
    for year in (ctx.today.year, ctx.today.year + 1, ctx.today.year + 2, ctx.today.year + 3, ctx.today.year + 4):
        candidate = _safe_date(year, month, day)
        if candidate is not None and candidate >= ctx.today:
            return candidate
    return None


def _next_month_day(ctx: _Context, day: int, weekday: int | None = None) -> date | None:
    """The next date (today included) with that day of month (and weekday, when given)."""
    year, month = ctx.today.year, ctx.today.month
    for _ in range(60):
        candidate = _safe_date(year, month, day)
        if candidate is not None and candidate >= ctx.today and (weekday is None or candidate.weekday() == weekday):
            return candidate
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return None


def _week_start(day: date) -> date:
    """The Monday of the day's week."""
    return day - timedelta(days=day.weekday())


def _weekday_date(ctx: _Context, weekday: int, modifier: str) -> date:
    """Place a weekday: "" / "this" the coming one (today included), "next" next week's, "last" the past one."""
    today = ctx.today
    if modifier == "next":
        return _week_start(today) + timedelta(days=7 + weekday)
    if modifier == "after_next":
        return _week_start(today) + timedelta(days=14 + weekday)
    if modifier == "this_week":
        return _week_start(today) + timedelta(days=weekday)
    if modifier == "last_week":
        return _week_start(today) - timedelta(days=7 - weekday)
    if modifier == "last":
        back = (today.weekday() - weekday) % 7 or 7
        return today - timedelta(days=back)
    if modifier == "in_eight":  # French "mardi en huit": the weekday a week after the coming one
        return today + timedelta(days=(weekday - today.weekday()) % 7 + 7)
    if modifier == "in_fifteen":
        return today + timedelta(days=(weekday - today.weekday()) % 7 + 14)
    return today + timedelta(days=(weekday - today.weekday()) % 7)


# --- the rules ---------------------------------------------------------------------------
# Each rule is (regex, handler, strong). A handler turns a match into a _Piece or None. A weak
# piece counts only next to a strong one or right after a preposition.

_RuleSpec = tuple[re.Pattern[str], object, bool]
# Numbers after these words are versions, chapters or pages, not dates ("Version 2.1", "v1.2.20").
_VERSION_BEFORE = re.compile(
    r"(?:\bversion|\bversión|\bv|\bver|\bkapitel|\bchapitre|\bcapítulo|\bchapter|\bseite|\bpage|\bpágina|\brelease"
    r"|\babschnitt|\bsection|\bnr|\bno|n°|\bios|\bandroid|\bpython)\.?\s*$",
    re.IGNORECASE,
)
# A piece starts a word, is no amount ("$12.30", "v2.0", "1/2") and no part of a hyphenated word ("après-midi").
_B = r"(?<![\w$€£¥.,/:'])(?<![^\W\d_]-)"
_E = r"(?![\w/]|[.,:]\d|-[^\W\d_])"  # and ends one ("Heute-Show" is a show)
_AMPM = r"(?P<ampm>a\.?\s?m\.?|p\.?\s?m\.?|am|pm|a|p)"
_ZONE = (
    r"(?:\s*(?P<zone>(?:utc|gmt)\s?[+-]\s?\d{1,2}(?::?\d{2})?|[+-]\d{2}:?\d{2}|z(?![\w])|"
    # zone names that are also words ("cet après-midi", "est", "ist") count only in capitals
    + "(?-i:" + _alt(z.upper() for z in vocab.ZONES if z in vocab.WORD_LIKE_ZONES) + ")|"
    + _alt(z for z in vocab.ZONES if z not in vocab.WORD_LIKE_ZONES)
    + r")(?![\w]))?"
)
_ORD = r"(?:st|nd|rd|th|er|e|eme|ème|te|ten|ter|º|°|\.)?"


def _before(text: str, start: int) -> str:
    """The few words before a position: what the "...$" checks look at (bounded, so a long line stays linear)."""
    return text[max(0, start - 40): start]


def _piece(match: re.Match[str], **values) -> _Piece:
    """A piece covering the whole match."""
    return _Piece(start=match.start(), end=match.end(), **values)


def _zone_of(text: str | None) -> tzinfo | None:
    """The tzinfo of a stated zone ("PST", "+01:00", "UTC+2", "Z")."""
    if not text:
        return None
    text = text.lower().replace(" ", "")
    offset = re.fullmatch(r"(?:utc|gmt)?([+-])(\d{1,2}):?(\d{2})?", text)
    if offset:
        minutes = int(offset.group(2)) * 60 + int(offset.group(3) or 0)
        return fixed_zone(timedelta(minutes=minutes if offset.group(1) == "+" else -minutes))
    if text == "z":
        return UTC
    name = vocab.ZONES.get(text)
    if name is None:
        return None
    if name.lstrip("-").isdigit():
        return fixed_zone(timedelta(minutes=int(name)))
    return ZoneInfo(name)


def _clock(match: re.Match[str], language: str, hour: int, minute: int = 0, *, literal: bool = False,
           strong: bool = True) -> _Piece | None:
    """A clock-time piece, checked, with am/pm and zone from the match when present."""
    groups = match.groupdict()
    ampm = (groups.get("ampm") or "").lower().replace(".", "").replace(" ", "")
    meridiem = {"a": "am", "am": "am", "p": "pm", "pm": "pm"}.get(ampm)
    if meridiem and not 1 <= hour <= 12 and not (meridiem == "pm" and 12 < hour < 24):
        return None
    if hour > 24 or minute > 59:
        return None
    return _piece(match, hour=hour % 24 if hour != 24 else 0, minute=minute, meridiem=meridiem,
                  literal_hour=literal or hour > 12 or hour == 0, zone=_zone_of(groups.get("zone")), strong=strong)


@lru_cache(maxsize=16)
def _rules(language: str) -> list[_RuleSpec]:
    """Every rule of one language, built once (compiled regexes with their handlers)."""
    months = vocab.MONTHS[language]
    weekdays = vocab.WEEKDAYS[language]
    units = vocab.UNITS[language]
    numbers = vocab.NUMBERS[language]
    month_re = rf"(?P<month>{_alt(months)})\.?"
    weekday_re = rf"(?P<weekday>{_alt(weekdays)})\.?"
    unit_re = rf"(?P<unit>{_alt(units)})"
    number_re = rf"(?P<n>\d+(?:[.,]5)?|{_alt(numbers)})"
    day_word = _alt(list(numbers) + list(vocab.ORDINAL_WORDS))
    day_re = rf"(?P<day>(?:3[01]|[12]\d|0?[1-9]){_ORD}|{day_word})"
    year_re = r"(?P<year>(?:19|20)\d\d|'\d\d)"
    rules: list[_RuleSpec] = []

    def rule(pattern: str, strong: bool = True):
        def register(handler):
            rules.append((re.compile(_B + "(?:" + pattern + ")" + _E, _FLAGS), handler, strong))
            return handler
        return register

    def month_of(match) -> int:
        return months[match.group("month").lower().rstrip(".")]

    def day_of(match) -> int | None:
        text = match.group("day").lower()
        digits = re.match(r"\d+", text)
        if digits:
            return int(digits.group())
        if text in vocab.ORDINAL_WORDS:
            return vocab.ORDINAL_WORDS[text]
        value = _number(text, language)
        return int(value) if value else None

    def dated(match, ctx, month, day, year_text=None) -> _Piece | None:
        if day is None:
            return None
        if year_text:
            found = _safe_date(_year(year_text), month, day)
            return _piece(match, day=found) if found else None
        found = _next_date(ctx, month, day)
        return _piece(match, day=found, month_and_day=(month, day)) if found else None

    # Numeric dates (every language; order from the locale).
    @rule(r"(?P<y>\d{4})[/.-](?P<a>\d{1,2})[/.-](?P<b>\d{1,2})")
    def _year_first(match, ctx):
        year, a, b = int(match["y"]), int(match["a"]), int(match["b"])
        found = _safe_date(year, a, b) or _safe_date(year, b, a)
        return _piece(match, day=found) if found else None

    @rule(r"(?P<a>\d{1,2})(?P<sep>[/.-])(?P<b>\d{1,2})(?P=sep)(?P<y>\d{4}|\d{2})")
    def _full_numeric(match, ctx):
        if _VERSION_BEFORE.search(_before(match.string, match.start())):
            return None
        a, b = int(match["a"]), int(match["b"])
        day, month = (a, b) if ctx.day_first or match["sep"] == "." else (b, a)
        found = _safe_date(_year(match["y"]), month, day) or _safe_date(_year(match["y"]), day, month)
        return _piece(match, day=found) if found else None

    @rule(r"(?P<a>\d{1,2})/(?P<y>\d{4})")
    def _month_year(match, ctx):
        found = _safe_date(int(match["y"]), int(match["a"]), 1)
        return _piece(match, day=found) if found else None

    @rule(r"(?:(?P<on>on|by|due|am|le|el|for)\s+)?(?P<a>\d{1,2})(?P<sep>/|-|\.(?=\d{1,2}\.))(?P<b>\d{1,2})(?P<dot>\.)?"
          r"(?!\s*(?:cups?|tasses?|tazas?|tbsp|tsp|teaspoons?|tablespoons?|inch|inches|in\b|cm|mm|kg|g\b|lbs?|oz|"
          r"miles?|km|h\b|hours?|stunden?|heures?|horas?|liters?|litres?|l\b|%|[-+]))")
    def _day_month(match, ctx):
        a, b = int(match["a"]), int(match["b"])
        if not match["on"] and b in (2, 3, 4, 8) and a < b:
            return None  # "1/2", "3/4": a fraction, not a date
        if (a, b) == (24, 7):
            return None
        day, month = (a, b) if ctx.day_first or match["sep"] == "." else (b, a)
        return dated(match, ctx, month, day)

    if language == "fr":
        # "le 17 02", "20 02 2014"; never inside a phone number ("06 12 34 56 78")
        @rule(r"(?<!\d\s)(?:le\s+)?(?P<a>3[01]|[12]\d|0?[1-9]) (?P<b>1[0-2]|0?[1-9])(?: (?P<y>\d{4}|\d{2}))?(?!\s\d)")
        def _spaced(match, ctx):
            if match["y"]:
                found = _safe_date(_year(match["y"]), int(match["b"]), int(match["a"]))
                return _piece(match, day=found) if found else None
            return dated(match, ctx, int(match["b"]), int(match["a"]))

    if language != "en":
        @rule(r"(?:(?:am|den|le|el)\s+)?(?P<a>\d{1,2})\.(?P<b>\d{1,2})\.?(?=\s|$|,)")
        def _dotted(match, ctx):
            if _VERSION_BEFORE.search(_before(match.string, match.start())):
                return None  # "Version 2.1"
            return dated(match, ctx, int(match["b"]), int(match["a"]))

    # ISO date-times, with a zone.
    @rule(r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})[t\s](?P<h>\d{1,2}):(?P<mi>\d{2})(?::\d{2}(?:\.\d+)?)?"
          r"(?P<zone>z|[+-]\d{2}:?\d{2})?")
    def _iso(match, ctx):
        found = _safe_date(int(match["y"]), int(match["m"]), int(match["d"]))
        if found is None or int(match["h"]) > 23 or int(match["mi"]) > 59:
            return None
        return _piece(match, day=found, hour=int(match["h"]), minute=int(match["mi"]), literal_hour=True,
                      zone=_zone_of(match["zone"]))

    # Clock times.
    clock_at = {"en": r"at|@", "de": r"um|gegen|bis", "fr": r"à|vers", "es": r"a\s+las|a\s+la"}[language]
    clock_suffix = {"en": r"h", "de": r"uhr|h", "fr": r"h", "es": r"h"}[language]

    @rule(rf"(?:(?P<at>{clock_at})\s+)?(?P<h>\d{{1,2}})(?P<sep>[:.])(?P<mi>\d{{2}})"
          rf"(?::(?P<s>\d{{2}}))?(?:\s*(?:{clock_suffix}))?\s*" + _AMPM + "?" + _ZONE)
    def _hh_mm(match, ctx):
        if match["sep"] == "." and not (match["at"] or match["ampm"] or re.search(r"uhr|h$", match.group(), _FLAGS)):
            return None  # "12.30" is a time only after at/um/à/a las or with am/pm
        hour = int(match["h"])
        literal = language != "en" or match["h"].startswith("0")
        return _clock(match, language, hour, int(match["mi"]), literal=literal)

    @rule(r"(?P<h>\d{1,2})(?:ish)?\s*(?:o'?\s?clock\s*)?" + _AMPM.replace("|a|p)", ")") + _ZONE
          + r"(?:\s+(?:approximately|approx\.?|or\s+so))?")
    def _h_ampm(match, ctx):
        return _clock(match, language, int(match["h"]))

    @rule(r"(?P<h>\d{1,2})(?P<mi>\d{2})\s*" + _AMPM.replace("|a|p)", ")"))
    def _hmm_ampm(match, ctx):
        return _clock(match, language, int(match["h"]), int(match["mi"]))

    @rule(r"(?P<h>\d{1,2}):(?P<mi>\d{2})\s*(?P<ampm>a|p)")
    def _hmm_ap(match, ctx):
        return _clock(match, language, int(match["h"]), int(match["mi"]))

    if language == "de":
        @rule(r"(?P<h>[01]?\d|2[0-3])(?P<mi>[0-5]\d)\s*uhr")
        def _hhmm_uhr(match, ctx):
            return _clock(match, language, int(match["h"]), int(match["mi"]), literal=True)

    @rule(rf"(?P<h>\d{{1,2}})\s*(?:{clock_suffix})(?P<mi>\d{{2}})?" + _ZONE)
    def _h_uhr(match, ctx):
        hour, minute = int(match["h"]), int(match["mi"] or 0)
        literal = language in ("fr", "de") or hour > 12 or match["mi"] is not None
        return _clock(match, language, hour, minute, literal=literal)

    bare_hour_word = _alt([w for w, v in {**vocab.NUMBERS["en"], **numbers}.items() if isinstance(v, int)
                           and 1 <= v <= 12 and " " not in w and w not in ("a", "an", "few")])
    at_word = {"en": r"at|@|around|about|by|before|not\s+after",
               "fr": r"à|vers|avant|aux\s+alentours\s+de|autour\s+de|à\s+environ|plutôt\s+vers",
               "de": r"um|gegen|ca\.?|zirka|bis|vor|bis\s+spätestens|spätestens\s+bis|spätestens",
               "es": r"a\s+las|a\s+la|las|antes\s+de\s+las"}
    @rule(rf"(?:(?:{at_word[language]})\s+(?:about\s+|around\s+|ungefähr\s+|environ\s+)?)(?P<h>\d{{1,2}}|{bare_hour_word})"
          rf"(?:[\s:](?P<mi>[0-5]\d|{_alt(['fifteen', 'twenty', 'thirty', 'forty', 'forty five'])}))?"
          r"(?P<suffix>\s*(?:o'?clock|uhr|heures?|horas?|h))?"
          # (German "am" is "on the": "um 8 am 5. August")
          + (r"(?:\s*(?P<ampm>pm|a\.m\.|p\.m\.))?" if language == "de" else r"(?:\s*(?P<ampm>am|pm|a\.m\.|p\.m\.))?")
          + _ZONE)
    def _at_hour(match, ctx):
        hour = _number(match["h"], language)
        minute = _number(match["mi"], language) if match["mi"] else 0
        if hour is None or minute is None:
            return None
        literal = language in ("fr", "de") and bool(match["suffix"])  # "à 5h", "um 5 Uhr" is 05:00
        return _clock(match, language, int(hour), int(minute), literal=literal)

    # Noon, midnight, parts of the day, EOD.
    noon = {"en": "noon|midday", "de": "mittag", "fr": "midi", "es": "mediodía|mediodia"}[language]
    midnight = {"en": "midnight", "de": "mitternacht", "fr": "minuit", "es": "medianoche"}[language]

    @rule(rf"(?:(?:at|by|um|à|a)\s+)?(?:{noon})")
    def _noon(match, ctx):
        return _piece(match, hour=12, literal_hour=True)

    @rule(rf"(?:(?P<at>at|by|um|à|a)\s+)?(?:{midnight})")
    def _midnight(match, ctx):
        # "midnight snack" is a snack: a word right after makes a bare "midnight" weak
        followed = re.match(r"\s+[^\W\d]", match.string[match.end():])
        strong = bool(match["at"]) or not followed
        return _piece(match, hour=0, literal_hour=True, midnight=True, strong=strong)

    pods = vocab.PARTS_OF_DAY[language]
    pod_prefix = {"en": r"(?:in\s+the\s+|this\s+|at\s+|during\s+the\s+)?", "de": r"(?:am\s+|heute\s+)?",
                  "fr": r"(?:le\s+|ce\s+|cet\s+|dans\s+l'|l')?", "es": r"(?:esta\s+|en\s+la\s+)?"}[language]

    this_pods = {"en": {"tonight": 20, "this evening": 19, "this morning": 9, "this afternoon": 15},
                 "de": {"heute abend": 19, "heute morgen": 9, "heute früh": 9, "heute nachmittag": 15, "heute nacht": 20,
                        "heute vormittag": 10, "heute mittag": 12},
                 "fr": {"ce soir": 20, "ce matin": 9, "cet après-midi": 15, "cet apres-midi": 15, "cette nuit": 20},
                 "es": {"esta noche": 20, "esta tarde": 15, "esta mañana": 9, "esta manana": 9}}[language]

    @rule(rf"(?P<pod>{_alt(this_pods)})")
    def _this_part_of_day(match, ctx):
        return _piece(match, part_of_day=this_pods[match["pod"].lower()], day=ctx.today)

    @rule(pod_prefix + rf"(?P<pod>{_alt(pods)})")
    def _part_of_day(match, ctx):
        word = match["pod"].lower()
        # a bare "morning" or "Nacht" is a word too ("Gute Nacht"): alone it needs a preposition
        strong = match.group().lower() != word or word in vocab.ADVERB_PARTS_OF_DAY
        return _piece(match, part_of_day=pods[word], strong=strong)

    if language == "en":
        @rule(r"(?:at|by|before)\s+lunch")
        def _at_lunch(match, ctx):
            return _piece(match, part_of_day=12)

        @rule(rf"(?P<d>today|tomorrow|tmrw|{_alt(weekdays)})\s+(?:at\s+)?lunch(?:time)?")
        def _day_lunch(match, ctx):
            word = match["d"].lower()
            day = {"today": ctx.today, "tomorrow": ctx.today + timedelta(days=1), "tmrw": ctx.today + timedelta(days=1)}.get(
                word) or _weekday_date(ctx, weekdays[word], "")
            return _piece(match, day=day, part_of_day=12)

        @rule(r"(?:by\s+)?(?:eod|cob|end\s+of\s+(?:the\s+)?(?:business\s+)?day)")
        def _eod(match, ctx):
            return _piece(match, hour=17, literal_hour=True)

    # Relative days.
    days_words = {
        "en": {"today": 0, "tod": 0, "tomorrow": 1, "tomorrows": 1, "tmrw": 1, "tmr": 1, "yesterday": -1,
               "the day after tomorrow": 2, "day after tomorrow": 2, "the day before yesterday": -2,
               "day before yesterday": -2, "at this time": 0},
        "de": {"heute": 0, "morgen": 1, "übermorgen": 2, "gestern": -1, "vorgestern": -2, "zu dieser zeit": 0},
        "fr": {"aujourd'hui": 0, "ce jour": 0, "dans la journée": 0, "en ce moment": 0, "demain": 1,
               "après-demain": 2, "apres-demain": 2, "hier": -1, "avant-hier": -2, "le lendemain": 1,
               "le jour d'après": 1, "jour suivant": 1, "un jour après": 1, "le jour d'avant": -1,
               "le jour précédent": -1, "la veille": -1},
        "es": {"hoy": 0, "en este momento": 0, "mañana": 1, "manana": 1, "pasado mañana": 2, "pasado manana": 2,
               "ayer": -1, "anteayer": -2, "antier": -2},
    }[language]

    @rule(rf"(?P<w>{_alt(days_words)})")
    def _relative_day(match, ctx):
        return _piece(match, day=ctx.today + timedelta(days=days_words[match["w"].lower()]))

    now_words = {"en": r"now|right\s*now|just\s+now|asap", "de": r"jetzt|genau\s+jetzt|gerade\s+eben|sofort",
                 "fr": r"maintenant|tout\s+de\s+suite", "es": r"ahora(?:\s+mismo)?|ahorita|cuanto\s+antes"}[language]

    @rule(rf"(?:{now_words})(?!!)")
    def _now(match, ctx):
        return _piece(match, instant=ctx.now)

    # Weekdays with their modifiers.
    before = {
        "en": {"this": "", "coming": "", "on": "", "next": "next", "last": "last", "past": "last", "this past": "last",
               "around next": "next", "on the following": "next", "the following": "next"},
        "de": {"am": "", "diesen": "", "kommenden": "", "nächsten": "next", "naechsten": "next", "nächste woche": "next",
               "übernächsten": "after_next", "letzten": "last", "vergangenen": "last"},
        "fr": {"ce": "", "le": ""},
        "es": {"el": "", "este": "", "el próximo": "next", "el proximo": "next", "próximo": "next", "proximo": "next"},
    }[language]
    after = {
        "en": {"next week": "next", "of next week": "next", "after next": "after_next_en", "this week": "this_week",
               "of this week": "this_week", "from last week": "last_week", "last week": "last_week"},
        "de": {"nächste woche": "next", "der nächsten woche": "next", "nach dem nächsten": "after_next_en",
               "dieser woche": "this_week", "letzte woche": "last_week", "der letzten woche": "last_week"},
        "fr": {"prochain": "next_fr", "suivant": "next", "d'après": "next", "la semaine prochaine": "next",
               "de la semaine prochaine": "next", "la semaine suivante": "next", "de la semaine suivante": "next",
               "la semaine d'après": "next", "de la semaine d'après": "next", "dernier": "last",
               "de la semaine dernière": "last_week", "cette semaine": "this_week", "en huit": "in_eight",
               "en 8": "in_eight", "en quinze": "in_fifteen", "en 15": "in_fifteen"},
        "es": {"que viene": "next", "de la semana que viene": "next", "de la próxima semana": "next",
               "de la proxima semana": "next", "pasado": "last", "de la semana pasada": "last_week",
               "de esta semana": "this_week"},
    }[language]

    @rule(rf"(?:(?P<before>{_alt(before)})\s+)?{weekday_re}(?:,?\s+(?P<after>{_alt(after)}))?")
    def _weekday(match, ctx):
        name = match["weekday"].lower().rstrip(".")
        weekday = weekdays[name]
        modifier = before.get((match["before"] or "").lower(), "")
        after_word = (match["after"] or "").lower()
        if after_word:
            modifier = after[after_word]
        if modifier == "after_next_en":
            modifier = "next"  # "friday after next": the Friday of next week
        if modifier == "next_fr":
            # "lundi prochain": the coming Monday when it is in next week, else next week's
            modifier = "next"
        strong = name not in vocab.WEAK_WEEKDAYS or bool(match["before"] or match["after"]) or match.group().endswith(".")
        if language in ("fr", "es") and match["weekday"][0].isupper() and not re.search(
                r"(?:^|[.!?:;,(])\s*$", _before(match.string, match.start())):
            strong = False  # French and Spanish write weekdays in lower case: "llamar a Domingo" is a name
        piece = _piece(match, day=_weekday_date(ctx, weekday, modifier), strong=strong)
        piece.weekday = weekday
        return piece

    if language == "de":
        @rule(rf"(?P<weekday>{_alt(weekdays)})(?P<pod>morgen|vormittag|mittag|nachmittag|abend|nacht|früh)")
        def _weekday_compound(match, ctx):
            pod = {"morgen": 9, "vormittag": 10, "mittag": 12, "nachmittag": 15, "abend": 19, "nacht": 20, "früh": 9}
            piece = _piece(match, day=_weekday_date(ctx, weekdays[match["weekday"].lower()], ""),
                           part_of_day=pod[match["pod"].lower()])
            piece.weekday = weekdays[match["weekday"].lower()]
            return piece

    # A weekday with a day number: "Thu 15th", "samedi 16", "vendredi quinze", "jue 15".
    day_number_words = _alt(w for w, v in numbers.items() if isinstance(v, int) and v <= 31 and " " not in w and len(w) > 2)

    @rule(rf"{weekday_re},?\s+(?:the\s+|le\s+|el\s+|der\s+|den\s+|dem\s+)?"
          rf"(?P<d>3[01]|[12]\d|0?[1-9]|{day_number_words})"
          rf"(?:st|nd|rd|th|ten|ter|te|er|\.)?(?![.\d]|\s*(?:[:h]\d|uhr|am|pm|o'?clock|heures?|horas?|de\s|\.?\s*(?:{_alt(months)})))")
    def _weekday_number(match, ctx):
        value = _number(re.sub(r"\D+$", "", match["d"]) or match["d"], language)
        if value is None or not 1 <= value <= 31:
            return None
        strong = not (language in ("fr", "es") and match["weekday"][0].isupper() and not re.search(
            r"(?:^|[.!?:;,(])\s*$", _before(match.string, match.start())))  # "la serie Viernes 13"
        return _piece(match, month_day=int(value), weekday=weekdays[match["weekday"].lower().rstrip(".")],
                      strong=strong)

    # Day of month alone: "the 15th", "on the 15th", "le 16", "el 17", "am 15ten".
    if language == "en":
        ordinals = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
                    "eighth": 8, "ninth": 9, "tenth": 10, "fifteenth": 15, "twentieth": 20}

        @rule(rf"(?:on\s+)?the\s+(?P<w>{_alt(ordinals)})(?!\s+(?:of\s+)?(?:{_alt(months)}|day|week|quarter|qtr|time|draft|\w+day))")
        def _ordinal_day(match, ctx):
            # "on the first" is a date; "the first draft" is not (a word after it makes it weak)
            strong = match.group().lower().startswith("on") or not re.match(r"\s+[^\W\d]", match.string[match.end():])
            return _piece(match, month_day=ordinals[match["w"].lower()], strong=strong)

        # "at 1030", "at 730 in the evening", "ten thirty am", "seven thirty p.m."
        @rule(r"(?:at|around|approximately|about)\s+(?P<h>[01]?\d|2[0-3])(?P<mi>[0-5]\d)(?:\s*" + _AMPM.replace("|a|p)", ")") + ")?")
        def _at_hhmm(match, ctx):
            follows = match.string[match.end():]
            if len(match["h"] + match["mi"]) == 3 and not match["ampm"] and not re.match(r"\s+(?:in\s+the|tonight|this)\b", follows):
                return None  # "bake at 350": degrees; "at 730" needs am/pm or a part of the day
            return _clock(match, language, int(match["h"]), int(match["mi"]), literal=match["h"].startswith("0"))

        minute_words = _alt(["oh five", "five", "ten", "fifteen", "twenty", "twenty five", "thirty", "thirty five",
                             "forty", "forty five", "fifty", "fifty five", "fifty nine"])

        @rule(rf"(?P<h>{bare_hour_word})\s+(?P<mi>{minute_words})\s*" + _AMPM.replace("|a|p)", r"|a\s+m|p\s+m)"))
        def _word_time(match, ctx):
            hour = _number(match["h"], language)
            minute = _number(match["mi"].lower().replace("oh ", ""), language)
            return _clock(match, language, int(hour), int(minute)) if hour and minute is not None else None

    @rule(r"(?:(?P<on>on\s+the|the|on|am|le|el|den|dem|der)\s+)?(?P<d>3[01]|[12]\d|0?[1-9])(?P<ord>st|nd|rd|th|ten|ter|te|er|\.)?")
    def _month_day(match, ctx):
        if not (match["on"] or match["ord"]) or re.match(r"\s?\d", match.string[match.end():]):
            return None  # (a number right after: a phone number, "le 06 12 34 56 78")
        strong = bool(match["on"]) and (match["on"].lower() not in ("the", "der", "dem", "den")) and (
            match["ord"] is not None or match["on"].lower() in ("le", "el"))
        if match["on"] and match["on"].lower() == "the" and match["ord"] and match["ord"] != ".":
            # "pay rent the 1st" is a date; "the 25th anniversary" is not
            strong = not re.match(r"\s+[^\W\d]", match.string[match.end():])
        return _piece(match, month_day=int(match["d"]), strong=strong)

    # Month and day.
    if language == "en":
        date_patterns = [
            rf"(?:the\s+)?{day_re}\s*(?:of\s+|-)?{month_re}(?:,?\s*{year_re}|\s+(?P<y2>\d\d)(?!:))?",
            rf"(?:this\s+)?{month_re}\s*(?:the\s+)?{day_re}(?:,?\s*{year_re})?",
            rf"{month_re}/(?P<day>\d{{1,2}})",
            rf"(?P<day>\d{{1,2}})/{month_re}(?:/{year_re})?",
        ]
    elif language == "de":
        date_patterns = [
            rf"(?:(?:am|den|der|dem|diesen)\s+)?{day_re}\s*{month_re}(?:\s+{year_re}|\s+(?P<y2>\d\d)(?!:))?",
            rf"{month_re}\s+{day_re}(?:\.)?(?:,?\s*{year_re})?",
        ]
    elif language == "fr":
        date_patterns = [
            rf"(?:le\s+)?{day_re}\s+{month_re}(?:\s+{year_re}|\s+(?P<y2>\d\d)(?!:))?",
            rf"{month_re}\s+{day_re}(?:,?\s*{year_re})?",
            rf"(?:le\s+)?{day_re}\s+jour\s+d(?:e\s+|')(?P<month>{_alt(months)})",
        ]
    else:
        date_patterns = [
            rf"(?:el\s+)?{day_re}\s+de\s+{month_re}(?:\s+(?:de|del)\s+{year_re})?",
            rf"{month_re}\s+{day_re}(?:,?\s+(?:(?:de|del)\s+)?{year_re})?",
            rf"{day_re}\s+{month_re}(?:,?\s+{year_re})?",
        ]
    for pattern in date_patterns:
        @rule(pattern)
        def _month_and_day(match, ctx):
            groups = match.groupdict()
            return dated(match, ctx, month_of(match), day_of(match), groups.get("year") or groups.get("y2"))

    # A month alone: only with a preposition or a year ("in May", "May 2027", "im Mai").
    month_before = {"en": r"in|during|by|until|before|for|early|late|mid|next|this|coming|in\s+early|in\s+late",
                    "de": r"im|ab|bis|nächsten|übernächsten|diesen", "fr": r"en|début|fin|courant|d'ici",
                    "es": r"en|para|el\s+próximo|hasta"}[language]
    month_after = {"en": r"after\s+next", "de": r"nach\s+dem\s+nächsten", "fr": r"prochain", "es": r"que\s+viene"}[language]

    @rule(rf"(?:(?P<prep>{month_before})\s+)?{month_re}(?:(?:\s+(?:of|de|del))?,?\s+{year_re}|\s+(?P<after>{month_after}))?")
    def _month_alone(match, ctx):
        if not (match["prep"] or match["year"] or match["after"]):
            return None
        if not match["year"] and re.match(r"\s*(?:the\s+)?\d{1,2}(?!\d)", match.string[match.end():]):
            return None  # "this May 8th": the day belongs to the date
        month = month_of(match)
        if match["year"]:
            found = _safe_date(_year(match["year"]), month, 1)
        else:
            year = ctx.today.year if month >= ctx.today.month else ctx.today.year + 1
            prep = (match["prep"] or "").lower()
            if prep in ("next", "nächsten") and month <= ctx.today.month:
                year = ctx.today.year + 1
            if prep == "übernächsten" or match["after"]:
                year += 1
            found = date(year, month, 1)
        return _piece(match, day=found)

    # Weeks, months, years, weekends, ends of periods.
    period_words = {
        "en": {"week": "week", "wk": "week", "month": "month", "year": "year", "yr": "year", "quarter": "quarter",
               "qtr": "quarter", "weekend": "weekend", "week-end": "weekend"},
        "de": {"woche": "week", "monat": "month", "jahr": "year", "quartal": "quarter", "wochenende": "weekend"},
        "fr": {"semaine": "week", "mois": "month", "année": "year", "an": "year", "week-end": "weekend",
               "weekend": "weekend", "trimestre": "quarter"},
        "es": {"semana": "week", "mes": "month", "año": "year", "ano": "year", "fin de semana": "weekend",
               "weekend": "weekend", "trimestre": "quarter"},
    }[language]
    shifts = {
        "en": {"this": 0, "current": 0, "coming": 0, "next": 1, "the following": 1, "around next": 1, "last": -1,
               "past": -1, "previous": -1},
        "de": {"am": 0, "übers": 0, "diese": 0, "dieses": 0, "diesen": 0, "dieser": 0, "kommende": 0, "nächste": 1, "nächsten": 1,
               "nächstes": 1, "letzte": -1, "letzten": -1, "letztes": -1},
        "fr": {"cette": 0, "ce": 0, "cet": 0, "la": 0, "le": 0, "l'": 0},
        "es": {"esta": 0, "este": 0, "la": 0, "el": 0, "la próxima": 1, "la proxima": 1, "el próximo": 1,
               "el proximo": 1, "el pasado": -1},
    }[language]
    shifts_after = {"en": {}, "de": {},
                    "fr": {"prochain": 1, "prochaine": 1, "suivant": 1, "suivante": 1, "qui suit": 1, "dernier": -1,
                           "dernière": -1, "derniere": -1},
                    "es": {"que viene": 1, "pasado": -1, "pasada": -1, "próximo": 1}}[language]
    after_re = rf"(?:\s+(?P<after>{_alt(shifts_after)}))?" if shifts_after else ""

    @rule(rf"(?P<shift>{_alt(shifts)})\s*(?P<period>{_alt(period_words)}){after_re}")
    def _period(match, ctx):
        period = period_words[match["period"].lower()]
        shift = shifts[match["shift"].lower()]
        groups = match.groupdict()
        if groups.get("after"):
            shift = shifts_after[groups["after"].lower()]
        elif match["shift"].lower() in ("la", "le", "l'", "el", "am", "übers") and period != "weekend":
            return None  # "la semaine" alone is no date
        today = ctx.today
        if period == "week":
            found = _week_start(today) + timedelta(weeks=shift)
        elif period == "month":
            found = (today.replace(day=1) + relativedelta(months=shift))
        elif period == "year":
            found = date(today.year + shift, 1, 1)
        elif period == "quarter":
            first = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
            found = first + relativedelta(months=3 * shift)
        else:
            found = _week_start(today) + timedelta(days=5 + 7 * shift)
            if shift == 0 and today.weekday() == 6:
                found = today
        return _piece(match, day=found)

    ends = {
        "en": r"(?:by\s+)?(?:(?:the\s+)?end\s+of\s+(?:the\s+|this\s+|(?P<next>next)\s+)?(?P<p>week|month|year)|(?P<abbr>eow|eom|eoy))",
        "de": r"(?:bis\s+)?(?:ende\s+(?:des|der|dieses|diesen)?\s*(?P<p>woche|monats?|jahres|jahr))",
        "fr": r"(?:(?:à\s+la\s+|d'ici\s+la\s+)?fin\s+(?:de\s+la\s+|du\s+|de\s+l')(?P<p>semaine|mois|année))",
        "es": r"(?:(?:a\s+)?finales?\s+de(?:l)?\s+(?:la\s+)?|fin\s+de(?:l)?\s+(?:la\s+)?)(?P<p>semana|mes|año)",
    }[language]
    end_kind = {"week": "week", "woche": "week", "semaine": "week", "semana": "week", "month": "month", "monat": "month",
                "monats": "month", "mois": "month", "mes": "month", "year": "year", "jahres": "year", "jahr": "year",
                "année": "year", "año": "year", "eow": "week", "eom": "month", "eoy": "year"}

    @rule(ends)
    def _end_of(match, ctx):
        kind = end_kind[(match["p"] or match.groupdict().get("abbr") or "").lower()]
        today = ctx.today
        if match.groupdict().get("next"):
            today = today + (timedelta(weeks=1) if kind == "week" else relativedelta(months=1) if kind == "month"
                             else relativedelta(years=1))
        if kind == "week":
            found = _week_start(today) + timedelta(days=4)
        elif kind == "month":
            found = today.replace(day=1) + relativedelta(months=1, days=-1)
        else:
            found = date(today.year, 12, 31)
        return _piece(match, day=found)

    # Durations: "in 2 hours", "+15 minutes", "2 hours later", "within 3 days", "3 days ago".
    fractions = (r"(?P<frac>1/4|1/2|3/4|half\s+an|a\s+half|half|a\s+quarter\s+of\s+an|quarter\s+of\s+an"
                 r"|three-quarters\s+of\s+an|halben|einer\s+halben|une\s+demi-?|demi-?|una\s+media|media)")
    in_word = {"en": r"in(?:\s+about)?|within|\+", "de": r"in(?:\s+zirka|\s+ca\.?)?|innerhalb(?:\s+von)?",
               "fr": r"dans|d'ici", "es": r"en|dentro\s+de"}[language]
    ago_word = {"en": r"ago|before|earlier", "de": "", "fr": "", "es": ""}[language]
    ago_before = {"en": "", "de": r"vor", "fr": r"il\s+y\s+a", "es": r"hace"}[language]
    later_word = {"en": r"from\s+now|from\s+right\s+now|from\s+today|later|hence", "de": r"später",
                  "fr": r"plus\s+tard|après", "es": r"después|despues|más\s+tarde"}[language]

    def duration(match, ctx, sign: int) -> _Piece | None:
        unit = units.get(match["unit"].lower()) if match["unit"] else "hours"
        groups = match.groupdict()
        amount = None
        if groups.get("n"):
            amount = _number(groups["n"], language)
            if groups.get("and_half"):
                amount = (amount or 0) + 0.5
        if groups.get("frac"):
            frac = groups["frac"].lower()
            amount = 0.25 if "1/4" in frac or frac.startswith(("a quarter", "quarter")) else 0.75 if (
                "3/4" in frac or "three" in frac) else 0.5
        if amount is None or unit is None or amount > 10000:
            return None
        if unit in ("seconds", "minutes", "hours"):
            delta = timedelta(**{unit: amount * sign})
            return _piece(match, instant=(ctx.now.astimezone(UTC) + delta).astimezone(ctx.zone))
        if unit == "fortnights":
            unit, amount = "weeks", amount * 2
        if amount != int(amount):
            return None
        found = ctx.today + relativedelta(**{unit: int(amount) * sign})
        return _piece(match, day=found)

    amount_re = rf"(?:{number_re}(?P<and_half>\s+and\s+an?\s+half)?|{fractions})"
    unit_tail = rf"\s*(?:more\s+)?{unit_re}"

    @rule(rf"(?:{in_word})\s*{amount_re}{unit_tail}")
    def _in_duration(match, ctx):
        return duration(match, ctx, 1)

    @rule(rf"{amount_re}{unit_tail}\s+(?:{later_word})")
    def _later(match, ctx):
        return duration(match, ctx, 1)

    if ago_word:
        @rule(rf"{amount_re}{unit_tail}\s+(?:{ago_word})")
        def _ago(match, ctx):
            return duration(match, ctx, -1)
    if ago_before:
        @rule(rf"(?:{ago_before})\s+{amount_re}{unit_tail}")
        def _ago_before(match, ctx):
            return duration(match, ctx, -1)

    if language == "en":
        @rule(rf"(?:in|within)\s+(?:the\s+)?next\s+{amount_re}{unit_tail}|next\s+(?P<n2>\d+|two|three|four|few)\s+(?P<unit2>days|weeks|months)")
        def _next_n(match, ctx):
            groups = match.groupdict()
            if groups.get("n2"):
                amount = _number(groups["n2"], language)
                unit = units[groups["unit2"].lower()]
                return _piece(match, day=ctx.today + relativedelta(**{unit: int(amount)}))
            return duration(match, ctx, 1)

        @rule(r"(?P<n>\d+|one|two|three|four|five)\s+(?P<unit>days|weeks|months|years)\s+from\s+(?:today|now|tomorrow)")
        def _from_today(match, ctx):
            return duration(match, ctx, 1)

    # "first tuesday of october", "last day of october 2015", "erster Dienstag im Oktober",
    # "premier lundi de mars", "el último viernes de marzo".
    nth_words = {
        "en": {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4, "fifth": 5,
               "5th": 5, "last": -1},
        "de": {"erster": 1, "erste": 1, "ersten": 1, "1.": 1, "zweiter": 2, "zweite": 2, "zweiten": 2, "2.": 2,
               "dritter": 3, "dritte": 3, "dritten": 3, "3.": 3, "vierter": 4, "vierte": 4, "vierten": 4, "4.": 4,
               "letzter": -1, "letzte": -1, "letzten": -1},
        "fr": {"premier": 1, "première": 1, "premiere": 1, "1er": 1, "deuxième": 2, "deuxieme": 2, "second": 2,
               "seconde": 2, "troisième": 3, "troisieme": 3, "3eme": 3, "3ème": 3, "quatrième": 4, "dernier": -1,
               "dernière": -1, "derniere": -1},
        "es": {"primer": 1, "primera": 1, "segundo": 2, "segunda": 2, "tercer": 3, "tercera": 3, "cuarto": 4,
               "cuarta": 4, "último": -1, "última": -1, "ultimo": -1, "ultima": -1},
    }[language]
    nth_units = {"en": {"day": "day", "week": "week"}, "de": {"tag": "day", "woche": "week"},
                 "fr": {"jour": "day", "semaine": "week"}, "es": {"día": "day", "dia": "day", "semana": "week"}}[language]
    nth_of = {"en": r"of|in", "de": r"im|des|vom", "fr": r"de|d'|du\s+mois\s+d'|du\s+mois\s+de",
              "es": r"de|del\s+mes\s+de"}[language]

    @rule(rf"(?:the\s+|la\s+|le\s+|el\s+|la\s+|der\s+|am\s+)?(?P<ord>{_alt(nth_words)})\s+"
          rf"(?P<what>{_alt(list(nth_units) + list(weekdays))})\s*(?:{nth_of})\s*{month_re}(?:,?\s+{year_re})?")
    def _nth_of_month(match, ctx):
        order = nth_words[match["ord"].lower()]
        month = month_of(match)
        year = _year(match["year"]) if match["year"] else (
            ctx.today.year if month >= ctx.today.month else ctx.today.year + 1)
        first = date(year, month, 1)
        last = first + relativedelta(months=1, days=-1)
        what = nth_units.get(match["what"].lower()) or match["what"].lower()
        if what == "day":
            found = last if order == -1 else _safe_date(year, month, order)
        elif what == "week":
            monday = first + timedelta(days=(7 - first.weekday()) % 7)
            if order == -1:  # the last week that lies wholly in the month
                found = _week_start(last) if last.weekday() == 6 else _week_start(last) - timedelta(weeks=1)
            else:
                found = monday + timedelta(weeks=order - 1)
        else:
            weekday = weekdays[what.rstrip(".")]
            if order == -1:
                found = last - timedelta(days=(last.weekday() - weekday) % 7)
            else:
                found = first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (order - 1))
        if found is not None and found.month != month:
            return None
        return _piece(match, day=found) if found else None

    # Holidays everyone writes.
    holidays = {
        "en": {"christmas": (12, 25), "christmas day": (12, 25), "xmas": (12, 25), "christmas eve": (12, 24),
               "new year's eve": (12, 31), "new years eve": (12, 31), "new year's day": (1, 1), "new year's": (1, 1),
               "new years day": (1, 1), "halloween": (10, 31), "valentine's day": (2, 14), "valentines day": (2, 14)},
        "de": {"weihnachten": (12, 25), "weihnachtstag": (12, 25), "heiligabend": (12, 24), "silvester": (12, 31),
               "neujahr": (1, 1), "neujahrstag": (1, 1), "halloween": (10, 31), "valentinstag": (2, 14),
               "nikolaus": (12, 6), "nikolaustag": (12, 6), "allerheiligen": (11, 1),
               "tag der deutschen einheit": (10, 3)},
        "fr": {"noël": (12, 25), "noel": (12, 25), "jour de noel": (12, 25), "jour de noël": (12, 25),
               "jour de l'an": (1, 1), "nouvel an": (1, 1), "la toussaint": (11, 1), "la saint-sylvestre": (12, 31)},
        "es": {"navidad": (12, 25), "la navidad": (12, 25), "nochebuena": (12, 24), "nochevieja": (12, 31),
               "año nuevo": (1, 1), "ano nuevo": (1, 1)},
    }[language]

    @rule(rf"(?P<h>{_alt(holidays)})")
    def _holiday(match, ctx):
        month, day = holidays[match["h"].lower()]
        return _piece(match, day=_next_date(ctx, month, day))

    if language == "en":
        def nth_weekday(year: int, month: int, weekday: int, order: int) -> date:
            first = date(year, month, 1)
            if order < 0:
                last = first + relativedelta(months=1, days=-1)
                return last - timedelta(days=(last.weekday() - weekday) % 7)
            return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (order - 1))

        # US holidays that move (a year after the name, or this/next/last before it).
        floating = {
            "thanksgiving": lambda y: nth_weekday(y, 11, 3, 4),
            "black friday": lambda y: nth_weekday(y, 11, 3, 4) + timedelta(days=1),
            "mother's day": lambda y: nth_weekday(y, 5, 6, 2), "mothers day": lambda y: nth_weekday(y, 5, 6, 2),
            "father's day": lambda y: nth_weekday(y, 6, 6, 3), "fathers day": lambda y: nth_weekday(y, 6, 6, 3),
            "memorial day": lambda y: nth_weekday(y, 5, 0, -1), "labor day": lambda y: nth_weekday(y, 9, 0, 1),
            "mlk day": lambda y: nth_weekday(y, 1, 0, 3), "martin luther king day": lambda y: nth_weekday(y, 1, 0, 3),
            "independence day": lambda y: date(y, 7, 4), "valentine day": lambda y: date(y, 2, 14),
        }

        @rule(rf"(?:(?P<which>this|next|last)\s+)?(?P<name>{_alt(floating)})(?:\s+day)?"
              r"(?:\s+(?P<year>\d{4})|\s+of\s+(?P<rel>next|last|this)\s+year)?")
        def _floating_holiday(match, ctx):
            of = floating[match["name"].lower()]
            if match["year"]:
                return _piece(match, day=of(int(match["year"])))
            year = ctx.today.year + {"next": 1, "last": -1, "this": 0, None: 0}[(match["rel"] or "").lower() or None]
            found = of(year)
            which = (match["which"] or "").lower()
            if not match["rel"] and which == "last":
                found = of(year - 1) if found >= ctx.today else found
            elif not match["rel"] and found < ctx.today:
                found = of(year + 1)
            return _piece(match, day=found)

        @rule(r"(?:the\s+)?(?P<ord>first|1st|second|2nd|third|3rd|fourth|4th)\s+(?:quarter|qtr)(?:\s+(?:of\s+)?(?P<year>\d{4}))?")
        def _nth_quarter(match, ctx):
            order = int(re.match(r"\d", match["ord"]).group()) if match["ord"][0].isdigit() else {
                "first": 1, "second": 2, "third": 3, "fourth": 4}[match["ord"].lower()]
            year = int(match["year"]) if match["year"] else ctx.today.year
            return _piece(match, day=date(year, 3 * order - 2, 1))

        # Quarter past / half past / quarter to, "twenty after 3pm", "15 to noon".
        @rule(r"(?:at\s+)?(?:(?P<q>a\s+quarter|quarter|half|(?P<mi>five|ten|fifteen|twenty|twenty\s+five))\s+"
              r"(?P<rel>past|after|to|till|before)\s+(?P<h>\d{1,2}|" + bare_hour_word + r"|noon|midnight)"
              r"(?:\s*(?:o'?clock))?\s*" + _AMPM.replace("|a|p)", ")") + "?"
              r"|(?P<mi2>\d{1,2})\s+(?P<rel2>past|after|to|till|before)\s+(?P<h2>\d{1,2}\s*(?:am|pm)|noon|midnight))")
        def _quarter(match, ctx):
            target = (match["h"] or match["h2"]).lower()
            meridiem = re.search(r"am|pm", target)
            target = re.sub(r"\s*(?:am|pm)", "", target)
            hour = 12 if target == "noon" else 0 if target == "midnight" else _number(target, language)
            if hour is None:
                return None
            if meridiem and meridiem.group() == "pm" and hour < 12:
                hour += 12
            q = (match["q"] or "").lower()
            minutes = 15 if "quarter" in q else 30 if q == "half" else int(_number(match["mi"] or match["mi2"], language) or 0)
            if (match["rel"] or match["rel2"]).lower() in ("to", "till", "before"):
                total = int(hour) * 60 - minutes
            else:
                total = int(hour) * 60 + minutes
            literal = target in ("noon", "midnight") or bool(meridiem) or not 1 <= hour <= 7
            return _clock(match, language, (total // 60) % 24, total % 60, literal=literal)

        @rule(r"half\s+(?P<h>\d{1,2}|" + bare_hour_word + r")")
        def _half_british(match, ctx):
            hour = _number(match["h"], language)
            return _clock(match, language, int(hour), 30) if hour else None

    if language == "de":
        @rule(r"(?:um\s+)?(?:(?P<q>viertel|halb|(?P<mi>\d{1,2}|fünf|zehn|zwanzig)(?:\s+minuten)?)\s+(?P<rel>nach|vor)\s+|(?P<half>halb)\s+)"
              r"(?P<h>\d{1,2}|" + bare_hour_word + r")(?:\s+uhr)?")
        def _viertel(match, ctx):
            hour = _number(match["h"], language)
            if hour is None:
                return None
            if match["half"]:
                total = int(hour) * 60 - 30
            else:
                q = (match["q"] or "").lower()
                minutes = 15 if q == "viertel" else 30 if q == "halb" else int(_number(match["mi"], language) or 0)
                total = int(hour) * 60 + (minutes if match["rel"].lower() == "nach" else -minutes)
            # "halb 4" is 15:30 by the 1-7 rule, "viertel vor acht" 07:45
            literal = not 1 <= int(hour) <= 7 or total // 60 == 0
            return _clock(match, language, (total // 60) % 24, total % 60, literal=literal)

    if language == "fr":
        fr_hours = _alt(["treize", "quatorze", "quinze", "seize", "dix-sept", "dix-huit", "dix-neuf", "vingt"])
        fr_hour_values = {"treize": 13, "quatorze": 14, "quinze": 15, "seize": 16, "dix-sept": 17, "dix-huit": 18,
                          "dix-neuf": 19, "vingt": 20}

        @rule(r"(?:(?:à|vers)\s+)?(?P<h>\d{1,2}|" + fr_hours + "|" + bare_hour_word + r"|midi|minuit)(?P<heures>\s+heures?)?"
              r"(?:\s+(?P<rel>et\s+quart|et\s+demie?|moins\s+le\s+quart|moins\s+(?P<less>cinq|dix|vingt|\d+)|trois\s+quarts|"
              r"(?:et\s+)?(?P<plus>quinze|trente|trois|cinq|dix|vingt|\d{1,2})(?:\s+minutes)?))")
        def _fr_minutes(match, ctx):
            target = match["h"].lower()
            hour = 12 if target == "midi" else 0 if target == "minuit" else fr_hour_values.get(target) or _number(target, language)
            if hour is None or not (target in ("midi", "minuit") or match["heures"]):
                return None
            rel = match["rel"].lower()
            if "quart" in rel and "moins" not in rel and "trois" not in rel:
                minutes = 15
            elif "demi" in rel:
                minutes = 30
            elif "trois quarts" in rel:
                minutes = 45
            elif "moins le quart" in rel:
                minutes = -15
            elif match["less"]:
                minutes = -int(_number(match["less"], language) or 0)
            else:
                minutes = int(_number(match["plus"], language) or 0)
            total = int(hour) * 60 + minutes
            piece = _clock(match, language, (total // 60) % 24, total % 60,
                           literal=target in ("midi", "minuit") or hour > 12)
            if piece and target == "minuit":
                piece.midnight = True
            return piece

        @rule(r"(?:(?:à|vers)\s+)(?:environ\s+)?(?P<h>\d{1,2}|" + bare_hour_word + r"|" + fr_hours + r")\s+heures?")
        def _fr_heures(match, ctx):
            words = {"treize": 13, "quatorze": 14, "quinze": 15, "seize": 16, "dix-sept": 17, "dix-huit": 18,
                     "dix-neuf": 19, "vingt": 20}
            hour = words.get(match["h"].lower()) or _number(match["h"], language)
            return _clock(match, language, int(hour)) if hour else None

    if language == "es":
        @rule(r"(?:(?:a\s+)?las\s+)?(?P<h>\d{1,2}|" + bare_hour_word + r")\s+(?:y\s+(?P<plus>cuarto|media|quince|treinta|"
              r"cuarenta\s+y\s+cinco|cinco|diez|veinte|\d{1,2})|menos\s+(?P<less>cuarto|cinco|diez|veinte|\d{1,2}))")
        def _es_minutes(match, ctx):
            hour = _number(match["h"], language)
            if hour is None:
                return None
            word = (match["plus"] or match["less"]).lower()
            minutes = {"cuarto": 15, "media": 30}.get(word)
            if minutes is None:
                minutes = int(_number(word, language) or 0)
            total = int(hour) * 60 + (minutes if match["plus"] else -minutes)
            return _clock(match, language, (total // 60) % 24, total % 60)

        @rule(r"las\s+(?P<h>" + bare_hour_word + r")")
        def _las(match, ctx):
            hour = _number(match["h"], language)
            return _clock(match, language, int(hour)) if hour else None

        @rule(r"a\s+las\s+(?P<h>\d{1,2})\s+horas")
        def _horas(match, ctx):
            return _clock(match, language, int(match["h"]), literal=True)

    # A bare hour right after a day ("tmrw 9", "friday 3"): it counts only there (see _groups).
    @rule(r"(?:(?:a|à|um)\s+)?(?P<h>1[0-2]|0?[1-9])(?=\s*$|\s*[,;!]|\s+(?:#|!))")
    def _bare_hour(match, ctx):
        piece = _clock(match, language, int(match["h"]), strong=False)
        if piece is not None:
            piece.needs_day = True
        return piece

    # A bare hour before a part of the day: "8 tonight", "6 in the afternoon", "6 de la mañana".
    pod_words = _alt(["tonight", "this evening", "this morning", "this afternoon", "in the morning", "in the afternoon",
                      "in the evening", "in afternoon", "in the am", "in the pm", "morgens", "abends", "nachmittags",
                      "am abend", "am nachmittag", "in der früh", "früh", "du matin", "du mat", "du soir",
                      "de l'après-midi", "cet après-midi", "ce soir", "de la mañana", "de la manana", "de la tarde",
                      "de la noche", "en la mañana", "en la manana", "en la tarde", "del mediodía"])
    @rule(rf"(?:(?:at|um|à|a\s+las|las|a\s+la)\s+)?(?P<h>\d{{1,2}}|{bare_hour_word})(?:\s*(?:o'?clock|uhr|h))?\s+(?P<pod>{pod_words})")
    def _hour_pod(match, ctx):
        if re.search(r"(?:halb|viertel|nach|vor|past|to)\s*$", _before(match.string, match.start()), _FLAGS):
            return None  # "halb vier uhr nachmittags": the hour belongs to "halb vier"
        hour = _number(match["h"], language)
        if hour is None or not 1 <= hour <= 12:
            return None
        pod = match["pod"].lower()
        hour = int(hour)
        if any(w in pod for w in ("afternoon", "evening", "tonight", "night", "pm", "nachmittag", "abend", "nacht",
                                  "soir", "après", "tarde", "noche")) and hour < 12:
            hour += 12
        if ("morning" in pod or " am" in pod or "morgen" in pod or "matin" in pod or "mañana" in pod
                or "manana" in pod or "früh" in pod) and hour == 12:
            hour = 0
        piece = _clock(match, language, hour, literal=True)
        if piece and re.search(r"tonight|this|heute|ce\s|esta", pod):
            piece.day = ctx.today
        return piece

    return rules


# --- finding and resolving the phrase ----------------------------------------------------

_JOINER = re.compile(
    r"\s*(?:,\s*|(?:at|on|@|um|am|den|dem|der|à|a|le|el|the|of|for|de|del|du|in|en|gegen|vers|,)\s+)*",
    _FLAGS
)
_PREPOSITION_BEFORE = re.compile(
    r"(?:^|\s|@)(?:on|at|@|by|due|before|until|till|for|starting|about|around|approximately|approx\.?|circa|sometime|"
    r"am|um|bis|"
    r"gegen|ca\.?|zirka|spätestens|pünktlich|genau|vor|le|à|pour|avant|vers|environ|d'ici|dès|jusqu'à|jusqu'au|"
    r"el|para|antes\s+del?|hasta)\s*$",
    _FLAGS,
)
_RANGE_AFTER = re.compile(r"\s*(?:-|–|—|to|till|until|through|thru|bis|au|jusqu'au|al|hasta)\s*\d", _FLAGS)
# ("à"/"a" join a date and its time in French and Spanish, so they are no range words here.)
_RANGE_WORDS = re.compile(r"\s*(?:-|–|—|to|till|til|until|bis\s+zum|bis|zum|au|al|hasta|and|und|et|y)\s*$", _FLAGS)
_RANGE_BEFORE = re.compile(
    r"(?:(?:^|\s)(?:(?:from|between|after)(?:\s+the)?|later\s+than|no\s+earlier\s+than|vom|von|zwischen|nach|ab|du|entre|"
    r"après|desde|después\s+de|frühestens|earliest|"
    r"nicht\s+vor|not\s+before)\s+|(?:^|\s)(?:nicht|not)\s+$|\d\.?\s*(?:[-–]|a|al|bis(?:\s+zum)?|au|to|and|und|et|y)\s*)$", _FLAGS
)
# Words that tie a date to more of a phrase: cutting the date would leave half of it in the title.
_HALF_EATEN_BEFORE = re.compile(r"(?:\b(?:of|week|weeks|day|days|or|oder|ou|guten|gute)|'s)\s*$", _FLAGS)
_HALF_EATEN_AFTER = re.compile(
    r"(?:'s\b|’s\b|\s+of\b(?!\s+(?:next|this|the\s+(?:next|following))\b)|\s+(?:or|oder|ou|o)\s)", _FLAGS
)
# What joins the next group to a range or open interval just skipped ("1pm-2pm tomorrow", "... but before 11").
_RANGE_END = re.compile(
    r"\s*(?:-|–|—|to|till|until|through|thru|bis|au|jusqu'au|al|hasta)\s*\d{1,4}(?:[:.]\d\d)?\s*"
    r"(?:a\.m\.|p\.m\.|am|pm|h|uhr)?(?![\w])", _FLAGS
)
_RANGE_GLUE = re.compile(r"\s*,?\s*(?:but|and|aber|und|mais|et|pero|y)\s+", _FLAGS)
_RANGE_TAIL = re.compile(r"\s*(?:-|–|to|till|until|bis|au|al|hasta|a)\s+(?:the\s+|zum\s+|le\s+|el\s+)?", _FLAGS)
# What makes a found date part of a range or an open interval: "... between 8 and 9", "... after 9",
# "tomorrow 0930 - 1045", "on the 27th for one day".
_OPEN_AFTER = re.compile(
    r"\s*,?\s*(?:(?:frühestens|earliest|nicht\s+vor|not\s+before)\b|(?:between|after|from|zwischen|nach|ab|von|entre|après|desde|después)\s+(?:\d|noon|mittag|midi|the|\w+\s+\d)"
    r"|\d{1,4}(?:[:.]\d\d)?\s*(?:uhr|h)?\s*(?:-|–|to|bis)\s*\d|(?:for|für)\s+(?:one|a|an|\d+|ein|eine)\s+(?:day|night|hour|week)s?\b)",
    _FLAGS,
)


def _scan(text: str, ctx: _Context) -> list[_Piece]:
    """Every non-overlapping piece in the text, longest first, in text order."""
    found: list[_Piece] = []
    for language in ctx.languages:
        for pattern, handler, strong in _rules(language):
            for match in pattern.finditer(text):
                piece = handler(match, ctx)
                if piece is None:
                    continue
                if not strong:
                    piece.strong = False
                found.append(piece)
    found.sort(key=lambda p: (-(p.end - p.start), p.start))
    chosen: list[_Piece] = []
    for piece in found:
        if all(piece.end <= other.start or piece.start >= other.end for other in chosen):
            chosen.append(piece)
    chosen.sort(key=lambda p: p.start)
    return chosen


def _groups(text: str, pieces: list[_Piece]) -> list[list[_Piece]]:
    """Adjacent pieces (joined by spaces, commas or joiner words) form one group."""
    groups: list[list[_Piece]] = []
    for piece in pieces:
        if piece.needs_day:
            previous = groups[-1][-1] if groups else None
            if (previous is not None and previous.day is not None and previous.hour is None
                    and not text[previous.end: piece.start].strip()):
                groups[-1].append(piece)
            continue
        if groups:
            gap = text[groups[-1][-1].end: piece.start]
            previous = groups[-1][-1]
            two_days = piece.day is not None and previous.day is not None and piece.hour is None and previous.hour is None
            if (_RANGE_WORDS.fullmatch(gap) and gap.strip()) or (two_days and gap.strip().lower() in ("a", "à")):
                # "Aug 5 - Aug 16", "21 de Dic. a 6 de Ene": a range
                groups[-1].append(replace(piece, range_only=True))
                continue
            if _JOINER.fullmatch(gap):
                groups[-1].append(piece)
                continue
        groups.append([piece])
    return groups


def _find_due_date(text: str, ctx: _Context) -> _Phrase | None:
    """The first credible group of pieces that resolves to a due date."""
    previous_range_end = None
    for group in _groups(text, _scan(text, ctx)):
        start, end = group[0].start, group[-1].end
        if any(piece.range_only for piece in group):
            continue  # a range: no date, the words stay
        if (_RANGE_AFTER.match(text, end) or _RANGE_BEFORE.search(_before(text, start)) or _OPEN_AFTER.match(text, end)
                or previous_range_end is not None and (_RANGE_TAIL.fullmatch(text, previous_range_end, start)
                                                       or _JOINER.fullmatch(text, previous_range_end, start)
                                                       or _RANGE_GLUE.fullmatch(text, previous_range_end, start))):
            tail = _RANGE_END.match(text, end)
            previous_range_end = tail.end() if tail else end
            continue
        previous_range_end = None
        # a weak word counts next to a strong one, after a preposition, or with a day and a time of
        # day together ("wed morning", "sat 10am")
        day_and_time = any(p.day is not None or p.weekday is not None for p in group) and any(
            p.hour is not None or p.part_of_day is not None for p in group)
        if not (any(piece.strong for piece in group) or day_and_time or _PREPOSITION_BEFORE.search(_before(text, start))
                or _before(text, start).rstrip().endswith(_REPEAT_MARK)):
            continue
        if _HALF_EATEN_BEFORE.search(_before(text, start)) or _HALF_EATEN_AFTER.match(text, end):
            continue  # part of a phrase we do not read ("the week of october 7th", "friday's numbers")
        resolved = _resolve(group, ctx)
        if resolved is not None:
            due_at, all_day = resolved
            return _Phrase(start, end, due_at, all_day, group)
    return None


def _resolve(group: list[_Piece], ctx: _Context) -> tuple[datetime, bool] | None:
    """Combine a group's pieces into (due_at, all_day)."""
    for piece in group:
        if piece.instant is not None:
            # "in 1 minute" said at 10:00:40 is 10:01:40, not 10:01:00 (a reminder 20 s away)
            return piece.instant.replace(microsecond=0), False
    weekday = next((p.weekday for p in group if p.weekday is not None), None)
    dated = [p for p in group if p.day is not None and p.weekday is None]
    day = next((p.day for p in dated if p.hour is None and p.part_of_day is None), None)
    day = day or next((p.day for p in dated), None)
    month_day = next((p.month_day for p in group if p.month_day is not None), None)
    if day is None and month_day is not None:
        day = _next_month_day(ctx, month_day, weekday)
        if day is None:
            return None
    elif day is not None and weekday is not None:
        pair = next((p.month_and_day for p in dated if p.month_and_day is not None), None)
        if pair is not None and day.weekday() != weekday:
            # "Fri, Jul 18": the next July 18 that is a Friday (this year's when it is one)
            this_year = _safe_date(ctx.today.year, *pair)
            if this_year is not None and this_year.weekday() == weekday:
                day = this_year
            else:
                day = next((d for y in range(day.year, day.year + 12) if (d := _safe_date(y, *pair))
                            and d.weekday() == weekday), day)
    if day is None:
        day = next((p.day for p in group if p.day is not None), None)
    clock = next((p for p in group if p.hour is not None), None)
    pod = next((p.part_of_day for p in group if p.part_of_day is not None), None)
    if clock is None and pod is None:
        if day is None:
            return None
        return _localize(datetime.combine(day, time()), ctx.zone), True
    if clock is None:
        hour, minute, zone, midnight = pod, 0, None, False
    else:
        hour, minute, zone, midnight = _hour_of(clock, pod, ctx), clock.minute, clock.zone, clock.midnight
    if zone is not None:
        return _zoned(day, hour, minute, zone, ctx), False
    if day is None:
        candidate = datetime.combine(ctx.today, time(hour, minute))
        if midnight:
            candidate += timedelta(days=1)
        elif candidate <= ctx.now.replace(tzinfo=None, second=0, microsecond=0):
            candidate += timedelta(days=1)
        return _localize(candidate, ctx.zone), False
    wall = datetime.combine(day, time(hour, minute))
    if midnight:
        wall += timedelta(days=1)
    return _localize(wall, ctx.zone), False


def _hour_of(clock: _Piece, pod: int | None, ctx: _Context) -> int:
    """The 24-hour hour of a clock piece, using am/pm, the part of the day, then the 1-7 rule."""
    hour = clock.hour
    if clock.meridiem == "am":
        return 0 if hour == 12 else hour
    if clock.meridiem == "pm":
        return hour if hour == 12 or hour > 12 else hour + 12
    if pod is not None and not clock.midnight:
        if pod >= 12 and 1 <= hour < 12:
            return hour + 12
        return hour
    if clock.literal_hour:
        return hour
    if 1 <= hour <= 7:
        return hour + 12
    return hour


def _zoned(day: date | None, hour: int, minute: int, zone: tzinfo, ctx: _Context) -> datetime:
    """A time stated in another zone, as the user's wall clock (the next one when no date)."""
    there_now = ctx.now.astimezone(zone)
    if day is None:
        candidate = datetime.combine(there_now.date(), time(hour, minute))
        aware = _localize(candidate, zone) if isinstance(zone, ZoneInfo) else candidate.replace(tzinfo=zone)
        if aware <= ctx.now:
            aware = aware + timedelta(days=1)
    else:
        candidate = datetime.combine(day, time(hour, minute))
        aware = _localize(candidate, zone) if isinstance(zone, ZoneInfo) else candidate.replace(tzinfo=zone)
    return aware.astimezone(ctx.zone)


def _localize(wall_time: datetime, zone: tzinfo) -> datetime:
    """Attach the zone to a naive wall-clock time, moving a time in a DST gap forward."""
    # The round trip through UTC turns a non-existent 02:30 on a spring-forward night into
    # the real instant (03:30) instead of keeping an impossible wall time.
    return wall_time.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)


def _remove_phrase(text: str, phrase: _Phrase) -> str:
    """Cut the phrase and any dangling prepositions right before it out of the text."""
    before = text[: phrase.start]
    while (preposition := _PREPOSITION_BEFORE.search(before)) is not None:
        before = before[: preposition.start()]  # loop, so "due by friday" loses both words
    after = text[phrase.end:]
    if before.rstrip().endswith("(") and after.lstrip().startswith(")"):
        before, after = before.rstrip()[:-1], after.lstrip()[1:]  # "call mom (tomorrow)": the brackets go too
    if after[:1] in (".", ",", ";", "!", "?"):
        return before.rstrip() + after  # "call mom tomorrow, then dad" -> "call mom, then dad"
    return f"{before} {after}"


# --- repeating tasks ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Recurrence:
    """A recurrence read from the text, as RRULE parts."""

    freq: str
    interval: int = 1
    byday: tuple[str, ...] = ()
    bymonthday: int | None = None
    count: int | None = None
    until: date | None = None
    hour: int | None = None  # the time of day a part-of-day rule implies ("every morning": 9), not in the RRULE
    lasting: relativedelta | None = None  # "for 6 weeks": becomes UNTIL once the first occurrence is known

    @property
    def text(self) -> str:
        """The RRULE value: FREQ first, then INTERVAL, BYDAY, BYMONTHDAY, COUNT, UNTIL."""
        parts = [f"FREQ={self.freq}"]
        if self.interval != 1:
            parts.append(f"INTERVAL={self.interval}")
        if self.byday:
            parts.append("BYDAY=" + ",".join(self.byday))
        if self.bymonthday is not None:
            parts.append(f"BYMONTHDAY={self.bymonthday}")
        if self.count is not None:
            parts.append(f"COUNT={self.count}")
        if self.until is not None:
            parts.append(f"UNTIL={self.until:%Y%m%d}T235959")
        return ";".join(parts)


# Stands where a repeat phrase was cut out while the rest of the line is read (a private-use character).
_REPEAT_MARK = "\ue000"
_LASTING = ("days", "weeks", "months", "years")
_RRULE_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# The order of a weekday in its month ("the last friday of the month": BYDAY=-1FR).
_NTH = {
    "en": {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4, "last": -1},
    "de": {"ersten": 1, "zweiten": 2, "dritten": 3, "vierten": 4, "letzten": -1},
    "fr": {"premier": 1, "premiers": 1, "deuxième": 2, "deuxièmes": 2, "second": 2, "troisième": 3,
           "troisièmes": 3, "quatrième": 4, "quatrièmes": 4, "dernier": -1, "derniers": -1},
    "es": {"primer": 1, "primeros": 1, "segundo": 2, "segundos": 2, "tercer": 3, "terceros": 3, "cuarto": 4,
           "cuartos": 4, "último": -1, "ultimo": -1, "últimos": -1, "ultimos": -1},
}
# "every morning", "jeden Abend", "tous les soirs", "todas las noches": daily at that part of the day.
_DAILY_AT = {
    "en": {"morning": 9, "mornings": 9, "afternoon": 15, "afternoons": 15, "evening": 19, "evenings": 19, "night": 20,
           "nights": 20},
    "de": {"morgen": 9, "nachmittag": 15, "abend": 19, "nacht": 20},
    "fr": {"matins": 9, "matin": 9, "après-midi": 15, "apres-midi": 15, "soirs": 19, "soir": 19, "nuits": 20},
    "es": {"mañanas": 9, "mananas": 9, "tardes": 15, "noches": 20},
}


@lru_cache(maxsize=8)
def _repeat_patterns(language: str) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """(the repeat phrase, "until <date>", "for N times") patterns of a language."""
    weekdays = _alt(vocab.WEEKDAYS[language])
    every = {"en": r"every|each", "de": r"jeden|jede|jedes|alle", "fr": r"tous\s+les|toutes\s+les|chaque",
             "es": r"todos\s+los|todas\s+las|cada"}[language]
    other = {"en": r"other", "de": r"zweiten|zweite|zweites", "fr": r"deux", "es": r"dos|otro|otra"}[language]
    units = {"en": r"days?|weekdays?|business\s+days?|workdays?|weeks?|fortnights?|months?|quarters?|years?|weekends?|"
                   + _alt(_DAILY_AT["en"]),
             "de": r"tag|tage|werktag|werktage|woche|wochen|monat|monate|quartal|quartale|jahr|jahre|wochenende|"
                   + _alt(_DAILY_AT["de"]),
             "fr": r"jours?|semaines?|mois|trimestres?|ans?|années?|week-ends?|" + _alt(_DAILY_AT["fr"]),
             "es": r"días?|dias?|semanas?|mes|meses|trimestres?|años?|anos?|fines\s+de\s+semana|"
                   + _alt(_DAILY_AT["es"])}[language]
    adverbs = {"en": r"daily|everyday|weekly|fortnightly|monthly|quarterly|yearly|annually|weekdays|nightly",
               "de": r"täglich|taeglich|wöchentlich|woechentlich|zweiwöchentlich|vierzehntägig|monatlich|"
                     r"vierteljährlich|quartalsweise|jährlich|jaehrlich|werktags",
               "fr": r"quotidiennement|hebdomadairement|mensuellement|trimestriellement|annuellement|tous\s+les\s+jours",
               "es": r"diariamente|semanalmente|quincenalmente|mensualmente|trimestralmente|anualmente|a\s+diario"}[language]
    # "every 2 weeks on saturday", "alle 2 Wochen am Samstag", "toutes les 2 semaines le samedi"
    on_day = {"en": r"on", "de": r"am", "fr": r"le", "es": r"el|los"}[language]
    # "the last friday of the month", "jeden ersten Montag im Monat", "le dernier vendredi du mois"
    nth_lead = {"en": r"every|each|(?:on\s+)?the", "de": r"jeden|am", "fr": r"chaque|tous\s+les|le",
                "es": r"cada|todos\s+los|el"}[language]
    nth_of = {"en": r"of\s+(?:the|every|each)\s+month", "de": r"(?:im|jedes|des)\s+monats?",
              "fr": r"(?:du|de\s+chaque)\s+mois", "es": r"(?:de\s+cada|del)\s+mes"}[language]
    monthday = {"en": r"(?:\s+on\s+the\s+(?P<md>\d{1,2})(?:st|nd|rd|th)?)?",
                "de": r"(?:\s+am\s+(?P<md>\d{1,2})\.?)?",
                "fr": r"(?:\s+le\s+(?P<md>\d{1,2})(?:er|e)?)?",
                "es": r"(?:\s+el\s+(?:día\s+|dia\s+)?(?P<md>\d{1,2}))?"}[language]
    number = rf"\d{{1,3}}|{_alt(w for w, v in vocab.NUMBERS[language].items() if isinstance(v, int) and v > 1 and ' ' not in w)}"
    weekday_list = rf"(?P<days>(?:{weekdays})s?\.?(?:\s*(?:,|and|&|und|et|y)\s*(?:{weekdays})s?\.?)*)"
    on_days = rf"(?:(?:\s+(?:{on_day}))?\s+{weekday_list.replace('<days>', '<on_days>')})?"
    # "every month on the last friday", "jeden Monat am ersten Montag", "cada mes el último viernes"
    day_word = {"en": r"day", "de": r"tag", "fr": r"jour", "es": r"día|dia"}[language]
    month_on = {"en": r"on\s+the", "de": r"am", "fr": r"le", "es": r"el"}[language]
    month_nth = rf"(?:\s+(?:{month_on})\s+(?P<nth2>{_alt(_NTH[language])})\s+(?P<nth_day2>{weekdays}))?"
    phrase = (
        rf"(?<![\w])(?:"
        rf"(?:{nth_lead})\s+(?P<nth>{_alt(_NTH[language])})\s+(?P<nth_day>{weekdays}|{day_word})s?\s+(?:{nth_of})"
        rf"|(?:{every})\s+(?:(?P<other>{other})\s+)?(?:(?P<n>{number})\s+)?"
        rf"(?:(?P<unit>{units}){on_days}|{weekday_list}){monthday}{month_nth}"
        rf"|(?P<adverb>{adverbs}){on_days.replace('<on_days>', '<on_days2>')}{monthday.replace('<md>', '<md2>')}"
        + (rf"|un\s+(?P<fr_day>{weekdays})\s+sur\s+deux" if language == "fr" else "")
        + (r"|(?:on\s+)?the\s+(?P<md3>\d{1,2})(?:st|nd|rd|th)?\s+of\s+(?:every|each|the)\s+month" if language == "en" else "")
        + (rf"|los\s+{weekday_list.replace('<days>', '<es_days>')}" if language == "es" else "")
        + r")(?![\w])"
    )
    until = {"en": r"until|till|through|thru", "de": r"bis(?:\s+zum)?", "fr": r"jusqu'au|jusqu'à|jusqu'a",
             "es": r"hasta(?:\s+el)?"}[language]
    # "for 6 weeks", "6 Wochen lang", "pendant 6 semaines", "durante 6 semanas": the rule ends that long after its start
    spans_of_time = rf"(?P<ln>{number})\s+(?P<lu>{_alt(w for w, k in vocab.UNITS[language].items() if k in _LASTING)})"
    lasting = {"en": rf"for\s+{spans_of_time}", "de": rf"(?:für\s+)?{spans_of_time}\s+lang|für\s+"
               + spans_of_time.replace("<ln>", "<ln2>").replace("<lu>", "<lu2>"),
               "fr": rf"pendant\s+{spans_of_time}", "es": rf"durante\s+{spans_of_time}"}[language]
    count = {"en": r"(?:for\s+)?(?P<c>\d{1,3})\s+times", "de": r"(?P<c>\d{1,3})\s*(?:-\s*)?mal",
             "fr": r"(?P<c>\d{1,3})\s+fois", "es": r"(?P<c>\d{1,3})\s+veces"}[language] + f"|{lasting}"
    return (re.compile(phrase, _FLAGS), re.compile(rf"\s+(?:{until})\s+", _FLAGS),
            re.compile(rf"\s+(?:{count})(?![\w])", _FLAGS))


def _find_repeat(text: str, ctx: _Context) -> tuple[list[tuple[int, int]], _Recurrence] | None:
    """The repeat phrase, its until/count parts anywhere in the line, and its rule, or None."""
    for language in ctx.languages:
        phrase_re, until_re, count_re = _repeat_patterns(language)
        matches = list(phrase_re.finditer(text))
        if not matches:
            continue
        # "weekly report every friday": an "every ..." phrase says more than an adverb that may be a noun's
        match = next((m for m in matches if not m.group("adverb")), matches[0])
        rule = _rule_from(match, language)
        if rule is None:
            return None
        spans = [match.span()]
        end = match.end()
        for _ in range(4):  # the tails straight after the phrase, in any order (a few: each until reads the line)
            counted = count_re.match(text, end)
            if counted:
                rule = _counted(rule, counted, language)
                if rule is None:
                    return None
                end = counted.end()
                continue
            until = until_re.match(text, end)
            if until is None:
                break
            read = _read_until(text, until, ctx)
            if read is None:
                return None  # "every day until Feb 30": the rule as said cannot be built; the words stay
            rule = replace(rule, until=read[0])
            end = read[1]
        spans[0] = (match.start(), end)
        # "every day at 7am until Jan 31", "daily 8am for 10 times": the tails after a time, or before the phrase
        if rule.until is None:
            # a few tries at most: each reads the rest of the line, and a hostile line may say "until" hundreds of times
            for until in itertools.islice(until_re.finditer(text), 4):
                if _overlaps(until.span(), spans):
                    continue
                read = _read_until(text, until, ctx)
                if read is not None and not _overlaps((until.start(), read[1]), spans):
                    rule = replace(rule, until=read[0])
                    spans.append((until.start(), read[1]))
                    break
        if rule.count is None and rule.lasting is None:
            for counted in count_re.finditer(text):
                if not _overlaps(counted.span(), spans):
                    rule = _counted(rule, counted, language)
                    if rule is None:
                        return None
                    spans.append(counted.span())
                    break
        ends = (rule.count is not None) + (rule.until is not None) + (rule.lasting is not None)
        if not 0 < (rule.count or 1) <= 1000 or ends > 1:
            return None  # RFC 5545: COUNT and UNTIL never together
        return spans, rule
    return None


def _counted(rule: _Recurrence, counted: re.Match[str], language: str) -> _Recurrence | None:
    """The rule with the count ("for 6 times") or the length ("for 6 weeks") the match says; None if nonsense."""
    if counted["c"]:
        return replace(rule, count=int(counted["c"]))
    groups = counted.groupdict()
    amount = _number(groups.get("ln") or groups["ln2"], language)
    kind = vocab.UNITS[language][(groups.get("lu") or groups["lu2"]).lower()]
    if amount is None or amount != int(amount) or not 1 <= amount <= 100:
        return None
    return replace(rule, lasting=relativedelta(**{kind: int(amount)}))


def _overlaps(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    """Whether the span shares a character with any of the spans."""
    return any(span[0] < end and start < span[1] for start, end in spans)


def _read_until(text: str, until: re.Match[str], ctx: _Context) -> tuple[date, int] | None:
    """The date after "until"/"bis"/"jusqu'au"/"hasta" and where it ends; a time after the date is left."""
    # "until june": the month counts only with its preposition, so read them together too
    lead = until.start() + len(until.group()) - len(until.group().lstrip())
    for start in (until.end(), lead):
        target = _find_due_date(text[start:], ctx)
        if target is None or target.start != 0:
            continue
        days = [p for p in target.pieces if p.hour is None and p.part_of_day is None and p.instant is None]
        if not days and _only_clock(target):
            return None  # "every day until 5pm" names no last day
        if days and len(days) < len(target.pieces) and target.pieces[: len(days)] == days:
            # "daily until 6/30 at 8pm": the time is the occurrences' own
            resolved = _resolve(days, ctx)
            if resolved is None:
                continue
            return resolved[0].date(), start + days[-1].end
        return target.due_at.date(), start + target.end
    return None


def _rule_from(match: re.Match[str], language: str) -> _Recurrence | None:
    """The RRULE parts a repeat phrase says."""
    groups = match.groupdict()
    weekdays = vocab.WEEKDAYS[language]
    md_text = groups.get("md") or groups.get("md2") or groups.get("md3")
    md = int(md_text) if md_text else None
    if groups.get("md3"):
        return _Recurrence("MONTHLY", bymonthday=md) if md is not None and 1 <= md <= 31 else None
    if md is not None and not 1 <= md <= 31:
        return None
    if groups.get("nth"):
        order = _NTH[language][groups["nth"].lower()]
        if groups["nth_day"].lower() not in weekdays:  # "the last day of the month": BYMONTHDAY=-1
            return _Recurrence("MONTHLY", bymonthday=order)
        return _Recurrence("MONTHLY", byday=(f"{order}{_RRULE_DAYS[weekdays[groups['nth_day'].lower()]]}",))
    if groups.get("nth2"):
        if not groups["unit"].lower().startswith(("month", "monat", "mois", "mes")) or md is not None:
            return None
        order = _NTH[language][groups["nth2"].lower()]
        interval = _number(groups["n"], language) if groups.get("n") else 1
        if interval is None or not 1 <= interval <= 1000:
            return None
        return _Recurrence("MONTHLY", int(interval) * (2 if groups.get("other") else 1),
                           (f"{order}{_RRULE_DAYS[weekdays[groups['nth_day2'].lower()]]}",))
    if groups.get("fr_day"):
        return _Recurrence("WEEKLY", 2, (_RRULE_DAYS[weekdays[groups["fr_day"].lower()]],))
    on_days = groups.get("on_days") or groups.get("on_days2")
    if on_days:
        # "every 2 weeks on monday and thursday", "weekly on friday", "semanalmente los lunes"
        unit = (groups.get("unit") or groups.get("adverb") or "").lower()
        fortnight = unit.startswith(("fortnight", "zweiwöch", "vierzehn", "quincenal"))
        if not fortnight and not unit.startswith(("week", "woche", "wöch", "woech", "semaine", "hebdo", "semana",
                                                  "seman")):
            return None  # "every day on monday": no rule we can name
        interval = _number(groups["n"], language) if groups.get("n") else 1
        if interval is None or not 1 <= interval <= 1000:
            return None
        return _Recurrence("WEEKLY", int(interval) * (2 if groups.get("other") else 1) * (2 if fortnight else 1),
                           _on_days(on_days, weekdays))
    if groups.get("adverb"):
        word = groups["adverb"].lower()
        if word.startswith(("quarter", "viertel", "quartal", "trimest")):
            return _Recurrence("MONTHLY", 3)
        if word.startswith(("fortnight", "zweiwöch", "vierzehn", "quincenal")):
            return _Recurrence("WEEKLY", 2, _on_days(on_days, weekdays) if on_days else ())
        if word.startswith(("weekdays", "werktags")):
            return _Recurrence("WEEKLY", byday=_RRULE_DAYS[:5])
        for key, freq in (("dai", "DAILY"), ("every", "DAILY"), ("night", "DAILY"), ("tägl", "DAILY"),
                          ("taeg", "DAILY"), ("quot", "DAILY"), ("tous", "DAILY"), ("diar", "DAILY"),
                          ("a dia", "DAILY"), ("week", "WEEKLY"), ("wöch", "WEEKLY"), ("woech", "WEEKLY"),
                          ("hebdo", "WEEKLY"), ("seman", "WEEKLY"), ("month", "MONTHLY"), ("monat", "MONTHLY"),
                          ("mensu", "MONTHLY"), ("year", "YEARLY"), ("annu", "YEARLY"), ("jähr", "YEARLY"),
                          ("jaehr", "YEARLY"), ("anual", "YEARLY")):
            if word.startswith(key):
                if md is not None and freq != "MONTHLY":
                    return None  # "weekly on the 15th": no rule we can name
                return _Recurrence(freq, bymonthday=md)
        return None
    interval = 2 if groups.get("other") else 1
    if groups.get("n"):
        value = _number(groups["n"], language)
        if value is None or not 1 <= value <= 1000:
            return None
        interval *= int(value)
    if groups.get("days") or groups.get("es_days"):
        names = re.findall(rf"{_alt(weekdays)}", groups.get("days") or groups["es_days"], _FLAGS)
        days = tuple(dict.fromkeys(_RRULE_DAYS[weekdays[name.lower()]] for name in names))
        return _Recurrence("WEEKLY", interval, days) if days else None
    unit = groups["unit"].lower()
    if md is not None and not unit.startswith(("month", "monat", "mois", "mes")):
        return None  # "every 2 weeks on the 15th": no rule we can name
    if unit.startswith(("quarter", "quartal", "trimest")):
        return _Recurrence("MONTHLY", interval * 3)
    if unit in _DAILY_AT[language]:
        return _Recurrence("DAILY", interval, hour=_DAILY_AT[language][unit])
    if unit.startswith("fortnight"):
        return _Recurrence("WEEKLY", interval * 2)
    if unit.startswith(("weekday", "werktag", "business", "workday")):
        return _Recurrence("WEEKLY", interval, _RRULE_DAYS[:5])
    if unit.startswith(("weekend", "wochenende", "fines", "week-end")):
        return _Recurrence("WEEKLY", interval, ("SA", "SU"))
    if unit.startswith(("day", "tag", "jour", "día", "dia")):
        return _Recurrence("DAILY", interval)
    if unit.startswith(("week", "woche", "semaine", "semana")):
        return _Recurrence("WEEKLY", interval)
    if unit.startswith(("month", "monat", "mois", "mes")):
        return _Recurrence("MONTHLY", interval, bymonthday=md)
    return _Recurrence("YEARLY", interval)


def _on_days(text: str, weekdays: dict[str, int]) -> tuple[str, ...]:
    """The RRULE days a list of weekday names says ("monday and thursday": MO, TH)."""
    names = re.findall(rf"{_alt(weekdays)}", text, _FLAGS)
    return tuple(dict.fromkeys(_RRULE_DAYS[weekdays[name.lower()]] for name in names))


def _first_occurrence(rule: _Recurrence, phrase: _Phrase | None, ctx: _Context) -> tuple[datetime, bool, str] | None:
    """The rule's first occurrence at or after now (or the stated date) and the RRULE, via dateutil; None if refused."""
    text = rule.text
    if len(text) > MAX_REPEAT_LENGTH:
        return None
    clock = phrase.time_of_day if phrase is not None else None
    if clock is None and rule.hour is not None:
        clock = time(rule.hour)
    elif rule.hour is not None and phrase is not None and _only_clock(phrase):
        # "every morning at 6:30": the part of the day the rule names says am or pm, as "6:30 in the morning" would
        piece = next((p for p in phrase.pieces if p.hour is not None), None)
        if piece is not None and piece.zone is None and not any(p.part_of_day is not None for p in phrase.pieces):
            clock = time(_hour_of(piece, rule.hour, ctx), piece.minute)
    start_day = phrase.due_at.date() if phrase is not None and phrase.all_day else ctx.today
    if phrase is not None and not phrase.all_day and phrase.due_at.date() > ctx.today and not _only_clock(phrase):
        start_day = phrase.due_at.date()
    dtstart = datetime.combine(start_day, clock or time())
    try:
        if rule.interval > 1 and rule.byday:
            # "every other tuesday" starts on the coming Tuesday, not in the week of today
            first = rrulestr(replace(rule, interval=1, count=None, until=None).text, dtstart=dtstart).after(dtstart, inc=True)
            dtstart = first or dtstart
        recurrence = rrulestr(text, dtstart=dtstart)
    except (ValueError, TypeError, OverflowError):
        return None
    floor = ctx.now.replace(tzinfo=None, second=0, microsecond=0) if clock else datetime.combine(ctx.today, time())
    floor = max(floor, dtstart)
    first = recurrence.after(floor, inc=True)
    if first is None or first > floor + timedelta(days=3653):
        return None
    if rule.lasting is not None:
        # "every monday for 6 weeks": the last day is 6 weeks after the first occurrence, less one day
        text = replace(rule, until=first.date() + rule.lasting - timedelta(days=1)).text
        if len(text) > MAX_REPEAT_LENGTH:
            return None
    return _localize(first, ctx.zone), clock is None, text


def _only_clock(phrase: _Phrase) -> bool:
    """Whether the phrase names only a time of day (its date is just the next such time)."""
    return all(piece.day is None and piece.month_day is None for piece in phrase.pieces)
