"""Tests of the quick-add parser (workers.quickadd): a pure function, so no fixtures beyond `now`."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from workers.quickadd import MAX_TITLE_LENGTH, ParsedTask, parse_quick_add

pytestmark = pytest.mark.fast  # no PostgreSQL, Redis or worker

BERLIN = "Europe/Berlin"
# Thursday 2026-11-26 10:00 in Berlin (09:00 UTC, 04:00 New York, 18:00 Tokyo).
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=ZoneInfo(BERLIN))


def parse(text: str, *, now: datetime = NOW, timezone: str = BERLIN) -> ParsedTask:
    """Parse with the test defaults."""
    return parse_quick_add(text, now=now, timezone=timezone)


def iso(parsed: ParsedTask) -> str | None:
    """due_at as an ISO string, which pins both the wall-clock time and the UTC offset."""
    return None if parsed.due_at is None else parsed.due_at.isoformat()


def test_product_example():
    parsed = parse("call mom tomorrow 5pm #family !high")
    assert parsed == ParsedTask(
        title="call mom",
        due_at=datetime(2026, 11, 27, 17, 0, tzinfo=ZoneInfo(BERLIN)),
        tags=["family"],
        priority="high",
        all_day=False,
    )
    assert iso(parsed) == "2026-11-27T17:00:00+01:00"
    assert parsed.due_at.tzinfo == ZoneInfo(BERLIN)


@pytest.mark.parametrize(
    ("text", "due", "all_day"),
    [
        ("pay rent tomorrow 5pm", "2026-11-27T17:00:00+01:00", False),
        ("pay rent tomorrow at 17:00", "2026-11-27T17:00:00+01:00", False),
        ("pay rent today 9am", "2026-11-26T09:00:00+01:00", False),  # explicit "today" stays today
        ("pay rent next monday", "2026-11-30T00:00:00+01:00", True),
        ("pay rent next monday 10am", "2026-11-30T10:00:00+01:00", False),
        ("pay rent on friday", "2026-11-27T00:00:00+01:00", True),
        ("pay rent in 3 days", "2026-11-29T00:00:00+01:00", True),
        ("pay rent in 2 hours", "2026-11-26T12:00:00+01:00", False),
        ("pay rent in an hour", "2026-11-26T11:00:00+01:00", False),
        ("pay rent at 5pm", "2026-11-26T17:00:00+01:00", False),  # still ahead: today
        ("pay rent at 9am", "2026-11-27T09:00:00+01:00", False),  # already past: tomorrow
        ("pay rent dec 24", "2026-12-24T00:00:00+01:00", True),
        ("pay rent 2026-12-24 18:30", "2026-12-24T18:30:00+01:00", False),
        ("pay rent 2026-12-24", "2026-12-24T00:00:00+01:00", True),
        ("pay rent on 24 december at 8pm", "2026-12-24T20:00:00+01:00", False),
        ("pay rent at 5pm on 24 december", "2026-12-24T17:00:00+01:00", False),
        ("pay rent by december 24th, 2027", "2027-12-24T00:00:00+01:00", True),
        ("pay rent tomorrow", "2026-11-27T00:00:00+01:00", True),
        ("pay rent tonight", "2026-11-26T20:00:00+01:00", False),
        ("pay rent tomorrow morning", "2026-11-27T09:00:00+01:00", False),
        ("pay rent fri, 3pm", "2026-11-27T15:00:00+01:00", False),
        ("pay rent at noon", "2026-11-26T12:00:00+01:00", False),
        ("pay rent on sat", "2026-11-28T00:00:00+01:00", True),
        ("pay rent next week", "2026-11-30T00:00:00+01:00", True),  # issue 24: its Monday (was +7 days)
        ("pay rent jan 5", "2027-01-05T00:00:00+01:00", True),  # past month-day rolls to next year
        ("Pay Rent TOMORROW 5PM", "2026-11-27T17:00:00+01:00", False),
    ],
)
def test_date_phrases_in_berlin(text, due, all_day):
    parsed = parse(text)
    assert (parsed.title.lower(), iso(parsed), parsed.all_day) == ("pay rent", due, all_day)


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("report due by friday", "report"),
        ("due friday: report", "report"),
        ("call mom tomorrow 5pm about xmas", "call mom about xmas"),
        ("  call   mom \t tomorrow   #family  5pm  ", "call mom"),
        ("call mom, tomorrow at 5pm", "call mom"),
        ("stand by me", "stand by me"),  # "by" is only dropped right before a date
    ],
)
def test_date_phrase_and_dangling_preposition_leave_the_title(text, title):
    assert parse(text).title == title


@pytest.mark.parametrize(
    "text",
    [
        "call mom",
        "read 1984",
        "buy 2 apples",
        "may the force be with you",
        "march with the band",
        "second draft of report",
        "study for the SAT",
        "sit in the sun",
        "midnight snack",
        "plan Q3 roadmap",
        "call 911 about dec report",
    ],
)
def test_ordinary_titles_are_not_dates(text):
    parsed = parse(text)
    assert (parsed.title, parsed.due_at, parsed.all_day) == (text, None, False)


@pytest.mark.parametrize(
    ("text", "title", "due"),
    [
        ("read 1984 on friday", "read 1984", "2026-11-27T00:00:00+01:00"),
        ("march with the band on saturday", "march with the band", "2026-11-28T00:00:00+01:00"),
        ("buy 2 apples tomorrow", "buy 2 apples", "2026-11-27T00:00:00+01:00"),
        ("may the force be with you may 4", "may the force be with you", "2027-05-04T00:00:00+02:00"),
        ("second draft of report by 3pm", "second draft of report", "2026-11-26T15:00:00+01:00"),
    ],
)
def test_false_positive_words_next_to_a_real_date(text, title, due):
    parsed = parse(text)
    assert (parsed.title, iso(parsed)) == (title, due)


# Issue 24 changed this: a repeat phrase is read into `repeat` (an RRULE value) and the first due
# date, where it used to stay in the title with no date.
@pytest.mark.parametrize(
    ("text", "title", "repeat", "due", "all_day"),
    [
        ("every monday standup", "standup", "FREQ=WEEKLY;BYDAY=MO", "2026-11-30T00:00:00+01:00", True),
        ("every monday at 9am standup", "standup", "FREQ=WEEKLY;BYDAY=MO", "2026-11-30T09:00:00+01:00", False),
        ("water plants every 2 weeks", "water plants", "FREQ=WEEKLY;INTERVAL=2", "2026-11-26T00:00:00+01:00", True),
        ("stretch every day tomorrow 5pm", "stretch", "FREQ=DAILY", "2026-11-27T17:00:00+01:00", False),
        ("water plants every monday 9am", "water plants", "FREQ=WEEKLY;BYDAY=MO", "2026-11-30T09:00:00+01:00", False),
        ("pay rent every month on the 1st", "pay rent", "FREQ=MONTHLY;BYMONTHDAY=1", "2026-12-01T00:00:00+01:00", True),
        ("sync every other thursday 3pm", "sync", "FREQ=WEEKLY;INTERVAL=2;BYDAY=TH", "2026-11-26T15:00:00+01:00", False),
        ("gym every weekday at 7am", "gym", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", "2026-11-27T07:00:00+01:00", False),
        ("pills daily 8am for 10 times", "pills", "FREQ=DAILY;COUNT=10", "2026-11-27T08:00:00+01:00", False),
        ("log hours weekly until dec 31", "log hours", "FREQ=WEEKLY;UNTIL=20261231T235959",
         "2026-11-26T00:00:00+01:00", True),
        ("renew domain every year", "renew domain", "FREQ=YEARLY", "2026-11-26T00:00:00+01:00", True),
        ("water plants every morning", "water plants", "FREQ=DAILY", "2026-11-27T09:00:00+01:00", False),
        ("pay rent on the 1st of every month", "pay rent", "FREQ=MONTHLY;BYMONTHDAY=1", "2026-12-01T00:00:00+01:00", True),
        ("call grandma every sunday until june", "call grandma", "FREQ=WEEKLY;BYDAY=SU;UNTIL=20270601T235959",
         "2026-11-29T00:00:00+01:00", True),
    ],
)
def test_repeat_phrases_give_a_rule_and_its_first_occurrence(text, title, repeat, due, all_day):
    parsed = parse(text)
    assert (parsed.title, parsed.repeat, iso(parsed), parsed.all_day) == (title, repeat, due, all_day)


def test_repeat_rules_are_valid_rrules_that_dateutil_enumerates():
    from dateutil.rrule import rrulestr

    parsed = parse("water plants every monday 9am")
    rule = rrulestr(parsed.repeat, dtstart=parsed.due_at.replace(tzinfo=None))
    assert [d.day for d in rule[:3]] == [30, 7, 14]


@pytest.mark.parametrize(
    ("text", "locale", "title", "repeat", "first"),
    [
        ("Blumen gießen jeden Montag", "de-DE", "Blumen gießen", "FREQ=WEEKLY;BYDAY=MO", "2026-11-30"),
        ("arroser les plantes tous les lundis", "fr-FR", "arroser les plantes", "FREQ=WEEKLY;BYDAY=MO", "2026-11-30"),
        ("regar las plantas todos los lunes", "es-ES", "regar las plantas", "FREQ=WEEKLY;BYDAY=MO", "2026-11-30"),
        ("Miete zahlen monatlich am 1.", "de-DE", "Miete zahlen", "FREQ=MONTHLY;BYMONTHDAY=1", "2026-12-01"),
    ],
)
def test_repeat_phrases_in_other_languages(text, locale, title, repeat, first):
    parsed = parse_quick_add(text, now=NOW, timezone=BERLIN, locale=locale)
    assert (parsed.title, parsed.repeat, parsed.due_at.date().isoformat()) == (title, repeat, first)


# A repeat phrase combines with a time, a part of the day, an until date and a count in any order,
# and every one of them leaves the title (Thursday 2026-11-26 10:00 Berlin).
@pytest.mark.parametrize(
    ("text", "locale", "title", "repeat", "due"),
    [
        ("yoga at 7am every day until dec 31", "en-US", "yoga", "FREQ=DAILY;UNTIL=20261231T235959",
         "2026-11-27T07:00:00+01:00"),
        ("pills daily until 12/31 at 8pm", "en-US", "pills", "FREQ=DAILY;UNTIL=20261231T235959",
         "2026-11-26T20:00:00+01:00"),
        ("run every morning at 6:30", "en-US", "run", "FREQ=DAILY", "2026-11-27T06:30:00+01:00"),
        ("call grandma every sunday evening", "en-US", "call grandma", "FREQ=WEEKLY;BYDAY=SU",
         "2026-11-29T19:00:00+01:00"),
        ("date night every other saturday at 7pm", "en-US", "date night", "FREQ=WEEKLY;INTERVAL=2;BYDAY=SA",
         "2026-11-28T19:00:00+01:00"),
        ("weekly report every friday 4pm", "en-US", "weekly report", "FREQ=WEEKLY;BYDAY=FR",
         "2026-11-27T16:00:00+01:00"),
        ("walk every 2 weeks on monday and thursday", "en-US", "walk", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH",
         "2026-11-26T00:00:00+01:00"),
        ("review budget quarterly", "en-US", "review budget", "FREQ=MONTHLY;INTERVAL=3", "2026-11-26T00:00:00+01:00"),
        ("book club the last friday of every month", "en-US", "book club", "FREQ=MONTHLY;BYDAY=-1FR",
         "2026-11-27T00:00:00+01:00"),
        ("Joggen wöchentlich am Freitag um 18 Uhr", "de-DE", "Joggen", "FREQ=WEEKLY;BYDAY=FR",
         "2026-11-27T18:00:00+01:00"),
        ("pay bills on the last day of every month", "en-US", "pay bills", "FREQ=MONTHLY;BYMONTHDAY=-1",
         "2026-11-30T00:00:00+01:00"),
        ("review every month on the first monday at 9am", "en-US", "review", "FREQ=MONTHLY;BYDAY=1MO",
         "2026-12-07T09:00:00+01:00"),
        # "for 6 weeks": UNTIL six weeks after the first occurrence, less a day (six Mondays)
        ("physio every monday at 9am for 6 weeks", "en-US", "physio", "FREQ=WEEKLY;BYDAY=MO;UNTIL=20270110T235959",
         "2026-11-30T09:00:00+01:00"),
        ("Tabletten täglich um 8 Uhr 10 Tage lang", "de-DE", "Tabletten", "FREQ=DAILY;UNTIL=20261206T235959",
         "2026-11-27T08:00:00+01:00"),
        ("payroll fortnightly on friday", "en-US", "payroll", "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR",
         "2026-11-27T00:00:00+01:00"),
        ("report every business day at 5pm", "en-US", "report", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
         "2026-11-26T17:00:00+01:00"),
        ("club le dernier vendredi du mois", "fr-FR", "club", "FREQ=MONTHLY;BYDAY=-1FR", "2026-11-27T00:00:00+01:00"),
        ("informe cada viernes a las 16:00 hasta el 30 de diciembre", "es-ES", "informe",
         "FREQ=WEEKLY;BYDAY=FR;UNTIL=20261230T235959", "2026-11-27T16:00:00+01:00"),
        ("flexiones todos los días 10 veces por la noche", "es-ES", "flexiones", "FREQ=DAILY;COUNT=10",
         "2026-11-26T20:00:00+01:00"),
    ],
)
def test_repeat_phrases_combine_with_the_rest_of_the_line(text, locale, title, repeat, due):
    parsed = parse_quick_add(text, now=NOW, timezone=BERLIN, locale=locale)
    assert (parsed.title, parsed.repeat, iso(parsed)) == (title, repeat, due)


@pytest.mark.parametrize("text", ["yoga every day until Feb 30", "yoga every day until 5pm"])
def test_an_until_that_names_no_last_day_leaves_the_rule_unbuilt(text):
    parsed = parse(text)
    assert parsed.repeat is None
    assert "every day" in parsed.title  # ("until 5pm" is then read as a due time, as "before 5pm" is)


def test_untils_that_name_no_date_elsewhere_in_the_line_stay_in_the_title():
    """Only an until right after the phrase belongs to it; a few others are tried (a hostile line stays cheap)."""
    parsed = parse("stretch every day at 7am" + " until x" * 40)
    assert (parsed.repeat, iso(parsed)) == ("FREQ=DAILY", "2026-11-27T07:00:00+01:00")
    assert parsed.title == "stretch" + " until x" * 40


@pytest.mark.parametrize(
    "text",
    [
        "every 0 days stretch",  # dateutil refuses INTERVAL=0: no rule, the words stay
        "pay rent every month on the 31st for 0 times",
    ],
)
def test_a_refused_rule_leaves_the_phrase_in_the_title(text):
    parsed = parse(text)
    assert parsed.repeat is None
    assert "every" in parsed.title


@pytest.mark.parametrize(
    ("timezone", "text", "due"),
    [
        # The same instant: 2026-11-26 09:00 UTC = 04:00 New York = 18:00 Tokyo.
        ("America/New_York", "gym tomorrow 5pm", "2026-11-27T17:00:00-05:00"),
        ("America/New_York", "gym at 5pm", "2026-11-26T17:00:00-05:00"),
        ("America/New_York", "gym today 9am", "2026-11-26T09:00:00-05:00"),
        ("America/New_York", "gym in 2 hours", "2026-11-26T06:00:00-05:00"),
        ("Asia/Tokyo", "gym tomorrow 5pm", "2026-11-27T17:00:00+09:00"),
        ("Asia/Tokyo", "gym at 5pm", "2026-11-27T17:00:00+09:00"),  # 17:00 already past in Tokyo
        ("Asia/Tokyo", "gym dec 24", "2026-12-24T00:00:00+09:00"),
        ("UTC", "gym tomorrow 5pm", "2026-11-27T17:00:00+00:00"),
        ("UTC", "gym at 9:30am", "2026-11-26T09:30:00+00:00"),
        ("UTC", "gym next monday 10am", "2026-11-30T10:00:00+00:00"),
    ],
)
def test_relative_dates_resolve_in_the_users_timezone(timezone, text, due):
    parsed = parse(text, timezone=timezone)
    assert (parsed.title, iso(parsed)) == ("gym", due)
    assert parsed.due_at.tzinfo == ZoneInfo(timezone)


def test_now_is_converted_to_the_users_zone_before_resolving():
    # 02:00 UTC on Thursday is still Wednesday 21:00 in New York, so "tomorrow" is Thursday.
    now_utc = datetime(2026, 11, 26, 2, 0, tzinfo=ZoneInfo("UTC"))
    parsed = parse("gym tomorrow", now=now_utc, timezone="America/New_York")
    assert (iso(parsed), parsed.all_day) == ("2026-11-26T00:00:00-05:00", True)


def test_dst_spring_forward_uses_the_offset_of_the_due_date():
    parsed = parse("gym tomorrow 9am", now=datetime(2027, 3, 27, 12, 0, tzinfo=ZoneInfo(BERLIN)))
    assert iso(parsed) == "2027-03-28T09:00:00+02:00"


def test_dst_in_hours_counts_elapsed_time():
    # 01:30 CET; clocks jump 02:00 -> 03:00, so two real hours later it is 04:30 CEST.
    parsed = parse("gym in 2 hours", now=datetime(2027, 3, 28, 1, 30, tzinfo=ZoneInfo(BERLIN)))
    assert iso(parsed) == "2027-03-28T04:30:00+02:00"


def test_dst_gap_time_moves_to_the_real_instant():
    # 02:30 does not exist on 2027-03-28 in Berlin.
    parsed = parse("gym today 2:30am", now=datetime(2027, 3, 28, 0, 30, tzinfo=ZoneInfo(BERLIN)))
    assert iso(parsed) == "2027-03-28T03:30:00+02:00"


def test_dst_fall_back_all_day_keeps_midnight():
    parsed = parse("gym oct 31", now=datetime(2027, 10, 30, 12, 0, tzinfo=ZoneInfo(BERLIN)))
    assert (iso(parsed), parsed.all_day) == ("2027-10-31T00:00:00+02:00", True)


@pytest.mark.parametrize(
    ("text", "tags", "title"),
    [
        ("plan trip #family #Work-Stuff #a_b", ["family", "work-stuff", "a_b"], "plan trip"),
        ("#Work plan #work trip #WORK", ["work"], "plan trip"),
        ("learn C# basics #dev", ["dev"], "learn C# basics"),
        ("plan #2026 trip", ["2026"], "plan trip"),
        ("plan trip", [], "plan trip"),
    ],
)
def test_tags(text, tags, title):
    parsed = parse(text)
    assert (parsed.tags, parsed.title) == (tags, title)


@pytest.mark.parametrize(
    ("text", "priority", "title"),
    [
        ("file taxes", "normal", "file taxes"),
        ("file taxes !low", "low", "file taxes"),
        ("file taxes !normal", "normal", "file taxes"),
        ("file taxes !HIGH", "high", "file taxes"),
        ("!Urgent file taxes", "urgent", "file taxes"),
        ("file taxes !!", "high", "file taxes"),
        ("file taxes !!!", "urgent", "file taxes"),
        ("file taxes !low !urgent", "urgent", "file taxes"),  # the last marker wins
        ("file !!! taxes !low", "low", "file taxes"),
        ("file taxes now!!", "normal", "file taxes now!!"),  # not a standalone marker
        ("file taxes !later", "normal", "file taxes !later"),
    ],
)
def test_priority(text, priority, title):
    parsed = parse(text)
    assert (parsed.priority, parsed.title) == (priority, title)


@pytest.mark.parametrize("timezone", ["Mars/Olympus_Mons", "", "../etc/passwd", "europe/berlin "])
def test_unknown_timezone_raises_value_error(timezone):
    with pytest.raises(ValueError, match="timezone"):
        parse("call mom", timezone=timezone)


@pytest.mark.parametrize("text", ["", "   ", "#family !high", "tomorrow 5pm #family", "on friday !!"])
def test_empty_title_raises_value_error(text):
    with pytest.raises(ValueError, match="the text has no title"):
        parse(text)


def test_naive_now_raises_value_error():
    with pytest.raises(ValueError, match="aware"):
        parse("call mom", now=datetime(2026, 11, 26, 10, 0))


def test_title_is_capped():
    parsed = parse("x" * 600 + " tomorrow 5pm")
    assert parsed.title == "x" * MAX_TITLE_LENGTH
    assert iso(parsed) == "2026-11-27T17:00:00+01:00"


def test_tags_longer_than_the_api_allows_stay_in_the_title():
    long_tag = "x" * 65
    parsed = parse_quick_add(f"plan trip #{long_tag} #ok", now=NOW, timezone="UTC")

    assert parsed.tags == ["ok"]
    assert f"#{long_tag}" in parsed.title


# --- issue 24: the semantics a to-do app needs (docs/quick-add.md) ------------------------
FRIDAY = datetime(2026, 11, 27, 10, 0, tzinfo=ZoneInfo(BERLIN))  # a Friday
WEDNESDAY = datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo(BERLIN))


@pytest.mark.parametrize(
    ("text", "now", "due", "all_day"),
    [
        ("submit form friday", FRIDAY, "2026-11-27T00:00:00+01:00", True),
        ("submit form this friday", FRIDAY, "2026-11-27T00:00:00+01:00", True),
        ("submit form next friday", FRIDAY, "2026-12-04T00:00:00+01:00", True),
        ("submit form next friday", WEDNESDAY, "2026-12-04T00:00:00+01:00", True),
        ("submit form November 27", FRIDAY, "2026-11-27T00:00:00+01:00", True),
        ("renew passport in May", FRIDAY, "2027-05-01T00:00:00+02:00", True),
        ("renew passport May 2027", FRIDAY, "2027-05-01T00:00:00+02:00", True),
        ("finish slides EOD", FRIDAY, "2026-11-27T17:00:00+01:00", False),
        ("finish slides end of week", WEDNESDAY, "2026-11-27T00:00:00+01:00", True),
        ("close books end of month", WEDNESDAY, "2026-11-30T00:00:00+01:00", True),
        ("clean garage this weekend", WEDNESDAY, "2026-11-28T00:00:00+01:00", True),
        ("backup midnight", WEDNESDAY, "2026-11-26T00:00:00+01:00", False),
        ("game tonight", WEDNESDAY, "2026-11-25T20:00:00+01:00", False),
        ("trash 11 tonight", WEDNESDAY, "2026-11-25T23:00:00+01:00", False),
        ("call Ann at 3", WEDNESDAY, "2026-11-25T15:00:00+01:00", False),
        ("lunch at 12.30", WEDNESDAY, "2026-11-25T12:30:00+01:00", False),
        ("standup tomorrow 10:00:00", WEDNESDAY, "2026-11-26T10:00:00+01:00", False),
        ("call LA 9am PST", WEDNESDAY, "2026-11-25T18:00:00+01:00", False),
        ("deploy 2026-11-25T18:00+00:00", WEDNESDAY, "2026-11-25T19:00:00+01:00", False),
        ("report last friday", WEDNESDAY, "2026-11-20T00:00:00+01:00", True),
        ("check in a couple of days", WEDNESDAY, "2026-11-27T00:00:00+01:00", True),
        ("invoice within 3 days", WEDNESDAY, "2026-11-28T00:00:00+01:00", True),
        ("stretch +15 minutes", WEDNESDAY, "2026-11-25T10:15:00+01:00", False),
        ("oven 2 hours later", WEDNESDAY, "2026-11-25T12:00:00+01:00", False),
    ],
)
def test_issue_24_semantics(text, now, due, all_day):
    parsed = parse(text, now=now)
    assert (iso(parsed), parsed.all_day) == (due, all_day)
    assert parsed.title == text.split(" ")[0] or parsed.title in text


@pytest.mark.parametrize(
    "text",
    ["May I borrow the ladder", "pay $12.30 to Joe", "add 1/2 cup sugar", "support is 24/7", "release v2.0",
     "plan offsite Feb 20 - 29", "read about the march on Washington", "meet between 8 and 9"],
)
def test_issue_24_no_date_lines_keep_their_title(text):
    parsed = parse(text, now=WEDNESDAY)
    assert (parsed.title, parsed.due_at) == (text, None)


@pytest.mark.parametrize(
    ("locale", "due"),
    [("en-US", "2027-08-10"), ("en-GB", "2027-10-08"), ("de-DE", "2027-10-08"), ("fr-FR", "2027-10-08"),
     ("es-ES", "2027-10-08"), ("de", "2027-10-08"), ("not a locale", "2027-08-10")],
)
def test_numeric_dates_follow_the_locale(locale, due):
    parsed = parse_quick_add("water plants 8/10/27", now=WEDNESDAY, timezone=BERLIN, locale=locale)
    assert (parsed.title, parsed.due_at.date().isoformat()) == ("water plants", due)


@pytest.mark.parametrize(
    ("text", "locale", "title", "due"),
    [
        ("Zahnarzt morgen um 17 Uhr", "de-DE", "Zahnarzt", "2026-11-26T17:00:00+01:00"),
        ("dentiste demain à 17h", "fr-FR", "dentiste", "2026-11-26T17:00:00+01:00"),
        ("dentista mañana a las 5 de la tarde", "es-ES", "dentista", "2026-11-26T17:00:00+01:00"),
        ("Zahnarzt tomorrow 5pm", "de-DE", "Zahnarzt", "2026-11-26T17:00:00+01:00"),  # English always works
        # "Uhr" and "h" name the 24-hour clock; a bare hour 1-7 ("um 3") is still pm
        ("Joggen morgen um 7 Uhr", "de-DE", "Joggen", "2026-11-26T07:00:00+01:00"),
        ("Joggen morgen um 3", "de-DE", "Joggen", "2026-11-26T15:00:00+01:00"),
    ],
)
def test_other_languages_by_locale(text, locale, title, due):
    parsed = parse_quick_add(text, now=WEDNESDAY, timezone=BERLIN, locale=locale)
    assert (parsed.title, iso(parsed)) == (title, due)


def test_german_phrasing_is_not_read_for_an_english_user():
    parsed = parse_quick_add("Zahnarzt morgen um 17 Uhr", now=WEDNESDAY, timezone=BERLIN, locale="en-US")
    assert (parsed.title, parsed.due_at) == ("Zahnarzt morgen um 17 Uhr", None)


def test_a_time_in_the_spring_forward_gap_moves_forward():
    saturday = datetime(2026, 3, 28, 12, 0, tzinfo=ZoneInfo(BERLIN))
    parsed = parse("call Oma sunday 2:30am", now=saturday)
    assert iso(parsed) == "2026-03-29T03:30:00+02:00"


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("call mom tomorrow, then dad", "call mom, then dad"),
        ("call mom (tomorrow 5pm)", "call mom"),
        ("call mom monday or tuesday", "call mom monday or tuesday"),  # not half a phrase
        ("call mom about friday's party", "call mom about friday's party"),
        ("Guten Morgen an alle schicken", "Guten Morgen an alle schicken"),
    ],
)
def test_titles_keep_no_piece_of_a_phrase_and_lose_none_of_the_rest(text, title):
    assert parse_quick_add(text, now=WEDNESDAY, timezone=BERLIN, locale="de-DE").title == title


@pytest.mark.parametrize(
    "text",
    ["meet 1pm-2pm tomorrow", "meet 9-11am thursday", "meet between 9:30 and 11:00 on thursday",
     "meet later than 9:30 but before 11:00 on Thursday", "meet after 5pm tomorrow", "trip Aug 8 - Aug 12"],
)
def test_ranges_and_open_starts_are_no_date_and_stay_whole(text):
    parsed = parse(text, now=WEDNESDAY)
    assert (parsed.title, parsed.due_at) == (text, None)


def test_a_line_with_the_private_use_mark_keeps_it():
    """The parser marks where a repeat phrase was cut with U+E000; a user's own U+E000 stays in the title."""
    parsed = parse("stretch \ue000 every day at 7am")
    assert (parsed.title, parsed.repeat) == ("stretch \ue000", "FREQ=DAILY")


@pytest.mark.parametrize("text, due", [
    ("call mom in 1 minute", datetime(2026, 11, 26, 10, 1, 40, tzinfo=ZoneInfo(BERLIN))),
    ("stretch +15 minutes", datetime(2026, 11, 26, 10, 15, 40, tzinfo=ZoneInfo(BERLIN))),
])
def test_a_duration_counts_from_this_second_not_this_minute(text, due):
    # Said at 10:00:40: a reminder "in 1 minute" is 60 s away, not 20 s (the minute tick sends it).
    parsed = parse_quick_add(text, now=NOW.replace(second=40), timezone=BERLIN)
    assert parsed.due_at == due
