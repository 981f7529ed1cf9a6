"""Score the quick-add parser on the corpus in tests/quickadd_corpus/ (accuracy and CPU per line).

``python -m bench.quickadd_corpus`` prints the table by language and category and the failures;
tests/workers/test_quickadd_corpus.py runs the same scoring and asserts the thresholds.
"""
from __future__ import annotations

import csv
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

CORPUS_DIR = Path(__file__).resolve().parent.parent / "tests" / "quickadd_corpus"


@dataclass(frozen=True)
class Case:
    """One corpus line: the text, when and where it is said, and the expected result."""

    id: str
    locale: str
    zone: str
    now: datetime
    text: str
    expected: str  # "D:<date>" all-day, "T:<wall-clock datetime>", "N" no date, "EXCLUDED"
    title: str
    repeat: str

    @property
    def language(self) -> str:
        """The language subtag: en, de, fr or es."""
        return self.locale[:2]

    @property
    def kind(self) -> str:
        """The category reported: repeat, none, date or time."""
        if self.repeat:
            return "repeat"
        return {"N": "none", "D": "date", "T": "time"}[self.expected[0]]

    @property
    def source(self) -> str:
        """The set the case comes from (duckling, ctparse or own)."""
        return self.id.split("-")[0]


def load_cases() -> list[Case]:
    """Read every TSV set; the excluded cases (listed in the README) are left out."""
    cases = []
    for path in sorted(CORPUS_DIR.glob("*.tsv")):
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                if row["expected"] == "EXCLUDED":
                    continue
                now = datetime.fromisoformat(row["now"]).replace(tzinfo=ZoneInfo(row["zone"]))
                cases.append(Case(row["id"], row["locale"], row["zone"], now, row["text"], row["expected"],
                                  row["title"], row["repeat"]))
    return cases


def check(case: Case, parsed) -> str | None:
    """Return None when the parse matches the case, else a short description of the difference."""
    if parsed is None:
        return "raised"
    got_due = "N"
    if parsed.due_at is not None:
        local = parsed.due_at.astimezone(ZoneInfo(case.zone))
        got_due = f"D:{local.date().isoformat()}" if parsed.all_day else f"T:{local:%Y-%m-%dT%H:%M}"
    problems = []
    if got_due != case.expected:
        problems.append(f"due {got_due} != {case.expected}")
    if parsed.title != case.title:
        problems.append(f"title {parsed.title!r} != {case.title!r}")
    if (parsed.repeat or "") != case.repeat:
        problems.append(f"repeat {parsed.repeat!r} != {case.repeat!r}")
    return "; ".join(problems) or None


@dataclass
class Score:
    """Results of one run: failures per case id, counts per group, CPU per line."""

    total: dict[str, int]
    right: dict[str, int]
    failures: dict[str, tuple[Case, str]]
    cpu_ms_per_case: float

    def accuracy(self, group: str) -> float:
        """Share of the group's cases that are right (date, time, title and repeat together)."""
        return self.right[group] / self.total[group] if self.total[group] else 1.0

    def table(self) -> str:
        """A markdown table: language x category, and the overall line per language."""
        lines = ["| group | right | cases | accuracy |", "| --- | ---: | ---: | ---: |"]
        for group in sorted(self.total):
            lines.append(f"| {group} | {self.right[group]} | {self.total[group]} | {self.accuracy(group):.1%} |")
        lines.append(f"\nCPU: {self.cpu_ms_per_case:.3f} ms per case (mean over {self.total['all']} cases)")
        return "\n".join(lines)


def score(parse, cases: list[Case] | None = None) -> Score:
    """Run ``parse(text, now=, timezone=, locale=)`` over the cases and score it."""
    cases = load_cases() if cases is None else cases
    total: dict[str, int] = defaultdict(int)
    right: dict[str, int] = defaultdict(int)
    failures: dict[str, tuple[Case, str]] = {}
    cpu = 0.0
    for case in cases:
        start = time.process_time()
        try:
            parsed = parse(case.text, now=case.now, timezone=case.zone, locale=case.locale)
        except ValueError:
            parsed = None
        cpu += time.process_time() - start
        problem = check(case, parsed)
        groups = ["all", case.language, f"{case.language}/{case.kind}", f"{case.language}/{case.source}"]
        for group in groups:
            total[group] += 1
            right[group] += problem is None
        if problem is not None:
            failures[case.id] = (case, problem)
    return Score(total, right, failures, cpu * 1000 / max(len(cases), 1))


def main() -> None:
    """Print the table and, with -v, every failure."""
    from workers.quickadd import parse_quick_add

    parse_quick_add("warm up", now=datetime.now(ZoneInfo("UTC")), timezone="UTC")
    result = score(parse_quick_add)
    print(result.table())
    if "-v" in sys.argv:
        for case_id, (case, problem) in sorted(result.failures.items()):
            print(f"{case_id}\t{case.text!r}\t{problem}")


if __name__ == "__main__":
    main()
