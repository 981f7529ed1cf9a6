"""`assistant smoke` refuses clearly: no password, a wrong one, an api that does not answer.
(It passing against `make run`, and failing with the worker stopped: tests/e2e/test_make_run.py.)"""
from __future__ import annotations

import os
import subprocess
import sys

from tests.support import ROOT, create_user, free_port

ASSISTANT = os.path.join(os.path.dirname(sys.executable), "assistant")


def smoke(api: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([ASSISTANT, "smoke", "--api", api, "--timeout", "5"], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


def test_without_a_password_it_refuses_to_run():
    result = smoke("http://127.0.0.1:9", SMOKE_PASSWORD="")
    assert result.returncode == 1 and "SMOKE_PASSWORD is not set" in result.stderr


def test_an_api_that_does_not_answer_fails_the_first_step():
    result = smoke(f"http://127.0.0.1:{free_port()}", SMOKE_PASSWORD="whatever-password")
    assert result.returncode == 1
    assert "FAIL  health" in result.stderr and "did not answer" in result.stderr


def test_an_existing_account_with_another_password_is_not_taken_over(live_server):
    create_user("smoke-taken@example.com")  # its password is not SMOKE_PASSWORD
    result = smoke(live_server.url, SMOKE_EMAIL="smoke-taken@example.com", SMOKE_PASSWORD="not-the-password")
    assert result.returncode == 1
    assert "ok    health" in result.stdout and "ok    ready" in result.stdout
    assert "FAIL  sign in" in result.stderr and "(account exists)" in result.stderr
