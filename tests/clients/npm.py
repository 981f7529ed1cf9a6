"""Running the clients' npm scripts from tests: the same commands as `make` and a developer."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT

SDK = ROOT / "clients" / "typescript"
WEB = ROOT / "clients" / "web"


def npm() -> str:
    found = shutil.which("npm")
    if found is None:
        pytest.fail("npm is not installed: the clients need Node.js 20 and npm (apt-get install nodejs npm)")
    return found


def run(folder: Path, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`npm ARGS` in `folder`; fails the test with npm's output when it fails."""
    result = subprocess.run([npm(), *args], cwd=folder, env={**os.environ, "CI": "true", **(env or {})},
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        pytest.fail(f"`npm {' '.join(args)}` in {folder.relative_to(ROOT)} exited {result.returncode}:\n"
                    f"{result.stdout[-6000:]}\n{result.stderr[-4000:]}")
    return result
