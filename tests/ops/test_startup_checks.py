"""Every process refuses to start on a setting that cannot work, naming the variable:
the api (gunicorn with its production config), a worker, beat, and `assistant run`."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import ROOT

BIN = os.path.dirname(sys.executable)
COMMANDS = {
    "api": [sys.executable, "-m", "gunicorn", "--config", "ops/gunicorn.conf.py", "api:create_app()"],
    "worker": [sys.executable, "-m", "celery", "-A", "shared.celery_app", "worker", "--queues", "interactive",
               "--concurrency", "1"],
    "beat": [sys.executable, "-m", "celery", "-A", "scheduler", "beat", "--schedule", "/tmp/unused-i12-beat"],
    "assistant run": [os.path.join(BIN, "assistant"), "run"],
}


# Nothing here reaches the database or Redis: the processes stop before they would.
pytestmark = pytest.mark.fast


@pytest.mark.parametrize("process", COMMANDS)
def test_a_process_refuses_a_bad_setting_and_names_it(process, tmp_path):
    # The case: the derived rate-limit database would be 16, which Redis lacks.
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:6379/14", "RATE_LIMIT_PER_MINUTE": "many",
           "PORT": "1", "WORKER_METRICS_PORT": "0", "DATA_DIR": str(tmp_path)}
    result = subprocess.run(COMMANDS[process], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert result.returncode == 78, result.stdout + result.stderr
    assert f"{process} refuses to start" in result.stderr
    assert "REDIS_URL: RATELIMIT_STORAGE_URL is its database + 2, 16" in result.stderr
    assert "RATE_LIMIT_PER_MINUTE='many' is not a whole number" in result.stderr
