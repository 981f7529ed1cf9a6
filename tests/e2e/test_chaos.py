"""The bounded fault run (`python -m bench.chaos --quick`; `make chaos` is the full one).

Its own throwaway PostgreSQL and Redis, worker SIGKILLs, a Redis and a PostgreSQL
restart, a beat gap then two beats: no accepted job lost, none applied twice, no 500.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.worker


def test_quick_fault_run_loses_and_duplicates_nothing():
    run = subprocess.run([sys.executable, "-m", "bench.chaos", "--quick"], cwd=ROOT, capture_output=True,
                         text=True, timeout=900)

    print(run.stdout[-3000:])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "| lost | 0 |" in run.stdout
    assert "| duplicates (tasks beyond one per job) | 0 |" in run.stdout
    assert "RESULT: ok" in run.stdout
