"""On the embedded default (SQLite) a job that reports progress, or an agent waiting on its
model, must not hold the one write lock against everyone else.

Run in a child process with its own SQLite file: this suite's own database is PostgreSQL.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import TEST_REDIS_URL
from tests.support import ROOT

SCRIPT = r'''
import json, os, threading, time, uuid
from tests.fakes.openai_server import FakeOpenAI
fake = FakeOpenAI().start()
os.environ.update(OPENAI_API_KEY="sk-test-not-secret", OPENAI_BASE_URL=fake.url, AI_TIMEOUT_SECONDS="10")
from shared import db, migrate
from workers.job_runner import run_job
from shared.jobtypes import REGISTRY
from shared.models import Job, User
import workers.agents, workers.ops

migrate.upgrade()
with db.session_scope() as session:
    user = User(email="a@example.com", password_hash="x", role="admin")
    session.add(user)
    session.flush()
    ping = Job(id=uuid.uuid4(), user_id=user.id, type="ops.ping", queue="maintenance", status="queued",
               params={"sleep_seconds": 1.5}, run_token="t1")
    chat = Job(id=uuid.uuid4(), user_id=user.id, type="agent.assistant", queue="interactive", status="queued",
               params={"message": "anything due?"}, run_token="t2")
    session.add_all([ping, chat])
out = {}
started = time.monotonic()
out["ping"] = run_job(workers.ops.ping.body, job_type=REGISTRY["ops.ping"], job_id=ping.id, run_token="t1")
out["ping_seconds"] = time.monotonic() - started

fake.script(fake.tool_call("list_tasks", {}), fake.reply("Nothing is due.", delay=2))
def api_meanwhile():
    time.sleep(1)
    started = time.monotonic()
    with db.session_scope() as session:  # what the api does on a poll or a submit
        out["progress_seen"] = session.get(Job, chat.id).progress_message
        session.add(User(email="b@example.com", password_hash="x"))
    out["api_write_seconds"] = time.monotonic() - started
api = threading.Thread(target=api_meanwhile)
api.start()
out["chat"] = run_job(workers.agents.assistant_task.body, job_type=REGISTRY["agent.assistant"], job_id=chat.id,
                      run_token="t2")
api.join()

with db.session_scope() as session:
    write = Job(id=uuid.uuid4(), user_id=user.id, type="agent.assistant", queue="interactive", status="queued",
                params={"message": "remind me to water the plants"}, run_token="t3")
    session.add(write)
fake.script(fake.tool_call("create_task", {"title": "Water the plants"}), fake.reply("Added."))
started = time.monotonic()
out["write"] = run_job(workers.agents.assistant_task.body, job_type=REGISTRY["agent.assistant"], job_id=write.id,
                       run_token="t3")
out["write_seconds"] = time.monotonic() - started
print(json.dumps(out))
'''


def test_progress_and_agents_do_not_lock_out_the_api_on_sqlite(tmp_path):
    env = {**os.environ, "DATA_DIR": str(tmp_path), "REDIS_URL": TEST_REDIS_URL, "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL")
    run = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])

    assert out["ping"] == "succeeded" and out["ping_seconds"] < 10  # not the 30 s busy timeout
    assert out["chat"] == "succeeded"
    assert out["progress_seen"] == "looking at your tasks"
    assert out["api_write_seconds"] < 1
    assert out["write"] == "succeeded" and out["write_seconds"] < 10  # usage rows did not wait on the lock
