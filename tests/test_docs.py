"""README.md and docs/*.md hold to the code, as ops/RUNBOOK.md does (tests/ops/test_runbook.py):
every `assistant` command in them parses with the real command line, every block marked as
run by a test is run by it, every page is on the README's map and every link leads somewhere."""
from __future__ import annotations

import re

import click
import pytest

from tests.ops.runbook import assistant_commands, marked_blocks
from tests.ops.test_runbook import PLACEHOLDER, expand, parse
from tests.support import ROOT

pytestmark = pytest.mark.fast

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_the_readme_is_short_and_maps_every_page_of_docs():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 120, "the README is what a newcomer reads to the end: move detail into docs/"
    unmapped = [page.name for page in PAGES[1:] if f"](docs/{page.name})" not in readme]
    assert not unmapped, f"the README's map does not name {unmapped}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_assistant_command_parses_with_the_real_cli(page):
    for args, assigned in assistant_commands(page):
        expanded = [expand(word, assigned) for word in args]
        shown = " ".join(["assistant", *args])
        assert not any(PLACEHOLDER.search(word) for word in expanded), f"{page.name}: a placeholder in `{shown}`"
        try:
            parse(expanded)
        except click.ClickException as exc:
            pytest.fail(f"{page.name}: `{shown}` does not parse: {exc.format_message()}")


def test_the_pages_name_some_assistant_commands():
    assert sum(len(assistant_commands(page)) for page in PAGES) >= 8


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_leads_to_a_file_of_the_tree(page):
    broken = [target for target in LINK.findall(page.read_text())
              if "://" not in target and not (page.parent / target).exists()]
    assert not broken, f"{page.name} links to {broken}, which do not exist"


def test_every_block_marked_as_run_by_a_test_is_run_by_it():
    marked = {(test, name) for page in PAGES for test, name in marked_blocks(page)}
    assert ("tests/e2e/test_tour.py", "readme-tour") in marked
    for test, name in marked:
        source = (ROOT / test).read_text()
        assert re.search(rf"""["']{re.escape(name)}["']""", source), f"{test} does not run the block `{name}`"
