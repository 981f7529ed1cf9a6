"""Repeat rules (shared.repeat): which rules are taken, and where occurrences fall across DST."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.repeat import MAX_LENGTH, RepeatError, check, next_occurrence, normalize

pytestmark = pytest.mark.fast

BERLIN = ZoneInfo("Europe/Berlin")


def transitions(zone: ZoneInfo, *, since: datetime, years: int = 2) -> list[tuple[datetime, timedelta]]:
    """The zone's UTC-offset changes after `since` (the instant, and the change), found by zoneinfo."""
    found, moment = [], since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    offset = moment.astimezone(zone).utcoffset()
    for _ in range(years * 366 * 24):
        moment += timedelta(hours=1)
        now_offset = moment.astimezone(zone).utcoffset()
        if now_offset != offset:  # changes happen on the hour in every zone this tests
            found.append((moment, now_offset - offset))
            offset = now_offset
    return found


def next_change(zone: ZoneInfo, *, forward: bool) -> datetime:
    """The next instant the zone's clocks jump forward (a gap) or back (a fold)."""
    return next(moment for moment, change in transitions(zone, since=datetime.now(UTC)) if (change > timedelta(0)) == forward)


@pytest.mark.parametrize(("sent", "kept"), [
    ("FREQ=WEEKLY;BYDAY=MO", "FREQ=WEEKLY;BYDAY=MO"),
    ("rrule:freq=weekly;byday=mo", "FREQ=WEEKLY;BYDAY=MO"),
    (" FREQ=MONTHLY;BYMONTHDAY=1 ", "FREQ=MONTHLY;BYMONTHDAY=1"),
    ("FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;UNTIL=20301231T235959Z", "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;UNTIL=20301231T235959Z"),
])
def test_rules_are_kept_in_their_normal_spelling(sent, kept):
    assert normalize(sent) == kept


@pytest.mark.parametrize("sent", [
    "FREQ=SECONDLY", "FREQ=MINUTELY;COUNT=2", "FREQ=HOURLY;INTERVAL=24",
    "DTSTART:20270101T090000\nRRULE:FREQ=DAILY", "FREQ=DAILY\nEXDATE:20270102T090000", "RDATE:20270101",
    "FREQ=DAILY;BYHOUR=1,2,3", "FREQ=DAILY;BYMINUTE=5", "BYDAY=MO", "FREQ=DAILY;FREQ=WEEKLY",
    "FREQ=DAILY;COUNT=2;UNTIL=20300101", "FREQ=DAILY;INTERVAL=0", "FREQ=DAILY;COUNT=-1", "FREQ=DAILY;X-NAME=1",
    "FREQ=WEEKLY;BYDAY=" + ",".join(["MO"] * 100), "", ";", "FREQ=", "FREQ=DAILY;;",
])
def test_rules_we_do_not_take_are_refused_before_dateutil_sees_them(sent):
    with pytest.raises(RepeatError) as refused:
        normalize(sent)

    assert refused.value.code == "validation_error"
    assert len(sent) <= MAX_LENGTH or "256" in str(refused.value)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("never", [
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",  # dateutil alone walks day by day to 9999 (26 s)
    "FREQ=WEEKLY;BYDAY=MO;BYSETPOS=5",
    "FREQ=MONTHLY;BYMONTH=4;BYMONTHDAY=31",
    "FREQ=YEARLY;BYWEEKNO=53;BYMONTH=6",
    "FREQ=DAILY;UNTIL=20200101T000000Z",
])
def test_a_rule_with_no_occurrence_within_ten_years_is_refused_quickly(never):
    with pytest.raises(RepeatError) as refused:
        check(never, start=datetime(2027, 1, 4, 9, tzinfo=BERLIN), zone=BERLIN)

    assert refused.value.code == "repeat_no_occurrence"


def test_a_rare_rule_within_ten_years_is_taken():
    start = datetime(2027, 1, 4, 9, tzinfo=BERLIN)
    rule = check("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", start=start, zone=BERLIN)

    assert next_occurrence(rule, start=start, zone=BERLIN, after=start) == datetime(2028, 2, 29, 9, tzinfo=BERLIN)


def test_weekly_occurrences_keep_their_wall_clock_time_across_the_next_change_of_offset():
    change = next_change(BERLIN, forward=True)
    before = change - timedelta(days=10)  # a start on the old offset
    start = datetime.combine(before.astimezone(BERLIN).date(), datetime.min.time(), BERLIN).replace(hour=9)

    after_change = next_occurrence("FREQ=DAILY", start=start, zone=BERLIN, after=change)

    local = after_change.astimezone(BERLIN)
    assert (local.hour, local.minute) == (9, 0)
    assert local.utcoffset() != start.utcoffset()
    assert after_change - change < timedelta(days=1)


def test_an_occurrence_in_a_gap_is_placed_after_it_and_one_in_a_fold_takes_the_first():
    gap = next_change(BERLIN, forward=True)
    fold = next_change(BERLIN, forward=False)
    gap_local = (gap - timedelta(minutes=30)).astimezone(BERLIN)  # 01:30 just before the clocks jump
    day_before_gap = (gap_local - timedelta(days=1)).replace(hour=gap_local.hour + 1, minute=30)  # 02:30

    in_gap = next_occurrence("FREQ=DAILY", start=day_before_gap, zone=BERLIN, after=day_before_gap)

    # 02:30 does not exist that day: the wall clock reads 03:30 (ZoneInfo's fold=0 offset).
    assert in_gap.astimezone(BERLIN).date() == gap_local.date()
    assert (in_gap.astimezone(BERLIN).hour, in_gap.astimezone(BERLIN).minute) == (gap_local.hour + 2, 30)

    fold_local = (fold - timedelta(minutes=30)).astimezone(BERLIN)  # 02:30, the first time
    day_before_fold = fold_local - timedelta(days=1)
    in_fold = next_occurrence("FREQ=DAILY", start=day_before_fold, zone=BERLIN, after=day_before_fold)
    assert in_fold == fold - timedelta(minutes=30)
    assert next_occurrence("FREQ=DAILY", start=day_before_fold, zone=BERLIN, after=in_fold) == in_fold + timedelta(
        days=1, hours=1)


def test_count_counts_from_the_persisted_start_and_until_ends_the_series():
    start = datetime(2027, 1, 4, 9, tzinfo=UTC)

    third = next_occurrence("FREQ=DAILY;COUNT=3", start=start, zone=ZoneInfo("UTC"), after=start + timedelta(days=1))

    assert third == start + timedelta(days=2)
    assert next_occurrence("FREQ=DAILY;COUNT=3", start=start, zone=ZoneInfo("UTC"), after=third) is None
    assert next_occurrence("FREQ=DAILY;UNTIL=20270105T090000Z", start=start, zone=ZoneInfo("UTC"),
                           after=start + timedelta(days=1)) is None


def test_a_rule_started_long_ago_still_finds_its_next_occurrence():
    start = datetime(2017, 1, 2, 9, tzinfo=BERLIN)  # a Monday, ten years back

    following = next_occurrence("FREQ=WEEKLY;BYDAY=MO;INTERVAL=2", start=start, zone=BERLIN,
                                after=datetime(2027, 1, 6, tzinfo=UTC))

    local = following.astimezone(BERLIN)
    assert (local.weekday(), local.hour) == (0, 9)
    assert (local.date() - start.date()).days % 14 == 0


_PARTS = st.sampled_from(["FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO",
                          "BYMONTH", "BYSETPOS", "WKST", "BYHOUR", "DTSTART"])
_VALUES = st.one_of(
    st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY", "HOURLY", "MO", "1MO", "-1FR", "SU,SA", "0", "53",
                     "-366", "366", "31", "-31", "2", "12", "13", "20300101", "20300101T000000Z", "99999999"]),
    st.text(alphabet="0123456789,+-MOTUWEFRSA", max_size=12),
)
_RULES = st.lists(st.tuples(_PARTS, _VALUES), min_size=1, max_size=6).map(
    lambda parts: ";".join(f"{name}={value}" for name, value in parts))


@pytest.mark.timeout(120)
@settings(max_examples=300, deadline=None)
@given(rule=st.one_of(_RULES, st.text(max_size=300)))
def test_any_text_is_a_rule_we_take_or_a_repeat_error_and_never_takes_long(rule):
    start = datetime(2027, 1, 4, 9, tzinfo=BERLIN)
    try:
        value = check(rule, start=start, zone=BERLIN)
    except RepeatError:
        return
    following = next_occurrence(value, start=start, zone=BERLIN, after=start)
    assert following is None or following > start


@pytest.mark.timeout(10)
def test_a_count_rule_started_centuries_ago_has_ended_instead_of_walking_them():
    start = datetime(1, 1, 2, 9, tzinfo=UTC)

    assert check("FREQ=DAILY;COUNT=10000;BYDAY=MO;BYMONTHDAY=13", start=start, zone=ZoneInfo("UTC"))
    assert next_occurrence("FREQ=DAILY;COUNT=10000;BYDAY=MO;BYMONTHDAY=13", start=start, zone=ZoneInfo("UTC"),
                           after=datetime(2027, 1, 1, tzinfo=UTC)) is None


@pytest.mark.parametrize("start", [datetime(9999, 12, 30, 23, tzinfo=UTC), datetime(1, 1, 2, 0, tzinfo=UTC)])
def test_the_ends_of_the_calendar_are_no_error(start):
    for zone in (BERLIN, ZoneInfo("America/New_York"), ZoneInfo("Pacific/Kiritimati")):
        try:
            rule = check("FREQ=DAILY", start=start, zone=zone)
        except RepeatError as refused:
            assert refused.code == "repeat_no_occurrence"
            continue
        following = next_occurrence(rule, start=start, zone=zone, after=start)
        assert following is None or following > start
