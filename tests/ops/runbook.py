"""ops/RUNBOOK.md as the tests read it: its shell blocks, the ones marked as run by a test,
and every `assistant` command in them. The README and docs/*.md are read the same way
(`path=`)."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

RUNBOOK = ROOT / "ops" / "RUNBOOK.md"
MARKER = re.compile(r"<!-- run by (tests/[\w/]+\.py): ([\w-]+) -->\n```sh\n(.*?)```", re.S)
BLOCK = re.compile(r"```sh\n(.*?)```", re.S)
ASSIGNMENT = re.compile(r"^(?:export )?([A-Z_][A-Z0-9_]*)=(.*)$")


def marked_blocks(path: Path = RUNBOOK) -> dict[tuple[str, str], str]:
    """{(test file, name): the block's text} of every block marked as run by a test."""
    return {(test, name): text for test, name, text in MARKER.findall(path.read_text())}


def block(test_file: str, name: str, path: Path = RUNBOOK) -> str:
    text = marked_blocks(path).get((test_file, name))
    assert text is not None, f"{path.relative_to(ROOT)} has no block marked `{name}` for {test_file}"
    return text


def run_block(test_file: str, name: str, *, values: dict[str, str], env: dict[str, str] | None = None,
              timeout: float = 300, path: Path = RUNBOOK) -> subprocess.CompletedProcess:
    """Run the block as written, its example assignments of `values` replaced; the checkout's `assistant` first in PATH."""
    lines = block(test_file, name, path).splitlines()
    for variable in values:
        assignment = next((line for line in lines if ASSIGNMENT.match(line) and
                           ASSIGNMENT.match(line).group(1) == variable), None)
        assert assignment, f"the `{name}` block no longer sets {variable}"
        lines.remove(assignment)
    environment = {**os.environ, **(env or {}), **values}
    environment["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), environment.get("PATH", "")])
    return subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(lines)], env=environment, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def shell_lines(text: str) -> list[str]:
    """The block's commands, continuation lines joined, comments and blank lines left out."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def assistant_commands(path: Path = RUNBOOK) -> list[tuple[list[str], dict[str, str]]]:
    """Every `assistant ...` invocation in the runbook's shell blocks: (its arguments, the block's assignments).

    Found wherever it stands: alone, after `docker compose run ... migrate`, after an
    environment assignment, or inside `$(...)`.
    """
    found = []
    for text in BLOCK.findall(path.read_text()):
        lines = shell_lines(text)
        assigned = {m.group(1): m.group(2).strip('"') for m in map(ASSIGNMENT.match, lines) if m}
        for line in lines:
            for piece in re.split(r"\$\(|\)|&&|\|\||;|\|", line):
                try:
                    words = shlex.split(piece, comments=True)
                except ValueError:
                    continue
                for i, word in enumerate(words):
                    # `assistant` the command: first, or after compose's service, kubectl's `--`
                    # or an assignment; not `psql -d assistant` or `kubectl -n assistant`.
                    if (word == "assistant" or word.endswith("/bin/assistant")) and (i == 0 or words[i - 1] in ("migrate", "--")
                                                or ASSIGNMENT.match(words[i - 1])):
                        found.append((words[i + 1:], assigned))
                        break
    return found
