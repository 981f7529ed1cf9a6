"""The user's locale: a BCP 47 tag whose language quick add reads (en, de, fr, es), any region."""
from __future__ import annotations

import re

from babel import Locale, UnknownLocaleError, parse_locale

SUPPORTED_LANGUAGES = ("en", "de", "fr", "es")
DEFAULT_LOCALE = "en-US"
MAX_LENGTH = 35  # RFC 5646 section 4.4.1: 35 characters hold any tag worth keeping
# Well-formed per RFC 5646's shape: a language, then subtags of letters and digits joined by
# "-" or "_". Babel decides which of those are real; this only keeps junk away from it.
_WELL_FORMED = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*\Z")


class LocaleError(ValueError):
    """A locale we do not take; the message lists what we do."""


def normalize_locale(value: str) -> str:
    """The tag as Babel reads it ("en-gb" -> "en-GB", "de" -> "de"); LocaleError if not supported."""
    refused = LocaleError(f"Use a BCP 47 tag whose language is one of {', '.join(SUPPORTED_LANGUAGES)} "
                          "(e.g. en-US, en-GB, de-DE, fr-FR, es-ES).")
    if not isinstance(value, str) or len(value) > MAX_LENGTH or not _WELL_FORMED.match(value):
        raise refused
    tag = value.replace("_", "-")
    try:
        language, territory, _script, _variant = parse_locale(tag, sep="-")
        locale = Locale.parse(tag, sep="-")
    except (ValueError, TypeError):
        raise refused from None
    except UnknownLocaleError:
        # CLDR has no data for every pair (de-US, es-CA); the language's own data serves them.
        locale = None
    if language.lower() not in SUPPORTED_LANGUAGES:
        raise refused
    if locale is not None and locale.territory == territory:
        return "-".join(part for part in (locale.language, locale.script, locale.territory) if part)
    if territory is None:
        return language.lower()
    # Any region CLDR knows (US, 419), also where Babel would substitute a likely one.
    if territory not in Locale("en").territories:
        raise refused
    return f"{language.lower()}-{territory}"
