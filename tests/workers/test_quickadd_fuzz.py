"""Any text up to the quick-add length limit parses quickly or raises ValueError: no regex blows up."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workers.quickadd import ParsedTask, parse_quick_add

pytestmark = pytest.mark.fast  # no PostgreSQL, Redis or worker

LIMIT = 1000  # the tasks.quick_add job's maxLength (shared/jobtypes.py)
NOW = datetime(2026, 3, 8, 1, 59, tzinfo=ZoneInfo("America/New_York"))  # a minute before the DST gap
# Pieces that drive the date grammar's alternations and repeats hardest.
WORDS = ["1", "12", "2026", "3:30", "12.30", "10:00:00", "/", ".", "-", ":", " ", ",", "at", "on", "the", "of",
         "next", "every", "other", "until", "for", "times", "in", "a", "couple", "of", "days", "pm", "am", "PST",
         "+01:00", "may", "march", "friday", "tomorrow", "um", "Uhr", "halb", "viertel", "vor", "nach", "à", "h",
         "demain", "le", "las", "a las", "de", "mañana", "jeden", "tous les", "todos los", "!", "#tag", "$", "½"]


def check(text: str, locale: str) -> None:
    try:
        parsed = parse_quick_add(text, now=NOW, timezone="America/New_York", locale=locale)
    except ValueError:
        return
    assert isinstance(parsed, ParsedTask)
    assert parsed.title and len(parsed.title) <= 500


@pytest.mark.timeout(120)
@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=400).map(lambda w: " ".join(w)[:LIMIT]),
    st.sampled_from(["en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "zz", "", "\x00"]),
)
def test_word_soup_at_the_length_limit(text, locale):
    check(text, locale)


@pytest.mark.timeout(120)
@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.text(min_size=LIMIT - 50, max_size=LIMIT))
def test_any_text_at_the_length_limit(text):
    check(text, "de-DE")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "text",
    ["1" * LIMIT, "1 " * (LIMIT // 2), "1/" * (LIMIT // 2), "1:" * (LIMIT // 2), "a " * (LIMIT // 2),
     "every " * (LIMIT // 6), "12.30 " * (LIMIT // 6), "on the " * (LIMIT // 7), "- " * (LIMIT // 2),
     "\x00" * LIMIT, "#" * LIMIT, "x" * 100_000],
)
def test_degenerate_lines(text):
    check(text, "en-US")
