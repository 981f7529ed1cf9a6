"""The words quick add reads, per language (en, de, fr, es): data only, used by workers.quickadd."""
from __future__ import annotations

LANGUAGES = ("en", "de", "fr", "es")

# Month names and abbreviations -> month number. Abbreviations may take a trailing dot.
MONTHS: dict[str, dict[str, int]] = {
    "en": {
        "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
        "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9,
        "sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
    },
    "de": {
        "januar": 1, "jänner": 1, "jan": 1, "februar": 2, "feb": 2, "märz": 3, "maerz": 3, "mrz": 3,
        "mär": 3, "april": 4, "apr": 4, "mai": 5, "juni": 6, "jun": 6, "juli": 7, "jul": 7, "august": 8,
        "aug": 8, "september": 9, "sept": 9, "sep": 9, "oktober": 10, "okt": 10, "november": 11, "nov": 11,
        "dezember": 12, "dez": 12,
    },
    "fr": {
        "janvier": 1, "janv": 1, "février": 2, "fevrier": 2, "févr": 2, "fév": 2, "fev": 2, "mars": 3,
        "avril": 4, "avr": 4, "mai": 5, "juin": 6, "juillet": 7, "juil": 7, "août": 8, "aout": 8,
        "septembre": 9, "sept": 9, "octobre": 10, "oct": 10, "novembre": 11, "nov": 11, "décembre": 12,
        "decembre": 12, "déc": 12, "dec": 12,
    },
    "es": {
        "enero": 1, "ene": 1, "febrero": 2, "feb": 2, "marzo": 3, "mar": 3, "abril": 4, "abr": 4,
        "mayo": 5, "may": 5, "junio": 6, "jun": 6, "julio": 7, "jul": 7, "agosto": 8, "ago": 8,
        "septiembre": 9, "setiembre": 9, "sept": 9, "sep": 9, "octubre": 10, "oct": 10, "noviembre": 11,
        "nov": 11, "diciembre": 12, "dic": 12,
    },
}
# Month words that are also ordinary words: they count only with a day, a year or a preposition.
WEAK_MONTHS = {"may", "mar", "march", "mai", "jun", "mars", "sept", "dec", "ago", "mayo"}

# Weekday names and abbreviations -> 0 (Monday) .. 6 (Sunday).
WEEKDAYS: dict[str, dict[str, int]] = {
    "en": {
        "monday": 0, "mondays": 0, "mon": 0, "tuesday": 1, "tuesdays": 1, "tues": 1, "tue": 1,
        "wednesday": 2, "wednesdays": 2, "wed": 2, "thursday": 3, "thursdays": 3, "thurs": 3, "thur": 3,
        "thu": 3, "friday": 4, "fridays": 4, "fri": 4, "saturday": 5, "saturdays": 5, "sat": 5,
        "sunday": 6, "sundays": 6, "sun": 6,
    },
    "de": {
        "montag": 0, "montags": 0, "mo": 0, "dienstag": 1, "dienstags": 1, "di": 1, "die": 1,
        "mittwoch": 2, "mittwochs": 2, "mi": 2, "donnerstag": 3, "donnerstags": 3, "do": 3,
        "freitag": 4, "freitags": 4, "fr": 4, "samstag": 5, "samstags": 5, "sonnabend": 5, "sa": 5,
        "sonntag": 6, "sonntags": 6, "so": 6,
    },
    "fr": {
        "lundi": 0, "lun": 0, "mardi": 1, "mar": 1, "mercredi": 2, "mer": 2, "jeudi": 3, "jeu": 3,
        "vendredi": 4, "ven": 4, "samedi": 5, "sam": 5, "dimanche": 6, "dim": 6,
    },
    "es": {
        "lunes": 0, "lun": 0, "lu": 0, "martes": 1, "mar": 1, "ma": 1, "miércoles": 2, "miercoles": 2,
        "mié": 2, "mie": 2, "mx": 2, "jueves": 3, "jue": 3, "ju": 3, "viernes": 4, "vie": 4, "vi": 4,
        "sábado": 5, "sabado": 5, "sáb": 5, "sab": 5, "sa": 5, "domingo": 6, "dom": 6, "do": 6,
    },
}
# Weekday words that are also ordinary words or too short to trust alone.
WEAK_WEEKDAYS = {"wed", "sat", "sun", "mon", "mo", "di", "die", "mi", "do", "fr", "sa", "so", "mar", "mer",
                 "jeu", "sam", "lu", "ma", "mx", "ju", "vi", "dom", "sab", "vie", "mie", "ven"}

NUMBERS: dict[str, dict[str, int]] = {
    "en": {
        "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
        "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
        "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
        "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
        "a couple of": 2, "a couple": 2, "couple of": 2, "a pair of": 2, "a few": 3, "few": 3,
    },
    "de": {
        "ein": 1, "eine": 1, "einer": 1, "einem": 1, "einen": 1, "zwei": 2, "drei": 3, "vier": 4,
        "fünf": 5, "sechs": 6, "sieben": 7, "acht": 8, "neun": 9, "zehn": 10, "elf": 11, "zwölf": 12,
        "vierzehn": 14, "fünfzehn": 15, "zwanzig": 20, "dreißig": 30, "ein paar": 2, "paar": 2,
    },
    "fr": {
        "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6, "sept": 7,
        "huit": 8, "neuf": 9, "dix": 10, "onze": 11, "douze": 12, "treize": 13, "quatorze": 14,
        "quinze": 15, "seize": 16, "vingt": 20, "vingt quatre": 24, "vingt-quatre": 24, "trente": 30,
        "quelques": 3,
    },
    "es": {
        "un": 1, "una": 1, "uno": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6,
        "siete": 7, "ocho": 8, "nueve": 9, "diez": 10, "once": 11, "doce": 12, "trece": 13,
        "catorce": 14, "quince": 15, "dieciséis": 16, "veinte": 20, "veinticuatro": 24, "treinta": 30,
        "cuarenta y cinco": 45, "cuarenta": 40, "unos": 3, "unas": 3,
    },
}
ORDINAL_WORDS: dict[str, int] = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "premier": 1, "1er": 1, "primero": 1,
    "erster": 1, "ersten": 1,
}

# Units -> (kind, amount). kind: "minutes"/"hours" are elapsed time; the rest are calendar units.
UNITS: dict[str, dict[str, str]] = {
    "en": {
        "sec": "seconds", "secs": "seconds", "second": "seconds", "seconds": "seconds",
        "m": "minutes", "min": "minutes", "mins": "minutes", "minute": "minutes", "minutes": "minutes", "'": "minutes",
        "h": "hours", "hr": "hours", "hrs": "hours", "hour": "hours", "hours": "hours",
        "day": "days", "days": "days", "week": "weeks", "weeks": "weeks", "wk": "weeks", "wks": "weeks",
        "fortnight": "fortnights", "month": "months", "months": "months", "year": "years", "years": "years",
        "yr": "years", "yrs": "years",
    },
    "de": {
        "sekunde": "seconds", "sekunden": "seconds", "minute": "minutes", "minuten": "minutes",
        "min": "minutes", "stunde": "hours", "stunden": "hours", "std": "hours", "tag": "days",
        "tage": "days", "tagen": "days", "woche": "weeks", "wochen": "weeks", "monat": "months",
        "monate": "months", "monaten": "months", "jahr": "years", "jahre": "years", "jahren": "years",
    },
    "fr": {
        "seconde": "seconds", "secondes": "seconds", "minute": "minutes", "minutes": "minutes",
        "min": "minutes", "heure": "hours", "heures": "hours", "h": "hours", "jour": "days",
        "jours": "days", "semaine": "weeks", "semaines": "weeks", "mois": "months", "an": "years",
        "ans": "years", "année": "years", "années": "years",
    },
    "es": {
        "segundo": "seconds", "segundos": "seconds", "minuto": "minutes", "minutos": "minutes",
        "min": "minutes", "hora": "hours", "horas": "hours", "día": "days", "dia": "days",
        "días": "days", "dias": "days", "semana": "weeks", "semanas": "weeks", "mes": "months",
        "meses": "months", "año": "years", "años": "years", "ano": "years", "anos": "years",
    },
}

# Parts of the day -> the hour they mean when no clock time is given.
PARTS_OF_DAY: dict[str, dict[str, int]] = {
    "en": {"early morning": 7, "morning": 9, "forenoon": 10, "late morning": 11, "very late morning": 11,
           "noon": 12, "midday": 12, "early": 9, "late": 19, "very late": 22, "first thing": 9,
           "first thing in the morning": 9, "lunchtime": 12,
           "very early afternoon": 13, "afternoon": 15, "late afternoon": 17, "evening": 19,
           "late evening": 22, "night": 20, "tonight": 20},
    "de": {"früh morgens": 7, "sehr früh": 7, "morgens": 9, "früh": 9, "in der früh": 9, "vormittag": 10,
           "vormittags": 10, "spät": 19, "später abend": 22, "spät nachmittags": 17, "am späten nachmittag": 17,
           "sehr früher nachmittag": 13,
           "mittag": 12, "mittags": 12, "nachmittag": 15, "nachmittags": 15, "am nachmittag": 15,
           "abend": 19, "abends": 19, "am abend": 19, "nacht": 20, "nachts": 20},
    "fr": {"matin": 9, "du matin": 9, "du mat": 9, "midi": 12, "après-midi": 15, "apres-midi": 15,
           "soir": 19, "du soir": 19, "soirée": 19, "dans la soirée": 19, "nuit": 20},
    "es": {"de la mañana": 9, "por la mañana": 9, "en la mañana": 9, "de la manana": 9,
           "en la manana": 9, "por la manana": 9, "mediodía": 12, "del mediodía": 12,
           "de la tarde": 15, "por la tarde": 15, "en la tarde": 15, "de la noche": 20, "por la noche": 20},
}

# Parts of the day that are adverbs, never nouns: they count alone ("abends", "tonight").
ADVERB_PARTS_OF_DAY = {"tonight", "morgens", "abends", "nachts", "vormittags", "nachmittags", "mittags",
                       "früh morgens", "in der früh", "spät nachmittags"}

# Zone abbreviations that are also words in one of the languages: they count only in capitals.
WORD_LIKE_ZONES = {"cet", "est", "ist", "mez", "bst", "et", "ct", "pt", "mt", "z"}

# Stated zones people write after a time -> IANA name (or a fixed offset in minutes).
ZONES: dict[str, str] = {
    "utc": "UTC", "gmt": "UTC", "z": "UTC", "pst": "-480", "pdt": "-420", "pt": "America/Los_Angeles",
    "mst": "-420", "mdt": "-360", "mt": "America/Denver", "cst": "-360", "cdt": "-300", "ct": "America/Chicago",
    "est": "-300", "edt": "-240", "et": "America/New_York", "bst": "60", "cet": "60", "cest": "120",
    "mez": "60", "mesz": "120", "eet": "120", "eest": "180", "ist": "330", "jst": "540", "kst": "540",
    "aest": "600", "aedt": "660", "hkt": "480", "sgt": "480",
}
