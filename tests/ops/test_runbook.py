"""ops/RUNBOOK.md holds to the code: every `assistant` command in it parses with the real
command line, every block marked as run by a test is run by that test, and the blocks of
this file run against a real api, worker and PostgreSQL."""
from __future__ import annotations

import re
import string

import click
import pytest

from shared.cli import main
from tests.ops.runbook import RUNBOOK, assistant_commands, marked_blocks, run_block
from tests.support import ROOT

# Placeholders an operator fills in, as the runbook writes them: `<backup id>` is not allowed,
# a command takes "$BACKUP_ID" from an assignment in its block instead.
PLACEHOLDER = re.compile(r"<[^>]+>")


def parse(args: list[str]) -> click.Context:
    """Resolve and parse `assistant ARGS` as the real command line does, without running it."""
    command: click.Command = main
    context = main.make_context("assistant", [], resilient_parsing=True)
    path = ["assistant"]
    while isinstance(command, click.Group):
        assert args, f"`{' '.join(path)}` needs a subcommand"
        name, *args = args
        found = command.get_command(context, name)
        assert found is not None, f"`{' '.join(path)}` has no subcommand {name!r}"
        path.append(name)
        command = found
        if isinstance(command, click.Group):
            context = click.Context(command, info_name=name, parent=context)
    return command.make_context(name, list(args), parent=context)  # raises on a bad option or value


def expand(word: str, assigned: dict[str, str]) -> str:
    # A variable set from a command's output (`X="$(assistant ...)"`) stands for some text.
    values = {name: "output-of-a-command" if value.startswith("$(") else value for name, value in assigned.items()}
    return string.Template(word).safe_substitute(values)


def test_the_runbook_has_every_section_written():
    text = RUNBOOK.read_text()
    assert "To be written" not in text
    for heading in ("Deploy", "Roll back", "From a nightly dump", "To a point in time", "Keys: rotation and escrow",
                    "Redis lost", "PostgreSQL failover", "The first 15 minutes of an incident", "Post-mortem template"):
        assert re.search(rf"^#+ {re.escape(heading)}$", text, re.M), heading


def test_every_assistant_command_in_the_runbook_parses_with_the_real_cli():
    commands = assistant_commands()
    assert len(commands) >= 20, "the runbook's `assistant` commands were not found"
    for args, assigned in commands:
        expanded = [expand(word, assigned) for word in args]
        shown = " ".join(["assistant", *args])
        assert not any(PLACEHOLDER.search(word) for word in expanded), f"a placeholder in `{shown}`"
        assert not any("$" in word for word in expanded), f"`{shown}` uses a variable its block does not set"
        try:
            parse(expanded)
        except click.ClickException as exc:
            pytest.fail(f"`{shown}` does not parse: {exc.format_message()}")


def test_a_command_the_cli_does_not_have_would_be_caught():
    with pytest.raises(AssertionError, match="no subcommand 'restor'"):
        parse(["backup", "restor", "x"])
    with pytest.raises(click.ClickException):
        parse(["backup", "verify", "not-a-uuid"])
    with pytest.raises(click.ClickException):
        parse(["jobs", "list", "--state", "queued"])


def test_every_block_marked_as_run_by_a_test_is_run_by_it():
    """The marker names the test file and the block; that file must run the block by its name."""
    marked = marked_blocks()
    assert {path for path, _ in marked} >= {"tests/ops/test_pitr.py", "tests/workers/test_restores.py",
                                             "tests/ops/test_runbook.py"}
    for path, name in marked:
        source = (ROOT / path).read_text()
        assert re.search(rf"""run_block\((?:[^)]*?)["']{re.escape(name)}["']""", source), (
            f"{path} does not run the runbook block `{name}`")
    text = RUNBOOK.read_text()
    assert text.count("<!-- run by ") == len(marked), "a marker not followed directly by a ```sh block"
    for name in {name for _, name in marked}:
        assert f"Run by the tests (`{name}`)" in text, f"the block `{name}` is not announced as run by the tests"


# -- the blocks this file runs --------------------------------------------------------------------


@pytest.mark.worker
def test_the_first_look_and_after_redis_blocks_run_against_a_live_api(live_server, user):
    from tests.factories import make_job

    make_job(user, status="failed")
    first = run_block("tests/ops/test_runbook.py", "first-look", values={"API": live_server.url})
    assert first.returncode == 0, first.stderr
    assert re.search(r"^health 200 in ", first.stdout, re.M) and '"status":"ok"' in first.stdout.replace(" ", "")
    assert "failed" in first.stdout and user.email in first.stdout

    after = run_block("tests/ops/test_runbook.py", "after-redis", values={"API": live_server.url})
    assert after.returncode == 0, after.stderr
    assert '"resent"' in after.stdout  # the sweeper's report

